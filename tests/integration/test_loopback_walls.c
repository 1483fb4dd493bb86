// SPDX-License-Identifier: MIT
/*
 * A neighbour never reaches a loopback-only service through the activator
 * (CVE-2020-8558), and a held client is never relayed to an address that
 * stopped being ours while it waited. The test's namespace is the host, with
 * our nft table and the activator (tests/lib/activator_fixture.h); namespace
 * A is a neighbour on a veth link that routes 127.0.0.1 to the host (its lo
 * flushed, route_localnet=1 on its side, as an attacker sets it up). The
 * host's service listens on 127.0.0.1:SERVICE_PORT only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "dozed/macro.h"
#include "evloop.h"
#include "harness.h"
#include "netns.h"
#include "activator_fixture.h"
#include "cmd.h"
#include "tcp.h"

#define SEEN_TABLE  "dozedtestseen"
#define ROGUE_TABLE "dozedtestrogue"

/* Namespace A, joined by veth dza (here, 10.213.1.1) <-> dzpeer (there,
 * 10.213.1.2), with 127.0.0.1 routed to the host. Its fd, closed at the end. */
static int neighbour_new(void)
{
	int peer;
	if (netns_new_veth_peer("dza", "dzpeer", &peer) < 0)
		FAIL("cannot make a namespace joined by a veth pair: ip(8) is needed");
	test_defer_close(peer);
	const char *addr_here[] = {"ip", "addr", "add", "10.213.1.1/24", "dev", "dza", NULL};
	const char *addr_peer[] = {"ip", "addr", "add", "10.213.1.2/24", "dev", "dzpeer", NULL};
	const char *lo_flush[] = {"ip", "addr", "flush", "dev", "lo", NULL};
	const char *localnet_all[] = {"sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", NULL};
	const char *localnet[] = {"sysctl", "-qw", "net.ipv4.conf.dzpeer.route_localnet=1", NULL};
	const char *route[] = {"ip",  "route",	"add", "127.0.0.1/32", "via", "10.213.1.1",
			       "dev", "dzpeer", NULL};
	cmd_run_ok(-1, addr_here);
	cmd_run_ok(peer, addr_peer);
	cmd_run_ok(peer, lo_flush);
	cmd_run_ok(peer, localnet_all);
	cmd_run_ok(peer, localnet);
	cmd_run_ok(peer, route);
	return peer;
}

/* A non-blocking connect from namespace ns_fd to addr:port, under way. */
static int connect_from_ns(int ns_fd, const char *addr, uint16_t port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr(addr, port, &sa, &len));
	int fd = netns_socket(ns_fd, sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	test_defer_close(fd);
	ASSERT_TRUE(connect(fd, (struct sockaddr *)&sa, len) == 0 || errno == EINPROGRESS);
	return fd;
}

/* The service, on loopback only; nonblocking, so "nobody came" is EAGAIN. */
static int loopback_service_new(void)
{
	int fd = tcp_listen("127.0.0.1", SERVICE_PORT);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	test_defer_close(fd);
	return fd;
}

/* Packets counted by the one counter of a test table's chain. */
static unsigned long chain_counter(const char *table, const char *chain)
{
	const char *argv[] = {"nft", "list", "chain", "inet", table, chain, NULL};
	_cleanup_free_ char *out = NULL;
	if (run_cmd(-1, argv, &out) != 0 || !out)
		FAIL("nft list chain inet %s %s failed", table, chain);
	const char *p = strstr(out, "counter packets ");
	unsigned long n = 0;
	if (!p || sscanf(p, "counter packets %lu", &n) != 1)
		FAIL("no counter in chain %s: %s", chain, out);
	return n;
}

/* SYNs from A for 127.0.0.1:SERVICE_PORT, counted before any NAT. */
static void count_syns_from_a(void)
{
	char rules[512];
	snprintf(rules, sizeof(rules),
		 "add table inet " SEEN_TABLE "; "
		 "add chain inet " SEEN_TABLE
		 " pre { type filter hook prerouting priority -300; policy accept; }; "
		 "add rule inet " SEEN_TABLE " pre iifname dza ip daddr 127.0.0.1 tcp dport %d "
		 "tcp flags syn counter",
		 SERVICE_PORT);
	const char *nft[] = {"nft", rules, NULL};
	cmd_run_ok(-1, nft);
}

/* The activator took it, or A's SYN went unanswered and was sent again:
 * by then the first one went every way it could. */
static bool syn_taken_or_resent(void *arg)
{
	struct fixture *f = arg;
	return counters(f).accepted > 0 || chain_counter(SEEN_TABLE, "pre") >= 2;
}

TEST(test_neighbour_routing_127_0_0_1_here_is_not_redirected_to_the_activator)
{
	struct fixture *f = fixture_new(10000, true);
	int a = neighbour_new();
	int service = loopback_service_new();
	count_syns_from_a();
	(void)connect_from_ns(a, "127.0.0.1", SERVICE_PORT);
	evloop_run_until(f->base, syn_taken_or_resent, f, 10000,
			 "A's SYN for 127.0.0.1 to reach the activator or be sent again");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.accepted, 0);
	ASSERT_EQ_U(f->wakes_requested, 0);
	/* Dropped as a martian, as with the port awake: the service saw nothing. */
	ASSERT_TRUE(accept4(service, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EAGAIN);
}

static bool activator_decided(void *arg)
{
	struct fixture *f = arg;
	struct activator_counters c = counters(f);
	return c.rejected_not_local + c.rejected_unrouted + c.held_now + c.relayed_total > 0 ||
	       f->wakes_requested > 0;
}

