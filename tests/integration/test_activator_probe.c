// SPDX-License-Identifier: MIT
/*
 * The protocol probes on real sockets (tests/lib/activator_fixture.h): a
 * held client is relayed only once a scripted server on loopback gives its
 * protocol's ready answer, a probe that never gets one fails at the wake
 * timeout naming the last answer, servers that stay silent or stream
 * garbage without end never stall the loop, and a probe during a stop ends
 * at the timeout with its client still held.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "dozed/probe_spec.h"
#include "activator_fixture.h"
#include "evloop.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"
#include "tcp.h"

/* Outside the redirect set: the loop's own echo service. */
#define ECHO_PORT 18090
#define MAX_CONNS 256

/* PostgreSQL 15's answers, as recorded for tests/unit/test_probe_answer.c. */
static char *pg_answer(const char *name, size_t *len)
{
	char path[128];
	snprintf(path, sizeof(path), "unit/fixtures/probe/%s.bin", name);
	char *b = fixture_read(path, len);
	test_defer(free, b);
	return b;
}

enum conn_state { CONN_NEW, CONN_CLIENT, CONN_LINGER, CONN_STREAM };

struct conn {
	int fd;
	enum conn_state state;
	char line[64];
	size_t len;
};

/*
 * A server on 127.0.0.1:SERVICE_PORT run by a thread: a connection whose
 * first byte is 'R' is a relayed client ("R<n>\n" gets "A<n>\n"); any other
 * is a probe, answered by the phase the test set: not_ready (NULL: silence,
 * the connection held open), an endless stream of garbage, or ready. A probe
 * answered stays open until the prober closes it, as Redis does.
 */
struct script {
	const void *not_ready;
	size_t not_ready_len;
	bool stream; /* phase 0: garbage without end */
	const void *ready;
	size_t ready_len;
	atomic_int phase; /* 0: not ready yet, 1: ready */
	atomic_bool stop;
	atomic_int probes[2];	/* probe connections answered in each phase */
	atomic_int served;	/* client requests answered */
	atomic_ullong ready_us; /* the first ready answer went out */
	atomic_ullong streamed; /* garbage bytes written */
	int lfd;
	int error;
	struct conn conns[MAX_CONNS];
	size_t n;
};

static void conn_drop(struct script *s, size_t i)
{
	close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->n];
}

/* One turn of connection i: false once it is closed. */
static bool conn_turn(struct script *s, size_t i, short revents)
{
	struct conn *c = &s->conns[i];
	if (c->state == CONN_STREAM && (revents & POLLOUT)) {
		static const char junk[4096] = {'+'}; /* "+" then NULs: a line without end */
		ssize_t w = send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN)
			return false;
		if (w > 0)
			s->streamed += (size_t)w;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return true;
	char buf[512];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0 && errno == EAGAIN)
		return true;
	if (r <= 0)
		return false;
	if (c->state == CONN_NEW)
		c->state = buf[0] == 'R' ? CONN_CLIENT : CONN_LINGER;
	if (c->state == CONN_CLIENT) {
		size_t n =
		    (size_t)r < sizeof(c->line) - c->len ? (size_t)r : sizeof(c->line) - c->len;
		memcpy(c->line + c->len, buf, n);
		c->len += n;
		if (!memchr(c->line, '\n', c->len))
			return true;
		c->line[0] = 'A';
		if (tcp_write_all(c->fd, c->line, c->len) == 0)
			s->served++;
		return false;
	}
	if (c->len++ > 0)
		return true; /* a probe's request, answered at its first bytes */
	int phase = s->phase;
	s->probes[phase]++;
	if (phase == 1) {
		if (!s->ready_us)
			s->ready_us = now_us();
		tcp_write_all(c->fd, s->ready, s->ready_len);
	} else if (s->stream) {
		c->state = CONN_STREAM;
	} else if (s->not_ready) {
		tcp_write_all(c->fd, s->not_ready, s->not_ready_len);
	}
	return true;
}

