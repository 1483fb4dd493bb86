// SPDX-License-Identifier: MIT
/*
 * The activator with real redirection (tests/lib/activator_fixture.h): it
 * holds the connections for a sleeping port, probes, and wakes the service
 * once (wake_on=connect or data). The relay is in test_activator_relay.c,
 * connections it refuses in test_activator_reject.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/nft.h"
#include "evloop.h"
#include "harness.h"
#include "netns.h"
#include "activator_fixture.h"
#include "tcp.h"

struct backend {
	int lfd;      /* > 0: listening already (the test's main thread made it) */
	size_t conns; /* connections to serve */
	atomic_ullong listening_at_us;
	atomic_int served;
	int error;
};

/* Serves request "R<n>\n" with "A<n>\n", once per connection. */
static void *backend_main(void *arg)
{
	struct backend *b = arg;
	int lfd = b->lfd > 0 ? b->lfd : tcp_listen("127.0.0.1", SERVICE_PORT);
	if (lfd < 0) {
		b->error = lfd;
		return NULL;
	}
	if (!b->listening_at_us)
		b->listening_at_us = now_us();
	for (size_t i = 0; i < b->conns; i++) {
		int fd = accept_client(lfd);
		if (fd < 0) {
			b->error = fd;
			break;
		}
		if (answer_request(fd) == 0)
			b->served++;
		close(fd);
	}
	close(lfd);
	return NULL;
}

struct clients {
	size_t n;
	/* 0: all from 127.0.0.1; else from 127.0.0.2 onwards, in turn, so that
	 * no address has more than the activator's max_held_per_client. */
	size_t n_sources;
	atomic_int answered;
	int first_error;
};

static int client_connect(const struct clients *c, size_t i)
{
	if (c->n_sources == 0)
		return tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	char src[INET_ADDRSTRLEN];
	snprintf(src, sizeof(src), "127.0.0.%zu", 2 + i % c->n_sources);
	return tcp_connect_from(src, "127.0.0.1", SERVICE_PORT);
}

/* Connects n clients (all held at once), then sends and checks each answer. */
static void *clients_main(void *arg)
{
	struct clients *c = arg;
	int *fds = calloc(c->n, sizeof(int));
	for (size_t i = 0; i < c->n; i++) {
		fds[i] = client_connect(c, i);
		if (fds[i] < 0 && !c->first_error)
			c->first_error = fds[i];
	}
	for (size_t i = 0; i < c->n; i++) {
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "R%zu\n", i);
		if (fds[i] >= 0 && tcp_write_all(fds[i], msg, (size_t)len) < 0 && !c->first_error)
			c->first_error = -errno;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (fds[i] < 0)
			continue;
		char want[32], got[32];
		int len = snprintf(want, sizeof(want), "A%zu\n", i);
		ssize_t r = tcp_read_all(fds[i], got, sizeof(got));
		if (r == len && memcmp(got, want, (size_t)len) == 0)
			c->answered++;
		else if (!c->first_error)
			c->first_error = r < 0 ? (int)r : -EPROTO;
		close(fds[i]);
	}
	free(fds);
	return NULL;
}

struct probing {
	struct fixture *f;
	uint64_t until_us;
};

/* The service has been down a while, and probed all along. */
static bool probed_until(void *arg)
{
	struct probing *p = arg;
	return now_us() >= p->until_us &&
	       counters(p->f).probe_attempts >= 400000 / p->f->cfg.probe_interval_us;
}

static bool ready_once(void *arg)
{
	return ((struct fixture *)arg)->ready >= 1;
}

