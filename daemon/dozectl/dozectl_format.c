// SPDX-License-Identifier: MIT
#include "dozed/dozectl_format.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/utf8.h"

#define CELL_MAX 128

const char *dozectl_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool dozectl_json_u64(struct json_object *o, const char *key, uint64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	/* json-c keeps a number past INT64_MAX as unsigned: read it whole. */
	if (json_object_get_int64(v) < 0)
		return false;
	*out = json_object_get_uint64(v);
	return true;
}

/* U+0080..U+009F (C1: a terminal takes 0x9b as CSI), U+2028..U+202E and
 * U+2066..U+2069 (line breaks and bidirectional overrides that reorder what
 * follows). */
static bool is_control_char(const unsigned char *u, size_t n)
{
	if (n == 1)
		return u[0] < 0x20 || u[0] == 0x7f;
	if (n == 2)
		return u[0] == 0xc2 && u[1] < 0xa0;
	if (n == 3 && u[0] == 0xe2)
		return (u[1] == 0x80 && u[2] >= 0xa8 && u[2] <= 0xae) ||
		       (u[1] == 0x81 && u[2] >= 0xa6 && u[2] <= 0xa9);
	return false;
}

char *dozectl_sanitize(const char *s, char *buf, size_t len)
{
	size_t n = s ? strlen(s) : 0, off = 0;
	if (len == 0)
		return buf;
	for (size_t i = 0; i < n;) {
		size_t c = utf8_char_len(s + i, n - i);
		bool bad = c == 0 || is_control_char((const unsigned char *)s + i, c);
		size_t w = bad ? 1 : c;
		if (off + w >= len)
			break;
		if (bad)
			buf[off] = '?';
		else
			memcpy(buf + off, s + i, c);
		off += w;
		i += c ? c : 1;
	}
	buf[off] = '\0';
	return buf;
}

/* A sanitized copy of s (malloc'd; NULL when out of memory): never longer. */
static char *sanitized_dup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *copy = malloc(len);
	return copy ? dozectl_sanitize(s, copy, len) : NULL;
}

size_t dozectl_text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

char *dozectl_format_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms > UINT64_MAX / DURATION_US_PER_MS)
		ms = UINT64_MAX / DURATION_US_PER_MS;
	return duration_format(ms * DURATION_US_PER_MS, buf, len);
}

char *dozectl_format_timing_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms < 10000 && ms % 1000 != 0) {
		snprintf(buf, len, "%" PRIu64 "ms", ms);
		return buf;
	}
	return dozectl_format_ms(ms, buf, len);
}

