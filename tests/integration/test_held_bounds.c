// SPDX-License-Identifier: MIT
/*
 * Held connections cannot lock real clients out (tests/lib/activator_fixture.h,
 * real sockets behind our nft table): connections that send nothing to a
 * wake-on-data service have a deadline and give way to newcomers, and one
 * client address holds at most max_held_per_client of a service's slots.
 * Sources are addresses of 127.0.0.0/8, all local on lo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "evloop.h"
#include "harness.h"
#include "activator_fixture.h"
#include "tcp.h"

#define SILENT_CLIENTS 4096
#define SILENT_SOURCES 16 /* 256 each: the default per-client bound */

static void fds_close(void *arg)
{
	int *fds = arg;
	for (size_t i = 0; i < SILENT_CLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

/* An array of SILENT_CLIENTS fds, all -1, closed when the test ends. */
static int *fds_new(void)
{
	int *fds = malloc(SILENT_CLIENTS * sizeof(int));
	ASSERT_TRUE(fds);
	for (size_t i = 0; i < SILENT_CLIENTS; i++)
		fds[i] = -1;
	test_defer(fds_close, fds);
	return fds;
}

struct silent {
	int *fds;
	size_t n, n_sources;
	atomic_size_t connected;
	int first_error;
};

/* Connects n clients from 127.0.0.2 onwards in turn; they never send. */
static void *silent_main(void *arg)
{
	struct silent *s = arg;
	for (size_t i = 0; i < s->n; i++) {
		char src[INET_ADDRSTRLEN];
		snprintf(src, sizeof(src), "127.0.0.%zu", 2 + i % s->n_sources);
		s->fds[i] = tcp_connect_from(src, "127.0.0.1", SERVICE_PORT);
		if (s->fds[i] >= 0)
			s->connected++;
		else if (!s->first_error)
			s->first_error = s->fds[i];
	}
	return NULL;
}

/*
 * The service, from the start: answers "R<n>\n" with "A<n>\n" on any of its
 * connections (a woken service gets every held client relayed, silent ones
 * too, so it cannot wait on one of them), until stop.
 */
struct poll_backend {
	int lfd;
	atomic_bool stop;
	atomic_int served;
	size_t accepted;
	size_t first_served_nth; /* of the connections accepted, 1-based; 0: none */
	int error;
};

static void *poll_backend_main(void *arg)
{
	struct poll_backend *b = arg;
	size_t cap = 2 * SILENT_CLIENTS + 16, n = 1;
	struct pollfd *p = calloc(cap, sizeof(*p));
	if (!p) {
		b->error = -ENOMEM;
		return NULL;
	}
	fcntl(b->lfd, F_SETFL, O_NONBLOCK);
	p[0] = (struct pollfd){.fd = b->lfd, .events = POLLIN};
	size_t *nth = calloc(cap, sizeof(*nth)); /* beside p[]: accept order */
	if (!nth) {
		free(p);
		b->error = -ENOMEM;
		return NULL;
	}
	while (!b->stop) {
		if (poll(p, n, 20) < 0 && errno != EINTR) {
			b->error = -errno;
			break;
		}
		for (size_t i = n; i-- > 1;) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[64];
			ssize_t r = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 1 && buf[0] == 'R' && buf[r - 1] == '\n') {
				buf[0] = 'A';
				if (tcp_write_all(p[i].fd, buf, (size_t)r) == 0 && !b->served++)
					b->first_served_nth = nth[i];
			}
			close(p[i].fd);
			nth[i] = nth[n - 1];
			p[i] = p[--n];
		}
		if (p[0].revents & POLLIN) {
			int fd;
			while (n < cap && (fd = accept4(b->lfd, NULL, NULL,
							SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				nth[n] = ++b->accepted;
				p[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
			}
		}
	}
	for (size_t i = 1; i < n; i++)
		close(p[i].fd);
	free(nth);
	free(p);
	return NULL;
}

struct real_client {
	const char *src;
	int error;
	char answer[8];
};

static void *real_client_main(void *arg)
{
	struct real_client *c = arg;
	int fd = tcp_connect_from(c->src, "127.0.0.1", SERVICE_PORT);
	if (fd < 0) {
		c->error = fd;
		return NULL;
	}
	ssize_t r = tcp_write_all(fd, "R1\n", 3) < 0 ? -errno : tcp_read_all(fd, c->answer, 3);
	if (r != 3)
		c->error = r < 0 ? (int)r : -EPROTO;
	close(fd);
	return NULL;
}

static size_t held_now(struct fixture *f)
{
	return counters(f).held_now;
}

static bool all_silent_held(void *arg)
{
	return held_now(arg) >= SILENT_CLIENTS;
}

TEST(test_4096_silent_connections_do_not_lock_out_a_real_client_arriving_after_them)
{
	/* Here: 4096 clients, 4096 held, then 4096 relays and the backend's 4096. */
	fixture_raise_nofile(4 * SILENT_CLIENTS + 1024);
	struct fixture *f = fixture_new(10000, true);
	f->wake_min_bytes = 1; /* wake on data */
	struct silent s = {.fds = fds_new(), .n = SILENT_CLIENTS, .n_sources = SILENT_SOURCES};
	struct thread st;
	thread_start(&st, silent_main, &s);
	thread_finish(f, &st, 60000, "4096 silent clients to connect");
	ASSERT_EQ_U(s.first_error, 0);
	evloop_run_until(f->base, all_silent_held, f, 30000, "4096 silent clients to be held");
	/* The service's queue is full (max_held), and nothing woke it. */
	ASSERT_EQ_U(held_now(f), f->cfg.max_held);
	ASSERT_EQ_U(f->wakes_requested, 0);

	struct poll_backend b = {.lfd = tcp_listen("127.0.0.1", SERVICE_PORT)};
	ASSERT_TRUE(b.lfd >= 0);
	struct real_client c = {.src = "127.0.0.200"};
	struct thread bt, ct;
	thread_start(&bt, poll_backend_main, &b);
	thread_start(&ct, real_client_main, &c);
	thread_finish(f, &ct, 30000, "the real client's answer");
	b.stop = true;
	thread_finish(f, &bt, 10000, "the backend to stop");
	close(b.lfd);

	if (c.error)
		FAIL("the real client got no answer: %s", strerror(-c.error));
	ASSERT_STREQ(c.answer, "A1\n");
	ASSERT_EQ_U(b.error, 0);
	/* Relayed first, right after the probe: not behind the 4095 silent
	 * ones, which a service may not take all of. */
	ASSERT_TRUE(b.first_served_nth >= 1);
	if (b.first_served_nth > 2)
		FAIL("the real client's relay was connection %zu at the service, after %zu silent "
		     "ones",
		     b.first_served_nth, b.first_served_nth - 2);
	ASSERT_EQ_U(f->wakes_requested, 1);
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.rejected_full, 0);
	ASSERT_EQ_U(k.held_evicted, 1); /* the oldest silent one made room */
}

struct want_held {
	struct fixture *f;
	size_t n;
};

static bool held_n(void *arg)
{
	struct want_held *w = arg;
	return held_now(w->f) >= w->n;
}

static bool accepted_n(void *arg)
{
	struct want_held *w = arg;
	return counters(w->f).accepted >= w->n;
}

TEST(test_connections_from_one_address_over_the_bound_are_reset_while_another_is_held)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	size_t bound = cfg.max_held_per_client;
	ASSERT_TRUE(bound > 0 && bound < cfg.max_held);
	fixture_raise_nofile(4 * bound + 1024);
	struct fixture *f = fixture_new(10000, true);
	f->wake_min_bytes = 1; /* silent clients stay held, nothing wakes */
	int *fds = fds_new();
	for (size_t i = 0; i < bound; i++) {
		fds[i] = tcp_connect_from("127.0.0.2", "127.0.0.1", SERVICE_PORT);
		ASSERT_TRUE(fds[i] >= 0);
	}
	struct want_held w = {.f = f, .n = bound};
	evloop_run_until(f->base, held_n, &w, 10000, "the bound's worth of clients to be held");

	/* The same address again: reset, each of them. */
	for (size_t i = bound; i < bound + 10; i++) {
		fds[i] = tcp_connect_from("127.0.0.2", "127.0.0.1", SERVICE_PORT);
		ASSERT_TRUE(fds[i] >= 0);
	}
	w.n = bound + 10;
	evloop_run_until(f->base, accepted_n, &w, 10000, "10 more clients to be accepted");
	ASSERT_EQ_U(held_now(f), bound);
	for (size_t i = bound; i < bound + 10; i++) {
		char b;
		ASSERT_TRUE(read(fds[i], &b, 1) < 0 && errno == ECONNRESET);
	}

	/* Another address is still held. */
	fds[bound + 10] = tcp_connect_from("127.0.0.3", "127.0.0.1", SERVICE_PORT);
	ASSERT_TRUE(fds[bound + 10] >= 0);
	w.n = bound + 1;
	evloop_run_until(f->base, held_n, &w, 10000, "a client from another address to be held");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.rejected_per_client, 10);
	ASSERT_EQ_U(k.rejected_full, 0);
	ASSERT_EQ_U(k.held_now, bound + 1);
	ASSERT_EQ_U(f->wakes_requested, 0);
}