static void *script_main(void *arg)
{
	struct script *s = arg;
	while (!s->stop) {
		struct pollfd pfds[MAX_CONNS + 1];
		pfds[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		for (size_t i = 0; i < s->n; i++)
			pfds[i + 1] = (struct pollfd){
			    .fd = s->conns[i].fd,
			    .events =
				(short)(POLLIN | (s->conns[i].state == CONN_STREAM ? POLLOUT : 0))};
		if (poll(pfds, s->n + 1, 10) < 0)
			continue;
		for (size_t i = s->n; i-- > 0;)
			if (pfds[i + 1].revents && !conn_turn(s, i, pfds[i + 1].revents))
				conn_drop(s, i);
		if ((pfds[0].revents & POLLIN) && s->n < MAX_CONNS) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0)
				s->conns[s->n++] = (struct conn){.fd = fd};
		}
	}
	while (s->n)
		conn_drop(s, s->n - 1);
	close(s->lfd);
	return NULL;
}

/* On 127.0.0.1:SERVICE_PORT, unless s->lfd listens already. */
static void script_start(struct script *s, struct thread *t)
{
	if (s->lfd <= 0)
		s->lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	ASSERT_TRUE(s->lfd >= 0);
	thread_start(t, script_main, s);
}

static void script_stop(struct fixture *f, struct script *s, struct thread *t)
{
	s->stop = true;
	thread_finish(f, t, 5000, "the scripted server to stop");
}

/* One held client: "R0\n", and whether "A0\n" came back. */
struct client {
	atomic_int answered;
	int error;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	if (fd < 0) {
		c->error = fd;
		return NULL;
	}
	char got[16] = {0};
	ssize_t r = tcp_write_all(fd, "R0\n", 3);
	if (r == 0)
		r = tcp_read_all(fd, got, sizeof(got));
	if (r == 3 && memcmp(got, "A0\n", 3) == 0)
		c->answered = 1;
	else
		c->error = r < 0 ? (int)r : -EPROTO;
	close(fd);
	return NULL;
}

static bool held_one(void *arg)
{
	return activator_service_held(((struct fixture *)arg)->act, SERVICE_ID) == 1;
}

static bool probes_answered(void *arg)
{
	struct script *s = arg;
	return s->probes[0] >= 3;
}

static bool ready_or_failed(void *arg)
{
	struct fixture *f = arg;
	return f->ready || f->failed;
}

/* A fixture whose test starts the probe itself, once the client is held. */
static struct fixture *held_fixture(uint64_t wake_timeout_ms, struct client *c, struct thread *ct)
{
	struct fixture *f = fixture_new(wake_timeout_ms, true);
	f->start_on_wake = false;
	thread_start(ct, client_main, c);
	evloop_run_until(f->base, held_one, f, 5000, "the client to be held");
	return f;
}

static void probe_with(struct fixture *f, enum probe_kind kind, bool during_stop)
{
	struct probe_spec spec = {.kind = kind, .http_path = "/"};
	struct activator_probe probe = {.netns_fd = -1, .spec = &spec, .during_stop = during_stop};
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
}

/* Not ready answers first, then ready ones: relayed only after the switch. */
static void assert_relayed_only_once_ready(enum probe_kind kind, struct script *s)
{
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(10000, &c, &ct);
	script_start(s, &st);
	probe_with(f, kind, false);
	evloop_run_until(f->base, probes_answered, s, 5000, "three not-ready answers");
	ASSERT_EQ_U(f->ready, 0);
	ASSERT_EQ_U(activator_service_held(f->act, SERVICE_ID), 1);
	s->phase = 1;
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the probe to find it ready");
	thread_finish(f, &ct, 5000, "the client's answer");
	script_stop(f, s, &st);
	ASSERT_EQ_U(f->failed, 0);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.error, 0);
	ASSERT_EQ_U(c.answered, 1);
	ASSERT_EQ_U(s->served, 1);
	ASSERT_TRUE(s->ready_us > 0 && f->ready_at_us >= s->ready_us);
	ASSERT_EQ_U(s->probes[1], 1);
}

