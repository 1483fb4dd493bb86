/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Just enough of HTTP, PostgreSQL and Redis for the wake bench to time "the
 * first real answer" the way a client sees it: one request on a new
 * connection to 127.0.0.1:port, blocking, with a deadline.
 *
 *   http      GET / answered with any first byte;
 *   postgres  a startup message (user and database "postgres", trust auth),
 *             then the simple query "select 1" answered with a row and
 *             ReadyForQuery;
 *   redis     GET key answered with a value.
 *
 * bench_proto_ask returns BENCH_ANSWER_REAL (1) for a real answer; for "not
 * ready yet", what a client retries, BENCH_ANSWER_NONE (0) when no server
 * answered (refused, closed or reset before an answer — docker-proxy accepts
 * before the container listens —, no answer within the deadline) and
 * BENCH_ANSWER_BUSY (2) when it said so itself (SQLSTATE 57P03, -LOADING,
 * -BUSY, -MASTERDOWN), with what was seen in why; -1 for an answer that no
 * retry will change (a password asked for, another error, no such key), with
 * why.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum bench_proto { BENCH_PROTO_HTTP, BENCH_PROTO_POSTGRES, BENCH_PROTO_REDIS };
enum { BENCH_ANSWER_NONE = 0, BENCH_ANSWER_REAL = 1, BENCH_ANSWER_BUSY = 2 };

#define BENCH_PG_USER "postgres"
/* A PostgreSQL message longer than this is garbage to the bench. */
#define BENCH_PG_MSG_MAX (64 * 1024)

static inline int bench_proto_parse(const char *s, enum bench_proto *p)
{
	if (strcmp(s, "http") == 0)
		*p = BENCH_PROTO_HTTP;
	else if (strcmp(s, "postgres") == 0)
		*p = BENCH_PROTO_POSTGRES;
	else if (strcmp(s, "redis") == 0)
		*p = BENCH_PROTO_REDIS;
	else
		return -EINVAL;
	return 0;
}

/* 0 when n bytes came; -1 on a read error or timeout, 0-length: closed. */
static inline int bench_read_full(int fd, void *buf, size_t n, const char **what)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*what = r == 0		  ? "closed before an answer"
				: errno == EAGAIN ? "no answer within the deadline"
						  : "reset before an answer";
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

static inline int bench_write_all(int fd, const void *buf, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t w = write(fd, (const char *)buf + put, n - put);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		put += (size_t)w;
	}
	return 0;
}

