// SPDX-License-Identifier: MIT
/*
 * Light sleep's wake hook on the real kernel, between a test cgroup and a
 * peer namespace (flows_net.h): what wakes a frozen cgroup (a connect, a
 * payload, a UDP datagram), what does not (a connect-only check with
 * wake_on_data, a peer's keepalive, a ping, a DNS answer, an ignored port,
 * anything after a disarm, another cgroup), one record per arming, a wake a
 * full ring could not take, and a frozen container's own traffic in the
 * totals only. Nothing is really frozen: the hook only reads the cgroup's
 * config, so the test's sockets answer as a frozen container's kernel
 * would.
 *
 * A packet's record is written before the packet reaches its socket: once a
 * packet was seen arriving (read, or in the totals), a record it made waits
 * in the ring, and none is none.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "flows_net.h"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

#define WAKES_MAX 8

struct wakes {
	size_t n;
	struct flow_wake w[WAKES_MAX];
	size_t syn_seen; /* reports of a SYN that does not wake (wake_on_data) */
};

static void wake_collect(const struct flow_wake *w, void *userdata)
{
	struct wakes *ws = userdata;
	if (w->syn_seen) {
		ws->syn_seen++;
		return;
	}
	if (ws->n < WAKES_MAX)
		ws->w[ws->n] = *w;
	ws->n++;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The records waiting now, without waiting. */
static struct wakes wakes_now(const struct net *n)
{
	struct wakes ws = {0};
	int r = flow_counter_wake_consume(n->c, wake_collect, &ws);
	ASSERT_TRUE(r >= 0);
	ASSERT_EQ_U((size_t)r, ws.n + ws.syn_seen);
	return ws;
}

/* The wake fd becomes readable within 5 s, and the records then. */
static struct wakes wakes_wait(const struct net *n)
{
	struct pollfd p = {.fd = flow_counter_wake_fd(n->c), .events = POLLIN};
	ASSERT_TRUE(p.fd >= 0);
	int r;
	do
		r = poll(&p, 1, 5000);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		FAIL("no wake within 5 s");
	ASSERT_TRUE(r == 1);
	struct wakes ws = wakes_now(n);
	ASSERT_TRUE(ws.n >= 1);
	return ws;
}

/* The one record of an arming: two CPUs may race to report it (the
 * daemon keeps the first), never for different packets of a test that sends
 * one waking packet. */
static void assert_wake(const struct net *n, const struct flow_wake *w, uint8_t proto,
			uint16_t local_port, uint16_t peer_port, uint32_t payload, uint64_t since)
{
	ASSERT_EQ_U(w->cgroup_id, flow_attachment_cgroup_id(n->a));
	ASSERT_EQ_U(w->proto, proto);
	ASSERT_EQ_U(w->local_port, local_port);
	ASSERT_EQ_U(w->peer.ss_family, AF_INET);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->peer;
	char text[INET_ADDRSTRLEN] = "";
	inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
	ASSERT_STREQ(text, PEER);
	ASSERT_EQ_U(ntohs(sin->sin_port), peer_port);
	ASSERT_EQ_U(w->payload, payload);
	ASSERT_TRUE(w->at_ns >= since && w->at_ns <= mono_ns());
}

static void arm(const struct net *n, bool wake_on_data)
{
	ASSERT_OK(flow_counter_set_frozen(n->c, n->a, true, wake_on_data));
}

static int tcp_listener(const struct net *n, unsigned short *port)
{
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	*port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	return lfd;
}

/* A peer's connection to a new container listener, its first len bytes of
 * fill read by the container: the peer's socket, the container's in *cfd. */
static int connection_open(const struct net *n, int *cfd, size_t len, char fill)
{
	unsigned short port;
	int lfd = tcp_listener(n, &port);
	int pfd = peer_connects(n, lfd, port, cfd);
	test_defer_close(*cfd);
	write_all(pfd, len, fill);
	read_exactly(*cfd, len, fill);
	return pfd;
}

/* The peer's len bytes of fill on the connection to port wake the armed
 * cgroup (one record, naming them) and reach the container. */
static void assert_payload_wakes(const struct net *n, unsigned short port, int pfd, int cfd,
				 size_t len, char fill)
{
	uint64_t since = mono_ns();
	write_all(pfd, len, fill);
	struct wakes ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_TCP, port, local_port_of(pfd), (uint32_t)len, since);
	read_exactly(cfd, len, fill);
}

