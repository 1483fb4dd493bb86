// SPDX-License-Identifier: MIT
/*
 * The activator's relay, with real redirection (tests/lib/activator_fixture.h):
 * bytes arrive intact both ways, half close, resets, no descriptor leaks, an
 * IPv6 client to its original destination.
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

static bool held_one(void *arg)
{
	return counters(arg).held_now >= 1;
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
