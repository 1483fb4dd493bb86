// SPDX-License-Identifier: MIT
/*
 * The explainer's output: the flows command's tables, the activity lines of
 * `dozectl status` and the digest of a sleep event's top flows. FLOW,
 * OPEN_CONN and the reply's shape are in README ("Control protocol").
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/dozectl_format.h"
#include "dozed/duration.h"
#include "dozed/macro.h"

#define CELL_MAX 160

static struct json_object *get_obj(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static bool get_bool(struct json_object *o, const char *key, bool *out)
{
	struct json_object *v = get_obj(o, key, json_type_boolean);
	if (v)
		*out = json_object_get_boolean(v);
	return v != NULL;
}

/* Bytes, or "-". */
static char *format_bytes_field(struct json_object *o, const char *key, char *buf, size_t len)
{
	uint64_t v;
	if (!dozectl_json_u64(o, key, &v))
		snprintf(buf, len, "-");
	else
		dozectl_format_bytes(v, buf, len);
	return buf;
}

/* "3s ago", or "-". */
static char *format_ago_field(struct json_object *o, const char *key, char *buf, size_t len)
{
	char d[DURATION_FORMAT_MAX];
	uint64_t v;
	if (!dozectl_json_u64(o, key, &v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s ago", dozectl_format_ms(v, d, sizeof(d)));
	return buf;
}

static uint64_t sum_u64(struct json_object *o, const char *a, const char *b)
{
	uint64_t x = 0, y = 0;
	dozectl_json_u64(o, a, &x);
	dozectl_json_u64(o, b, &y);
	return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

char *dozectl_format_peer(struct json_object *flow, char *buf, size_t len)
{
	char peer[80], name[CELL_MAX];
	const char *p = dozectl_json_str(flow, "peer"),
		   *svc = dozectl_json_str(flow, "peer_service");
	dozectl_sanitize(p ? p : "-", peer, sizeof(peer));
	if (svc && *svc)
		snprintf(buf, len, "%s (%s)", dozectl_sanitize(svc, name, sizeof(name)), peer);
	else
		snprintf(buf, len, "%s", peer);
	return buf;
}

char *dozectl_format_flow_table(struct json_object *table, char *buf, size_t len)
{
	char n[3][24];
	static const char *const keys[] = {"live", "capacity", "evicted"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		uint64_t v;
		if (dozectl_json_u64(table, keys[i], &v))
			snprintf(n[i], sizeof(n[i]), "%" PRIu64, v);
		else
			snprintf(n[i], sizeof(n[i]), "-");
	}
	snprintf(buf, len, "%s of %s entries, %s evicted", n[0], n[1], n[2]);
	return buf;
}

/* Why a flow does not count, as people say it. */
static const char *ignored_words(const char *ignored)
{
	if (strcmp(ignored, "dns") == 0)
		return "DNS";
	if (strcmp(ignored, "ntp") == 0)
		return "NTP";
	if (strcmp(ignored, "icmp") == 0)
		return "ICMP";
	return ignored;
}

/* "counted", "ignored: no payload", "ignored: rule tcp/9090", or "-". */
static char *format_counts(struct json_object *flow, char *buf, size_t len)
{
	char why[CELL_MAX];
	bool counted;
	const char *ignored = dozectl_json_str(flow, "ignored");
	if (get_bool(flow, "counted", &counted) && counted)
		snprintf(buf, len, "counted");
	else if (ignored)
		snprintf(buf, len, "ignored: %s",
			 dozectl_sanitize(ignored_words(ignored), why, sizeof(why)));
	else if (get_bool(flow, "counted", &counted))
		snprintf(buf, len, "ignored");
	else
		snprintf(buf, len, "-");
	return buf;
}

/* "tcp/80", "udp", "icmp", "47" (another IP protocol), or "-". */
static char *format_local(struct json_object *flow, char *buf, size_t len)
{
	char proto[24];
	const char *p = dozectl_json_str(flow, "proto");
	uint64_t port;
	bool has_port = dozectl_json_u64(flow, "local_port", &port) && port > 0;
	dozectl_sanitize(p ? p : "", proto, sizeof(proto));
	if (has_port)
		snprintf(buf, len, "%s%s%" PRIu64, proto, *proto ? "/" : "", port);
	else
		snprintf(buf, len, "%s", *proto ? proto : "-");
	return buf;
}

enum { COL_PEER, COL_LOCAL, COL_OPENED, COL_IN, COL_OUT, COL_PKTS, COL_SEEN, COL_COUNTS, N_COLS };

static const char *const headers[N_COLS] = {"PEER", "LOCAL",	   "OPENED",	"IN",
					    "OUT",  "PKTS IN/OUT", "LAST SEEN", "COUNTS"};

struct row {
	char cell[N_COLS][CELL_MAX];
};

static void fill_row(struct row *r, struct json_object *f)
{
	char in[24], out[24];
	uint64_t v;
	const char *opened = dozectl_json_str(f, "opened_by");
	dozectl_format_peer(f, r->cell[COL_PEER], CELL_MAX);
	format_local(f, r->cell[COL_LOCAL], CELL_MAX);
	dozectl_sanitize(opened ? opened : "-", r->cell[COL_OPENED], CELL_MAX);
	/* Payload, what decides counted or not ("0 B" beside "ignored: no payload"),
	 * as the daemon's own words say it; --json has the bytes on the wire. */
	format_bytes_field(f, "payload_in", r->cell[COL_IN], CELL_MAX);
	format_bytes_field(f, "payload_out", r->cell[COL_OUT], CELL_MAX);
	snprintf(in, sizeof(in), "-");
	snprintf(out, sizeof(out), "-");
	if (dozectl_json_u64(f, "packets_in", &v))
		snprintf(in, sizeof(in), "%" PRIu64, v);
	if (dozectl_json_u64(f, "packets_out", &v))
		snprintf(out, sizeof(out), "%" PRIu64, v);
	snprintf(r->cell[COL_PKTS], CELL_MAX, "%s/%s", in, out);
	format_ago_field(f, "last_seen_ago_ms", r->cell[COL_SEEN], CELL_MAX);
	format_counts(f, r->cell[COL_COUNTS], CELL_MAX);
}

/* Pads by characters, not bytes: a peer's service name may be UTF-8. */
static void print_table(FILE *out, struct json_object *flows)
{
	size_t n = json_object_array_length(flows);
	_cleanup_free_ struct row *rows = n ? calloc(n, sizeof(*rows)) : NULL;
	_cleanup_free_ const char **cells = n ? calloc(n * N_COLS, sizeof(*cells)) : NULL;
	if (n && (!rows || !cells)) {
		fprintf(stderr, "dozectl: out of memory\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		fill_row(&rows[i], json_object_array_get_idx(flows, i));
		for (size_t c = 0; c < N_COLS; c++)
			cells[i * N_COLS + c] = rows[i].cell[c];
	}
	dozectl_print_table(out, headers, cells, N_COLS, n);
}

/* "web (awake), flows of the last 12s:" */
static void print_service_header(FILE *out, struct json_object *svc)
{
	char name[CELL_MAX], state[32], d[DURATION_FORMAT_MAX];
	const char *n = dozectl_json_str(svc, "service"), *s = dozectl_json_str(svc, "state");
	uint64_t window;
	fputs(dozectl_sanitize(n ? n : "-", name, sizeof(name)), out);
	if (s)
		fprintf(out, " (%s)", dozectl_sanitize(s, state, sizeof(state)));
	if (dozectl_json_u64(svc, "window_ms", &window))
		fprintf(out, ", flows of the last %s:\n", dozectl_format_ms(window, d, sizeof(d)));
	else
		fputs(", flows:\n", out);
}

void dozectl_print_flows(FILE *out, struct json_object *reply)
{
	char buf[CELL_MAX];
	struct json_object *services = get_obj(reply, "services", json_type_array);
	struct json_object *table = get_obj(reply, "flow_table", json_type_object);
	size_t n = services ? json_object_array_length(services) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *svc = json_object_array_get_idx(services, i);
		struct json_object *flows = get_obj(svc, "flows", json_type_array);
		if (i > 0)
			fputc('\n', out);
		print_service_header(out, svc);
		if (flows && json_object_array_length(flows) > 0)
			print_table(out, flows);
		else
			fputs("no flows\n", out);
	}
	if (n == 0)
		fputs("no services\n", out);
	if (table)
		fprintf(out, "%sflow table: %s\n", n ? "\n" : "",
			dozectl_format_flow_table(table, buf, sizeof(buf)));
}

char *dozectl_format_top_flows(struct json_object *flows, char *buf, size_t len)
{
	size_t off = 0, n = json_object_array_length(flows);
	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		struct json_object *f = json_object_array_get_idx(flows, i);
		char peer[CELL_MAX], bytes[24], counts[CELL_MAX];
		dozectl_format_peer(f, peer, sizeof(peer));
		/* Payload both ways, and the packets: a connect-only check's flow is
		 * "0 B 41 pkts". Only an ignored flow says so. */
		dozectl_format_bytes(sum_u64(f, "payload_in", "payload_out"), bytes, sizeof(bytes));
		format_counts(f, counts, sizeof(counts));
		bool ignored = strncmp(counts, "ignored", 7) == 0;
		int w =
		    snprintf(buf + off, len - off, "%s%s %s %" PRIu64 " pkts%s%s%s", i ? ", " : "",
			     peer, bytes, sum_u64(f, "packets_in", "packets_out"),
			     ignored ? " (" : "", ignored ? counts : "", ignored ? ")" : "");
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

/* Appends to buf at *off, cut to len. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *off,
							 const char *fmt, ...)
{
	va_list ap;
	if (*off >= len)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (w > 0)
		*off += (size_t)w < len - *off ? (size_t)w : len - *off - 1;
}

/* "tcp from 10.88.0.1:41234 to port 80" or "tcp to db (10.88.0.7:5432)":
 * who opened it decides the words; the last packet's direction when unknown. */
static void append_flow_words(char *buf, size_t len, size_t *off, struct json_object *f,
			      const char *dir)
{
	char peer[CELL_MAX], proto[24];
	const char *p = dozectl_json_str(f, "proto"), *opened = dozectl_json_str(f, "opened_by");
	uint64_t port = 0;
	bool from_peer = opened && strcmp(opened, "peer") == 0;
	bool to_peer = opened && strcmp(opened, "container") == 0;
	if (!from_peer && !to_peer && dir) {
		from_peer = strcmp(dir, "in") == 0;
		to_peer = strcmp(dir, "out") == 0;
	}
	dozectl_format_peer(f, peer, sizeof(peer));
	dozectl_sanitize(p ? p : "traffic", proto, sizeof(proto));
	bool has_port = dozectl_json_u64(f, "local_port", &port) && port > 0;
	if (from_peer && has_port)
		append(buf, len, off, "%s from %s to port %" PRIu64, proto, peer, port);
	else if (to_peer || !from_peer)
		append(buf, len, off, "%s %s %s", proto, to_peer ? "to" : "with", peer);
	else
		append(buf, len, off, "%s from %s", proto, peer);
}

static void print_line(FILE *out, int label_width, const char *label, const char *value)
{
	int w = (int)strlen(label);
	fprintf(out, "%-*s%s%s\n", label_width, label, w >= label_width ? " " : "", value);
}

/* "3s ago, tcp from 10.88.0.1:41234 to port 80, 412 B in, 1.2 kB out" (payload). */
static void print_last_counted(FILE *out, struct json_object *s, struct json_object *act,
			       int label_width)
{
	char buf[512], d[DURATION_FORMAT_MAX], in[24], outb[24];
	size_t off = 0;
	uint64_t ago;
	struct json_object *f = get_obj(act, "last_counted", json_type_object);
	if (!dozectl_json_u64(act, "last_counted_ago_ms", &ago)) {
		/* Absent: nothing since the wake, which only an awake service has had. */
		const char *state = dozectl_json_str(s, "state");
		if (state && strcmp(state, "awake") == 0)
			print_line(out, label_width, "last counted:", "nothing since it woke");
		return;
	}
	append(buf, sizeof(buf), &off, "%s ago", dozectl_format_ms(ago, d, sizeof(d)));
	if (f) {
		append(buf, sizeof(buf), &off, ", ");
		append_flow_words(buf, sizeof(buf), &off, f, dozectl_json_str(act, "direction"));
		append(buf, sizeof(buf), &off, ", %s in, %s out",
		       format_bytes_field(f, "payload_in", in, sizeof(in)),
		       format_bytes_field(f, "payload_out", outb, sizeof(outb)));
	}
	print_line(out, label_width, "last counted:", buf);
}

/* "loopback 12 kB, DNS 3 queries, 41 connect-only checks from 10.88.0.1, rule 4.1 kB". */
static void print_ignored(FILE *out, struct json_object *ign, int label_width)
{
	static const struct {
		const char *key, *words;
	} classes[] = {
	    {"loopback", "loopback"}, {"no_payload", "TCP without payload"},
	    {"dns", "DNS"},	      {"ntp", "NTP"},
	    {"icmp", "ICMP"},	      {"rule", "rule"},
	};
	char buf[512], bytes[24], from[80];
	size_t off = 0;
	for (size_t i = 0; i < ARRAY_SIZE(classes); i++) {
		struct json_object *c = get_obj(ign, classes[i].key, json_type_object);
		uint64_t packets = 0, count = 0, b = 0;
		if (!c || (dozectl_json_u64(c, "packets", &packets) && packets == 0))
			continue;
		dozectl_json_u64(c, "bytes", &b);
		dozectl_format_bytes(b, bytes, sizeof(bytes));
		const char *sep = off ? ", " : "";
		const char *checks_from = dozectl_json_str(c, "checks_from");
		if (strcmp(classes[i].key, "no_payload") == 0 &&
		    dozectl_json_u64(c, "checks", &count) && count > 0)
			append(buf, sizeof(buf), &off, "%s%" PRIu64 " connect-only check%s%s%s",
			       sep, count, count == 1 ? "" : "s", checks_from ? " from " : "",
			       checks_from ? dozectl_sanitize(checks_from, from, sizeof(from))
					   : "");
		else if (strcmp(classes[i].key, "dns") == 0 &&
			 dozectl_json_u64(c, "queries", &count) && count > 0)
			append(buf, sizeof(buf), &off, "%sDNS %" PRIu64 " quer%s", sep, count,
			       count == 1 ? "y" : "ies");
		else
			append(buf, sizeof(buf), &off, "%s%s %s", sep, classes[i].words, bytes);
	}
	print_line(out, label_width, "ignored:", off ? buf : "nothing");
}

/* The port of "10.88.0.7:80" or "[2001:db8::7]:80", or "-". */
static const char *addr_port(const char *addr)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	return colon && colon[1] ? colon + 1 : "-";
}

/* "from 10.88.0.1:41234 to port 80, 1.3 kB in, 200 B out, unanswered for 4s";
 * "to db (10.88.0.8:5432) from port 41000, ..." for one the container opened. */
static void print_open_conn(FILE *out, struct json_object *c)
{
	char peer[CELL_MAX], port[16], in[24], sent[24], d[DURATION_FORMAT_MAX];
	bool inbound = false, unanswered = false;
	uint64_t recv_ms;
	get_bool(c, "inbound", &inbound);
	get_bool(c, "unanswered", &unanswered);
	dozectl_format_peer(c, peer, sizeof(peer));
	dozectl_sanitize(addr_port(dozectl_json_str(c, "local")), port, sizeof(port));
	fprintf(out, "  %s %s %s port %s, %s in, %s out", inbound ? "from" : "to", peer,
		inbound ? "to" : "from", port,
		format_bytes_field(c, "bytes_received", in, sizeof(in)),
		format_bytes_field(c, "bytes_sent", sent, sizeof(sent)));
	/* Its last payload came after the container last sent any: at least that long. */
	if (unanswered && dozectl_json_u64(c, "last_recv_ms", &recv_ms))
		fprintf(out, ", unanswered for %s", dozectl_format_ms(recv_ms, d, sizeof(d)));
	else if (unanswered)
		fputs(", unanswered", out);
	fputc('\n', out);
}

static void print_open_conns(FILE *out, struct json_object *s, struct json_object *conns,
			     int label_width)
{
	char buf[128];
	size_t n = json_object_array_length(conns), inbound = 0;
	const char *keep = dozectl_json_str(s, "keep_awake");
	bool keeps = keep && strcmp(keep, "connections") == 0;
	for (size_t i = 0; i < n; i++) {
		bool in = false;
		if (get_bool(json_object_array_get_idx(conns, i), "inbound", &in) && in)
			inbound++;
	}
	if (n == 0) {
		print_line(out, label_width, "connections:", "none open");
		return;
	}
	if (keeps && inbound > 0)
		snprintf(buf, sizeof(buf), "%zu open, %zu inbound (it stays awake while connected)",
			 n, inbound);
	else
		snprintf(buf, sizeof(buf), "%zu open (a sleep would cut %s)", n,
			 n == 1 ? "it" : "them");
	print_line(out, label_width, "connections:", buf);
	for (size_t i = 0; i < n; i++)
		print_open_conn(out, json_object_array_get_idx(conns, i));
}

void dozectl_print_activity(FILE *out, struct json_object *s, int label_width)
{
	char buf[CELL_MAX], bytes[24];
	struct json_object *act = get_obj(s, "activity", json_type_object);
	struct json_object *table = get_obj(s, "flow_table", json_type_object);
	uint64_t b, packets;
	if (act) {
		if (dozectl_json_u64(act, "counted_bytes", &b)) {
			dozectl_format_bytes(b, bytes, sizeof(bytes));
			if (dozectl_json_u64(act, "counted_packets", &packets))
				snprintf(buf, sizeof(buf), "%s in %" PRIu64 " packets", bytes,
					 packets);
			else
				snprintf(buf, sizeof(buf), "%s", bytes);
			print_line(out, label_width, "counted:", buf);
		}
		print_last_counted(out, s, act, label_width);
		struct json_object *ign = get_obj(act, "ignored", json_type_object);
		if (ign)
			print_ignored(out, ign, label_width);
		struct json_object *conns = get_obj(act, "open_connections", json_type_array);
		if (conns)
			print_open_conns(out, s, conns, label_width);
		const char *by = dozectl_json_str(act, "kept_awake_by");
		if (by) {
			char safe[512];
			print_line(out, label_width,
				   "kept awake by:", dozectl_sanitize(by, safe, sizeof(safe)));
		}
	}
	if (table)
		print_line(out, label_width,
			   "flow table:", dozectl_format_flow_table(table, buf, sizeof(buf)));
}
