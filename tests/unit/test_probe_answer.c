// SPDX-License-Identifier: MIT
/*
 * The protocol probes' requests and their judges, on answers recorded from
 * real servers (PostgreSQL 15, Redis 7.0, busybox httpd, Python's
 * http.server; MariaDB's packets as its protocol documents them, no server
 * here), and on every prefix of each, oversized, garbage, zero bytes and
 * closed connections.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/probe_answer.h"
#include "dozed/settings.h"
#include "fixture.h"
#include "harness.h"

/* --- recorded answers ------------------------------------------------------------ */

/*
 * tests/unit/fixtures/probe/NAME.bin, as servers on this machine sent them
 * to the probe's own requests (that directory's README.md says how):
 * PostgreSQL 15 (pg15_*), Redis 7.0 (redis7_*), busybox httpd and Python's
 * http.server (http_*).
 */
struct recorded {
	const char *name;
	char *bytes;
	size_t len;
};

static const struct recorded *recorded(const char *name)
{
	static struct recorded cache[16];
	size_t i = 0;
	for (; i < 16 && cache[i].name; i++)
		if (strcmp(cache[i].name, name) == 0)
			return &cache[i];
	ASSERT_TRUE(i < 16);
	char path[128];
	snprintf(path, sizeof(path), "unit/fixtures/probe/%s.bin", name);
	cache[i].bytes = fixture_read(path, &cache[i].len);
	cache[i].name = name;
	return &cache[i];
}

/* The bytes and the length of a recorded answer, as two arguments. */
#define REC(name) (const uint8_t *)recorded(name)->bytes, recorded(name)->len

/* --- MariaDB 10.11's first packets, as its protocol documents them ------------- */

static const uint8_t mariadb_greeting_payload[] = {
    0x0a, /* protocol 10 */
    '5',  '.',	'5',  '.',  '5',  '-',	'1',  '0',  '.',  '1',	'1', '.', '6',	'-',
    'M',  'a',	'r',  'i',  'a',  'D',	'B',  '-',  '0',  '+',	'd', 'e', 'b',	'1',
    '2',  'u',	'1',  0x00, 0x0b, 0x00, 0x00, 0x00,		/* connection id */
    'J',  'k',	'%',  '3',  '~',  'z',	'!',  'P',  0x00,	/* scramble, part 1 */
    0xfe, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 0x15,		/* capabilities, charset, status */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, /* reserved, MariaDB's */
    'Q',  'w',	'9',  'r',  '#',  'L',	'v',  'a',  '`',  'd',	')', 'Y', 0x00, /* scramble, part 2
										 */
    'm',  'y',	's',  'q',  'l',  '_',	'n',  'a',  't',  'i',	'v', 'e', '_',	'p',
    'a',  's',	's',  'w',  'o',  'r',	'd',  0x00,
};

/* Before the handshake an error packet has no '#' and SQLSTATE. */
static const char mariadb_1130_message[] =
    "Host '10.88.0.1' is not allowed to connect to this MariaDB server";

/* The packet of payload (header: 3-byte little-endian length, sequence 0). */
static size_t mysql_packet(const uint8_t *payload, size_t n, uint8_t *out)
{
	out[0] = (uint8_t)n;
	out[1] = (uint8_t)(n >> 8);
	out[2] = (uint8_t)(n >> 16);
	out[3] = 0;
	memcpy(out + 4, payload, n);
	return 4 + n;
}

static size_t mariadb_1130(uint8_t *out)
{
	uint8_t payload[128] = {0xff, 0x6a, 0x04};
	size_t n = strlen(mariadb_1130_message);
	memcpy(payload + 3, mariadb_1130_message, n);
	return mysql_packet(payload, 3 + n, out);
}

/* --- helpers ------------------------------------------------------------------- */

static const char *verdict_name(enum probe_verdict v)
{
	return v == PROBE_VERDICT_MORE ? "more" : v == PROBE_VERDICT_READY ? "ready" : "not ready";
}

