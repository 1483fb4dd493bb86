// SPDX-License-Identifier: MIT
/*
 * The activator's first_response, with real redirection and sockets
 * (tests/lib/activator_fixture.h): a woken service's first answer to its held
 * clients is reported once per wake, measured from a client's connect; not
 * when every client left before an answer, nor for a probe of a service
 * serving already (awake, or during its stop).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "dozed/nft.h"
#include "activator_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "tcp.h"

#define MAX_CLIENTS 8

/* --- the daemon's part, with first_response ----------------------------------------- */

struct reports {
	struct fixture *f;
	int n; /* first_response calls */
	uint64_t service_id, us;
};

static void first_response(void *ud, uint64_t service_id, uint64_t us)
{
	struct reports *r = ud;
	r->n++;
	r->service_id = service_id;
	r->us = us;
}

/* The fixture's namespace and nft table, its activator made again to report
 * first_response; the test starts the probe itself, once its backend listens. */
static struct reports *reports_fixture(void)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false;
	struct reports *r = calloc(1, sizeof(*r));
	ASSERT_TRUE(r);
	test_defer(free, r);
	r->f = f;
	fixture_report_first_response(f, first_response, r);
	return r;
}

/* --- clients and a backend ---------------------------------------------------------- */

/* Waits for flag, at most 20 s (the peer is another thread of this test). */
static bool flag_wait(atomic_bool *flag)
{
	uint64_t deadline = now_us() + 20 * 1000000ull;
	struct timespec tick = {.tv_nsec = 1000000};
	while (!*flag && now_us() < deadline)
		nanosleep(&tick, NULL);
	return *flag;
}

struct clients {
	int n, n_reset; /* the first n_reset reset their connection when told */
	atomic_bool leave;
	uint64_t t0_us; /* before the first connect */
	int answered, error;
};

static void *clients_main(void *arg)
{
	struct clients *c = arg;
	int fds[MAX_CLIENTS];
	c->t0_us = now_us();
	for (int i = 0; i < c->n; i++) {
		char req[16];
		int len = snprintf(req, sizeof(req), "R%d\n", i);
		fds[i] = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
		if (fds[i] < 0 || tcp_write_all(fds[i], req, (size_t)len) < 0)
			c->error = fds[i] < 0 ? fds[i] : -EIO;
	}
	if (c->n_reset > 0 && !flag_wait(&c->leave))
		c->error = -ETIMEDOUT;
	for (int i = 0; i < c->n_reset; i++) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		if (fds[i] >= 0)
			setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	for (int i = 0; i < c->n; i++) {
		if (fds[i] < 0)
			continue;
		char want[16], got[16] = {0};
		snprintf(want, sizeof(want), "A%d\n", i);
		if (i >= c->n_reset && tcp_read_all(fds[i], got, sizeof(got) - 1) > 0 &&
		    strcmp(got, want) == 0)
			c->answered++;
		close(fds[i]);
	}
	return NULL;
}

struct backend {
	int n;		   /* connections it serves */
	unsigned delay_ms; /* between the requests and the answers */
	bool hold_answers; /* answer only once told */
	atomic_bool listening, answer;
	atomic_int got; /* requests read */
	int error;
};

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	int fds[MAX_CLIENTS];
	char reqs[MAX_CLIENTS][16];
	ssize_t lens[MAX_CLIENTS];
	int lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	if (lfd < 0) {
		b->error = lfd;
		return NULL;
	}
	b->listening = true;
	for (int i = 0; i < b->n; i++) {
		/* Skips the probes' connections, which send nothing. */
		fds[i] = accept_client(lfd);
		lens[i] = fds[i] < 0 ? -1 : read(fds[i], reqs[i], sizeof(reqs[i]));
		if (lens[i] <= 0 || reqs[i][0] != 'R')
			b->error = -EIO;
		b->got++;
	}
	if (b->hold_answers && !flag_wait(&b->answer))
		b->error = -ETIMEDOUT;
	/* A slow service: the delay is what is measured, not a wait for something. */
	struct timespec delay = {.tv_sec = b->delay_ms / 1000,
				 .tv_nsec = (long)(b->delay_ms % 1000) * 1000000};
	nanosleep(&delay, NULL);
	for (int i = 0; i < b->n; i++) {
		if (fds[i] < 0)
			continue;
		/* "A<n>" for "R<n>". It fails for a client that left: its relay
		 * reset this connection too. */
		if (lens[i] > 0) {
			reqs[i][0] = 'A';
			(void)tcp_write_all(fds[i], reqs[i], (size_t)lens[i]);
		}
		close(fds[i]);
	}
	close(lfd);
	return NULL;
}