char *dozectl_format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"kB", "MB", "GB", "TB", "PB"};
	if (bytes < 1000) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1000.0;
	size_t u = 0;
	while (v >= 999.95 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

/* "8080,8443", or "-". */
static void format_ports(struct json_object *service, const char *sep, char *buf, size_t len)
{
	struct json_object *ports;
	size_t off = 0;
	buf[0] = '\0';
	if (json_object_object_get_ex(service, "ports", &ports) &&
	    json_object_is_type(ports, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(ports) && off < len; i++) {
			struct json_object *p = json_object_array_get_idx(ports, i);
			int n = snprintf(buf + off, len - off, "%s%s", off ? sep : "",
					 json_object_get_string(p));
			if (n < 0)
				break;
			off += (size_t)n;
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
}

static void format_ms_field(struct json_object *o, const char *key, bool timing, char *buf,
			    size_t len)
{
	uint64_t ms;
	if (!dozectl_json_u64(o, key, &ms))
		snprintf(buf, len, "-");
	else if (timing)
		dozectl_format_timing_ms(ms, buf, len);
	else
		dozectl_format_ms(ms, buf, len);
}

enum { COL_NAME, COL_STATE, COL_PORTS, COL_IDLE, COL_WAKE, N_COLS };

static const char *const headers[N_COLS] = {"NAME", "STATE", "PORTS", "IDLE-FOR", "LAST-WAKE"};

struct row {
	char cell[N_COLS][CELL_MAX];
};

static void fill_row(struct row *r, struct json_object *s)
{
	const char *name = dozectl_json_str(s, "name"), *state = dozectl_json_str(s, "state");
	dozectl_sanitize(name ? name : "-", r->cell[COL_NAME], CELL_MAX);
	dozectl_sanitize(state ? state : "-", r->cell[COL_STATE], CELL_MAX);
	format_ports(s, ",", r->cell[COL_PORTS], CELL_MAX);
	format_ms_field(s, "idle_for_ms", false, r->cell[COL_IDLE], CELL_MAX);
	format_ms_field(s, "last_wake_ms", true, r->cell[COL_WAKE], CELL_MAX);
}

void dozectl_print_table(FILE *out, const char *const *headers, const char *const *cells,
			 size_t ncols, size_t n)
{
	_cleanup_free_ size_t *width = calloc(ncols, sizeof(*width));
	if (!width) {
		fprintf(stderr, "dozectl: out of memory\n");
		return;
	}
	for (size_t c = 0; c < ncols; c++)
		width[c] = dozectl_text_width(headers[c]);
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < ncols; c++) {
			size_t w = dozectl_text_width(cells[i * ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	/* Pads by characters, not bytes: a name may be UTF-8. */
	for (size_t i = 0; i <= n; i++) {
		const char *const *row = i == 0 ? headers : cells + (i - 1) * ncols;
		for (size_t c = 0; c < ncols; c++) {
			fputs(row[c], out);
			if (c + 1 == ncols) {
				fputc('\n', out);
				break;
			}
			for (size_t w = dozectl_text_width(row[c]); w < width[c] + 2; w++)
				fputc(' ', out);
		}
	}
}

void dozectl_print_list(FILE *out, struct json_object *services)
{
	size_t n =
	    json_object_is_type(services, json_type_array) ? json_object_array_length(services) : 0;
	_cleanup_free_ struct row *rows = n ? calloc(n, sizeof(*rows)) : NULL;
	_cleanup_free_ const char **cells = n ? calloc(n * N_COLS, sizeof(*cells)) : NULL;
	if (n && (!rows || !cells)) {
		fprintf(stderr, "dozectl: out of memory\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		fill_row(&rows[i], json_object_array_get_idx(services, i));
		for (size_t c = 0; c < N_COLS; c++)
			cells[i * N_COLS + c] = rows[i].cell[c];
	}
	dozectl_print_table(out, headers, cells, N_COLS, n);
	/* A state a user has to act on, or wait out, says why under the table. */
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(services, i);
		const char *state = dozectl_json_str(s, "state"),
			   *reason = dozectl_json_str(s, "reason");
		if (state && reason && *reason &&
		    (strcmp(state, "unknown") == 0 || strcmp(state, "failed") == 0)) {
			_cleanup_free_ char *safe = sanitized_dup(reason);
			fprintf(out, "%s: %s\n", rows[i].cell[COL_NAME], safe ? safe : "?");
		}
		/* Its light sleep is off until an operator looks: said once here too. */
		const char *refused = dozectl_json_str(s, "freeze_refused");
		if (refused && *refused) {
			_cleanup_free_ char *safe = sanitized_dup(refused);
			fprintf(out, "%s: light sleep off: %s\n", rows[i].cell[COL_NAME],
				safe ? safe : "?");
		}
	}
}

#define LABEL_WIDTH 14

static void print_kv(FILE *out, const char *key, const char *value)
{
	_cleanup_free_ char *safe = sanitized_dup(value);
	/* A label as wide as the column still gets a space before its value. */
	fprintf(out, "%-*s%s%s\n", LABEL_WIDTH, key, strlen(key) >= LABEL_WIDTH ? " " : "",
		safe ? safe : "?");
}

static void print_kv_ms(FILE *out, struct json_object *s, const char *key, const char *label,
			bool timing)
{
	char buf[DURATION_FORMAT_MAX];
	uint64_t ms;
	if (!dozectl_json_u64(s, key, &ms))
		return;
	print_kv(out, label,
		 timing ? dozectl_format_timing_ms(ms, buf, sizeof(buf))
			: dozectl_format_ms(ms, buf, sizeof(buf)));
}

static void print_kv_u64(FILE *out, struct json_object *s, const char *key, const char *label)
{
	char buf[32];
	uint64_t v;
	if (!dozectl_json_u64(s, key, &v))
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	print_kv(out, label, buf);
}

static void print_kv_str(FILE *out, struct json_object *s, const char *key, const char *label)
{
	const char *v = dozectl_json_str(s, key);
	if (v)
		print_kv(out, label, v);
}

void dozectl_print_status(FILE *out, struct json_object *s)
{
	char buf[CELL_MAX], bytes[32];
	uint64_t v, packets;

	print_kv_str(out, s, "name", "name:");
	print_kv_str(out, s, "container", "container:");
	print_kv_str(out, s, "state", "state:");
	format_ports(s, ", ", buf, sizeof(buf));
	print_kv(out, "ports:", buf);
	if (dozectl_idle_is_never(s))
		print_kv(out, "idle timeout:", "never");
	else
		print_kv_ms(out, s, "idle_timeout_ms", "idle timeout:", false);
	char sleep[384]; /* a refused pause's reason is up to 200 bytes */
	if (dozectl_format_light_sleep(s, sleep, sizeof(sleep)))
		print_kv(out, "light sleep:", sleep);
	print_kv_str(out, s, "thaw_by", "thawed by:");
	print_kv_str(out, s, "runtime_lags", "runtime:");
	print_kv_str(out, s, "wake_on", "wake on:");
	/* The setting, and what the last wake resolved it to ("auto" says little). */
	const char *probe = dozectl_json_str(s, "probe"), *used = dozectl_json_str(s, "probe_used");
	if (probe && used) {
		snprintf(buf, sizeof(buf), "%s, last wake: %s", probe, used);
		print_kv(out, "probe:", buf);
	} else if (probe) {
		print_kv(out, "probe:", probe);
	}
	const char *keep = dozectl_json_str(s, "keep_awake");
	if (keep)
		print_kv(out, "keep awake:",
			 strcmp(keep, "connections") == 0 ? "while connected"
			 : strcmp(keep, "none") == 0	  ? "no"
							  : keep);
	const char *ignore = dozectl_json_str(s, "ignore"),
		   *from = dozectl_json_str(s, "ignore_from");
	if (ignore) {
		snprintf(buf, sizeof(buf), "%s%s", ignore,
			 from && strcmp(from, "default") == 0 ? " (default)" : "");
		print_kv(out, "ignore:", buf);
	}
	print_kv_ms(out, s, "idle_for_ms", "idle for:", false);
	print_kv_ms(out, s, "freezes_in_ms", "freezes in:", false);
	print_kv_ms(out, s, "sleeps_in_ms", "sleeps in:", false);
	if (dozectl_json_u64(s, "last_wake_ms", &v))
		print_kv_ms(out, s, "last_wake_ms", "last wake:", true);
	else
		print_kv(out, "last wake:", "never");
	print_kv_u64(out, s, "wakes", "wakes:");
	if (dozectl_json_u64(s, "sleeps_cancelled", &v) && v > 0)
		print_kv_u64(out, s, "sleeps_cancelled", "sleeps cancelled:");
	print_kv_str(out, s, "last_stop", "last stop:");
	print_kv_u64(out, s, "held", "held:");
	print_kv_u64(out, s, "waiting", "waiting:");
	if (dozectl_json_u64(s, "egress_bytes", &v)) {
		dozectl_format_bytes(v, bytes, sizeof(bytes));
		if (dozectl_json_u64(s, "egress_packets", &packets))
			snprintf(buf, sizeof(buf), "%s in %" PRIu64 " packets", bytes, packets);
		else
			snprintf(buf, sizeof(buf), "%s", bytes);
		print_kv(out, "egress:", buf);
	}
	dozectl_print_activity(out, s, LABEL_WIDTH);
	print_kv_str(out, s, "reason", "reason:");
}

void dozectl_print_summary(FILE *out, struct json_object *s)
{
	const char *name = dozectl_json_str(s, "name"), *state = dozectl_json_str(s, "state");
	const char *reason = dozectl_json_str(s, "reason");
	_cleanup_free_ char *n = sanitized_dup(name ? name : "?");
	_cleanup_free_ char *st = sanitized_dup(state ? state : "?");
	_cleanup_free_ char *why = reason && *reason ? sanitized_dup(reason) : NULL;
	fprintf(out, "%s: %s", n ? n : "?", st ? st : "?");
	if (why)
		fprintf(out, " (%s)", why);
	fputc('\n', out);
}

static bool needs_quotes(const char *s)
{
	if (*s == '\0' || strpbrk(s, " \"=\\") != NULL)
		return true;
	/* A control character is printed escaped, never raw to the terminal. */
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

static bool is_common_key(const char *key)
{
	return strcmp(key, "ts") == 0 || strcmp(key, "event") == 0 || strcmp(key, "service") == 0 ||
	       strcmp(key, "container") == 0;
}

static void print_fact(FILE *out, const char *key, struct json_object *v)
{
	size_t klen = strlen(key);
	if (strcmp(key, "top_flows") == 0 && json_object_is_type(v, json_type_array)) {
		char buf[1024];
		/* The flows' one-line digest; an empty window says nothing. */
		if (json_object_array_length(v) > 0) {
			struct json_object *text =
			    json_object_new_string(dozectl_format_top_flows(v, buf, sizeof(buf)));
			fprintf(out, " top=%s",
				text ? json_object_to_json_string_ext(
					   text,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
				     : "?");
			json_object_put(text);
		}
	} else if (klen > 3 && strcmp(key + klen - 3, "_ms") == 0 &&
		   json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
		char buf[DURATION_FORMAT_MAX];
		fprintf(
		    out, " %.*s=%s", (int)(klen - 3), key,
		    dozectl_format_timing_ms((uint64_t)json_object_get_int64(v), buf, sizeof(buf)));
	} else if (klen > 3 && strcmp(key + klen - 3, "_us") == 0 &&
		   json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
		/* A thaw's timing: its microseconds count. */
		char buf[DURATION_FORMAT_MAX];
		fprintf(
		    out, " %.*s=%s", (int)(klen - 3), key,
		    dozectl_format_timing_us((uint64_t)json_object_get_int64(v), buf, sizeof(buf)));
	} else if (json_object_is_type(v, json_type_string) &&
		   !needs_quotes(json_object_get_string(v))) {
		_cleanup_free_ char *safe = sanitized_dup(json_object_get_string(v));
		fprintf(out, " %s=%s", key, safe ? safe : "?");
	} else {
		fprintf(out, " %s=%s", key,
			json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

void dozectl_print_event(FILE *out, struct json_object *e)
{
	const char *ts = dozectl_json_str(e, "ts"), *service = dozectl_json_str(e, "service");
	const char *event = dozectl_json_str(e, "event");
	_cleanup_free_ char *t = sanitized_dup(ts ? ts : "-");
	_cleanup_free_ char *svc = sanitized_dup(service ? service : "-");
	_cleanup_free_ char *ev = sanitized_dup(event ? event : "-");
	fprintf(out, "%s %s %s", t ? t : "?", svc ? svc : "?", ev ? ev : "?");
	if (json_object_is_type(e, json_type_object)) {
		json_object_object_foreach(e, key, value)
		{
			if (!is_common_key(key) && value)
				print_fact(out, key, value);
		}
	}
	fputc('\n', out);
}