static void assert_why_printable(const char *why, size_t cap)
{
	size_t n = strnlen(why, cap);
	if (n == cap)
		FAIL("why is not NUL-terminated within its %zu bytes", cap);
	if (n == 0 && cap > 1)
		FAIL("why is empty");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)why[i] < ' ' || (unsigned char)why[i] >= 0x7f)
			FAIL("why \"%s\" has byte 0x%02x at %zu", why, (unsigned char)why[i], i);
}

/* Judges exactly buf[0..n), from a heap copy of n bytes: a read past them
 * is ASan's to see. */
static enum probe_verdict judged(enum probe_kind kind, const void *buf, size_t n, bool eof,
				 char *why, size_t why_len)
{
	uint8_t *copy = malloc(n ? n : 1);
	ASSERT_TRUE(copy);
	if (n)
		memcpy(copy, buf, n);
	enum probe_verdict v = probe_answer_judge(kind, n ? copy : NULL, n, eof, why, why_len);
	free(copy);
	assert_why_printable(why, why_len);
	return v;
}

static enum probe_verdict judge_str(enum probe_kind kind, const char *s, char *why)
{
	return judged(kind, s, strlen(s), false, why, PROBE_WHY_MAX);
}

/*
 * The whole answer gets want, with or without the close after it; every
 * prefix gets "more" (and not ready once closed there) until the verdict,
 * and the verdict never changes with more bytes. Returns where it came.
 */
static size_t assert_prefixes(const char *name, enum probe_kind kind, const void *buf, size_t n,
			      enum probe_verdict want)
{
	char why[PROBE_WHY_MAX];
	size_t at = n + 1;
	for (size_t k = 0; k <= n; k++) {
		enum probe_verdict v = judged(kind, buf, k, false, why, sizeof(why));
		if (at <= n && v != want)
			FAIL("%s: %s at %zu bytes after %s at %zu (%s)", name, verdict_name(v), k,
			     verdict_name(want), at, why);
		if (at > n && v != PROBE_VERDICT_MORE) {
			if (v != want)
				FAIL("%s: %s at %zu of %zu bytes, expected %s (%s)", name,
				     verdict_name(v), k, n, verdict_name(want), why);
			at = k;
		}
		if (v == PROBE_VERDICT_MORE) {
			enum probe_verdict e = judged(kind, buf, k, true, why, sizeof(why));
			if (e != PROBE_VERDICT_NOT_READY)
				FAIL("%s: %s when closed after %zu of %zu bytes (%s)", name,
				     verdict_name(e), k, n, why);
		}
	}
	if (at > n)
		FAIL("%s: no verdict after all %zu bytes", name, n);
	if (judged(kind, buf, n, true, why, sizeof(why)) != want)
		FAIL("%s: another verdict once closed after it (%s)", name, why);
	return at;
}

static void assert_judged(enum probe_kind kind, const void *buf, size_t n, enum probe_verdict want,
			  const char *want_why)
{
	char why[PROBE_WHY_MAX];
	enum probe_verdict v = judged(kind, buf, n, false, why, sizeof(why));
	if (v != want)
		FAIL("%s, expected %s (%s)", verdict_name(v), verdict_name(want), why);
	ASSERT_STREQ(why, want_why);
}

/* --- requests ------------------------------------------------------------------ */

/* What rec.py sent to PostgreSQL 15 to get the answers above. */
static const uint8_t pg_startup_sent[] = {
    0x00, 0x00, 0x00, 0x46, 0x00, 0x03, 0x00, 0x00, 'u', 's', 'e', 'r',	 0x00, 'p',
    'o',  's',	't',  'g',  'r',  'e',	's',  0x00, 'd', 'a', 't', 'a',	 'b',  'a',
    's',  'e',	0x00, 'p',  'o',  's',	't',  'g',  'r', 'e', 's', 0x00, 'a',  'p',
    'p',  'l',	'i',  'c',  'a',  't',	'i',  'o',  'n', '_', 'n', 'a',	 'm',  'e',
    0x00, 'd',	'o',  'z',  'e',  'd',	'-',  'p',  'r', 'o', 'b', 'e',	 0x00, 0x00,
};