TEST(test_a_connect_wakes_a_frozen_cgroup_once)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int lfd = tcp_listener(n, &port);
	arm(n, false);
	uint64_t since = mono_ns();
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);

	struct wakes ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_TCP, port, local_port_of(pfd), 0, since);
	ASSERT_EQ_U(ws.n, 1);

	/* Its request is no second wake: one per arming. */
	write_all(pfd, 100, 'r');
	read_exactly(cfd, 100, 'r');
	ASSERT_EQ_U(wakes_now(n).n, 0);
	/* The request counts as activity, as awake. */
	ASSERT_TRUE(totals(n).counted_bytes > 0);
}

TEST(test_with_wake_on_data_a_connect_only_check_does_not_wake_and_its_payload_does)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int lfd = tcp_listener(n, &port);
	arm(n, true);
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	/* The peer's SYN and its ACK came in (accept returned). */
	ASSERT_GE_U(totals(n).ingress_packets, 2);
	struct wakes connect = wakes_now(n);
	ASSERT_EQ_U(connect.n, 0);
	/* Reported, not as a wake: for a look at the listener's backlog. */
	ASSERT_EQ_U(connect.syn_seen, 1);
	/* Neither the SYN nor the ACK counted as its use. */
	ASSERT_EQ_U(totals(n).counted_packets, 0);

	assert_payload_wakes(n, port, pfd, cfd, 5, 'd');
}

TEST(test_a_peers_keepalive_on_an_open_connection_does_not_wake)
{
	struct net *n = net_setup(0);
	int cfd;
	int pfd = connection_open(n, &cfd, 10, 'k');
	write_all(cfd, 10, 'K');
	read_exactly(pfd, 10, 'K');

	arm(n, false); /* the strictest: a connect would wake it */
	struct flow_totals before = totals(n);
	int one = 1, sec = 1;
	ASSERT_OK(setsockopt(pfd, IPPROTO_TCP, TCP_KEEPIDLE, &sec, sizeof(sec)));
	ASSERT_OK(setsockopt(pfd, IPPROTO_TCP, TCP_KEEPINTVL, &sec, sizeof(sec)));
	ASSERT_OK(setsockopt(pfd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));

	/* A keepalive (a segment just before rcv_nxt) came in and the
	 * container's kernel answered it: after the exchange above the
	 * container owes no ACK (its 'K' carried it), so only a probe makes
	 * it send. */
	struct flow_totals t;
	WAIT_UNTIL((t = totals(n)).ingress_packets > before.ingress_packets &&
		   t.egress_packets > before.egress_packets);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	ASSERT_OK(getsockopt(pfd, IPPROTO_TCP, TCP_INFO, &ti, &len));
	ASSERT_EQ_U(ti.tcpi_state, TCP_ESTABLISHED);
	ASSERT_EQ_U(wakes_now(n).n, 0);
	ASSERT_EQ_U(t.counted_bytes, before.counted_bytes);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets);
}

/* An ICMP socket of the peer's namespace (netns_socket takes no protocol). */
static int peer_raw_icmp(const struct net *n)
{
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(here >= 0);
	ASSERT_OK(setns(n->peer, CLONE_NEWNET));
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	int err = errno;
	if (setns(here, CLONE_NEWNET) < 0)
		abort(); /* in the wrong namespace the test would lie */
	close(here);
	if (fd < 0)
		FAIL("raw ICMP socket in the peer: %s", strerror(err));
	test_defer_close(fd);
	return fd;
}

