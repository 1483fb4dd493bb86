// SPDX-License-Identifier: MIT
/*
 * The activator with real redirection (tests/lib/activator_fixture.h): it
 * holds the connections for a sleeping port, probes, and relays.
 */
#include <arpa/inet.h>
#include <dirent.h>
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

/* --- bulk transfer ---------------------------------------------------------- */

/* A deterministic byte stream: xorshift64, so both ends can check it. */
struct stream {
	uint64_t state;
};

static void stream_fill(struct stream *s, unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			s->state ^= s->state << 13;
			s->state ^= s->state >> 7;
			s->state ^= s->state << 17;
		}
		buf[i] = (unsigned char)(s->state >> ((i & 7) * 8));
	}
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

struct pump {
	int fd;
	uint64_t seed;
	size_t bytes;
	uint64_t sum;
	size_t done;
	int error;
	bool shut_after; /* shutdown(SHUT_WR) when all is sent */
};

static void *pump_send(void *arg)
{
	struct pump *p = arg;
	struct stream s = {p->seed};
	static __thread unsigned char buf[1 << 16];
	uint64_t h = 0xcbf29ce484222325ull;
	while (p->done < p->bytes) {
		size_t n = p->bytes - p->done < sizeof(buf) ? p->bytes - p->done : sizeof(buf);
		stream_fill(&s, buf, n);
		h = fnv1a(h, buf, n);
		int r = tcp_write_all(p->fd, buf, n);
		if (r < 0) {
			p->error = r;
			return NULL;
		}
		p->done += n;
	}
	p->sum = h;
	if (p->shut_after)
		shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void *pump_recv(void *arg)
{
	struct pump *p = arg;
	static __thread unsigned char buf[1 << 16];
	uint64_t h = 0xcbf29ce484222325ull;
	for (;;) {
		ssize_t r = read(p->fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			p->error = -errno;
			break;
		}
		if (r == 0)
			break;
		h = fnv1a(h, buf, (size_t)r);
		p->done += (size_t)r;
	}
	p->sum = h;
	return NULL;
}

struct bulk {
	size_t up, down; /* bytes client → backend, backend → client */
	bool half_close; /* client shuts its write side first; backend answers after EOF */
	struct pump c_send, c_recv, b_send, b_recv;
	int error;
};

static void *bulk_backend(void *arg)
{
	struct bulk *k = arg;
	int lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	int fd = lfd < 0 ? -1 : accept_client(lfd);
	if (fd < 0) {
		k->error = -EIO;
		return NULL;
	}
	k->b_recv = (struct pump){.fd = fd, .bytes = k->up};
	k->b_send = (struct pump){.fd = fd, .seed = 0xbac4e4d, .bytes = k->down};
	pthread_t tid;
	if (k->half_close) {
		pump_recv(&k->b_recv);
		pump_send(&k->b_send);
	} else {
		pthread_create(&tid, NULL, pump_send, &k->b_send);
		pump_recv(&k->b_recv);
		pthread_join(tid, NULL);
	}
	close(fd);
	close(lfd);
	return NULL;
}

static void *bulk_client(void *arg)
{
	struct bulk *k = arg;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	if (fd < 0) {
		k->error = fd;
		return NULL;
	}
	k->c_send = (struct pump){.fd = fd, .seed = 0xc11e47, .bytes = k->up, .shut_after = true};
	k->c_recv = (struct pump){.fd = fd};
	pthread_t tid;
	pthread_create(&tid, NULL, pump_send, &k->c_send);
	pump_recv(&k->c_recv);
	pthread_join(tid, NULL);
	close(fd);
	return NULL;
}

static void run_bulk(struct bulk *k)
{
	struct fixture *f = fixture_new(10000, true);
	struct thread bt, ct;
	thread_start(&bt, bulk_backend, k);
	thread_start(&ct, bulk_client, k);
	thread_finish(f, &ct, 120000, "the bulk transfer");
	thread_finish(f, &bt, 10000, "the backend");

	ASSERT_EQ_U(k->error, 0);
	ASSERT_EQ_U(k->c_send.error, 0);
	ASSERT_EQ_U(k->c_recv.error, 0);
	ASSERT_EQ_U(k->b_recv.done, k->up);
	ASSERT_EQ_U(k->c_recv.done, k->down);
	ASSERT_TRUE(k->b_recv.sum == k->c_send.sum);
	ASSERT_TRUE(k->c_recv.sum == k->b_send.sum);
	struct activator_counters c = counters(f);
	ASSERT_EQ_U(c.bytes_to_backend, k->up);
	ASSERT_EQ_U(c.bytes_to_client, k->down);
	/* Both directions ended cleanly: the relay is gone. */
	ASSERT_EQ_U(c.relayed_now, 0);
}

TEST(test_256_mib_each_way_arrive_intact)
{
	struct bulk k = {.up = 256u << 20, .down = 256u << 20};
	run_bulk(&k);
}

TEST(test_client_half_close_still_receives_full_response)
{
	struct bulk k = {.up = 1u << 20, .down = 8u << 20, .half_close = true};
	run_bulk(&k);
}

/* --- connections that must never be relayed -------------------------------- */

static bool rejected_one(void *arg)
{
	struct activator_counters c = counters(arg);
	return c.rejected_unrouted >= 1;
}

TEST(test_connection_straight_to_activator_port_is_dropped_by_the_table)
{
	struct fixture *f = fixture_new(10000, true);
	ASSERT_TRUE(!tcp_connect_completes("127.0.0.1", ACTIVATOR_PORT, 300));
	/* A redirected connection after it, to a port no service owns: once the
	 * loop has accepted that one, it would have accepted one that got
	 * through before it, from the same listener's queue. */
	int later = tcp_connect("127.0.0.1", OTHER_PORT, 0);
	ASSERT_TRUE(later >= 0);
	test_defer_close(later);
	evloop_run_until(f->base, rejected_one, f, 5000, "the later connection to be rejected");
	ASSERT_EQ_U(counters(f).accepted, 1);
	ASSERT_EQ_U(f->wakes_requested, 0);
}

TEST(test_connection_straight_to_activator_without_table_is_reset)
{
	/* Without the table's drop rule, the activator itself refuses. */
	struct fixture *f = fixture_new(10000, false);
	int fd = tcp_connect("127.0.0.1", ACTIVATOR_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, rejected_one, f, 5000, "the activator to reject");
	char b;
	ASSERT_TRUE(read(fd, &b, 1) < 0 && errno == ECONNRESET);
	close(fd);
	ASSERT_EQ_U(f->wakes_requested, 0);
	ASSERT_EQ_U(counters(f).relayed_total, 0);
}

TEST(test_connection_for_unmanaged_port_is_reset)
{
	struct fixture *f = fixture_new(10000, true);
	/* OTHER_PORT is in the set, but no service owns it. */
	int fd = tcp_connect("127.0.0.1", OTHER_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, rejected_one, f, 5000, "the activator to reject");
	char b;
	ASSERT_TRUE(read(fd, &b, 1) < 0 && errno == ECONNRESET);
	close(fd);
	ASSERT_EQ_U(f->wakes_requested, 0);
	ASSERT_EQ_U(counters(f).relayed_total, 0);
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

/* --- nothing leaks ---------------------------------------------------------- */

static size_t count_fds(void)
{
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		FAIL("cannot list /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool held_closed_100(void *arg)
{
	return counters(arg).held_closed >= 100;
}

TEST(test_clients_closing_while_held_leak_no_fds)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false; /* they stay held */
	size_t before = count_fds();
	for (int i = 0; i < 100; i++) {
		int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
		ASSERT_TRUE(fd >= 0);
		close(fd);
	}
	evloop_run_until(f->base, held_closed_100, f, 10000, "100 held clients to be dropped");
	ASSERT_EQ_U(counters(f).held_now, 0);
	ASSERT_EQ_U(count_fds(), before);
}

struct resetting_backend {
	int error;
	atomic_int reset_sent;
};

static void *resetting_backend_main(void *arg)
{
	struct resetting_backend *b = arg;
	int lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	for (int i = 0; lfd >= 0 && i < 10; i++) {
		int fd = accept_client(lfd);
		if (fd < 0)
			break;
		char buf[4];
		if (read(fd, buf, sizeof(buf)) <= 0)
			b->error = -EIO;
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		b->reset_sent++;
	}
	if (lfd >= 0)
		close(lfd);
	return NULL;
}

struct reset_clients {
	int resets_seen;
};

static void *reset_clients_main(void *arg)
{
	struct reset_clients *c = arg;
	int fds[10];
	for (int i = 0; i < 10; i++)
		fds[i] = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	for (int i = 0; i < 10; i++) {
		if (fds[i] < 0)
			continue;
		char b[16];
		if (tcp_write_all(fds[i], "R0\n", 3) == 0 && read(fds[i], b, sizeof(b)) < 0 &&
		    errno == ECONNRESET)
			c->resets_seen++;
		close(fds[i]);
	}
	return NULL;
}

static bool ten_held(void *arg)
{
	return activator_service_held(((struct fixture *)arg)->act, SERVICE_ID) == 10;
}

TEST(test_backend_reset_mid_relay_resets_client_and_leaks_no_fds)
{
	struct fixture *f = fixture_new(10000, true);
	/* All ten are held before the wake, so that all ten are relayed. */
	f->start_on_wake = false;
	size_t before = count_fds();
	struct resetting_backend b = {0};
	struct reset_clients c = {0};
	struct thread bt, ct;
	thread_start(&bt, resetting_backend_main, &b);
	thread_start(&ct, reset_clients_main, &c);
	evloop_run_until(f->base, ten_held, f, 5000, "ten clients held");
	ASSERT_OK(activator_service_starting(f->act, SERVICE_ID, NULL));
	thread_finish(f, &ct, 20000, "clients to see their resets");
	thread_finish(f, &bt, 5000, "the backend");
	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(c.resets_seen, 10);
	ASSERT_EQ_U(counters(f).relayed_now, 0);
	ASSERT_GE_U(counters(f).relay_reset, 10);
	ASSERT_EQ_U(count_fds(), before);
}

/* --- IPv6 ------------------------------------------------------------------- */

struct v6_backend {
	int error;
	atomic_bool listening;
};

static void *v6_backend_main(void *arg)
{
	struct v6_backend *b = arg;
	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(SERVICE_PORT)};
	sa.sin6_addr = in6addr_loopback;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
		b->error = -errno;
		return NULL;
	}
	int fd = accept_client(lfd);
	char buf[8];
	if (fd < 0 || read(fd, buf, sizeof(buf)) != 3 || tcp_write_all(fd, "A6\n", 3) < 0)
		b->error = -EIO;
	if (fd >= 0)
		close(fd);
	close(lfd);
	return NULL;
}

struct v6_client {
	int error;
	char answer[8];
};

static void *v6_client_main(void *arg)
{
	struct v6_client *c = arg;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(SERVICE_PORT)};
	sa.sin6_addr = in6addr_loopback;
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    tcp_write_all(fd, "R6\n", 3) < 0 || tcp_read_all(fd, c->answer, 3) != 3)
		c->error = -errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	return NULL;
}