static size_t built(enum probe_kind kind, const char *path, char *buf, size_t cap)
{
	struct probe_spec spec = {.kind = kind};
	if (path)
		snprintf(spec.http_path, sizeof(spec.http_path), "%s", path);
	size_t len = 12345;
	ASSERT_OK(probe_request_build(&spec, buf, cap, &len));
	ASSERT_TRUE(len <= cap);
	return len;
}

TEST(test_each_kind_sends_its_request_and_mysql_and_tcp_send_nothing)
{
	char buf[PROBE_REQUEST_MAX];
	ASSERT_EQ_U(built(PROBE_TCP, NULL, buf, sizeof(buf)), 0);
	ASSERT_EQ_U(built(PROBE_MYSQL, NULL, buf, sizeof(buf)), 0);
	size_t n = built(PROBE_REDIS, NULL, buf, sizeof(buf));
	ASSERT_EQ_U(n, 14);
	ASSERT_TRUE(memcmp(buf, "*1\r\n$4\r\nPING\r\n", 14) == 0);
	n = built(PROBE_POSTGRES, NULL, buf, sizeof(buf));
	ASSERT_EQ_U(n, sizeof(pg_startup_sent));
	ASSERT_TRUE(memcmp(buf, pg_startup_sent, n) == 0);
}

TEST(test_http_sends_get_of_its_path_or_of_slash)
{
	static const char rest[] =
	    " HTTP/1.0\r\nHost: localhost\r\nUser-Agent: dozed-probe\r\nConnection: close\r\n\r\n";
	char buf[PROBE_REQUEST_MAX + 1], want[PROBE_REQUEST_MAX + 1];
	size_t n = built(PROBE_HTTP, NULL, buf, PROBE_REQUEST_MAX);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "GET /%s", rest);
	ASSERT_STREQ(buf, want);
	n = built(PROBE_HTTP, "/health?full=1", buf, PROBE_REQUEST_MAX);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "GET /health?full=1%s", rest);
	ASSERT_STREQ(buf, want);
	/* The longest path fits. */
	char path[sizeof(((struct probe_spec *)0)->http_path)];
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	n = built(PROBE_HTTP, path, buf, PROBE_REQUEST_MAX);
	ASSERT_EQ_U(n, 4 + strlen(path) + strlen(rest));
}

TEST(test_request_refuses_the_daemons_kinds_bad_paths_and_small_buffers)
{
	char buf[PROBE_REQUEST_MAX];
	size_t len;
	struct probe_spec spec = {.kind = PROBE_AUTO};
	ASSERT_ERR(probe_request_build(&spec, buf, sizeof(buf), &len), EINVAL);
	spec.kind = PROBE_HEALTHCHECK;
	ASSERT_ERR(probe_request_build(&spec, buf, sizeof(buf), &len), EINVAL);
	spec.kind = PROBE_HTTP;
	snprintf(spec.http_path, sizeof(spec.http_path), "health");
	ASSERT_ERR(probe_request_build(&spec, buf, sizeof(buf), &len), EINVAL);
	snprintf(spec.http_path, sizeof(spec.http_path), "/a b");
	ASSERT_ERR(probe_request_build(&spec, buf, sizeof(buf), &len), EINVAL);
	snprintf(spec.http_path, sizeof(spec.http_path), "/a\r\nX: 1");
	ASSERT_ERR(probe_request_build(&spec, buf, sizeof(buf), &len), EINVAL);
	snprintf(spec.http_path, sizeof(spec.http_path), "/");
	ASSERT_ERR(probe_request_build(&spec, buf, 20, &len), ENOBUFS);
	ASSERT_EQ_U(len, 0);
	spec.kind = PROBE_POSTGRES;
	ASSERT_ERR(probe_request_build(&spec, buf, 69, &len), ENOBUFS);
	spec.kind = PROBE_REDIS;
	ASSERT_ERR(probe_request_build(&spec, buf, 13, &len), ENOBUFS);
}

/* --- postgres ------------------------------------------------------------------ */