TEST(test_a_ping_a_dns_answer_and_an_ignored_port_do_not_wake)
{
	struct net *n = net_setup(0);
	/* A metrics scrape on 9100, ignored; the rules set before the arming
	 * and again after it: neither undoes the other. */
	struct flow_rule scrape = {.proto = IPPROTO_TCP, .port = 9100};
	set_rules(n, &scrape, 1);
	arm(n, false);
	set_rules(n, &scrape, 1);

	/* The peer pings the container; its kernel answers. */
	int icmp = peer_raw_icmp(n);
	echo_request_send(icmp, HERE, 0x4321);
	echo_reply_wait(icmp);
	/* No socket of the container takes a ping: the hook never saw it. A
	 * container's own ping socket takes the answers to its pings. */
	int mine = container_socket(n, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	echo_request_send(mine, PEER, 0x4321);
	echo_reply_wait(mine);

	/* The container's lookup, sent before the freeze, answered in it. */
	int dns = udp_peer(n, 53);
	int q = container_socket(n, AF_INET, SOCK_DGRAM, 0);
	udp_send(q, PEER, 53, 30);
	struct sockaddr_in from;
	ASSERT_EQ_U(udp_recv(dns, &from), 30);
	ASSERT_EQ_U(sendto(dns, "answer", 6, 0, (struct sockaddr *)&from, sizeof(from)), 6);
	ASSERT_EQ_U(udp_recv(q, &from), 6);

	/* A scrape of the ignored port: connect and payload. */
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 9100);
	listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(n, lfd, 9100, &cfd);
	test_defer_close(cfd);
	write_all(pfd, 50, 's');
	read_exactly(cfd, 50, 's');

	struct flow_totals t = totals(n);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_ICMP].packets, 1);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_DNS].packets, 1);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_RULE].packets, 3);
	ASSERT_EQ_U(wakes_now(n).n, 0);
	ASSERT_EQ_U(t.counted_packets, 0);

	/* Still armed: a connect to another port wakes it. */
	unsigned short port;
	int other = tcp_listener(n, &port);
	uint64_t since = mono_ns();
	int cfd2;
	int pfd2 = peer_connects(n, other, port, &cfd2);
	test_defer_close(cfd2);
	struct wakes ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_TCP, port, local_port_of(pfd2), 0, since);

	/* New rules do not arm it again: the wake was sent. */
	set_rules(n, &scrape, 1);
	int cfd3;
	peer_connects(n, other, port, &cfd3);
	test_defer_close(cfd3);
	ASSERT_EQ_U(wakes_now(n).n, 0);
}

TEST(test_a_udp_datagram_wakes_with_wake_on_data_only_with_payload)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int srv = udp_server(n, &port);
	int peer = udp_peer(n, 4000);
	arm(n, true);

	/* An empty datagram is no data. */
	udp_send(peer, HERE, port, 0);
	struct sockaddr_in from;
	ASSERT_EQ_U(udp_recv(srv, &from), 0);
	ASSERT_EQ_U(wakes_now(n).n, 0);

	uint64_t since = mono_ns();
	udp_send(peer, HERE, port, 48);
	struct wakes ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_UDP, port, 4000, 48, since);
	ASSERT_EQ_U(udp_recv(srv, &from), 48);

	/* Without wake_on_data any datagram wakes it, an empty one too. */
	arm(n, false);
	since = mono_ns();
	udp_send(peer, HERE, port, 0);
	ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_UDP, port, 4000, 0, since);
	ASSERT_EQ_U(udp_recv(srv, &from), 0);
}

TEST(test_after_a_disarm_nothing_wakes_and_an_arming_again_reports_again)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int lfd = tcp_listener(n, &port);
	arm(n, false);
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	ASSERT_EQ_U(wakes_wait(n).n, 1);

	ASSERT_OK(flow_counter_set_frozen(n->c, n->a, false, false));
	int cfd2;
	int pfd2 = peer_connects(n, lfd, port, &cfd2);
	test_defer_close(cfd2);
	write_all(pfd2, 20, 'a');
	read_exactly(cfd2, 20, 'a');
	ASSERT_EQ_U(wakes_now(n).n, 0);
	struct flow_totals t = totals(n);
	ASSERT_TRUE(t.counted_bytes > 0); /* awake: it counts */

	/* Armed again (data only): the next payload on the open connection. */
	arm(n, true);
	assert_payload_wakes(n, port, pfd, cfd, 7, 'b');
}

TEST(test_a_frozen_containers_own_traffic_is_in_the_totals_only)
{
	struct net *n = net_setup(0);
	int cfd;
	int pfd = connection_open(n, &cfd, 10, 'x');

	arm(n, false);
	struct flow_totals before = totals(n);
	/* What it sends while frozen (a retransmit, a descendant still
	 * running), and the peer's ACKs of it. */
	write_all(cfd, 3000, 'y');
	read_exactly(pfd, 3000, 'y');
	struct flow_totals t;
	WAIT_UNTIL((t = totals(n)).ingress_packets > before.ingress_packets);
	ASSERT_GE_U(t.egress_bytes - before.egress_bytes, 3000);
	ASSERT_GE_U(t.egress_packets - before.egress_packets, 1);
	ASSERT_EQ_U(t.counted_bytes, before.counted_bytes);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets);
	ASSERT_EQ_U(t.counted_last_ns, before.counted_last_ns);
	ASSERT_EQ_U(wakes_now(n).n, 0);

	/* Awake again, the same counts. */
	ASSERT_OK(flow_counter_set_frozen(n->c, n->a, false, false));
	write_all(cfd, 100, 'z');
	read_exactly(pfd, 100, 'z');
	t = totals(n);
	ASSERT_TRUE(t.counted_bytes > before.counted_bytes);
}

