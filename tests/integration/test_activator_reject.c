// SPDX-License-Identifier: MIT
/*
 * Connections the activator must never hold or relay, with real redirection
 * (tests/lib/activator_fixture.h): straight to its own port, for a port no
 * service owns; and the resets it sends leave no redirect behind.
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

static bool wake_was_requested(void *arg)
{
	return ((struct fixture *)arg)->wakes_requested >= 1;
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