static inline uint32_t bench_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void bench_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline int bench_http_ask(int fd, char *why, size_t len)
{
	static const char req[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";
	const char *what = "reset before an answer";
	char b;
	if (bench_write_all(fd, req, sizeof(req) - 1) == 0 &&
	    bench_read_full(fd, &b, 1, &what) == 0)
		return 1;
	snprintf(why, len, "http: %s", what);
	return 0;
}

/* One backend message: its type, its body (NUL-terminated) in buf. */
static inline int bench_pg_message(int fd, char *type, char *buf, size_t size, const char **what)
{
	unsigned char head[5];
	if (bench_read_full(fd, head, sizeof(head), what) < 0)
		return 0;
	uint32_t n = bench_be32(head + 1);
	if (n < 4 || n - 4 >= size) {
		*what = "a message of a length beyond the bench's bound";
		return -1;
	}
	if (bench_read_full(fd, buf, n - 4, what) < 0)
		return 0;
	buf[n - 4] = '\0';
	*type = (char)head[0];
	return 1;
}

/* An ErrorResponse: BUSY when it is 57P03 (cannot_connect_now), else -1; why says which. */
static inline int bench_pg_error(const char *body, size_t n, char *why, size_t len)
{
	const char *code = "?", *msg = "?";
	for (size_t i = 0; i < n && body[i];) {
		const char *v = body + i + 1;
		if (body[i] == 'C')
			code = v;
		else if (body[i] == 'M')
			msg = v;
		i += 1 + strlen(v) + 1;
	}
	snprintf(why, len, "postgres: %s (SQLSTATE %s)", msg, code);
	return strcmp(code, "57P03") == 0 ? BENCH_ANSWER_BUSY : -1;
}

static inline int bench_pg_ask(int fd, char *why, size_t len)
{
	static char body[BENCH_PG_MSG_MAX];
	unsigned char start[128];
	static const char params[] = "user\0" BENCH_PG_USER "\0database\0" BENCH_PG_USER "\0";
	size_t n = 8 + sizeof(params); /* the array's own NUL ends the list */
	bench_put_be32(start, (uint32_t)n);
	bench_put_be32(start + 4, 196608); /* protocol 3.0 */
	memcpy(start + 8, params, sizeof(params));
	if (bench_write_all(fd, start, n) < 0) {
		snprintf(why, len, "postgres: reset before an answer");
		return 0;
	}
	bool queried = false, row = false;
	for (;;) {
		const char *what = "?";
		char type = 0;
		int r = bench_pg_message(fd, &type, body, sizeof(body), &what);
		if (r <= 0) {
			snprintf(why, len, "postgres: %s", what);
			return r;
		}
		if (type == 'E')
			return bench_pg_error(body, sizeof(body), why, len);
		if (type == 'R' && bench_be32((unsigned char *)body) != 0) {
			snprintf(why, len, "postgres: authentication %u asked for (trust expected)",
				 bench_be32((unsigned char *)body));
			return -1;
		}
		if (type == 'D')
			row = true;
		if (type != 'Z')
			continue;
		if (queried) {
			static const unsigned char bye[] = {'X', 0, 0, 0, 4};
			if (bench_write_all(fd, bye, sizeof(bye))) {
				/* the answer came; a lost goodbye changes nothing */
			}
			if (row)
				return 1;
			snprintf(why, len, "postgres: select 1 returned no row");
			return -1;
		}
		static const char q[] = "select 1";
		unsigned char msg[5 + sizeof(q)];
		msg[0] = 'Q';
		bench_put_be32(msg + 1, 4 + sizeof(q));
		memcpy(msg + 5, q, sizeof(q));
		if (bench_write_all(fd, msg, sizeof(msg)) < 0) {
			snprintf(why, len, "postgres: reset before the query was sent");
			return 0;
		}
		queried = true;
	}
}

/* A reply's first line (without CRLF) in line; for a bulk string, its value
 * (up to size - 1 bytes) in line instead and its length in *bulk, else -2. */
static inline int bench_redis_reply(int fd, char *line, size_t size, long *bulk, const char **what)
{
	size_t n = 0;
	*bulk = -2;
	for (;;) {
		if (n + 1 >= size) {
			*what = "a reply line beyond the bench's bound";
			return -1;
		}
		if (bench_read_full(fd, line + n, 1, what) < 0)
			return 0;
		if (++n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n')
			break;
	}
	line[n - 2] = '\0';
	if (line[0] != '$')
		return 1;
	*bulk = strtol(line + 1, NULL, 10);
	if (*bulk < 0)
		return 1;
	if ((size_t)*bulk + 1 > size) {
		*what = "a value beyond the bench's bound";
		return -1;
	}
	char crlf[2];
	if (bench_read_full(fd, line, (size_t)*bulk, what) < 0 ||
	    bench_read_full(fd, crlf, 2, what) < 0)
		return 0;
	line[*bulk] = '\0';
	return 1;
}

/* key NULL: RANDOMKEY, and the key it names in out (a bench's choice of key). */
static inline int bench_redis_ask(int fd, const char *key, char *out, size_t out_len, char *why,
				  size_t len)
{
	char req[600], line[4096];
	int n =
	    key ? snprintf(req, sizeof(req), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key)
		: snprintf(req, sizeof(req), "*1\r\n$9\r\nRANDOMKEY\r\n");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(why, len, "redis: key too long");
		return -1;
	}
	if (bench_write_all(fd, req, (size_t)n) < 0) {
		snprintf(why, len, "redis: reset before an answer");
		return 0;
	}
	long bulk;
	const char *what = "?";
	int r = bench_redis_reply(fd, line, sizeof(line), &bulk, &what);
	if (r <= 0) {
		snprintf(why, len, "redis: %s", what);
		return r;
	}
	if (line[0] == '-') {
		snprintf(why, len, "redis: %.200s", line);
		return strncmp(line, "-LOADING", 8) == 0 || strncmp(line, "-BUSY", 5) == 0 ||
			       strncmp(line, "-MASTERDOWN", 11) == 0
			   ? BENCH_ANSWER_BUSY
			   : -1;
	}
	if (bulk < 0) {
		snprintf(why, len, "redis: %s", key ? "no value for the key" : "no key at all");
		return -1;
	}
	if (!key && out) {
		if ((size_t)bulk >= out_len) {
			snprintf(why, len, "redis: a key beyond the bench's bound");
			return -1;
		}
		memcpy(out, line, (size_t)bulk + 1);
	}
	return 1;
}

/*
 * One request of protocol p on a new connection to 127.0.0.1:port, within
 * timeout_ms; see the top of this file. redis_key NULL asks RANDOMKEY and
 * writes the key into key_out.
 */
static inline int bench_proto_ask(enum bench_proto p, uint16_t port, const char *redis_key,
				  char *key_out, size_t key_len, double timeout_ms, char *why,
				  size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
			     .tv_usec = (suseconds_t)((long)timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int r;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(why, len, "connect: %s", strerror(errno));
		r = 0;
	} else if (p == BENCH_PROTO_HTTP) {
		r = bench_http_ask(fd, why, len);
	} else if (p == BENCH_PROTO_POSTGRES) {
		r = bench_pg_ask(fd, why, len);
	} else {
		r = bench_redis_ask(fd, redis_key, key_out, key_len, why, len);
	}
	close(fd);
	return r;
}
