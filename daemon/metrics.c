// SPDX-License-Identifier: MIT
/* The Prometheus text format writer (metrics.h). */
#include "dozed/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

void metrics_text_init(struct metrics_text *m)
{
	*m = (struct metrics_text){0};
}

void metrics_text_free(struct metrics_text *m)
{
	if (!m)
		return;
	free(m->buf);
	*m = (struct metrics_text){0};
}

int metrics_text_error(const struct metrics_text *m)
{
	return m->err;
}

/* Room for n more bytes and the NUL; false (and the error kept) when there is none. */
static bool reserve(struct metrics_text *m, size_t n)
{
	if (m->err)
		return false;
	if (m->len + n + 1 <= m->cap)
		return true;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < m->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			m->err = -ENOMEM;
			return false;
		}
		cap *= 2;
	}
	char *buf = realloc(m->buf, cap);
	if (!buf) {
		m->err = -ENOMEM;
		return false;
	}
	m->buf = buf;
	m->cap = cap;
	return true;
}

static void put(struct metrics_text *m, const char *s, size_t n)
{
	if (!reserve(m, n))
		return;
	memcpy(m->buf + m->len, s, n);
	m->len += n;
	m->buf[m->len] = '\0';
}

struct metrics_blob *metrics_blob_take(struct metrics_text *m)
{
	struct metrics_blob *b = m->err ? NULL : malloc(sizeof(*b));
	if (!b) {
		metrics_text_free(m);
		return NULL;
	}
	b->refs = 1;
	b->len = m->len;
	b->text = m->buf ? m->buf : strdup("");
	if (!b->text) {
		free(b);
		return NULL;
	}
	*m = (struct metrics_text){0};
	return b;
}

struct metrics_blob *metrics_blob_ref(struct metrics_blob *b)
{
	b->refs++;
	return b;
}

void metrics_blob_unref(struct metrics_blob *b)
{
	if (!b || --b->refs > 0)
		return;
	free(b->text);
	free(b);
}

