/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics listener under test (test_metrics_http*.c): metrics_http_new on
 * 127.0.0.1:9321 of a private network namespace with a render function of a
 * chosen size, a 1 ms timer on the same loop, and HTTP clients in threads
 * with blocking sockets (no FAIL there: errors go into their job) while the
 * test's thread runs the loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "dozed/metrics.h"
#include "dozed/metrics_http.h"
#include "evloop.h"
#include "harness.h"
#include "netns.h"

#define PORT	9321
#define WAIT_MS 20000
#define BIG	(8u << 20) /* more than any socket buffer pair holds */

struct fixture {
	struct event_base *base;
	struct metrics_http *h;
	struct event *tick;
	atomic_uint ticks;
	size_t body_bytes; /* what render writes, about */
	atomic_uint renders;
	bool share;		     /* render once, keep it in shared */
	struct metrics_blob *shared; /* the fixture's reference */
	/* Seen by the timer, for the clients' threads: ticks while a storm is
	 * in flight. */
	atomic_bool storm_pending;
	atomic_uint storm_ticks;
};

/* A text of about body_bytes, rendered afresh for each scrape; when share is
 * set, rendered once and kept (as the daemon keeps its last render), each
 * scrape getting a reference to that one. */
static inline int render(void *ud, struct metrics_blob **out)
{
	struct fixture *f = ud;
	if (f->shared) {
		*out = metrics_blob_ref(f->shared);
		return 0;
	}
	atomic_fetch_add(&f->renders, 1);
	struct metrics_text m;
	metrics_text_init(&m);
	metrics_family(&m, "test_lines", "gauge", "Lines of a test body.");
	for (uint64_t i = 0; m.len < f->body_bytes && !m.err; i++) {
		struct metrics_label l[] = {{"line", "padding padding padding padding padding"}};
		metrics_sample_u64(&m, "test_lines", l, 1, i);
	}
	metrics_family(&m, "test_end", "gauge", "The last line.");
	metrics_sample_u64(&m, "test_end", NULL, 0, 1);
	struct metrics_blob *b = metrics_blob_take(&m);
	if (!b)
		return -ENOMEM;
	if (f->share)
		f->shared = metrics_blob_ref(b);
	*out = b;
	return 0;
}

static inline void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fixture *f = arg;
	atomic_fetch_add(&f->ticks, 1);
	if (atomic_load(&f->storm_pending))
		atomic_fetch_add(&f->storm_ticks, 1);
}

static inline void fixture_free(void *arg)
{
	struct fixture *f = arg;
	metrics_http_free(f->h);
	metrics_blob_unref(f->shared);
	if (f->tick)
		event_free(f->tick);
	event_base_free(f->base);
	free(f);
}

static inline struct sockaddr_storage addr_of(const char *text)
{
	struct sockaddr_storage a;
	char why[256] = "";
	if (metrics_listen_parse(text, &a, why, sizeof(why)) < 0)
		FAIL("metrics_listen_parse(%s): %s", text, why);
	return a;
}

/* The listener on 127.0.0.1:PORT of a new namespace, and a 1 ms timer on its loop. */
static inline struct fixture *fixture_new(size_t body_bytes)
{
	ASSERT_OK(netns_enter_private());
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->base = event_base_new()))
		FAIL("out of memory");
	test_defer(fixture_free, f);
	f->body_bytes = body_bytes;
	struct sockaddr_storage a = addr_of("127.0.0.1:9321");
	char why[256] = "";
	int r = metrics_http_new(f->base, &a, render, f, &f->h, why, sizeof(why));
	if (r < 0)
		FAIL("metrics_http_new: %s", why);
	f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
	struct timeval ms = {.tv_usec = 1000};
	if (!f->tick || event_add(f->tick, &ms) < 0)
		FAIL("cannot add the timer");
	return f;
}

/* --- clients (in threads: no FAIL there, errors go into the job) ------------------- */

struct job {
	pthread_t tid;
	atomic_bool done;
	const char *request;
	char err[160];
	/* The answer: status, content type, body length and whether it is whole. */
	int status;
	char content_type[96], allow[32];
	size_t body_len, content_length;
	bool complete, ends_right;
};