TEST(test_postgres_starting_up_is_not_ready_and_says_so)
{
	assert_prefixes("57P03 starting up", PROBE_POSTGRES, REC("pg15_starting_up"),
			PROBE_VERDICT_NOT_READY);
	assert_judged(PROBE_POSTGRES, REC("pg15_starting_up"), PROBE_VERDICT_NOT_READY,
		      "postgres: the database system is starting up");
	assert_prefixes("57P03 standby", PROBE_POSTGRES, REC("pg15_standby_hot_standby_off"),
			PROBE_VERDICT_NOT_READY);
	assert_judged(PROBE_POSTGRES, REC("pg15_standby_hot_standby_off"), PROBE_VERDICT_NOT_READY,
		      "postgres: the database system is not accepting connections");
}

TEST(test_postgres_authentication_request_is_ready)
{
	/* Judged on its code, the SASL mechanisms after it not waited for. */
	ASSERT_EQ_U(
	    assert_prefixes("SASL", PROBE_POSTGRES, REC("pg15_auth_sasl"), PROBE_VERDICT_READY), 9);
	assert_judged(PROBE_POSTGRES, REC("pg15_auth_sasl"), PROBE_VERDICT_READY,
		      "postgres: authentication request (SASL)");
	assert_prefixes("MD5", PROBE_POSTGRES, REC("pg15_auth_md5"), PROBE_VERDICT_READY);
	assert_judged(PROBE_POSTGRES, REC("pg15_auth_md5"), PROBE_VERDICT_READY,
		      "postgres: authentication request (MD5 password)");
	assert_prefixes("AuthenticationOk", PROBE_POSTGRES, REC("pg15_auth_ok_then_no_role"),
			PROBE_VERDICT_READY);
}

TEST(test_postgres_error_other_than_57P03_is_ready)
{
	assert_prefixes("28000", PROBE_POSTGRES, REC("pg15_no_hba_entry_28000"),
			PROBE_VERDICT_READY);
	char why[PROBE_WHY_MAX];
	judged(PROBE_POSTGRES, REC("pg15_no_hba_entry_28000"), false, why, sizeof(why));
	ASSERT_CONTAINS(why, "postgres: error 28000: no pg_hba.conf entry for host");
	/* 3D000, made from the 57P03 answer: only the code tells them apart. */
	const struct recorded *r = recorded("pg15_starting_up");
	uint8_t e[256];
	ASSERT_TRUE(r->len <= sizeof(e));
	memcpy(e, r->bytes, r->len);
	uint8_t *c = memmem(e, r->len, "C57P03", 6);
	ASSERT_TRUE(c);
	memcpy(c + 1, "3D000", 5);
	assert_judged(PROBE_POSTGRES, e, r->len, PROBE_VERDICT_READY,
		      "postgres: error 3D000: the database system is starting up");
}

TEST(test_postgres_negotiate_protocol_version_is_ready)
{
	/* NegotiateProtocolVersion: newest minor 0, no options unknown. */
	static const uint8_t v[] = {'v', 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0};
	assert_prefixes("v", PROBE_POSTGRES, v, sizeof(v), PROBE_VERDICT_READY);
}

TEST(test_postgres_garbage_and_bad_lengths_are_not_ready)
{
	char why[PROBE_WHY_MAX];
	/* Another type byte: at once, before a length. */
	ASSERT_EQ_U(judge_str(PROBE_POSTGRES, "S", why), PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "postgres: not a PostgreSQL answer (first byte 0x53)");
	ASSERT_EQ_U(judge_str(PROBE_POSTGRES, "HTTP/1.1 400 Bad Request\r\n", why),
		    PROBE_VERDICT_NOT_READY);
	static const uint8_t short_len[] = {'E', 0, 0, 0, 3, 0};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, short_len, sizeof(short_len), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	static const uint8_t huge[] = {'R', 0x7f, 0xff, 0xff, 0xff};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, huge, sizeof(huge), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "length");
	/* Just over the bound: the whole message would not fit the buffer. */
	static const uint8_t over[] = {'E', 0, 0, 0x04, 0x00};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, over, sizeof(over), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	/* An error whose fields lack their NULs or the final 0. */
	static const uint8_t no_nul[] = {'E', 0, 0, 0, 10, 'C', '5', '7', 'P', '0', '3'};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, no_nul, sizeof(no_nul), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	static const uint8_t no_end[] = {'E', 0, 0, 0, 11, 'C', '5', '7', 'P', '0', '3', 0};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, no_end, sizeof(no_end), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	static const uint8_t no_code[] = {'E', 0, 0, 0, 9, 'M', 'h', 'i', 0, 0};
	ASSERT_EQ_U(judged(PROBE_POSTGRES, no_code, sizeof(no_code), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "without a SQLSTATE");
}