static void detach_one(void *a)
{
	flow_counter_detach(a);
}

TEST(test_only_the_armed_cgroup_wakes_and_its_record_names_it)
{
	struct net *n = net_setup(0);
	char *other = testcg_create("other");
	test_defer(free, other);
	struct flow_attachment *b;
	ASSERT_OK(flow_counter_attach(n->c, other, &b));
	test_defer(detach_one, b);
	unsigned short port;
	int lfd = tcp_listener(n, &port);
	int olfd = socket_in(other, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short oport = listen_on(olfd, (struct sockaddr *)&sa, sizeof(sa));
	arm(n, false);

	/* The other container is awake: its connect is its activity only. */
	int ocfd;
	int opfd = peer_connects(n, olfd, oport, &ocfd);
	test_defer_close(ocfd);
	write_all(opfd, 10, 'o');
	read_exactly(ocfd, 10, 'o');
	ASSERT_EQ_U(wakes_now(n).n, 0);

	uint64_t since = mono_ns();
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	struct wakes ws = wakes_wait(n);
	assert_wake(n, &ws.w[0], IPPROTO_TCP, port, local_port_of(pfd), 0, since);
	ASSERT_TRUE(ws.w[0].cgroup_id != flow_attachment_cgroup_id(b));
}

TEST(test_arming_a_cgroup_that_is_gone_is_enoent)
{
	struct net *n = net_setup(0);
	char *gone = testcg_create("gone");
	test_defer(free, gone);
	struct flow_attachment *b;
	ASSERT_OK(flow_counter_attach(n->c, gone, &b));
	test_defer(detach_one, b);
	/* The container stopped: its runtime removes its cgroup (the kernel
	 * frees its storage a little later). */
	ASSERT_OK(rmdir(gone));
	uint64_t deadline = test_now_ms() + 5000;
	int r;
	while ((r = flow_counter_set_frozen(n->c, b, true, false)) == 0 && test_now_ms() < deadline)
		usleep(1000);
	ASSERT_ERR(r, ENOENT);
	ASSERT_ERR(flow_counter_set_frozen(n->c, b, false, false), ENOENT);
	/* The others' hooks are not touched. */
	arm(n, true);
	ASSERT_EQ_U(wakes_now(n).n, 0);
}

TEST(test_a_wake_the_full_ring_could_not_take_is_sent_with_the_next_packet)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int srv = udp_server(n, &port);
	int peer = udp_peer(n, 4001);
	/* More wakes than the ring holds (FLOWS_WAKE_RING_BYTES), none read:
	 * a daemon stuck while a thousand frozen services are woken. */
	const size_t sent = FLOWS_WAKE_RING_BYTES / sizeof(struct flows_wake) + 100;
	struct sockaddr_in from;
	for (size_t i = 0; i < sent; i++) {
		arm(n, false);
		udp_send(peer, HERE, port, 1);
		ASSERT_EQ_U(udp_recv(srv, &from), 1);
	}
	struct wakes ws = wakes_now(n);
	ASSERT_TRUE(ws.n < sent);
	ASSERT_GE_U(ws.n, FLOWS_WAKE_RING_BYTES / (sizeof(struct flows_wake) + 8));
	/* The last arming's wake was lost: it is still armed. */
	uint64_t since = mono_ns();
	udp_send(peer, HERE, port, 2);
	ws = wakes_wait(n);
	ASSERT_EQ_U(ws.n, 1);
	assert_wake(n, &ws.w[0], IPPROTO_UDP, port, 4001, 2, since);
	ASSERT_EQ_U(udp_recv(srv, &from), 2);
}

TEST(test_an_ipv6_connect_wakes_with_its_v6_peer)
{
	struct net *n = net_setup(0);
	struct sockaddr_in6 sa;
	v6_listener(n, &sa); /* the kernel answers the handshake, no accept */
	unsigned short port = ntohs(sa.sin6_port);
	arm(n, false);
	int pfd = peer_socket(n, AF_INET6, SOCK_STREAM);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));

	struct wakes ws = wakes_wait(n);
	const struct flow_wake *w = &ws.w[0];
	ASSERT_EQ_U(w->proto, IPPROTO_TCP);
	ASSERT_EQ_U(w->local_port, port);
	ASSERT_EQ_U(w->peer.ss_family, AF_INET6);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&w->peer;
	char text[INET6_ADDRSTRLEN] = "";
	inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
	ASSERT_STREQ(text, "fd00:211::2");
	ASSERT_EQ_U(ntohs(sin6->sin6_port), local_port_of(pfd));
}
