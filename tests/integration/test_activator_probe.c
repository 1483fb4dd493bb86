// SPDX-License-Identifier: MIT
/*
 * The protocol probes on real sockets (tests/lib/activator_fixture.h): a
 * held client is relayed only once a scripted server on loopback gives its
 * protocol's ready answer, a probe that never gets one fails at the wake
 * timeout naming the last answer, servers that stay silent or stream
 * garbage without end never stall the loop (the stop's probes:
 * test_activator_probe_stop.c).
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
#include "probe_script.h"
#include "tcp.h"

/* Outside the redirect set: the loop's own echo service. */
#define ECHO_PORT 18090

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

static bool probed_twice(void *arg)
{
	struct script *s = arg;
	return s->probes[0] >= 2;
}

/* min_probes: the probe attempts the server must have answered before it
 * turns ready (a stream read to its bound closes and is tried again). */
static void assert_loop_free_while(struct fixture *f, struct script *s, enum probe_kind kind,
				   unsigned min_probes)
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
	if (min_probes >= 2)
		evloop_run_until(f->base, probed_twice, s, 5000, "a second probe attempt");
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
	assert_loop_free_while(f, &s, PROBE_REDIS, 2);
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
	assert_loop_free_while(f, &s, PROBE_HTTP, 1);
	thread_finish(f, &ct, 5000, "the client's answer");
	ASSERT_EQ_U(c.answered, 1);
}
