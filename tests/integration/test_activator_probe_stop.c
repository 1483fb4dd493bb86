// SPDX-License-Identifier: MIT
/*
 * The protocol probes during a stop, and in the service's own namespace: a
 * probe during a stop ends at the timeout with its client still held, or
 * relays at once when it finds the service serving; a later probe replaces
 * it; auto and healthcheck are the daemon's; a proxy in front is ignored.
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
