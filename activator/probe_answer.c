// SPDX-License-Identifier: MIT
#include "dozed/probe_answer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dozed/settings.h"

/* The PostgreSQL frontend/backend protocol 3.0, as its startup message says it. */
#define PG_PROTOCOL_3_0 196608u
/* SQLSTATE cannot_connect_now: starting up, shutting down, in recovery. */
#define PG_CANNOT_CONNECT_NOW "57P03"

/* --- requests ---------------------------------------------------------------- */

static int request_put(char *buf, size_t cap, size_t *len, const void *bytes, size_t n)
{
	if (cap - *len < n)
		return -ENOBUFS;
	memcpy(buf + *len, bytes, n);
	*len += n;
	return 0;
}

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/* A v3.0 StartupMessage. No SSLRequest first: a server that requires SSL
 * answers an error other than 57P03 (no pg_hba.conf entry ... no
 * encryption), which is an answer from a server that serves: ready. */
static int request_postgres(char *buf, size_t cap, size_t *len)
{
	static const char params[] = "user\0postgres\0database\0postgres\0"
				     "application_name\0dozed-probe\0";
	/* sizeof counts the literal's own NUL: the list's final 0 byte. */
	size_t total = 8 + sizeof(params);
	if (cap < total)
		return -ENOBUFS;
	put_be32(buf, (uint32_t)total);
	put_be32(buf + 4, PG_PROTOCOL_3_0);
	memcpy(buf + 8, params, sizeof(params));
	*len = total;
	return 0;
}

int probe_request_build(const struct probe_spec *spec, char *buf, size_t cap, size_t *len)
{
	*len = 0;
	switch (spec->kind) {
	case PROBE_TCP:
	case PROBE_MYSQL:
		return 0;
	case PROBE_HTTP: {
		const char *path = spec->http_path[0] ? spec->http_path : "/";
		/* Sent as is in the request line: a path that would end or split
		 * it never reaches the wire, whoever filled spec. */
		if (strnlen(path, sizeof(spec->http_path)) == sizeof(spec->http_path) ||
		    !settings_probe_path_valid(path))
			return -EINVAL;
		size_t plen = strlen(path);
		int r = request_put(buf, cap, len, "GET ", 4);
		if (r == 0)
			r = request_put(buf, cap, len, path, plen);
		static const char rest[] = " HTTP/1.0\r\nHost: localhost\r\nUser-Agent: "
					   "dozed-probe\r\nConnection: close\r\n\r\n";
		if (r == 0)
			r = request_put(buf, cap, len, rest, sizeof(rest) - 1);
		if (r < 0)
			*len = 0;
		return r;
	}
	case PROBE_POSTGRES:
		return request_postgres(buf, cap, len);
	case PROBE_REDIS:
		return request_put(buf, cap, len, "*1\r\n$4\r\nPING\r\n", 14);
	case PROBE_AUTO:
	case PROBE_HEALTHCHECK:
		break;
	}
	return -EINVAL;
}

/* --- answers ----------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static enum probe_verdict
verdict(enum probe_verdict v, char *why, size_t why_len, const char *fmt, ...)
{
	if (why_len == 0)
		return v;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		why[0] = '\0';
	/* The answer's own bytes are quoted: keep logs and JSON to one line. */
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < ' ' || (unsigned char)*c >= 0x7f)
			*c = '?';
	return v;
}

/* n bytes of an answer, at most max, as text verdict() can show: a NUL
 * would end the quote early, so every byte that is not printable is '?'. */
static const char *quote(const uint8_t *b, size_t n, size_t max, char *out, size_t out_len)
{
	size_t k = n < max ? n : max;
	if (k >= out_len)
		k = out_len - 1;
	for (size_t i = 0; i < k; i++)
		out[i] = b[i] >= ' ' && b[i] < 0x7f ? (char)b[i] : '?';
	out[k] = '\0';
	return out;
}

/* The answer is still growing: more, unless it closed or is too long. */
static enum probe_verdict need_more(const char *kind, size_t len, bool eof, char *why,
				    size_t why_len, const char *what)
{
	if (eof)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "%s: connection closed %s",
			       kind, len ? "in the middle of an answer" : "without an answer");
	if (len >= PROBE_ANSWER_MAX)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "%s: %zu bytes without %s",
			       kind, len, what);
	return verdict(PROBE_VERDICT_MORE, why, why_len, "%s: waiting for %s", kind, what);
}