TEST(test_activator_resets_a_loopback_destination_redirected_from_another_interface)
{
	/* The second wall alone: a rule of another table (an older dozed's,
	 * anyone's) redirects A's connection for 127.0.0.1 before ours runs. */
	struct fixture *f = fixture_new(10000, true);
	int a = neighbour_new();
	int service = loopback_service_new();
	char rules[512];
	snprintf(rules, sizeof(rules),
		 "add table inet " ROGUE_TABLE "; "
		 "add chain inet " ROGUE_TABLE " pre { type nat hook prerouting priority -120; }; "
		 "add rule inet " ROGUE_TABLE " pre iifname dza ip daddr 127.0.0.1 tcp dport %d "
		 "redirect to :%d",
		 SERVICE_PORT, ACTIVATOR_PORT);
	const char *nft[] = {"nft", rules, NULL};
	cmd_run_ok(-1, nft);
	int fd = connect_from_ns(a, "127.0.0.1", SERVICE_PORT);
	evloop_run_until(f->base, activator_decided, f, 10000,
			 "the activator to take A's connection for 127.0.0.1");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.accepted, 1);
	ASSERT_EQ_U(k.rejected_loopback, 1);
	ASSERT_EQ_U(k.rejected_not_local, 1);
	ASSERT_EQ_U(k.held_now, 0);
	ASSERT_EQ_U(k.relayed_total, 0);
	ASSERT_EQ_U(f->wakes_requested, 0);
	char c;
	ASSERT_TRUE(fcntl(fd, F_SETFL, 0) == 0);
	struct timeval tv = {.tv_sec = 5};
	ASSERT_TRUE(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	ASSERT_TRUE(read(fd, &c, 1) < 0 && errno == ECONNRESET);
	ASSERT_TRUE(accept4(service, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EAGAIN);
}

static bool two_held(void *arg)
{
	return counters(arg).held_now >= 2;
}

TEST(test_local_clients_of_loopback_are_still_held)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false;
	int fd4 = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	int fd6 = tcp_connect("::1", SERVICE_PORT, 0);
	ASSERT_TRUE(fd4 >= 0 && fd6 >= 0);
	test_defer_close(fd4);
	test_defer_close(fd6);
	evloop_run_until(f->base, two_held, f, 5000, "both clients to be held");
	ASSERT_EQ_U(counters(f).rejected_loopback, 0);
	ASSERT_EQ_U(counters(f).rejected_not_local, 0);
}

/* --- the address goes while a client is held ---------------------------------- */

static bool one_held(void *arg)
{
	return counters(arg).held_now >= 1;
}

static bool relayed_or_refused(void *arg)
{
	struct activator_counters c = counters(arg);
	return c.relayed_total + c.rejected_not_local > 0;
}

TEST(test_held_client_is_reset_when_its_destination_is_no_longer_ours_at_the_wake)
{
	struct fixture *f = fixture_new(5000, true);
	f->start_on_wake = false;
	int far;
	ASSERT_OK(netns_add_peer("10.214.0.1/24", "10.214.0.2/24", &far));
	test_defer_close(far);
	/* 10.250.0.1 is ours now, and the far namespace's too; once it goes
	 * from here, it routes there. */
	const char *here_addr[] = {"ip", "addr", "add", "10.250.0.1/32", "dev", "lo", NULL};
	const char *here_route[] = {"ip",  "route",	 "add", "10.250.0.0/24",
				    "via", "10.214.0.2", NULL};
	const char *far_addr[] = {"ip", "addr", "add", "10.250.0.1/32", "dev", "lo", NULL};
	const char *here_del[] = {"ip", "addr", "del", "10.250.0.1/32", "dev", "lo", NULL};
	cmd_run_ok(-1, here_addr);
	cmd_run_ok(-1, here_route);
	cmd_run_ok(far, far_addr);
	struct sockaddr_storage sa;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr("10.250.0.1", SERVICE_PORT, &sa, &len));
	int far_listener = netns_socket(far, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_TRUE(far_listener >= 0);
	test_defer_close(far_listener);
	ASSERT_TRUE(bind(far_listener, (struct sockaddr *)&sa, len) == 0 &&
		    listen(far_listener, 16) == 0);

	/* From 127.0.0.1: the reset must reach it once 10.250.0.1 routes away. */
	int c = tcp_connect_from("127.0.0.1", "10.250.0.1", SERVICE_PORT);
	ASSERT_TRUE(c >= 0);
	test_defer_close(c);
	ASSERT_OK(tcp_write_all(c, "R1\n", 3));
	evloop_run_until(f->base, one_held, f, 5000, "the client to be held");
	cmd_run_ok(-1, here_del); /* a DHCP renewal, a VIP failing over */
	ASSERT_OK(activator_service_starting(f->act, SERVICE_ID, NULL));
	evloop_run_until(f->base, relayed_or_refused, f, 10000,
			 "the held client to be relayed or refused at the wake");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.relayed_total, 0);
	ASSERT_EQ_U(k.rejected_not_local, 1);
	char buf[8];
	ASSERT_TRUE(read(c, buf, sizeof(buf)) < 0 && errno == ECONNRESET);
	/* The far side saw the probe at most, never a byte of the client's. */
	int got;
	while ((got = accept4(far_listener, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct timeval tv = {.tv_sec = 2};
		setsockopt(got, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = read(got, buf, sizeof(buf));
		close(got);
		if (n > 0)
			FAIL("the far side got %zd bytes of the held client's", n);
	}
}