TEST(test_postgres_probe_relays_only_after_57P03_gives_way_to_an_auth_request)
{
	struct script s = {0};
	s.not_ready = pg_answer("pg15_starting_up", &s.not_ready_len);
	s.ready = pg_answer("pg15_auth_sasl", &s.ready_len);
	assert_relayed_only_once_ready(PROBE_POSTGRES, &s);
}

TEST(test_redis_probe_relays_only_after_loading_gives_way_to_pong)
{
	static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";
	struct script s = {.not_ready = loading,
			   .not_ready_len = strlen(loading),
			   .ready = "+PONG\r\n",
			   .ready_len = 7};
	assert_relayed_only_once_ready(PROBE_REDIS, &s);
}

static bool silent_probe_held(void *arg)
{
	struct script *s = arg;
	return s->probes[0] >= 1;
}

TEST(test_http_probe_waits_past_a_listener_that_accepts_and_stays_silent)
{
	/* A placeholder listener (a shell's nc -l) holds the port and never
	 * answers: the attempt is given up after its bound, the next one
	 * gets the real server's status line. */
	struct script s = {.ready = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			   .ready_len = 38};
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(10000, &c, &ct);
	script_start(&s, &st);
	uint64_t t0 = now_us();
	probe_with(f, PROBE_HTTP, false);
	evloop_run_until(f->base, silent_probe_held, &s, 5000, "a probe connection held silent");
	s.phase = 1;
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the probe's next attempt");
	thread_finish(f, &ct, 5000, "the client's answer");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.answered, 1);
	/* One silent attempt, ended by its bound, and no other before. */
	ASSERT_EQ_U(s.probes[0], 1);
	/* ... after its bound, 1 s (libevent's timers keep it to a millisecond). */
	ASSERT_GE_U(f->ready_at_us - t0, 990000);
}

TEST(test_a_probe_never_ready_fails_at_the_wake_timeout_naming_the_last_answer)
{
	struct script s = {0};
	s.not_ready = pg_answer("pg15_starting_up", &s.not_ready_len);
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(600, &c, &ct);
	script_start(&s, &st);
	probe_with(f, PROBE_POSTGRES, false);
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the wake timeout");
	thread_finish(f, &ct, 5000, "the client to be reset");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->ready, 0);
	ASSERT_EQ_U(f->failed, 1);
	ASSERT_TRUE(f->fail_reason == -ETIMEDOUT);
	ASSERT_STREQ(f->last_answer, "postgres: the database system is starting up");
	ASSERT_EQ_U(c.answered, 0);
	ASSERT_TRUE(c.error < 0);
	ASSERT_EQ_U(s.served, 0);
	/* Backed off after each answer: far fewer than one a millisecond. */
	uint64_t attempts = counters(f).probe_attempts;
	/* (4 ms apart, activator/probe.h's PROBE_ANSWER_BACKOFF_US) */
	if (attempts > 600 / 3)
		FAIL("%llu attempts in 600 ms against a server that answers each",
		     (unsigned long long)attempts);
	ASSERT_GE_U(attempts, 10);
}

TEST(test_a_probe_of_the_wrong_kind_fails_naming_what_it_saw)
{
	/* A redis probe of a PostgreSQL server: never ready, and says why. */
	struct script s = {.phase = 1};
	s.ready = pg_answer("pg15_auth_sasl", &s.ready_len);
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(400, &c, &ct);
	script_start(&s, &st);
	probe_with(f, PROBE_REDIS, false);
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the wake timeout");
	thread_finish(f, &ct, 5000, "the client to be reset");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->failed, 1);
	ASSERT_STREQ(f->last_answer, "redis: not a Redis answer (first byte 0x52)");
}

/* --- the loop stays free --------------------------------------------------------- */

static void on_echo_read(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	char buf[64];
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r > 0 && send(fd, buf, (size_t)r, MSG_NOSIGNAL) == r)
		return;
	if (r < 0 && errno == EAGAIN)
		return;
	event_free(arg);
	close(fd);
}