static void put_str(struct metrics_text *m, const char *s)
{
	put(m, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct metrics_text *m, const char *fmt, ...)
{
	char small[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!m->err)
			m->err = -ENOMEM;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		put(m, small, (size_t)n);
		return;
	}
	if (!reserve(m, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(m->buf + m->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	m->len += (size_t)n;
}

/*
 * Text from outside (a container's name) as the format takes it: backslash
 * and newline escaped (and the double quote in a label value), every byte
 * that is not part of valid UTF-8 replaced by U+FFFD, since Prometheus
 * refuses the whole scrape otherwise.
 */
static void put_escaped(struct metrics_text *m, const char *s, bool quote)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t run = i;
		while (run < len && s[run] != '\\' && s[run] != '\n' && !(quote && s[run] == '"') &&
		       (unsigned char)s[run] < 0x80)
			run++;
		put(m, s + i, run - i);
		i = run;
		if (i == len)
			break;
		if (s[i] == '\\') {
			put_str(m, "\\\\");
			i++;
		} else if (s[i] == '\n') {
			put_str(m, "\\n");
			i++;
		} else if (s[i] == '"') {
			put_str(m, "\\\"");
			i++;
		} else {
			size_t c = utf8_char_len(s + i, len - i);
			if (c == 0) {
				put_str(m, REPLACEMENT);
				i++;
			} else {
				put(m, s + i, c);
				i += c;
			}
		}
	}
}

void metrics_family(struct metrics_text *m, const char *name, const char *type, const char *help)
{
	putf(m, "# HELP %s ", name);
	put_escaped(m, help, false);
	putf(m, "\n# TYPE %s %s\n", name, type);
}

/* name{a="x",b="y"[,extra="v"]}, without the value. */
static void put_series(struct metrics_text *m, const char *name, const struct metrics_label *labels,
		       size_t n, const char *extra_name, const char *extra_value)
{
	put_str(m, name);
	if (n == 0 && !extra_name)
		return;
	put_str(m, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(m, ",", 1);
		put_str(m, labels[i].name);
		put(m, "=\"", 2);
		put_escaped(m, labels[i].value ? labels[i].value : "", true);
		put(m, "\"", 1);
	}
	if (extra_name) {
		if (n)
			put(m, ",", 1);
		put_str(m, extra_name);
		put(m, "=\"", 2);
		put_str(m, extra_value);
		put(m, "\"", 1);
	}
	put(m, "}", 1);
}

/* v in decimal at the end of buf (at least 21 bytes); returns its first digit. */
static char *format_u64(uint64_t v, char *end)
{
	char *p = end;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

/*
 * A float as Go's ParseFloat reads it back exactly. Most of dozed's are
 * microseconds in seconds (or whole numbers): when v is k / 1e6 for an
 * integer k, k's digits with the point put in are exact, since the division
 * and the parse both round the same quotient to nearest, and that needs no
 * printf. Else the shortest %g that round-trips.
 */
static size_t format_double(double v, char *buf, size_t len)
{
	if (isnan(v))
		return (size_t)snprintf(buf, len, "NaN");
	if (isinf(v))
		return (size_t)snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	double a = fabs(v);
	if (a < 9e9 && len >= 32) {
		uint64_t k = (uint64_t)(a * 1e6 + 0.5);
		if ((double)k / 1e6 == a) {
			char digits[24], *end = digits + sizeof(digits);
			char *p = format_u64(k, end);
			size_t n = (size_t)(end - p), o = 0;
			if (signbit(v))
				buf[o++] = '-';
			if (n <= 6) {
				buf[o++] = '0';
				if (k) {
					buf[o++] = '.';
					for (size_t z = n; z < 6; z++)
						buf[o++] = '0';
				}
			} else {
				memcpy(buf + o, p, n - 6);
				o += n - 6;
				p += n - 6;
				n = 6;
				if (k % 1000000)
					buf[o++] = '.';
			}
			/* The fraction's digits, without trailing zeros. */
			while (n > 0 && p[n - 1] == '0')
				n--;
			memcpy(buf + o, p, n);
			o += n;
			buf[o] = '\0';
			return o;
		}
	}
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return n > 0 ? (size_t)n : 0;
}

/* " value\n" of a sample. */
static void put_value_u64(struct metrics_text *m, uint64_t v)
{
	char digits[24], *end = digits + sizeof(digits);
	*--end = '\n';
	char *p = format_u64(v, end);
	*--p = ' ';
	put(m, p, (size_t)(digits + sizeof(digits) - p));
}

void metrics_sample_u64(struct metrics_text *m, const char *name,
			const struct metrics_label *labels, size_t n, uint64_t value)
{
	put_series(m, name, labels, n, NULL, NULL);
	put_value_u64(m, value);
}

static void put_value_double(struct metrics_text *m, double value)
{
	char text[48];
	text[0] = ' ';
	size_t n = format_double(value, text + 1, sizeof(text) - 2);
	text[1 + n] = '\n';
	put(m, text, n + 2);
}

void metrics_sample_double(struct metrics_text *m, const char *name,
			   const struct metrics_label *labels, size_t n, double value)
{
	put_series(m, name, labels, n, NULL, NULL);
	put_value_double(m, value);
}

/*
 * The le strings of the last bounds array seen: every service's histogram
 * has the same bounds, and formatting them anew for each was most of a
 * render's time. Kept by the values themselves, not the pointer, so that a
 * caller's array that changed is never given stale strings.
 */
#define LE_CACHE_BOUNDS 32
static __thread struct {
	size_t n;
	double bounds[LE_CACHE_BOUNDS];
	char le[LE_CACHE_BOUNDS][40];
} le_cache;

static const char *le_of(const double *bounds, size_t n_bounds, size_t i, char *spare)
{
	if (n_bounds > LE_CACHE_BOUNDS) {
		format_double(bounds[i], spare, 40);
		return spare;
	}
	if (le_cache.n != n_bounds ||
	    memcmp(le_cache.bounds, bounds, n_bounds * sizeof(*bounds)) != 0) {
		for (size_t b = 0; b < n_bounds; b++)
			format_double(bounds[b], le_cache.le[b], sizeof(le_cache.le[b]));
		memcpy(le_cache.bounds, bounds, n_bounds * sizeof(*bounds));
		le_cache.n = n_bounds;
	}
	return le_cache.le[i];
}

void metrics_histogram(struct metrics_text *m, const char *name, const struct metrics_label *labels,
		       size_t n, const double *bounds, const uint64_t *counts, size_t n_bounds,
		       double sum)
{
	char series[128], spare[40];
	uint64_t total = 0;
	snprintf(series, sizeof(series), "%s_bucket", name);
	if (n_bounds > 0)
		(void)le_of(bounds, n_bounds, 0, spare); /* checked once per histogram */
	for (size_t i = 0; i <= n_bounds; i++) {
		total += counts[i];
		const char *le = i == n_bounds		       ? "+Inf"
				 : n_bounds <= LE_CACHE_BOUNDS ? le_cache.le[i]
							       : le_of(bounds, n_bounds, i, spare);
		put_series(m, series, labels, n, "le", le);
		put_value_u64(m, total);
	}
	snprintf(series, sizeof(series), "%s_sum", name);
	put_series(m, series, labels, n, NULL, NULL);
	put_value_double(m, sum);
	snprintf(series, sizeof(series), "%s_count", name);
	put_series(m, series, labels, n, NULL, NULL);
	put_value_u64(m, total);
}