/* --- redis --------------------------------------------------------------------- */

TEST(test_redis_pong_and_auth_errors_are_ready)
{
	assert_prefixes("PONG", PROBE_REDIS, REC("redis7_pong"), PROBE_VERDICT_READY);
	assert_judged(PROBE_REDIS, REC("redis7_pong"), PROBE_VERDICT_READY, "redis: PONG");
	assert_prefixes("NOAUTH", PROBE_REDIS, REC("redis7_noauth"), PROBE_VERDICT_READY);
	assert_judged(PROBE_REDIS, REC("redis7_noauth"), PROBE_VERDICT_READY,
		      "redis: NOAUTH Authentication required.");
	char why[PROBE_WHY_MAX];
	static const char *const ready[] = {
	    "-ERR unknown command 'PING'\r\n",
	    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
	    "-NOPERM this user has no permissions to run the 'ping' command\r\n",
	    "-DENIED Redis is running in protected mode\r\n",
	};
	for (size_t i = 0; i < sizeof(ready) / sizeof(ready[0]); i++)
		if (judge_str(PROBE_REDIS, ready[i], why) != PROBE_VERDICT_READY)
			FAIL("%s: not ready (%s)", ready[i], why);
}

TEST(test_redis_loading_busy_and_masterdown_are_not_ready)
{
	assert_prefixes("LOADING", PROBE_REDIS, REC("redis7_loading"), PROBE_VERDICT_NOT_READY);
	assert_judged(PROBE_REDIS, REC("redis7_loading"), PROBE_VERDICT_NOT_READY,
		      "redis: LOADING Redis is loading the dataset in memory");
	assert_prefixes("BUSY", PROBE_REDIS, REC("redis7_busy"), PROBE_VERDICT_NOT_READY);
	char why[PROBE_WHY_MAX];
	ASSERT_EQ_U(judge_str(PROBE_REDIS,
			      "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data "
			      "is set to 'no'.\r\n",
			      why),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "redis: MASTERDOWN Link");
	/* Unknown errors are not ready, and say so; a word is a whole word. */
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "-TRYAGAIN later\r\n", why), PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "not known to mean serving");
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "-ERRX x\r\n", why), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "-NOAUTHORITY\r\n", why), PROBE_VERDICT_NOT_READY);
}

TEST(test_redis_garbage_is_not_ready_at_once)
{
	char why[PROBE_WHY_MAX];
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "$", why), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "HTTP/1.1 400", why), PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "redis: not a Redis answer (first byte 0x48)");
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "+OK\r\n", why), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "\r\n", why), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "+PONGS\r\n", why), PROBE_VERDICT_NOT_READY);
	/* A bare LF ends a line too. */
	ASSERT_EQ_U(judge_str(PROBE_REDIS, "+PONG\n", why), PROBE_VERDICT_READY);
}

/* --- mysql --------------------------------------------------------------------- */

