// SPDX-License-Identifier: MIT
/*
 * dozed is never an open proxy. The test's namespace is the host, with our
 * nft table and the activator (tests/lib/activator_fixture.h); two more
 * namespaces, A and B, are networks it routes between, with a forward rule
 * dropping A → B. A connection from A to B's address on a sleeping port
 * must go the routed way (and be dropped), never to the activator, which
 * would wake the service and relay it from the host, past the filter.
 *
 * And the second wall alone: a rule of the test's own redirects a
 * connection for another host to the activator; the activator resets it,
 * relays nothing, counts it, and wakes nothing.
 */
#include <arpa/inet.h>
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

#define FW_TABLE     "dozedtestfw"
#define BYPASS_TABLE "dozedtestbypass"

/* --- namespaces ------------------------------------------------------------- */

/* A new namespace with lo up, joined to this one by veth here_dev <-> its
 * dzpeer; here_cidr/here6 on this side, peer_cidr/peer6 there, with default
 * routes there through here_gw/here6_gw. Its fd, closed when the test ends. */
struct link_spec {
	const char *here_dev, *here_cidr, *here6, *peer_cidr, *peer6, *gw, *gw6;
};

static int netns_routed_new(const struct link_spec *l)
{
	int peer;
	if (netns_new_veth_peer(l->here_dev, "dzpeer", &peer) < 0)
		FAIL("cannot make a namespace joined by a veth pair: ip(8) is needed");
	test_defer_close(peer);
	const char *addr_here[] = {"ip", "addr", "add", l->here_cidr, "dev", l->here_dev, NULL};
	const char *addr6_here[] = {"ip",  "-6",	"addr",	 "add", l->here6,
				    "dev", l->here_dev, "nodad", NULL};
	const char *addr_peer[] = {"ip", "addr", "add", l->peer_cidr, "dev", "dzpeer", NULL};
	const char *addr6_peer[] = {"ip",  "-6",     "addr",  "add", l->peer6,
				    "dev", "dzpeer", "nodad", NULL};
	const char *route[] = {"ip", "route", "add", "default", "via", l->gw, NULL};
	const char *route6[] = {"ip", "-6", "route", "add", "default", "via", l->gw6, NULL};
	cmd_run_ok(-1, addr_here);
	cmd_run_ok(-1, addr6_here);
	cmd_run_ok(peer, addr_peer);
	cmd_run_ok(peer, addr6_peer);
	cmd_run_ok(peer, route);
	cmd_run_ok(peer, route6);
	return peer;
}

static void sysctl_set(const char *path, const char *value)
{
	/* /proc/sys/net is the opener's namespace: the test's own. */
	FILE *f = fopen(path, "w");
	if (!f || fputs(value, f) < 0 || fclose(f) != 0)
		FAIL("cannot write %s", path);
}

struct routed {
	struct fixture *f;
	int a, b; /* namespaces */
	int b_listener, b_listener6;
};

#define A_ADDR	"10.213.1.2"
#define A_GW	"10.213.1.1"
#define B_ADDR	"10.213.2.2"
#define A6_ADDR "fd00:213:1::2"
#define A6_GW	"fd00:213:1::1"
#define B6_ADDR "fd00:213:2::2"

/* B listens on SERVICE_PORT: it is the far side's own service. */
static int listen_in(int ns_fd, const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr(addr, SERVICE_PORT, &sa, &len));
	int fd = netns_socket(ns_fd, sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	test_defer_close(fd);
	ASSERT_TRUE(bind(fd, (struct sockaddr *)&sa, len) == 0 && listen(fd, 16) == 0);
	return fd;
}

static void routed_setup(struct routed *r)
{
	r->f = fixture_new(10000, true);
	const struct link_spec la = {
	    "dza", "10.213.1.1/24", "fd00:213:1::1/64", A_ADDR "/24", A6_ADDR "/64", A_GW, A6_GW};
	const struct link_spec lb = {"dzb",	     "10.213.2.1/24", "fd00:213:2::1/64",
				     B_ADDR "/24",   B6_ADDR "/64",   "10.213.2.1",
				     "fd00:213:2::1"};
	r->a = netns_routed_new(&la);
	r->b = netns_routed_new(&lb);
	sysctl_set("/proc/sys/net/ipv4/ip_forward", "1");
	sysctl_set("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	const char *fw[] = {"nft",
			    "add table inet " FW_TABLE "; "
			    "add chain inet " FW_TABLE
			    " forward { type filter hook forward priority 0; policy accept; }; "
			    "add rule inet " FW_TABLE
			    " forward iifname dza oifname dzb counter drop",
			    NULL};
	cmd_run_ok(-1, fw);
	r->b_listener = listen_in(r->b, B_ADDR);
	r->b_listener6 = listen_in(r->b, B6_ADDR);
}