TEST(test_ipv6_client_is_held_and_relayed_to_its_original_destination)
{
	struct fixture *f = fixture_new(10000, true);
	struct v6_backend b = {0};
	struct v6_client c = {0};
	struct thread bt, ct;
	thread_start(&ct, v6_client_main, &c);
	/* The service listens only once its client is held. */
	evloop_run_until(f->base, held_one, f, 5000, "the IPv6 client to be held");
	thread_start(&bt, v6_backend_main, &b);
	thread_finish(f, &ct, 10000, "the IPv6 client's answer");
	thread_finish(f, &bt, 5000, "the IPv6 backend");
	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(c.error, 0);
	ASSERT_STREQ(c.answer, "A6\n");
	ASSERT_EQ_U(f->wakes_requested, 1);
	ASSERT_EQ_U(counters(f).relayed_total, 1);
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
	ASSERT_OK(activator_service_starting_in(f->act, SERVICE_ID, &dst, peer_fd));
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

/* --- resets leave no redirect behind ------------------------------------------ */

/* A blocking connect from 127.0.0.1:sport to 127.0.0.1:port, with mark if non-zero. */
static int connect_from_port(uint16_t sport, uint16_t port, uint32_t mark)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (mark)
		setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(sport)};
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
	src.sin_addr.s_addr = dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