/* --- one wake ----------------------------------------------------------------------- */

/* What the loop waits for (the predicates run on it, in this thread). */
static struct fixture *wait_f;
static uint64_t wait_n;

static bool held_all(void *arg)
{
	(void)arg;
	return activator_service_held(wait_f->act, SERVICE_ID) == wait_n;
}

static bool backend_listening(void *arg)
{
	struct backend *b = arg;
	return b->listening || b->error;
}

static bool ready_or_failed(void *arg)
{
	(void)arg;
	return (uint64_t)wait_f->ready >= wait_n || wait_f->failed > 0;
}

static bool backend_got_all(void *arg)
{
	struct backend *b = arg;
	return b->got >= b->n;
}

static bool relays_reset(void *arg)
{
	(void)arg;
	return counters(wait_f).relay_reset >= wait_n;
}

static bool no_relays(void *arg)
{
	(void)arg;
	return counters(wait_f).relayed_now == 0;
}

static void loop_until(struct fixture *f, bool (*pred)(void *), void *arg, uint64_t n,
		       const char *what)
{
	wait_f = f;
	wait_n = n;
	evloop_run_until(f->base, pred, arg, 20000, what);
}

/*
 * n clients connect and send a request, and are held; the backend listens;
 * probe runs; the first n_reset clients reset once the backend has their
 * requests (its answers wait until their relays saw it); the others read
 * their answers, delay_ms after the backend read the requests. Returns once
 * every relay ended.
 */
static void run_wake(struct reports *r, int n, int n_reset, unsigned delay_ms,
		     const struct activator_probe *probe)
{
	struct fixture *f = r->f;
	struct clients c = {.n = n, .n_reset = n_reset};
	struct backend b = {.n = n, .delay_ms = delay_ms, .hold_answers = n_reset > 0};
	struct thread ct, bt;
	int ready_before = f->ready;
	uint64_t resets_before = counters(f).relay_reset;

	thread_start(&ct, clients_main, &c);
	loop_until(f, held_all, NULL, (uint64_t)n, "the clients to be held");
	thread_start(&bt, backend_main, &b);
	loop_until(f, backend_listening, &b, 0, "the backend to listen");
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, probe));
	loop_until(f, ready_or_failed, NULL, (uint64_t)ready_before + 1, "the service ready");
	ASSERT_EQ_U(f->failed, 0);
	if (n_reset > 0) {
		loop_until(f, backend_got_all, &b, 0, "the requests at the backend");
		c.leave = true;
		loop_until(f, relays_reset, NULL, resets_before + (uint64_t)n_reset,
			   "the relays to see their clients' resets");
		b.answer = true;
	}
	thread_finish(f, &ct, 20000, "the clients");
	thread_finish(f, &bt, 20000, "the backend");
	loop_until(f, no_relays, NULL, 0, "every relay to end");
	ASSERT_EQ_U(c.error, 0);
	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(c.answered, n - n_reset);
	/* Any report came before its client could read the answer. */
	if (r->n > 0)
		ASSERT_TRUE(r->us <= now_us() - c.t0_us);
}

static const struct activator_probe tcp_probe = {.netns_fd = -1};

/* --- the tests ---------------------------------------------------------------------- */

TEST(test_a_wake_with_three_held_clients_reports_its_first_answer_once)
{
	struct reports *r = reports_fixture();
	run_wake(r, 3, 0, 200, &tcp_probe);
	ASSERT_EQ_U(r->n, 1);
	ASSERT_EQ_U(r->service_id, SERVICE_ID);
	/* Held from before the backend listened, answered 200 ms after its request. */
	ASSERT_GE_U(r->us, 200 * 1000);
	ASSERT_EQ_U(counters(r->f).relayed_total, 3);
}