static bool one_silent_closed(void *arg)
{
	return counters(arg).held_silent_closed >= 1;
}

TEST(test_a_held_connection_that_sends_nothing_is_reset_at_its_deadline)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.silent_timeout_us = 300 * 1000;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->wake_min_bytes = 1;
	uint64_t t0 = now_us();
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(fd >= 0);
	evloop_run_until(f->base, one_silent_closed, f, 10000,
			 "the silent client to be reset at its deadline");
	/* Not before the deadline (libevent's coarse clock: a tick early at most). */
	ASSERT_GE_U(now_us() - t0, 300000 - 10000);
	char b;
	ASSERT_TRUE(read(fd, &b, 1) < 0 && errno == ECONNRESET);
	close(fd);
	ASSERT_EQ_U(held_now(f), 0);
	ASSERT_EQ_U(f->wakes_requested, 0);
}

static bool wake_requested(void *arg)
{
	return ((struct fixture *)arg)->wakes_requested >= 1;
}

static bool two_held_one_closed(void *arg)
{
	struct activator_counters c = counters(arg);
	return c.held_now >= 2 || c.held_silent_closed >= 1;
}

struct past {
	uint64_t at_us;
};

static bool time_past(void *arg)
{
	return now_us() >= ((struct past *)arg)->at_us;
}

TEST(test_a_silent_connection_held_while_a_wake_is_under_way_waits_for_the_service)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.silent_timeout_us = 200 * 1000;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->wake_min_bytes = 1;
	f->start_on_wake = false; /* the wake is requested, the service never ready */
	int real = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(real >= 0);
	ASSERT_OK(tcp_write_all(real, "R1\n", 3));
	evloop_run_until(f->base, wake_requested, f, 5000, "the wake request");
	uint64_t t0 = now_us();
	int silent = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(silent >= 0);
	evloop_run_until(f->base, two_held_one_closed, f, 5000, "the silent client to be held");
	/* Past its deadline, twice over: a deadline would have fired by now. */
	struct past p = {.at_us = t0 + 2 * cfg.silent_timeout_us};
	evloop_run_until(f->base, time_past, &p, 5000, "twice the silent deadline to pass");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.held_silent_closed, 0);
	ASSERT_EQ_U(k.held_now, 2);
	close(silent);
	close(real);
}