/* The first line: its length without CR LF, or -1 while no LF came. */
static ssize_t first_line(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return -1;
	const uint8_t *nl = memchr(buf, '\n', len);
	if (!nl)
		return -1;
	size_t n = (size_t)(nl - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	return (ssize_t)n;
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Any status line, "HTTP/1.x NNN ...", is a server that serves: a 404 or a
 * 503 too (it is the app's answer, the client would get the same). */
static enum probe_verdict judge_http(const uint8_t *buf, size_t len, bool eof, char *why,
				     size_t why_len)
{
	static const char version[] = "HTTP/1.";
	char q[128];
	ssize_t line = first_line(buf, len);
	size_t shown = line >= 0 ? (size_t)line : len;
	/* Checked as far as it came, so garbage is told at once: "HTTP/1.",
	 * a digit, a space, three digits, then a space or the line's end. */
	bool ok = true;
	for (size_t i = 0; i < len && i < 13 && ok; i++) {
		uint8_t c = buf[i];
		if (i < 7)
			ok = c == (uint8_t)version[i];
		else if (i == 8)
			ok = c == ' ';
		else if (i == 12)
			ok = c == ' ' || c == '\r' || c == '\n';
		else
			ok = is_digit(c);
	}
	if (!ok)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "http: not a status line: \"%s\"",
			       quote(buf, shown, 60, q, sizeof(q)));
	if (len >= 12 && (line >= 0 || len >= PROBE_ANSWER_MAX))
		return verdict(PROBE_VERDICT_READY, why, why_len, "http: %s",
			       quote(buf, shown, 100, q, sizeof(q)));
	if (eof)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "http: connection closed before a status line");
	return need_more("http", len, eof, why, why_len, "a status line");
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *pg_auth_name(uint32_t code)
{
	switch (code) {
	case 0:
		return "ok";
	case 2:
		return "Kerberos V5";
	case 3:
		return "cleartext password";
	case 5:
		return "MD5 password";
	case 7:
		return "GSSAPI";
	case 9:
		return "SSPI";
	case 10:
		return "SASL";
	}
	return "unknown method";
}

/* An ErrorResponse's fields: a type byte and a NUL-terminated string each,
 * then a 0 byte. Judged on SQLSTATE (C) alone, said with its message (M). */
static enum probe_verdict judge_pg_error(const uint8_t *body, size_t n, char *why, size_t why_len)
{
	const char *code = NULL, *msg = "";
	size_t i = 0;
	for (;;) {
		if (i >= n)
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
				       "postgres: an error without its final 0 byte");
		uint8_t type = body[i++];
		if (type == 0)
			break;
		const uint8_t *end = memchr(body + i, '\0', n - i);
		if (!end)
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
				       "postgres: an error field without its NUL");
		const char *s = (const char *)body + i;
		if (type == 'C')
			code = s;
		else if (type == 'M')
			msg = s;
		i = (size_t)(end - body) + 1;
	}
	if (!code)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "postgres: an error without a SQLSTATE: %.100s", msg);
	if (strcmp(code, PG_CANNOT_CONNECT_NOW) == 0)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "postgres: %.120s", msg);
	/* No pg_hba entry (28000), no such database (3D000), SSL required: the
	 * server is up and saying so to every client alike. */
	return verdict(PROBE_VERDICT_READY, why, why_len, "postgres: error %.5s: %.100s", code,
		       msg);
}

static enum probe_verdict judge_postgres(const uint8_t *buf, size_t len, bool eof, char *why,
					 size_t why_len)
{
	if (len == 0)
		return need_more("postgres", len, eof, why, why_len, "an answer");
	uint8_t type = buf[0];
	if (type != 'R' && type != 'E' && type != 'v')
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "postgres: not a PostgreSQL answer (first byte 0x%02x)", type);
	if (len < 5)
		return need_more("postgres", len, eof, why, why_len, "a whole message");
	uint32_t mlen = get_be32(buf + 1);
	if (mlen < 4 || mlen > PROBE_ANSWER_MAX - 1)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "postgres: not a PostgreSQL answer ('%c' of length %u)", type, mlen);
	/* An authentication request needs only its code; the rest may be
	 * long (SASL's list of mechanisms) and is not read. */
	size_t need = type == 'R' ? 1 + (mlen < 8 ? mlen : 8) : 1 + (size_t)mlen;
	if (len < need)
		return need_more("postgres", len, eof, why, why_len, "a whole message");
	if (type == 'R') {
		if (mlen < 8)
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
				       "postgres: a malformed authentication request (length %u)",
				       mlen);
		uint32_t code = get_be32(buf + 5);
		return verdict(PROBE_VERDICT_READY, why, why_len,
			       "postgres: authentication request (%s)", pg_auth_name(code));
	}
	if (type == 'v')
		return verdict(PROBE_VERDICT_READY, why, why_len,
			       "postgres: protocol version negotiation");
	return judge_pg_error(buf + 5, mlen - 4, why, why_len);
}

static bool word_is(const uint8_t *line, size_t n, const char *word)
{
	size_t w = strlen(word);
	return n >= w && memcmp(line, word, w) == 0 && (n == w || line[w] == ' ');
}