static void on_echo_accept(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct event_base *base = arg;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct event *ev =
	    event_new(base, fd, EV_READ | EV_PERSIST, on_echo_read, event_self_cbarg());
	if (!ev || event_add(ev, NULL) < 0)
		close(fd);
}

struct pinger {
	atomic_int round_trips;
	int error;
};

/* 200 round trips through the echo service on the activator's loop. */
static void *pinger_main(void *arg)
{
	struct pinger *p = arg;
	int fd = tcp_connect("127.0.0.1", ECHO_PORT, 0);
	if (fd < 0) {
		p->error = fd;
		return NULL;
	}
	for (int i = 0; i < 200; i++) {
		char b;
		if (tcp_write_all(fd, "x", 1) < 0 || recv(fd, &b, 1, 0) != 1) {
			p->error = -EIO;
			break;
		}
		p->round_trips++;
	}
	close(fd);
	return NULL;
}

static void assert_loop_free_while(struct fixture *f, struct script *s, enum probe_kind kind)
{
	int efd = tcp_listen("127.0.0.1", ECHO_PORT);
	ASSERT_TRUE(efd >= 0);
	test_defer_close(efd);
	fcntl(efd, F_SETFL, O_NONBLOCK);
	struct event *accept_ev =
	    event_new(f->base, efd, EV_READ | EV_PERSIST, on_echo_accept, f->base);
	ASSERT_TRUE(accept_ev && event_add(accept_ev, NULL) == 0);
	struct thread st, pt;
	struct pinger p = {0};
	script_start(s, &st);
	probe_with(f, kind, false);
	evloop_run_until(f->base, silent_probe_held, s, 5000, "the first probe answered");
	thread_start(&pt, pinger_main, &p);
	thread_finish(f, &pt, 10000, "200 round trips on the loop during the probe");
	ASSERT_EQ_U(p.error, 0);
	ASSERT_EQ_U(p.round_trips, 200);
	ASSERT_EQ_U(f->ready, 0);
	s->phase = 1;
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the probe to find it ready");
	ASSERT_EQ_U(f->ready, 1);
	script_stop(f, s, &st);
	event_free(accept_ev);
}

TEST(test_an_endless_stream_of_garbage_does_not_stall_the_loop)
{
	struct script s = {.stream = true, .ready = "+PONG\r\n", .ready_len = 7};
	struct client c = {0};
	struct thread ct;
	struct fixture *f = held_fixture(20000, &c, &ct);
	assert_loop_free_while(f, &s, PROBE_REDIS);
	thread_finish(f, &ct, 5000, "the client's answer");
	ASSERT_EQ_U(c.answered, 1);
	/* Each attempt read its bound and closed, many times over. */
	ASSERT_GE_U(s.probes[0], 2);
	ASSERT_GE_U(s.streamed, 2 * 1024);
}

TEST(test_a_server_that_never_answers_does_not_stall_the_loop)
{
	struct script s = {.ready = "HTTP/1.0 204 No Content\r\n\r\n", .ready_len = 27};
	struct client c = {0};
	struct thread ct;
	struct fixture *f = held_fixture(20000, &c, &ct);
	assert_loop_free_while(f, &s, PROBE_HTTP);
	thread_finish(f, &ct, 5000, "the client's answer");
	ASSERT_EQ_U(c.answered, 1);
}

/* --- during a stop ---------------------------------------------------------------- */

struct quiet {
	struct fixture *f;
	uint64_t until_us;
};

static bool time_passed(void *arg)
{
	return now_us() >= ((struct quiet *)arg)->until_us;
}

