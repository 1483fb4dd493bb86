// SPDX-License-Identifier: MIT
/*
 * The metrics listener (metrics_http.h) for real: libevent's evhttp on the
 * loopback of a private network namespace, a test render function, and
 * clients in threads with blocking sockets while the test's thread runs the
 * loop. What is asserted is what happened and in which order (answers
 * complete, a timer on the same loop ticking while scrapes are pending),
 * never how long it took.
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
	/* Seen by the timer, for the clients' threads: connections open now,
	 * ticks while a storm is in flight. */
	atomic_size_t conns_seen;
	atomic_bool storm_pending;
	atomic_uint storm_ticks;
};

static int render(void *ud, struct metrics_text *out)
{
	struct fixture *f = ud;
	atomic_fetch_add(&f->renders, 1);
	metrics_family(out, "test_lines", "gauge", "Lines of a test body.");
	for (uint64_t i = 0; out->len < f->body_bytes; i++) {
		struct metrics_label l[] = {{"line", "padding padding padding padding padding"}};
		metrics_sample_u64(out, "test_lines", l, 1, i);
	}
	metrics_family(out, "test_end", "gauge", "The last line.");
	metrics_sample_u64(out, "test_end", NULL, 0, 1);
	return 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fixture *f = arg;
	atomic_fetch_add(&f->ticks, 1);
	if (f->h)
		atomic_store(&f->conns_seen, metrics_http_counters(f->h).conns_now);
	if (atomic_load(&f->storm_pending))
		atomic_fetch_add(&f->storm_ticks, 1);
}

static void fixture_free(void *arg)
{
	struct fixture *f = arg;
	metrics_http_free(f->h);
	if (f->tick)
		event_free(f->tick);
	event_base_free(f->base);
	free(f);
}

static struct sockaddr_storage addr_of(const char *text)
{
	struct sockaddr_storage a;
	char why[256] = "";
	if (metrics_listen_parse(text, &a, why, sizeof(why)) < 0)
		FAIL("metrics_listen_parse(%s): %s", text, why);
	return a;
}

/* The listener on 127.0.0.1:PORT of a new namespace, and a 1 ms timer on its loop. */
static struct fixture *fixture_new(size_t body_bytes)
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

static int client_connect(void)
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

static int send_all(int fd, const char *s)
{
	for (size_t off = 0, len = strlen(s); off < len;) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static void header_value(const char *head, const char *name, char *out, size_t len)
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
static bool answer_whole(char *buf, size_t len)
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
static void read_answer_ex(struct job *j, int fd, bool keep_alive)
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

static void read_answer(struct job *j, int fd)
{
	read_answer_ex(j, fd, false);
}

static void *scrape_thread(void *arg)
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

static bool job_done(void *arg)
{
	return atomic_load(&((struct job *)arg)->done);
}

/* A request in a thread, the loop run until its answer is read. */
static struct job *scrape(struct fixture *f, const char *request)
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

static void assert_scraped(const struct job *j)
{
	if (j->status != 200 || !j->complete || !j->ends_right)
		FAIL("status %d, body %zu of %zu bytes, %s", j->status, j->body_len,
		     j->content_length, j->ends_right ? "ends right" : "cut");
	ASSERT_STREQ(j->content_type, METRICS_HTTP_CONTENT_TYPE);
}

/* --- tests ------------------------------------------------------------------------ */

TEST(test_get_metrics_answers_the_text_with_its_content_type)
{
	struct fixture *f = fixture_new(1000);
	assert_scraped(scrape(f, GET_METRICS));
	assert_scraped(scrape(f, "GET /metrics?x=1 HTTP/1.0\r\n\r\n"));
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, 2);
}