TEST(test_mysql_greeting_is_ready_and_names_the_server)
{
	uint8_t pkt[256];
	size_t n = mysql_packet(mariadb_greeting_payload, sizeof(mariadb_greeting_payload), pkt);
	assert_prefixes("greeting", PROBE_MYSQL, pkt, n, PROBE_VERDICT_READY);
	assert_judged(PROBE_MYSQL, pkt, n, PROBE_VERDICT_READY,
		      "mysql: greeting from 10.11.6-MariaDB-0+deb12u1");
	/* MySQL's own, without MariaDB's prefix. */
	static const uint8_t mysql8[] = {0x0a, '8', '.', '0', '.', '3', '6', 0, 1, 0, 0, 0};
	n = mysql_packet(mysql8, sizeof(mysql8), pkt);
	assert_judged(PROBE_MYSQL, pkt, n, PROBE_VERDICT_READY, "mysql: greeting from 8.0.36");
}

TEST(test_mysql_error_packet_is_not_ready_and_says_its_code)
{
	uint8_t pkt[256];
	size_t n = mariadb_1130(pkt);
	assert_prefixes("1130", PROBE_MYSQL, pkt, n, PROBE_VERDICT_NOT_READY);
	char want[PROBE_WHY_MAX];
	snprintf(want, sizeof(want), "mysql: error 1130: %s", mariadb_1130_message);
	assert_judged(PROBE_MYSQL, pkt, n, PROBE_VERDICT_NOT_READY, want);
	/* With '#' and a SQLSTATE (4.1 on, after the handshake). */
	static const uint8_t e1040[] = {0xff, 0x10, 0x04, '#', '0', '8', '0', '0', '4',
					'T',  'o',  'o',  ' ', 'm', 'a', 'n', 'y'};
	n = mysql_packet(e1040, sizeof(e1040), pkt);
	assert_judged(PROBE_MYSQL, pkt, n, PROBE_VERDICT_NOT_READY, "mysql: error 1040: Too many");
}