TEST(test_each_wake_reports_once)
{
	struct reports *r = reports_fixture();
	run_wake(r, 2, 0, 50, &tcp_probe);
	ASSERT_EQ_U(r->n, 1);
	/* Asleep again: its port back in the redirect set. */
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(nft_set_add_ports(r->f->nft, &port, 1));
	run_wake(r, 1, 0, 100, &tcp_probe);
	ASSERT_EQ_U(r->n, 2);
	ASSERT_GE_U(r->us, 100 * 1000);
}

static bool held_closed_all(void *arg)
{
	(void)arg;
	return counters(wait_f).held_closed >= wait_n;
}

TEST(test_no_report_when_the_held_clients_leave_before_ready)
{
	struct reports *r = reports_fixture();
	struct fixture *f = r->f;
	/* Two reset, one sends its FIN, with nothing sent; the last resets
	 * after its request: each is dropped while held (a reset after bytes
	 * shows in the socket's state, tests/integration/test_held_reset.c). */
	int fds[4];
	for (int i = 0; i < 4; i++) {
		fds[i] = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
		ASSERT_TRUE(fds[i] >= 0);
		if (i == 3)
			ASSERT_OK(tcp_write_all(fds[i], "R3\n", 3));
	}
	loop_until(f, held_all, NULL, 4, "the clients to be held");
	for (int i = 0; i < 4; i++) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		if (i != 2)
			setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fds[i]);
	}
	loop_until(f, held_closed_all, NULL, 4, "the held clients to be dropped");
	ASSERT_EQ_U(activator_service_held(f->act, SERVICE_ID), 0);
	/* Listens (accepting nobody) until told, so that the probe finds it. */
	struct backend b = {.n = 0, .hold_answers = true};
	struct thread bt;
	thread_start(&bt, backend_main, &b);
	loop_until(f, backend_listening, &b, 0, "the backend to listen");
	/* Nobody held: the wake's probe is told where the service listens. */
	struct sockaddr_storage dst;
	socklen_t dst_len;
	ASSERT_OK(tcp_sockaddr("127.0.0.1", SERVICE_PORT, &dst, &dst_len));
	ASSERT_OK(activator_service_starting(f->act, SERVICE_ID, &dst));
	loop_until(f, ready_or_failed, NULL, 1, "the service ready");
	b.answer = true;
	thread_finish(f, &bt, 20000, "the backend");
	ASSERT_EQ_U(f->failed, 0);
	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(counters(f).relayed_total, 0);
	ASSERT_EQ_U(counters(f).relayed_now, 0);
	ASSERT_EQ_U(r->n, 0);
}

TEST(test_no_report_when_the_relayed_clients_reset_before_an_answer)
{
	struct reports *r = reports_fixture();
	run_wake(r, 2, 2, 0, &tcp_probe);
	ASSERT_EQ_U(r->n, 0);
}

TEST(test_the_client_still_there_reports_when_the_others_left)
{
	struct reports *r = reports_fixture();
	run_wake(r, 3, 2, 50, &tcp_probe);
	ASSERT_EQ_U(r->n, 1);
	ASSERT_GE_U(r->us, 50 * 1000);
}

TEST(test_no_report_for_the_relays_of_an_awake_service)
{
	struct reports *r = reports_fixture();
	struct activator_probe awake = {.netns_fd = -1, .awake = true};
	run_wake(r, 2, 0, 50, &awake);
	ASSERT_EQ_U(r->n, 0);
	ASSERT_EQ_U(counters(r->f).relayed_total, 2);
}

TEST(test_no_report_for_a_probe_during_a_stop)
{
	struct reports *r = reports_fixture();
	struct activator_probe stopping = {.netns_fd = -1, .during_stop = true};
	run_wake(r, 1, 0, 50, &stopping);
	ASSERT_EQ_U(r->n, 0);
	ASSERT_EQ_U(counters(r->f).relayed_total, 1);
}