static inline int client_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 20};
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static inline int send_all(int fd, const char *s)
{
	for (size_t off = 0, len = strlen(s); off < len;) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static inline void header_value(const char *head, const char *name, char *out, size_t len)
{
	const char *p = strcasestr(head, name);
	out[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	size_t n = strcspn(p, "\r\n");
	snprintf(out, len, "%.*s", (int)n, p);
}

/* Whether buf[0..len) holds a whole answer by its Content-Length. */
static inline bool answer_whole(char *buf, size_t len)
{
	buf[len] = '\0';
	char *end = strstr(buf, "\r\n\r\n"), cl[32];
	if (!end)
		return false;
	*end = '\0';
	header_value(buf, "\r\nContent-Length: ", cl, sizeof(cl));
	*end = '\r';
	return cl[0] && len - (size_t)(end + 4 - buf) >= strtoul(cl, NULL, 10);
}

/* Reads an answer to its end, the connection's (the request said Connection:
 * close) or its Content-Length's (keep_alive), and judges it. */
static inline void read_answer_ex(struct job *j, int fd, bool keep_alive)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;
	while (buf && !(keep_alive && answer_whole(buf, len)) &&
	       (n = recv(fd, buf + len, cap - len, 0)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			char *bigger = realloc(buf, 2 * cap + 1);
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	if (!buf) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		return;
	}
	buf[len] = '\0';
	char *end = strstr(buf, "\r\n\r\n");
	if (!end || sscanf(buf, "HTTP/1.%*d %d", &j->status) != 1) {
		snprintf(j->err, sizeof(j->err), "no HTTP answer: %.60s", buf);
		free(buf);
		return;
	}
	*end = '\0';
	char cl[32];
	header_value(buf, "\r\nContent-Type: ", j->content_type, sizeof(j->content_type));
	header_value(buf, "\r\nAllow: ", j->allow, sizeof(j->allow));
	header_value(buf, "\r\nContent-Length: ", cl, sizeof(cl));
	j->content_length = strtoul(cl, NULL, 10);
	j->body_len = len - (size_t)(end + 4 - buf);
	j->complete = cl[0] && j->body_len == j->content_length;
	j->ends_right =
	    j->body_len >= 11 && memcmp(end + 4 + j->body_len - 11, "test_end 1\n", 11) == 0;
	free(buf);
}

static inline void read_answer(struct job *j, int fd)
{
	read_answer_ex(j, fd, false);
}

static inline void *scrape_thread(void *arg)
{
	struct job *j = arg;
	int fd = client_connect();
	if (fd < 0)
		snprintf(j->err, sizeof(j->err), "connect: %s", strerror(-fd));
	else if (send_all(fd, j->request) < 0)
		snprintf(j->err, sizeof(j->err), "send: %s", strerror(errno));
	else
		read_answer(j, fd);
	if (fd >= 0)
		close(fd);
	atomic_store(&j->done, true);
	return NULL;
}

#define GET_METRICS "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

static inline bool job_done(void *arg)
{
	return atomic_load(&((struct job *)arg)->done);
}

/* A request in a thread, the loop run until its answer is read. */
static inline struct job *scrape(struct fixture *f, const char *request)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		FAIL("out of memory");
	test_defer(free, j);
	j->request = request;
	if (pthread_create(&j->tid, NULL, scrape_thread, j) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, job_done, j, WAIT_MS, "the scrape's answer");
	pthread_join(j->tid, NULL);
	if (j->err[0])
		FAIL("scrape: %s", j->err);
	return j;
}

static inline void assert_scraped(const struct job *j)
{
	if (j->status != 200 || !j->complete || !j->ends_right)
		FAIL("status %d, body %zu of %zu bytes, %s", j->status, j->body_len,
		     j->content_length, j->ends_right ? "ends right" : "cut");
	ASSERT_STREQ(j->content_type, METRICS_HTTP_CONTENT_TYPE);
}