TEST(test_a_probe_during_a_stop_ends_at_the_timeout_and_keeps_its_client)
{
	static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";
	struct script s = {.not_ready = loading,
			   .not_ready_len = strlen(loading),
			   .ready = "+PONG\r\n",
			   .ready_len = 7};
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(400, &c, &ct);
	script_start(&s, &st);
	uint64_t t0 = now_us();
	probe_with(f, PROBE_REDIS, true);
	/* The wake timeout has passed (its timer runs on this loop). */
	struct quiet q = {.f = f, .until_us = t0 + 400000 + 100000};
	evloop_run_until(f->base, time_passed, &q, 5000, "the wake timeout");
	uint64_t attempts = counters(f).probe_attempts;
	int answered = s.probes[0];
	ASSERT_GE_U(answered, 3);
	q.until_us = now_us() + 100000;
	evloop_run_until(f->base, time_passed, &q, 5000, "100 ms more");
	/* The probe ended: no attempt since; nothing failed, the client is
	 * held, not reset. */
	ASSERT_EQ_U(counters(f).probe_attempts, attempts);
	ASSERT_EQ_U(f->failed, 0);
	ASSERT_EQ_U(f->ready, 0);
	ASSERT_EQ_U(counters(f).wakes_failed, 0);
	ASSERT_EQ_U(activator_service_held(f->act, SERVICE_ID), 1);
	ASSERT_EQ_U(c.error, 0);
	/* The service started again and serving: the same client is relayed. */
	s.phase = 1;
	probe_with(f, PROBE_REDIS, false);
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the next probe to find it ready");
	thread_finish(f, &ct, 5000, "the client's answer");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.answered, 1);
	ASSERT_EQ_U(s.served, 1);
}

TEST(test_a_probe_during_a_stop_that_finds_it_serving_relays_at_once)
{
	struct script s = {.ready = "+PONG\r\n", .ready_len = 7, .phase = 1};
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(5000, &c, &ct);
	script_start(&s, &st);
	probe_with(f, PROBE_REDIS, true);
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the probe to find it serving");
	thread_finish(f, &ct, 5000, "the client's answer");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.answered, 1);
}

/* The tcp probe's backend: one relayed client, answered. */
struct backend {
	int lfd;
	int error;
};

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	int fd = accept_client(b->lfd);
	b->error = fd < 0 ? fd : answer_request(fd);
	if (fd >= 0)
		close(fd);
	close(b->lfd);
	return NULL;
}

TEST(test_auto_and_healthcheck_are_refused_and_the_client_stays_held)
{
	struct client c = {0};
	struct thread ct;
	struct fixture *f = held_fixture(5000, &c, &ct);
	struct probe_spec spec = {.kind = PROBE_AUTO};
	struct activator_probe probe = {.netns_fd = -1, .spec = &spec};
	ASSERT_ERR(activator_service_probe(f->act, SERVICE_ID, &probe), EINVAL);
	spec.kind = PROBE_HEALTHCHECK;
	ASSERT_ERR(activator_service_probe(f->act, SERVICE_ID, &probe), EINVAL);
	ASSERT_EQ_U(activator_service_held(f->act, SERVICE_ID), 1);
	ASSERT_EQ_U(f->failed, 0);
	/* A tcp probe (NULL spec) still works after. */
	struct backend b = {.lfd = tcp_listen("127.0.0.1", SERVICE_PORT)};
	ASSERT_TRUE(b.lfd >= 0);
	struct thread bt;
	thread_start(&bt, backend_main, &b);
	ASSERT_OK(activator_service_starting(f->act, SERVICE_ID, NULL));
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the tcp probe");
	thread_finish(f, &ct, 5000, "the client's answer");
	thread_finish(f, &bt, 5000, "the backend");
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.answered, 1);
	ASSERT_EQ_U(b.error, 0);
}

TEST(test_a_probe_after_the_stop_replaces_the_probe_of_the_stop)
{
	/* The stop ended and the service started again while the stop's probe
	 * ran: the new probe is the one that counts, and it fails as any wake. */
	static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";
	struct script s = {.not_ready = loading, .not_ready_len = strlen(loading)};
	struct client c = {0};
	struct thread ct, st;
	struct fixture *f = held_fixture(400, &c, &ct);
	script_start(&s, &st);
	probe_with(f, PROBE_REDIS, true);
	evloop_run_until(f->base, probes_answered, &s, 5000, "three not-ready answers");
	probe_with(f, PROBE_REDIS, false);
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the wake timeout");
	thread_finish(f, &ct, 5000, "the client to be reset");
	script_stop(f, &s, &st);
	ASSERT_EQ_U(f->failed, 1);
	ASSERT_EQ_U(f->ready, 0);
	ASSERT_STREQ(f->last_answer, "redis: LOADING Redis is loading the dataset in memory");
	ASSERT_EQ_U(c.answered, 0);
}