TEST(test_head_answers_the_headers_alone)
{
	struct fixture *f = fixture_new(1000);
	struct job *j = scrape(f, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	ASSERT_EQ_U(j->status, 200);
	ASSERT_STREQ(j->content_type, METRICS_HTTP_CONTENT_TYPE);
	ASSERT_EQ_U(j->body_len, 0);
	ASSERT_TRUE(j->content_length > 1000);
}

TEST(test_another_path_is_404_and_another_method_405)
{
	struct fixture *f = fixture_new(1000);
	ASSERT_EQ_U(scrape(f, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")->status,
		    404);
	ASSERT_EQ_U(scrape(f, "GET /metricsx HTTP/1.1\r\nConnection: close\r\n\r\n")->status, 404);
	struct job *j = scrape(f, "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
				  "Content-Length: 2\r\n\r\nab");
	ASSERT_EQ_U(j->status, 405);
	ASSERT_STREQ(j->allow, "GET, HEAD");
	ASSERT_EQ_U(scrape(f, "DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")->status,
		    405);
	ASSERT_EQ_U(atomic_load(&f->renders), 0);
	ASSERT_EQ_U(metrics_http_counters(f->h).refused, 4);
}

TEST(test_listen_parse_accepts_numeric_addresses)
{
	const char *ok[][2] = {{"127.0.0.1:9321", "127.0.0.1:9321"},
			       {"[::1]:9321", "[::1]:9321"},
			       {"0.0.0.0:1", "0.0.0.0:1"},
			       {"[::]:65535", "[::]:65535"}};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct sockaddr_storage a = addr_of(ok[i][0]);
		char back[METRICS_LISTEN_TEXT_MAX];
		ASSERT_STREQ(metrics_listen_format(&a, back, sizeof(back)), ok[i][1]);
	}
}

TEST(test_listen_parse_refuses_bad_ones_saying_why)
{
	const char *bad[][2] = {
	    {"127.0.0.1", "expected ADDR:PORT with a numeric address"},
	    {"127.0.0.1:0", "expected a port 1-65535"},
	    {"127.0.0.1:65536", "expected a port 1-65535"},
	    {"127.0.0.1:09321", "expected a port 1-65535"},
	    {"127.0.0.1:93a", "expected a port 1-65535"},
	    {"localhost:9321", "localhost is not an IPv4 address"},
	    {"::1:9321", "(an IPv6 address in brackets)"},
	    {"[::1]", "expected ADDR:PORT"},
	    {"[::1]9321", "expected ADDR:PORT"},
	    {"[127.0.0.1]:9321", "[127.0.0.1] is not an IPv6 address"},
	    {"", "expected ADDR:PORT"},
	    {":9321", "expected ADDR:PORT"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct sockaddr_storage a;
		char why[256] = "";
		int r = metrics_listen_parse(bad[i][0], &a, why, sizeof(why));
		if (r != -EINVAL || !strstr(why, bad[i][1]))
			FAIL("metrics_listen_parse(\"%s\") = %d, why \"%s\"; expected -EINVAL and "
			     "\"%s\"",
			     bad[i][0], r, why, bad[i][1]);
	}
}

TEST(test_a_taken_port_is_eaddrinuse_naming_the_address_and_the_reason)
{
	struct fixture *f = fixture_new(100);
	struct sockaddr_storage a = addr_of("127.0.0.1:9321");
	struct metrics_http *second = NULL;
	char why[256] = "";
	ASSERT_ERR(metrics_http_new(f->base, &a, render, f, &second, why, sizeof(why)), EADDRINUSE);
	ASSERT_TRUE(second == NULL);
	ASSERT_CONTAINS(why, "127.0.0.1:9321");
	ASSERT_CONTAINS(why, "Address already in use");
	ASSERT_CONTAINS(why, "another port");

	/* No such address on this host. */
	a = addr_of("192.0.2.1:9321");
	ASSERT_ERR(metrics_http_new(f->base, &a, render, f, &second, why, sizeof(why)),
		   EADDRNOTAVAIL);
	ASSERT_CONTAINS(why, "192.0.2.1:9321");
	ASSERT_CONTAINS(why, strerror(EADDRNOTAVAIL));
	/* The first one still serves. */
	assert_scraped(scrape(f, GET_METRICS));
}

TEST(test_ipv6_loopback_serves)
{
	ASSERT_OK(netns_enter_private());
	struct event_base *base = event_base_new();
	struct fixture f = {.base = base, .body_bytes = 10};
	struct sockaddr_storage a = addr_of("[::1]:9321");
	char why[256] = "";
	int r = metrics_http_new(base, &a, render, &f, &f.h, why, sizeof(why));
	if (r < 0)
		FAIL("metrics_http_new on [::1]: %s", why);
	metrics_http_free(f.h);
	event_base_free(base);
}

/* --- load: leaving, slow, many ----------------------------------------------------- */

struct leaver {
	pthread_t tid;
	atomic_bool done, release;
	bool reset; /* leave with a RST rather than a FIN */
	char err[160];
};

/* Asks for a big answer, reads a few bytes of it and leaves. */
static void *leaver_thread(void *arg)
{
	struct leaver *l = arg;
	int fd = client_connect();
	char buf[64];
	if (fd < 0 || send_all(fd, GET_METRICS) < 0 || recv(fd, buf, sizeof(buf), 0) <= 0)
		snprintf(l->err, sizeof(l->err), "cannot start the scrape: %s", strerror(errno));
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	if (l->reset)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (fd >= 0)
		close(fd);
	atomic_store(&l->done, true);
	return NULL;
}

/* Asks for a big answer and reads none of it until released. */
static void *sleeper_thread(void *arg)
{
	struct leaver *l = arg;
	int fd = client_connect();
	if (fd < 0 || send_all(fd, GET_METRICS) < 0)
		snprintf(l->err, sizeof(l->err), "cannot start the scrape: %s", strerror(errno));
	for (uint64_t end = test_now_ms() + WAIT_MS;
	     !atomic_load(&l->release) && test_now_ms() < end;)
		usleep(1000);
	if (fd >= 0)
		close(fd);
	atomic_store(&l->done, true);
	return NULL;
}

static bool leaver_done(void *arg)
{
	return atomic_load(&((struct leaver *)arg)->done);
}

struct until {
	struct fixture *f;
	unsigned ticks;
	size_t conns;
};

static bool ticked(void *arg)
{
	struct until *u = arg;
	return atomic_load(&u->f->ticks) >= u->ticks;
}

static bool conns_are(void *arg)
{
	struct until *u = arg;
	return metrics_http_counters(u->f->h).conns_now == u->conns;
}

static bool rendered_once(void *arg)
{
	return atomic_load(&((struct fixture *)arg)->renders) >= 1;
}

/* The timer on the listener's loop ticks n more times. */
static void assert_loop_ticks(struct fixture *f, unsigned n, const char *while_what)
{
	struct until u = {.f = f, .ticks = atomic_load(&f->ticks) + n};
	evloop_run_until(f->base, ticked, &u, WAIT_MS, while_what);
}

static void wait_conns(struct fixture *f, size_t n, const char *what)
{
	struct until u = {.f = f, .conns = n};
	evloop_run_until(f->base, conns_are, &u, WAIT_MS, what);
}

static void leave_mid_answer(bool reset)
{
	struct fixture *f = fixture_new(BIG);
	struct leaver l = {.reset = reset};
	if (pthread_create(&l.tid, NULL, leaver_thread, &l) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, leaver_done, &l, WAIT_MS, "the scraper to leave");
	pthread_join(l.tid, NULL);
	if (l.err[0])
		FAIL("%s", l.err);
	/* Its connection and its buffered answer go; the loop goes on. */
	wait_conns(f, 0, "the left scrape's connection to be closed");
	assert_loop_ticks(f, 5, "the timer after a scraper left mid-answer");
	assert_scraped(scrape(f, GET_METRICS));
	ASSERT_EQ_U(atomic_load(&f->renders), 2);
}

TEST(test_a_scraper_leaving_mid_answer_with_a_fin_costs_nothing_after)
{
	leave_mid_answer(false);
}

TEST(test_a_scraper_leaving_mid_answer_with_a_reset_costs_nothing_after)
{
	leave_mid_answer(true);
}

TEST(test_a_scraper_that_never_reads_does_not_block_the_loop)
{
	struct fixture *f = fixture_new(BIG);
	struct leaver l = {0};
	if (pthread_create(&l.tid, NULL, sleeper_thread, &l) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, rendered_once, f, WAIT_MS, "the slow scrape's answer");
	/* Its answer waits in the loop's buffers, the loop does not. */
	assert_loop_ticks(f, 5, "the timer while a scraper does not read");
	assert_scraped(scrape(f, GET_METRICS));
	ASSERT_EQ_U(metrics_http_counters(f->h).conns_now, 1);
	ASSERT_TRUE(!atomic_load(&l.done));
	atomic_store(&l.release, true);
	evloop_run_until(f->base, leaver_done, &l, WAIT_MS, "the slow scraper to leave");
	pthread_join(l.tid, NULL);
	if (l.err[0])
		FAIL("%s", l.err);
	wait_conns(f, 0, "the slow scrape's connection to be closed");
}

#define STORM 100

struct storm {
	pthread_t tid;
	atomic_bool done;
	struct fixture *f;
	struct job jobs[STORM];
	char err[160];
};

/*
 * STORM requests sent at once; their answers read only once the loop's timer
 * has ticked with all of them pending, then each to its end.
 */
static void *storm_thread(void *arg)
{
	struct storm *s = arg;
	int fds[STORM];
	size_t n = 0;
	for (; n < STORM; n++) {
		fds[n] = client_connect();
		if (fds[n] < 0 || send_all(fds[n], GET_METRICS) < 0) {
			snprintf(s->err, sizeof(s->err), "scrape %zu: %s", n, strerror(errno));
			break;
		}
	}
	atomic_store(&s->f->storm_pending, true);
	for (uint64_t end = test_now_ms() + WAIT_MS;
	     atomic_load(&s->f->storm_ticks) < 3 && test_now_ms() < end;)
		usleep(1000);
	for (size_t i = 0; i < n; i++)
		read_answer(&s->jobs[i], fds[i]);
	atomic_store(&s->f->storm_pending, false);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	atomic_store(&s->done, true);
	return NULL;
}

static bool storm_done(void *arg)
{
	return atomic_load(&((struct storm *)arg)->done);
}

TEST(test_100_concurrent_scrapes_all_complete_while_the_loop_ticks)
{
	struct fixture *f = fixture_new(200 * 1024);
	struct storm *s = calloc(1, sizeof(*s));
	if (!s)
		FAIL("out of memory");
	test_defer(free, s);
	s->f = f;
	if (pthread_create(&s->tid, NULL, storm_thread, s) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, storm_done, s, 3 * WAIT_MS, "100 concurrent scrapes");
	pthread_join(s->tid, NULL);
	if (s->err[0])
		FAIL("%s", s->err);
	ASSERT_GE_U(atomic_load(&f->storm_ticks), 3);
	for (size_t i = 0; i < STORM; i++) {
		if (s->jobs[i].err[0])
			FAIL("scrape %zu: %s", i, s->jobs[i].err);
		assert_scraped(&s->jobs[i]);
	}
	ASSERT_EQ_U(atomic_load(&f->renders), STORM);
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, STORM);
}

struct crowd {
	pthread_t tid;
	atomic_bool done;
	struct fixture *f;
	struct job full, after;
	size_t kept;
	char err[160];
};

#define GET_KEEP "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"

/* METRICS_HTTP_MAX_CONNS kept-alive connections, one more, one fewer. */
static void *crowd_thread(void *arg)
{
	struct crowd *c = arg;
	int fds[METRICS_HTTP_MAX_CONNS];
	size_t n = 0;
	for (; n < METRICS_HTTP_MAX_CONNS; n++) {
		struct job j = {0};
		fds[n] = client_connect();
		if (fds[n] < 0 || send_all(fds[n], GET_KEEP) < 0)
			break;
		read_answer_ex(&j, fds[n], true);
		if (j.status != 200)
			break;
	}
	c->kept = n;
	int over = n == METRICS_HTTP_MAX_CONNS ? client_connect() : -1;
	if (over >= 0 && send_all(over, GET_KEEP) == 0)
		read_answer(&c->full, over); /* closed after its 503 */
	if (over >= 0)
		close(over);
	/* One leaves: the next is served. */
	if (n > 0)
		close(fds[--n]);
	for (uint64_t end = test_now_ms() + WAIT_MS;
	     atomic_load(&c->f->conns_seen) >= METRICS_HTTP_MAX_CONNS && test_now_ms() < end;)
		usleep(1000);
	int next = client_connect();
	if (next >= 0 && send_all(next, GET_METRICS) == 0)
		read_answer(&c->after, next);
	if (next >= 0)
		close(next);
	while (n > 0)
		close(fds[--n]);
	atomic_store(&c->done, true);
	return NULL;
}

static bool crowd_done(void *arg)
{
	return atomic_load(&((struct crowd *)arg)->done);
}

TEST(test_over_the_cap_a_scrape_gets_503_until_one_leaves)
{
	struct fixture *f = fixture_new(100);
	struct crowd *c = calloc(1, sizeof(*c));
	if (!c)
		FAIL("out of memory");
	test_defer(free, c);
	c->f = f;
	atomic_store(&f->conns_seen, METRICS_HTTP_MAX_CONNS);
	if (pthread_create(&c->tid, NULL, crowd_thread, c) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, crowd_done, c, 3 * WAIT_MS, "the crowd of scrapers");
	pthread_join(c->tid, NULL);
	ASSERT_EQ_U(c->kept, METRICS_HTTP_MAX_CONNS);
	ASSERT_EQ_U(c->full.status, 503);
	assert_scraped(&c->after);
	wait_conns(f, 0, "every connection to be closed");
}