/* PING's answer, its first line: +PONG, or an error whose first word says
 * why. An auth error is from a server that serves (the client will
 * authenticate); so is DENIED, protected mode refusing every client alike. */
static enum probe_verdict judge_redis(const uint8_t *buf, size_t len, bool eof, char *why,
				      size_t why_len)
{
	char q[128];
	if (len > 0 && buf[0] != '+' && buf[0] != '-')
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "redis: not a Redis answer (first byte 0x%02x)", buf[0]);
	ssize_t n = first_line(buf, len);
	if (n < 0)
		return need_more("redis", len, eof, why, why_len, "a whole line");
	if (n == 0)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "redis: not a Redis answer (an empty line)");
	const uint8_t *line = buf + 1;
	size_t ln = (size_t)n - 1 > 120 ? 120 : (size_t)n - 1;
	if (buf[0] == '+') {
		if (n == 5 && memcmp(line, "PONG", 4) == 0)
			return verdict(PROBE_VERDICT_READY, why, why_len, "redis: PONG");
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "redis: not an answer to PING: +%s",
			       quote(line, ln, ln, q, sizeof(q)));
	}
	static const char *const serving[] = {"NOAUTH", "ERR", "WRONGPASS", "NOPERM", "DENIED"};
	for (size_t i = 0; i < sizeof(serving) / sizeof(serving[0]); i++)
		if (word_is(line, (size_t)n - 1, serving[i]))
			return verdict(PROBE_VERDICT_READY, why, why_len, "redis: %s",
				       quote(line, ln, ln, q, sizeof(q)));
	static const char *const busy[] = {"LOADING", "BUSY", "MASTERDOWN"};
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		if (word_is(line, (size_t)n - 1, busy[i]))
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "redis: %s",
				       quote(line, ln, ln, q, sizeof(q)));
	return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
		       "redis: %s (an error not known to mean serving)",
		       quote(line, ln, ln, q, sizeof(q)));
}

/* The server's first packet: a greeting of protocol 10 (its version, a
 * NUL-terminated string, follows), or an error packet (0xff, a 2-byte code,
 * '#' and a 5-byte SQLSTATE from 4.1 on, the message). */
static enum probe_verdict judge_mysql(const uint8_t *buf, size_t len, bool eof, char *why,
				      size_t why_len)
{
	if (len < 4)
		return need_more("mysql", len, eof, why, why_len, "a packet header");
	size_t plen = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16;
	if (plen == 0 || plen > PROBE_ANSWER_MAX - 4)
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
			       "mysql: not a MySQL packet (length %zu)", plen);
	if (len < 4 + plen)
		return need_more("mysql", len, eof, why, why_len, "a whole packet");
	const uint8_t *p = buf + 4;
	if (p[0] == 0x0a) {
		const uint8_t *end = memchr(p + 1, '\0', plen - 1);
		if (!end)
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
				       "mysql: a greeting without its version's NUL");
		const char *version = (const char *)p + 1;
		/* MariaDB puts "5.5.5-" before its version for old replicas. */
		if (strncmp(version, "5.5.5-", 6) == 0 && version[6])
			version += 6;
		return verdict(PROBE_VERDICT_READY, why, why_len, "mysql: greeting from %.60s",
			       version);
	}
	if (p[0] == 0xff) {
		if (plen < 3)
			return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
				       "mysql: a short error packet");
		unsigned code = (unsigned)p[1] | (unsigned)p[2] << 8;
		size_t at = 3;
		if (plen >= 9 && p[3] == '#')
			at = 9;
		char q[128];
		return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "mysql: error %u: %s", code,
			       quote(p + at, plen - at, 100, q, sizeof(q)));
	}
	return verdict(PROBE_VERDICT_NOT_READY, why, why_len,
		       "mysql: not a protocol 10 greeting (first byte 0x%02x)", p[0]);
}

enum probe_verdict probe_answer_judge(enum probe_kind kind, const uint8_t *buf, size_t len,
				      bool eof, char *why, size_t why_len)
{
	switch (kind) {
	case PROBE_TCP:
		return verdict(PROBE_VERDICT_READY, why, why_len, "tcp: connected");
	case PROBE_HTTP:
		return judge_http(buf, len, eof, why, why_len);
	case PROBE_POSTGRES:
		return judge_postgres(buf, len, eof, why, why_len);
	case PROBE_REDIS:
		return judge_redis(buf, len, eof, why, why_len);
	case PROBE_MYSQL:
		return judge_mysql(buf, len, eof, why, why_len);
	case PROBE_AUTO:
	case PROBE_HEALTHCHECK:
		break;
	}
	return verdict(PROBE_VERDICT_NOT_READY, why, why_len, "%s: not a probe of the activator",
		       settings_probe_kind_name(kind));
}