TEST(test_a_tcp_probe_that_never_connects_says_connection_refused)
{
	struct client c = {0};
	struct thread ct;
	struct fixture *f = held_fixture(300, &c, &ct);
	ASSERT_OK(activator_service_starting(f->act, SERVICE_ID, NULL));
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the wake timeout");
	thread_finish(f, &ct, 5000, "the client to be reset");
	ASSERT_EQ_U(f->failed, 1);
	ASSERT_STREQ(f->last_answer, "connection refused");
}

TEST(test_a_probe_during_a_stop_with_nobody_held_ends_without_a_failure)
{
	/* Probed at an address, no client waiting: at the timeout nothing is
	 * left, and no hold timeout reports a failure later. */
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.hold_timeout_us = 200000;
	struct fixture *f = fixture_new_config(300, true, &cfg);
	struct sockaddr_storage dst;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr("127.0.0.1", SERVICE_PORT, &dst, &len));
	struct activator_probe probe = {.dst = &dst, .netns_fd = -1, .during_stop = true};
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
	uint64_t t0 = now_us();
	struct quiet q = {.f = f, .until_us = t0 + 300000 + 200000 + 200000};
	evloop_run_until(f->base, time_passed, &q, 5000, "the wake and hold timeouts");
	ASSERT_EQ_U(f->failed, 0);
	ASSERT_EQ_U(f->ready, 0);
	ASSERT_EQ_U(counters(f).wakes_failed, 0);
	/* And the service can be probed again, as a new wake. */
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
}

/* A listener on 127.0.0.1:port of the namespace ns_fd (the socket stays there). */
static int listen_in_netns(int ns_fd, uint16_t port)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(home >= 0);
	ASSERT_OK(setns(ns_fd, CLONE_NEWNET));
	int fd = tcp_listen("127.0.0.1", port);
	ASSERT_OK(setns(home, CLONE_NEWNET));
	close(home);
	return fd;
}

TEST(test_a_protocol_probe_runs_in_the_services_namespace_not_at_a_proxy)
{
	/* A proxy on the published port says PONG from the start; the
	 * service's own port, in its namespace, is still loading. */
	static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";
	struct script proxy = {.ready = "+PONG\r\n", .ready_len = 7, .phase = 1};
	struct script own = {.not_ready = loading,
			     .not_ready_len = strlen(loading),
			     .ready = "+PONG\r\n",
			     .ready_len = 7};
	struct client c = {0};
	struct thread ct, pt, ot;
	struct fixture *f = held_fixture(10000, &c, &ct);
	int peer_fd;
	ASSERT_OK(netns_add_peer("10.213.0.1/24", "10.213.0.2/24", &peer_fd));
	test_defer_close(peer_fd);
	own.lfd = listen_in_netns(peer_fd, 8080);
	script_start(&proxy, &pt);
	script_start(&own, &ot);
	struct sockaddr_storage dst;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr("127.0.0.1", 8080, &dst, &len));
	struct probe_spec spec = {.kind = PROBE_REDIS};
	struct activator_probe probe = {.dst = &dst, .netns_fd = peer_fd, .spec = &spec};
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
	evloop_run_until(f->base, probes_answered, &own, 5000, "three LOADING answers");
	ASSERT_EQ_U(f->ready, 0);
	own.phase = 1;
	evloop_run_until(f->base, ready_or_failed, f, 5000, "the probe to find it ready");
	thread_finish(f, &ct, 5000, "the client's answer");
	script_stop(f, &own, &ot);
	script_stop(f, &proxy, &pt);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_EQ_U(c.answered, 1);
	/* Relayed through the published port; never probed there. */
	ASSERT_EQ_U(proxy.served, 1);
	ASSERT_EQ_U(proxy.probes[1], 0);
	ASSERT_EQ_U(own.probes[1], 1);
}