/* Packets the forward rule dropped, from `nft list chain`. */
static unsigned long forward_drops(void)
{
	const char *argv[] = {"nft", "list", "chain", "inet", FW_TABLE, "forward", NULL};
	_cleanup_free_ char *out = NULL;
	if (run_cmd(-1, argv, &out) != 0 || !out)
		FAIL("nft list chain inet " FW_TABLE " forward failed");
	const char *p = strstr(out, "counter packets ");
	unsigned long n = 0;
	if (!p || sscanf(p, "counter packets %lu", &n) != 1)
		FAIL("no counter in the forward chain: %s", out);
	return n;
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

/* Either way the SYN went: dropped by the forward rule, or taken by the activator. */
static bool syn_went_somewhere(void *arg)
{
	struct routed *r = arg;
	return counters(r->f).accepted > 0 || forward_drops() > 0;
}

static void assert_routed_connection_is_not_taken(bool v6)
{
	struct routed r;
	routed_setup(&r);
	(void)connect_from_ns(r.a, v6 ? B6_ADDR : B_ADDR, SERVICE_PORT);
	evloop_run_until(r.f->base, syn_went_somewhere, &r, 10000,
			 "the SYN from A to be dropped by the forward rule or reach the activator");
	struct activator_counters k = counters(r.f);
	ASSERT_EQ_U(k.accepted, 0);
	ASSERT_GE_U(forward_drops(), 1);
	ASSERT_EQ_U(r.f->wakes_requested, 0);
	ASSERT_EQ_U(k.probe_attempts, 0);
	/* The far side never saw a connection, from A or from the host. */
	int far = v6 ? r.b_listener6 : r.b_listener;
	ASSERT_TRUE(accept4(far, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EAGAIN);
}

TEST(test_routed_connection_to_another_hosts_address_on_a_sleeping_port_is_not_taken)
{
	assert_routed_connection_is_not_taken(false);
}

TEST(test_routed_ipv6_connection_to_another_hosts_address_on_a_sleeping_port_is_not_taken)
{
	assert_routed_connection_is_not_taken(true);
}

static bool one_held(void *arg)
{
	return counters(arg).held_now >= 1;
}

static bool three_held(void *arg)
{
	return counters(arg).held_now >= 3;
}

TEST(test_routed_connection_to_this_hosts_own_address_is_still_redirected)
{
	struct routed r;
	routed_setup(&r);
	r.f->start_on_wake = false;
	/* From A, to the host's address on A's side and on B's: both local. */
	(void)connect_from_ns(r.a, A_GW, SERVICE_PORT);
	evloop_run_until(r.f->base, one_held, r.f, 10000, "the client to be held");
	(void)connect_from_ns(r.a, "10.213.2.1", SERVICE_PORT);
	(void)connect_from_ns(r.a, A6_GW, SERVICE_PORT);
	evloop_run_until(r.f->base, three_held, r.f, 10000, "three clients to be held");
	ASSERT_EQ_U(r.f->wakes_requested, 1);
	ASSERT_EQ_U(counters(r.f).rejected_not_local, 0);
	ASSERT_EQ_U(forward_drops(), 0);
}

/* --- the second wall alone ---------------------------------------------------- */

#define FAR_ADDR  "10.214.0.2"
#define FAR6_ADDR "fd00:214::2"

struct bypass {
	struct fixture *f;
	int far;
	int far_listener, far_listener6;
};

/*
 * Beside our table, one that redirects connections for FAR_ADDR (a peer
 * namespace's address, not ours) to the activator, as a stray or hostile
 * rule could: only the activator's own check stands in the way.
 */
static void bypass_setup(struct bypass *b, bool dual_stack)
{
	b->f = fixture_new(10000, true);
	if (dual_stack)
		fixture_listen_dual_stack(b->f);
	ASSERT_OK(netns_add_peer("10.214.0.1/24", FAR_ADDR "/24", &b->far));
	test_defer_close(b->far);
	const char *addr6_here[] = {"ip",  "-6",   "addr",  "add", "fd00:214::1/64",
				    "dev", "dzv0", "nodad", NULL};
	const char *addr6_far[] = {"ip",  "-6",	  "addr",  "add", FAR6_ADDR "/64",
				   "dev", "dzv1", "nodad", NULL};
	cmd_run_ok(-1, addr6_here);
	cmd_run_ok(b->far, addr6_far);
	char rules[512];
	snprintf(rules, sizeof(rules),
		 "add table inet " BYPASS_TABLE "; "
		 "add chain inet " BYPASS_TABLE " output { type nat hook output priority -110; }; "
		 "add rule inet " BYPASS_TABLE " output meta mark != %d ip daddr " FAR_ADDR
		 " tcp dport %d redirect to :%d; "
		 "add rule inet " BYPASS_TABLE " output meta mark != %d ip6 daddr " FAR6_ADDR
		 " tcp dport %d redirect to :%d",
		 MARK, SERVICE_PORT, ACTIVATOR_PORT, MARK, SERVICE_PORT, ACTIVATOR_PORT);
	const char *nft[] = {"nft", rules, NULL};
	cmd_run_ok(-1, nft);
	b->far_listener = listen_in(b->far, FAR_ADDR);
	b->far_listener6 = listen_in(b->far, FAR6_ADDR);
}

/* The activator made up its mind: reset the client, or held it (or woke its service). */
static bool activator_decided(void *arg)
{
	struct fixture *f = arg;
	struct activator_counters c = counters(f);
	return c.rejected_not_local + c.rejected_unrouted + c.held_now + c.relayed_total > 0 ||
	       f->wakes_requested > 0;
}

static void assert_second_wall_resets(const char *far_addr, bool dual_stack)
{
	struct bypass b;
	bypass_setup(&b, dual_stack);
	int fd = tcp_connect(far_addr, SERVICE_PORT, 0);
	ASSERT_TRUE(fd >= 0); /* the activator's listener completed the handshake */
	evloop_run_until(b.f->base, activator_decided, b.f, 5000,
			 "the activator to take the connection for another host");
	ASSERT_EQ_U(b.f->wakes_requested, 0);
	char c;
	ASSERT_TRUE(read(fd, &c, 1) < 0 && errno == ECONNRESET);
	close(fd);
	struct activator_counters k = counters(b.f);
	ASSERT_EQ_U(k.accepted, 1);
	ASSERT_EQ_U(k.rejected_not_local, 1);
	ASSERT_EQ_U(k.held_now, 0);
	ASSERT_EQ_U(k.probe_attempts, 0);
	ASSERT_EQ_U(k.relayed_total, 0);
	ASSERT_EQ_U(b.f->wakes_requested, 0);
	/* Nothing reached the far side. */
	int far = strchr(far_addr, ':') ? b.far_listener6 : b.far_listener;
	ASSERT_TRUE(accept4(far, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EAGAIN);
}

TEST(test_activator_resets_a_redirected_connection_for_another_hosts_address)
{
	assert_second_wall_resets(FAR_ADDR, false);
}

TEST(test_activator_resets_a_redirected_ipv6_connection_for_another_hosts_address)
{
	assert_second_wall_resets(FAR6_ADDR, false);
}

TEST(test_activator_on_a_dual_stack_socket_resets_an_ipv4_connection_for_another_host)
{
	assert_second_wall_resets(FAR_ADDR, true);
}

TEST(test_activator_on_a_dual_stack_socket_holds_ipv4_and_ipv6_clients_of_this_host)
{
	struct bypass b;
	bypass_setup(&b, true);
	b.f->start_on_wake = false;
	/* Local destinations, redirected by our table; IPv4 ones arrive v4-mapped. */
	int fd4 = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	int fd6 = tcp_connect("::1", SERVICE_PORT, 0);
	int fd_far = tcp_connect("10.214.0.1", SERVICE_PORT, 0);
	ASSERT_TRUE(fd4 >= 0 && fd6 >= 0 && fd_far >= 0);
	evloop_run_until(b.f->base, three_held, b.f, 5000, "three local clients to be held");
	ASSERT_EQ_U(counters(b.f).rejected_not_local, 0);
	close(fd4);
	close(fd6);
	close(fd_far);
}