TEST(test_reset_client_leaves_no_redirect_for_our_next_connection_from_its_port)
{
	struct fixture *f = fixture_new(10000, true);
	int backend = tcp_listen("127.0.0.1", OTHER_PORT);
	ASSERT_TRUE(backend >= 0);
	/* OTHER_PORT is redirected but no service owns it: the client is reset. */
	int fd = connect_from_port(41000, OTHER_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, rejected_one, f, 5000, "the activator to reject");
	close(fd);
	/* A probe or relay socket of ours that happens to get the same source
	 * port must reach the service, not the activator through the old entry. */
	int ours = connect_from_port(41000, OTHER_PORT, MARK);
	ASSERT_TRUE(ours >= 0);
	int got = tcp_accept_within(backend, 2000);
	ASSERT_TRUE(got >= 0);
	close(got);
	close(ours);
	close(backend);
	ASSERT_EQ_U(counters(f).accepted, 1);
}

TEST(test_reset_client_whose_port_nat_changed_leaves_no_redirect_either)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false;
	int backend = tcp_listen("127.0.0.1", OTHER_PORT);
	ASSERT_TRUE(backend >= 0);
	/* Held from 127.0.0.1:41001: its redirect's reply tuple is 15001 -> 41001. */
	int held = connect_from_port(41001, SERVICE_PORT, 0);
	ASSERT_TRUE(held >= 0);
	evloop_run_until(f->base, wake_was_requested, f, 5000, "the first client to be held");
	/* The same source port to another redirected port clashes with that
	 * reply tuple: NAT changes its source port too, which the activator sees. */
	int fd = connect_from_port(41001, OTHER_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, rejected_one, f, 5000, "the activator to reject");
	close(fd);
	int ours = connect_from_port(41001, OTHER_PORT, MARK);
	ASSERT_TRUE(ours >= 0);
	int got = tcp_accept_within(backend, 2000);
	ASSERT_TRUE(got >= 0);
	close(got);
	close(ours);
	close(held);
	close(backend);
	ASSERT_EQ_U(counters(f).accepted, 2);
}