TEST(test_held_request_is_answered_once_backend_listens_400ms_later)
{
	struct fixture *f = fixture_new(10000, true);
	struct backend b = {.conns = 1};
	struct clients c = {.n = 1};
	struct thread bt, ct;
	uint64_t t0 = now_us();
	thread_start(&ct, clients_main, &c);
	/* Probes keep coming while nothing listens: at least one per interval. */
	struct probing p = {.f = f, .until_us = t0 + 400000};
	evloop_run_until(f->base, probed_until, &p, 5000, "400 ms of probing a closed port");
	ASSERT_EQ_U(f->ready, 0);
	/* Listening from this thread, between two turns of the loop: the
	 * probe's attempts before and after are told apart. */
	b.lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	ASSERT_TRUE(b.lfd > 0);
	b.listening_at_us = now_us();
	uint64_t attempts_before = counters(f).probe_attempts;
	thread_start(&bt, backend_main, &b);
	evloop_run_until(f->base, ready_once, f, 5000, "the probe to find the backend");
	/* Found by the first attempt after it listened (within one probe
	 * interval), whatever the scheduling. */
	uint64_t attempts_after = counters(f).probe_attempts - attempts_before;
	if (attempts_after > 1)
		FAIL("the probe found the backend only at its attempt %llu after it listened",
		     (unsigned long long)attempts_after);
	thread_finish(f, &ct, 10000, "the client to get its answer");
	thread_finish(f, &bt, 5000, "the backend to finish");

	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(c.first_error, 0);
	ASSERT_EQ_U(c.answered, 1);
	ASSERT_EQ_U(f->wakes_requested, 1);
	ASSERT_EQ_U(f->ready, 1);
	ASSERT_GE_U(b.listening_at_us, t0 + 400000);
	ASSERT_GE_U(f->ready_at_us, b.listening_at_us);
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.accepted, 1);
	ASSERT_EQ_U(k.wakes_ready, 1);
}

static bool held_2000(void *arg)
{
	return activator_service_held(((struct fixture *)arg)->act, SERVICE_ID) == 2000;
}

TEST(test_2000_connections_held_during_one_wake_are_all_answered)
{
	/* The wake's deadline runs from the first client: room for the rest
	 * to connect on a loaded machine. */
	struct fixture *f = fixture_new(60000, true);
	struct backend b = {.conns = 2000};
	/* 250 from each of 8 addresses: within the per-client bound. */
	struct clients c = {.n = 2000, .n_sources = 8};
	struct thread bt, ct;
	thread_start(&ct, clients_main, &c);
	/* The service listens only once all are held: all in one wake. */
	evloop_run_until(f->base, held_2000, f, 30000, "2000 clients to be held");
	thread_start(&bt, backend_main, &b);
	thread_finish(f, &ct, 60000, "2000 clients to get their answers");
	thread_finish(f, &bt, 10000, "the backend to finish");

	ASSERT_EQ_U(c.first_error, 0);
	ASSERT_EQ_U(c.answered, 2000);
	ASSERT_EQ_U(b.served, 2000);
	ASSERT_EQ_U(f->wakes_requested, 1);
	ASSERT_EQ_U(counters(f).relayed_total, 2000);
}

TEST(test_wake_timeout_resets_every_held_client)
{
	struct fixture *f = fixture_new(500, true);
	struct clients c = {.n = 20};
	struct thread ct;
	uint64_t t0 = now_us();
	thread_start(&ct, clients_main, &c);
	thread_finish(f, &ct, 10000, "held clients to be reset");

	ASSERT_EQ_U(c.answered, 0);
	ASSERT_TRUE(c.first_error == -ECONNRESET);
	ASSERT_EQ_U(f->failed, 1);
	ASSERT_TRUE(f->fail_reason == -ETIMEDOUT);
	/* Not before the timeout; libevent's coarse monotonic clock may fire a
	 * timer up to a tick (a few ms) early by a fine clock. */
	ASSERT_GE_U(now_us() - t0, 500000 - 10000);
	ASSERT_EQ_U(counters(f).held_now, 0);
	ASSERT_EQ_U(counters(f).wakes_failed, 1);
}

/* --- wake_on=data ----------------------------------------------------------- */

static bool held_one_closed(void *arg)
{
	return counters(arg).held_closed >= 1;
}

static bool wake_was_requested(void *arg)
{
	return ((struct fixture *)arg)->wakes_requested >= 1;
}

static bool held_one(void *arg)
{
	return counters(arg).held_now >= 1;
}

