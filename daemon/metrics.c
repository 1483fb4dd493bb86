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

void metrics_text_append(struct metrics_text *m, const char *text, size_t len)
{
	put(m, text, len);
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
		putf(m, "%s%s=\"", i ? "," : "", labels[i].name);
		put_escaped(m, labels[i].value ? labels[i].value : "", true);
		put_str(m, "\"");
	}
	if (extra_name)
		putf(m, "%s%s=\"%s\"", n ? "," : "", extra_name, extra_value);
	put_str(m, "}");
}

/* A float as Go's ParseFloat reads it back exactly: the shortest %g that round-trips. */
static void format_double(double v, char *buf, size_t len)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

void metrics_sample_u64(struct metrics_text *m, const char *name,
			const struct metrics_label *labels, size_t n, uint64_t value)
{
	put_series(m, name, labels, n, NULL, NULL);
	putf(m, " %llu\n", (unsigned long long)value);
}

void metrics_sample_double(struct metrics_text *m, const char *name,
			   const struct metrics_label *labels, size_t n, double value)
{
	char text[40];
	format_double(value, text, sizeof(text));
	put_series(m, name, labels, n, NULL, NULL);
	putf(m, " %s\n", text);
}

void metrics_histogram(struct metrics_text *m, const char *name, const struct metrics_label *labels,
		       size_t n, const double *bounds, const uint64_t *counts, size_t n_bounds,
		       double sum)
{
	char series[128], le[40];
	uint64_t total = 0;
	snprintf(series, sizeof(series), "%s_bucket", name);
	for (size_t i = 0; i <= n_bounds; i++) {
		total += counts[i];
		if (i < n_bounds)
			format_double(bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		put_series(m, series, labels, n, "le", le);
		putf(m, " %llu\n", (unsigned long long)total);
	}
	snprintf(series, sizeof(series), "%s_sum", name);
	format_double(sum, le, sizeof(le));
	put_series(m, series, labels, n, NULL, NULL);
	putf(m, " %s\n", le);
	snprintf(series, sizeof(series), "%s_count", name);
	put_series(m, series, labels, n, NULL, NULL);
	putf(m, " %llu\n", (unsigned long long)total);
}