TEST(test_mysql_other_protocols_and_garbage_are_not_ready)
{
	uint8_t pkt[PROBE_ANSWER_MAX + 16];
	char why[PROBE_WHY_MAX];
	static const uint8_t v9[] = {0x09, '3', '.', '2', '3', 0};
	size_t n = mysql_packet(v9, sizeof(v9), pkt);
	ASSERT_EQ_U(judged(PROBE_MYSQL, pkt, n, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "mysql: not a protocol 10 greeting (first byte 0x09)");
	/* A greeting whose version has no NUL. */
	static const uint8_t no_nul[] = {0x0a, '8', '.', '0'};
	n = mysql_packet(no_nul, sizeof(no_nul), pkt);
	ASSERT_EQ_U(judged(PROBE_MYSQL, pkt, n, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	/* Lengths 0 and past the bound, told from the header alone. */
	static const uint8_t zero[] = {0, 0, 0, 0};
	ASSERT_EQ_U(judged(PROBE_MYSQL, zero, 4, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	static const uint8_t big[] = {0xff, 0xff, 0xff, 0};
	ASSERT_EQ_U(judged(PROBE_MYSQL, big, 4, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judge_str(PROBE_MYSQL, "SSH-2.0-OpenSSH_9.2\r\n", why),
		    PROBE_VERDICT_NOT_READY);
	static const uint8_t short_err[] = {0xff, 0x6a};
	n = mysql_packet(short_err, sizeof(short_err), pkt);
	ASSERT_EQ_U(judged(PROBE_MYSQL, pkt, n, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
}

/* --- http ---------------------------------------------------------------------- */

TEST(test_http_any_status_line_is_ready)
{
	assert_prefixes("busybox 200", PROBE_HTTP, REC("http_busybox_200"), PROBE_VERDICT_READY);
	assert_judged(PROBE_HTTP, REC("http_busybox_200"), PROBE_VERDICT_READY,
		      "http: HTTP/1.1 200 OK");
	assert_prefixes("python 404", PROBE_HTTP, REC("http_python_404"), PROBE_VERDICT_READY);
	assert_judged(PROBE_HTTP, REC("http_python_404"), PROBE_VERDICT_READY,
		      "http: HTTP/1.0 404 File not found");
	char why[PROBE_WHY_MAX];
	ASSERT_EQ_U(judge_str(PROBE_HTTP, "HTTP/1.1 503\r\n", why), PROBE_VERDICT_READY);
	ASSERT_STREQ(why, "http: HTTP/1.1 503");
	/* A status line needs its end: closed before it, not ready. */
	ASSERT_EQ_U(judged(PROBE_HTTP, "HTTP/1.0 200", 12, true, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
}

TEST(test_http_without_a_status_line_is_not_ready)
{
	char why[PROBE_WHY_MAX];
	ASSERT_EQ_U(judged(PROBE_HTTP, "", 0, true, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "http: connection closed before a status line");
	ASSERT_EQ_U(judged(PROBE_HTTP, "HTTP/1.1 20", 11, true, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "http: connection closed before a status line");
	static const char *const bad[] = {
	    "HTTP/2 200\r\n",	    "HTTP/1.1 20\r\n",
	    "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 abc OK\r\n",
	    "http/1.1 200 OK\r\n",  "SSH-2.0-OpenSSH_9.2\r\n",
	    "<html>hello</html>\n", "\r\n",
	    "HTTP/1.1  200 OK\r\n", "HTTP/1.x 200 OK\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (judge_str(PROBE_HTTP, bad[i], why) != PROBE_VERDICT_NOT_READY)
			FAIL("\"%s\" is not a status line, judged otherwise (%s)", bad[i], why);
	/* Garbage is told at its first byte, not at the bound. */
	ASSERT_EQ_U(judge_str(PROBE_HTTP, "S", why), PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "http: not a status line");
}

/* --- every kind: bounds, nothing, closed, what why says -------------------------- */

static const enum probe_kind protocol_kinds[] = {PROBE_HTTP, PROBE_POSTGRES, PROBE_REDIS,
						 PROBE_MYSQL};

TEST(test_zero_bytes_wait_and_a_close_without_an_answer_is_not_ready)
{
	for (size_t i = 0; i < sizeof(protocol_kinds) / sizeof(protocol_kinds[0]); i++) {
		char why[PROBE_WHY_MAX];
		enum probe_kind k = protocol_kinds[i];
		ASSERT_EQ_U(judged(k, NULL, 0, false, why, sizeof(why)), PROBE_VERDICT_MORE);
		ASSERT_EQ_U(judged(k, NULL, 0, true, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
		ASSERT_CONTAINS(why, settings_probe_kind_name(k));
		ASSERT_CONTAINS(why, "closed");
	}
	char why[PROBE_WHY_MAX];
	ASSERT_EQ_U(judged(PROBE_TCP, NULL, 0, false, why, sizeof(why)), PROBE_VERDICT_READY);
	ASSERT_EQ_U(judged(PROBE_AUTO, NULL, 0, false, why, sizeof(why)), PROBE_VERDICT_NOT_READY);
	ASSERT_EQ_U(judged(PROBE_HEALTHCHECK, "x", 1, false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
}

TEST(test_an_answer_that_never_ends_is_not_ready_at_the_bound)
{
	/* Each starts as its protocol's answer would and never finishes. */
	uint8_t buf[PROBE_ANSWER_MAX + 100];
	char why[PROBE_WHY_MAX];
	/* redis: a line without its end. */
	memset(buf, 'A', sizeof(buf));
	buf[0] = '-';
	ASSERT_EQ_U(judged(PROBE_REDIS, buf, PROBE_ANSWER_MAX - 1, false, why, sizeof(why)),
		    PROBE_VERDICT_MORE);
	ASSERT_EQ_U(judged(PROBE_REDIS, buf, PROBE_ANSWER_MAX, false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "1024 bytes");
	ASSERT_EQ_U(judged(PROBE_REDIS, buf, sizeof(buf), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	/* http: a prefix that is not a whole line yet. */
	memcpy(buf, "HTTP/1.", 7);
	ASSERT_EQ_U(judged(PROBE_HTTP, buf, 7, false, why, sizeof(why)), PROBE_VERDICT_MORE);
	/* postgres: the longest message that fits, missing its last byte. */
	buf[0] = 'E';
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = (PROBE_ANSWER_MAX - 1) >> 8;
	buf[4] = (PROBE_ANSWER_MAX - 1) & 0xff;
	ASSERT_EQ_U(judged(PROBE_POSTGRES, buf, PROBE_ANSWER_MAX - 1, false, why, sizeof(why)),
		    PROBE_VERDICT_MORE);
	ASSERT_EQ_U(judged(PROBE_POSTGRES, buf, PROBE_ANSWER_MAX, false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	/* mysql: the longest packet, a greeting of 'A's without a NUL. */
	buf[0] = (PROBE_ANSWER_MAX - 4) & 0xff;
	buf[1] = (PROBE_ANSWER_MAX - 4) >> 8;
	buf[2] = 0;
	buf[3] = 0;
	buf[4] = 0x0a;
	memset(buf + 5, 'A', sizeof(buf) - 5);
	ASSERT_EQ_U(judged(PROBE_MYSQL, buf, PROBE_ANSWER_MAX - 1, false, why, sizeof(why)),
		    PROBE_VERDICT_MORE);
	ASSERT_EQ_U(judged(PROBE_MYSQL, buf, PROBE_ANSWER_MAX, false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
}

TEST(test_why_is_printable_and_cut_to_fit)
{
	char why[PROBE_WHY_MAX];
	/* An error line with control bytes and non-ASCII in it. */
	static const char nasty[] = "-LOADING \x1b[31mred\x7f\xc3\xa9\t!\r\n";
	ASSERT_EQ_U(judged(PROBE_REDIS, nasty, strlen(nasty), false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	/* (the ? and the ! apart: "??!" is a trigraph) */
	ASSERT_STREQ(why, "redis: LOADING ?[31mred????"
			  "!");
	/* Cut, still terminated, at every size. */
	for (size_t cap = 1; cap < 60; cap++) {
		char small[64];
		memset(small, 'x', sizeof(small));
		judged(PROBE_POSTGRES, REC("pg15_starting_up"), false, small, cap);
		ASSERT_TRUE(strlen(small) == cap - 1 ||
			    strlen("postgres: the database system is starting up") < cap);
		ASSERT_EQ_U(small[cap], 'x');
	}
	/* A message longer than why is cut, not overflowed. */
	uint8_t e[600] = {'E', 0, 0, 0x02, 0x00, 'C', '5', '7', 'P', '0', '3', 0, 'M'};
	memset(e + 13, 'm', 500);
	e[513] = 0;
	e[514] = 0;
	ASSERT_EQ_U(judged(PROBE_POSTGRES, e, 1 + 0x200, false, why, sizeof(why)),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_TRUE(strlen(why) < sizeof(why));
}

TEST(test_recorded_answers_of_one_kind_are_garbage_to_the_others)
{
	/* A probe of the wrong kind never calls another protocol ready. */
	uint8_t my[256];
	size_t my_n = mysql_packet(mariadb_greeting_payload, sizeof(mariadb_greeting_payload), my);
	struct {
		const char *name;
		enum probe_kind own;
		const void *buf;
		size_t n;
	} answers[] = {
	    {"pg sasl", PROBE_POSTGRES, REC("pg15_auth_sasl")},
	    {"pg 28000", PROBE_POSTGRES, REC("pg15_no_hba_entry_28000")},
	    {"redis pong", PROBE_REDIS, REC("redis7_pong")},
	    {"redis noauth", PROBE_REDIS, REC("redis7_noauth")},
	    {"mariadb", PROBE_MYSQL, my, my_n},
	    {"http", PROBE_HTTP, REC("http_busybox_200")},
	};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
		for (size_t j = 0; j < sizeof(protocol_kinds) / sizeof(protocol_kinds[0]); j++) {
			enum probe_kind k = protocol_kinds[j];
			if (k == answers[i].own)
				continue;
			char why[PROBE_WHY_MAX];
			if (judged(k, answers[i].buf, answers[i].n, true, why, sizeof(why)) !=
			    PROBE_VERDICT_NOT_READY)
				FAIL("%s judged ready by the %s probe (%s)", answers[i].name,
				     settings_probe_kind_name(k), why);
		}
}