TEST(test_wake_on_data_connect_then_close_does_not_wake)
{
	struct fixture *f = fixture_new(10000, true);
	f->wake_min_bytes = 1;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, held_one, f, 5000, "the client to be held");
	close(fd);
	evloop_run_until(f->base, held_one_closed, f, 5000, "the held client to be dropped");
	ASSERT_EQ_U(f->wakes_requested, 0);
	ASSERT_EQ_U(counters(f).held_now, 0);
}

TEST(test_wake_on_data_connect_and_send_wakes)
{
	struct fixture *f = fixture_new(10000, true);
	f->wake_min_bytes = 1;
	f->start_on_wake = false;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, held_one, f, 5000, "the client to be held");
	ASSERT_EQ_U(f->wakes_requested, 0);
	ASSERT_OK(tcp_write_all(fd, "R1\n", 3));
	evloop_run_until(f->base, wake_was_requested, f, 5000, "a wake request");
	ASSERT_EQ_U(f->wakes_requested, 1);
	close(fd);
}

/* --- probing inside the service's own network namespace ---------------------- */

struct ns_listener {
	int ns_fd;
	atomic_bool listen_now;
	atomic_ullong listening_at_us;
	atomic_bool stop;
	int error;
};

/* The container's own port: listens in namespace ns_fd only when told to
 * (10 s at most). */
static void *ns_listener_main(void *arg)
{
	struct ns_listener *l = arg;
	for (int i = 0; i < 10000 && !l->listen_now; i++)
		usleep(1000);
	int fd = netns_socket(l->ns_fd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		l->error = fd < 0 ? fd : -errno;
		return NULL;
	}
	l->listening_at_us = now_us();
	while (!l->stop) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
		usleep(1000);
	}
	close(fd);
	return NULL;
}

static bool backend_listening(void *arg)
{
	return ((struct backend *)arg)->listening_at_us != 0;
}

static bool probed_thrice_or_ready(void *arg)
{
	struct fixture *f = arg;
	return f->ready || counters(f).probe_attempts >= 3;
}

TEST(test_probe_in_the_services_namespace_ignores_a_proxy_that_accepts_early)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false;
	int peer_fd;
	ASSERT_OK(netns_add_peer("10.212.0.1/24", "10.212.0.2/24", &peer_fd));
	/* The "proxy" on the published port accepts and answers from the start. */
	struct backend proxy = {.conns = 1};
	struct ns_listener own = {.ns_fd = peer_fd};
	struct clients c = {.n = 1};
	struct thread pt, lt, ct;
	thread_start(&pt, backend_main, &proxy);
	thread_start(&lt, ns_listener_main, &own);
	evloop_run_until(f->base, backend_listening, &proxy, 5000, "the proxy to listen");
	thread_start(&ct, clients_main, &c);
	evloop_run_until(f->base, wake_was_requested, f, 5000, "the wake request");

	/* A whole sockaddr_storage: the activator copies one. */
	struct sockaddr_storage dst;
	socklen_t dst_len;
	ASSERT_OK(tcp_sockaddr("127.0.0.1", 8080, &dst, &dst_len));
	struct activator_probe probe = {.dst = &dst, .netns_fd = peer_fd};
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
	/* A probe of the proxy would be answered at its first attempt. */
	evloop_run_until(f->base, probed_thrice_or_ready, f, 5000, "three probe attempts");
	ASSERT_EQ_U(f->ready, 0);
	own.listen_now = true;
	thread_finish(f, &ct, 10000, "the client to get its answer");
	own.stop = true;
	thread_finish(f, &lt, 5000, "the namespace listener to stop");
	thread_finish(f, &pt, 5000, "the proxy to finish");
	close(peer_fd);

	ASSERT_EQ_U(own.error, 0);
	ASSERT_EQ_U(c.answered, 1);
	ASSERT_EQ_U(f->ready, 1);
	/* Ready when the service's own port listened, not when the proxy did. */
	ASSERT_TRUE(own.listening_at_us > 0);
	ASSERT_GE_U(f->ready_at_us, own.listening_at_us);
}
