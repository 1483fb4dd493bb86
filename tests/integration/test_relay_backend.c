// SPDX-License-Identifier: MIT
/*
 * The relay's side toward a service that has just woken: a full accept
 * backlog that drops its SYNs, and a service that takes its time to answer
 * (tests/lib/activator_fixture.h: real redirection in a private namespace).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "activator_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "tcp.h"

struct client {
	char answer[32];
	ssize_t got;
};

/* One held client: sends "R0\n" and reads the answer until the backend closes. */
static void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	if (fd < 0) {
		c->got = fd;
		return NULL;
	}
	c->got = tcp_write_all(fd, "R0\n", 3) < 0 ? -errno : tcp_read_all(fd, c->answer, 31);
	close(fd);
	return NULL;
}

/* Waits for the test's main thread to set flag, 10 s at most. */
static void wait_flag(atomic_bool *flag)
{
	for (int i = 0; i < 10000 && !*flag; i++)
		usleep(1000);
}

/* --- a backlog with no room --------------------------------------------------- */

struct plugged_backend {
	atomic_bool accept_now;
	int error;
};

/*
 * Listens with a backlog of one and leaves the probe's connection in it until
 * told to accept (once the relay has connected again): the relay's first SYNs
 * meet a full queue and are dropped, as the held clients of a busybox httpd
 * (backlog 9) are when there are hundreds.
 */
static void *plugged_backend_main(void *arg)
{
	struct plugged_backend *b = arg;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(SERVICE_PORT)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 0) < 0) {
		b->error = -errno;
		goto out;
	}
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	if (poll(&pfd, 1, 10000) != 1) {
		b->error = -ETIMEDOUT;
		goto out;
	}
	wait_flag(&b->accept_now);
	int fd = accept_client(lfd);
	if (fd < 0) {
		b->error = fd;
		goto out;
	}
	b->error = answer_request(fd);
	close(fd);
out:
	if (lfd >= 0)
		close(lfd);
	return NULL;
}

static bool relay_connected_again(void *arg)
{
	return counters(arg).relay_connect_retries >= 1;
}

TEST(test_relay_connects_again_when_a_full_backlog_drops_its_syn)
{
	struct fixture *f = fixture_new(10000, true);
	struct plugged_backend b = {0};
	struct client c = {0};
	struct thread bt, ct;
	thread_start(&bt, plugged_backend_main, &b);
	thread_start(&ct, client_main, &c);
	/* Counted only when the relay starts a connect again itself: the
	 * kernel's own SYN retransmissions (1 s, 3 s, 7 s) do not count. */
	evloop_run_until(f->base, relay_connected_again, f, 5000,
			 "the relay to connect again to the full backlog");
	ASSERT_EQ_U(counters(f).relay_connect_failed, 0);
	b.accept_now = true;
	thread_finish(f, &ct, 15000, "the client to get its answer");
	thread_finish(f, &bt, 5000, "the backend to finish");

	ASSERT_EQ_U(b.error, 0);
	ASSERT_EQ_U(c.got, 3);
	ASSERT_STREQ(c.answer, "A0\n");
	struct activator_counters k = counters(f);
	ASSERT_GE_U(k.relay_connect_retries, 1);
	ASSERT_EQ_U(k.relay_connect_failed, 0);
}

/* --- a client waiting for its answer ------------------------------------------ */

struct slow_backend {
	atomic_bool answer_now, close_now;
	int error;
};

/* Answers only when told to, and closes only when told to. */
static void *slow_backend_main(void *arg)
{
	struct slow_backend *b = arg;
	int lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	if (lfd < 0) {
		b->error = lfd;
		return NULL;
	}
	int fd = accept_client(lfd);
	close(lfd);
	if (fd < 0) {
		b->error = fd;
		return NULL;
	}
	wait_flag(&b->answer_now);
	b->error = answer_request(fd);
	wait_flag(&b->close_now);
	close(fd);
	return NULL;
}

struct waiting_check {
	struct fixture *f;
	size_t want_waiting;
};

static bool relay_waiting_is(void *arg)
{
	struct waiting_check *w = arg;
	return counters(w->f).relayed_now == 1 &&
	       activator_service_waiting(w->f->act, SERVICE_ID) == w->want_waiting;
}

static bool relay_gone(void *arg)
{
	return counters(arg).relayed_now == 0;
}

TEST(test_relayed_client_waits_on_the_service_until_it_answers)
{
	struct fixture *f = fixture_new(10000, true);
	struct slow_backend b = {0};
	struct client c = {0};
	struct thread bt, ct;
	thread_start(&bt, slow_backend_main, &b);
	thread_start(&ct, client_main, &c);

	struct waiting_check w = {.f = f, .want_waiting = 1};
	evloop_run_until(f->base, relay_waiting_is, &w, 10000,
			 "the relayed request to wait for its answer");
	ASSERT_EQ_U(activator_service_waiting(f->act, SERVICE_ID + 1), 0);
	b.answer_now = true;
	w.want_waiting = 0;
	evloop_run_until(f->base, relay_waiting_is, &w, 10000,
			 "the answered client to wait no more, its connection open");
	b.close_now = true;
	thread_finish(f, &ct, 10000, "the client to get its answer");
	thread_finish(f, &bt, 5000, "the backend to finish");

	ASSERT_EQ_U(b.error, 0);
	ASSERT_STREQ(c.answer, "A0\n");
	/* Both closed: the loop sees both FINs and ends the relay. */
	evloop_run_until(f->base, relay_gone, f, 10000, "the relay to end once both sides closed");
	ASSERT_EQ_U(activator_service_waiting(f->act, SERVICE_ID), 0);
}
