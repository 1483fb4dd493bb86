// SPDX-License-Identifier: MIT
/*
 * TCP in the flow counter, between a test cgroup and a peer namespace
 * (flows_net.h): who spoke last on a flow, a flow's lookup by its key, and
 * payload the container's socket never takes (a SYN's data, a segment to a
 * listener, an old or duplicate segment), crafted with a raw socket.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "flows_net.h"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

static struct flow_info lookup(const struct net *n, int pfd, unsigned short port)
{
	struct sockaddr_storage peer = {0};
	socklen_t len = sizeof(peer);
	ASSERT_OK(getsockname(pfd, (struct sockaddr *)&peer, &len));
	struct flow_info f;
	ASSERT_OK(flow_counter_lookup(n->c, n->a, IPPROTO_TCP, &peer, port, &f));
	return f;
}

TEST(test_who_spoke_last_is_known_within_one_tick)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	ASSERT_EQ_U(lookup(n, pfd, port).last_payload_dir, -1);

	/* The server's greeting, then the client's query right after: the
	 * same tick, so only the order says who spoke last. */
	write_all(cfd, 20, 'g');
	read_exactly(pfd, 20, 'g');
	write_all(pfd, 30, 'q');
	read_exactly(cfd, 30, 'q');
	ASSERT_EQ_U(lookup(n, pfd, port).last_payload_dir, FLOWS_DIR_IN);
	write_all(cfd, 40, 'a');
	read_exactly(pfd, 40, 'a');
	struct flow_info f = lookup(n, pfd, port);
	ASSERT_EQ_U(f.last_payload_dir, FLOWS_DIR_OUT);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 60);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 30);
	write_all(pfd, 5, 'q');
	read_exactly(cfd, 5, 'q');
	ASSERT_EQ_U(lookup(n, pfd, port).last_payload_dir, FLOWS_DIR_IN);
}

TEST(test_lookup_finds_a_flow_by_its_key_in_every_address_form)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	write_all(pfd, 10, 'x');
	read_exactly(cfd, 10, 'x');
	unsigned short peer_port = local_port_of(pfd);

	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	*sin = sin_of(PEER, peer_port);
	struct flow_info f;
	ASSERT_OK(flow_counter_lookup(n->c, n->a, IPPROTO_TCP, &ss, port, &f));
	ASSERT_TRUE(peer_is(&f, PEER));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 10);
	ASSERT_EQ_U(f.local_port, port);
	/* The same peer as v4-mapped IPv6. */
	struct sockaddr_storage ss6 = {0};
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss6;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(peer_port);
	ASSERT_TRUE(inet_pton(AF_INET6, "::ffff:" PEER, &sin6->sin6_addr) == 1);
	ASSERT_OK(flow_counter_lookup(n->c, n->a, IPPROTO_TCP, &ss6, port, &f));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 10);
	/* A wrong port, a wrong protocol: none. */
	ASSERT_ERR(flow_counter_lookup(n->c, n->a, IPPROTO_TCP, &ss, port + 1, &f), ENOENT);
	sin->sin_port = htons(peer_port + 1);
	ASSERT_ERR(flow_counter_lookup(n->c, n->a, IPPROTO_TCP, &ss, port, &f), ENOENT);
	sin->sin_port = htons(peer_port);
	ASSERT_ERR(flow_counter_lookup(n->c, n->a, IPPROTO_UDP, &ss, port, &f), ENOENT);
}

/* A raw TCP socket of the peer namespace: segments written whole. */
static int peer_raw_tcp(const struct net *n)
{
	int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(here >= 0);
	ASSERT_OK(setns(n->peer, CLONE_NEWNET));
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	int err = errno;
	if (setns(here, CLONE_NEWNET) < 0) {
		perror("returning to the test namespace");
		abort();
	}
	close(here);
	if (fd < 0)
		FAIL("a raw socket in the peer namespace: %s", strerror(err));
	test_defer_close(fd);
	return fd;
}

/* Sends one segment from PEER:sport to HERE:dport with that payload. */
static void send_segment(int raw, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
			 uint8_t flags, const char *data, size_t len)
{
	uint8_t seg[20 + 64] = {0};
	ASSERT_TRUE(len <= 64);
	uint16_t v16 = htons(sport);
	memcpy(seg, &v16, 2);
	v16 = htons(dport);
	memcpy(seg + 2, &v16, 2);
	uint32_t v32 = htonl(seq);
	memcpy(seg + 4, &v32, 4);
	v32 = htonl(ack);
	memcpy(seg + 8, &v32, 4);
	seg[12] = 5 << 4;
	seg[13] = flags;
	v16 = htons(65535);
	memcpy(seg + 14, &v16, 2);
	memcpy(seg + 20, data, len);
	/* The checksum over the pseudo-header and the segment. */
	struct in_addr src, dst;
	ASSERT_TRUE(inet_pton(AF_INET, PEER, &src) == 1);
	ASSERT_TRUE(inet_pton(AF_INET, HERE, &dst) == 1);
	uint8_t pseudo[12 + sizeof(seg)];
	memcpy(pseudo, &src, 4);
	memcpy(pseudo + 4, &dst, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	v16 = htons((uint16_t)(20 + len));
	memcpy(pseudo + 10, &v16, 2);
	memcpy(pseudo + 12, seg, 20 + len);
	uint32_t sum = 0;
	size_t plen = 12 + 20 + len;
	for (size_t i = 0; i + 1 < plen; i += 2)
		sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
	if (plen & 1)
		sum += (uint32_t)pseudo[plen - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	v16 = htons((uint16_t)~sum);
	memcpy(seg + 16, &v16, 2);
	struct sockaddr_in to = sin_of(HERE, 0);
	ASSERT_EQ_U(sendto(raw, seg, 20 + len, 0, (struct sockaddr *)&to, sizeof(to)), 20 + len);
}

#define TH_SYN 0x02
#define TH_ACK 0x10
#define TH_PSH 0x08

TEST(test_data_to_a_listener_does_not_count)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int raw = peer_raw_tcp(n);

	/* A SYN with data (no Fast Open here: the data is not taken), then a
	 * bare ACK with data that no handshake led to. */
	send_segment(raw, 41001, port, 1000, 0, TH_SYN, "hello", 5);
	send_segment(raw, 41002, port, 5000, 7000, TH_ACK | TH_PSH, "stray", 5);
	struct flow_info f1, f2;
	WAIT_UNTIL(find_flow(n, IPPROTO_TCP, port, 41001, &f1) && f1.packets[FLOWS_DIR_OUT] > 0 &&
		   find_flow(n, IPPROTO_TCP, port, 41002, &f2) && f2.packets[FLOWS_DIR_OUT] > 0);
	ASSERT_GE_U(f1.packets[FLOWS_DIR_IN], 1);
	ASSERT_TRUE(f1.tcp_flags[FLOWS_DIR_IN] & FLOWS_TCP_SYN);
	ASSERT_EQ_U(f1.payload[FLOWS_DIR_IN], 0);
	ASSERT_EQ_U(f2.payload[FLOWS_DIR_IN], 0);
	ASSERT_EQ_U(f1.last_payload_dir, -1);
	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.counted_packets, 0);
	ASSERT_EQ_U(t.counted_last_ns, 0);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_NO_PAYLOAD].packets, 4); /* 2 in, SYN-ACK and RST out */
}

/* The next sequence number the peer's socket sends, read in repair mode. */
static uint32_t send_seq_of(int fd)
{
	int on = 1, q = TCP_SEND_QUEUE, off = TCP_REPAIR_OFF_NO_WP;
	ASSERT_OK(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)));
	ASSERT_OK(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)));
	uint32_t seq = 0;
	socklen_t len = sizeof(seq);
	ASSERT_OK(getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &len));
	ASSERT_OK(setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)));
	return seq;
}

TEST(test_an_old_or_duplicate_segment_does_not_count_and_a_real_byte_does)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	test_defer_close(cfd);
	unsigned short peer_port = local_port_of(pfd);
	write_all(pfd, 100, 'd');
	read_exactly(cfd, 100, 'd');
	/* Everything the peer sent is acknowledged: the connection is idle. */
	struct flow_info f;
	WAIT_UNTIL(find_flow(n, IPPROTO_TCP, port, peer_port, &f) &&
		   f.packets[FLOWS_DIR_OUT] >= 2 && totals(n).counted_packets == 1);
	uint32_t next = send_seq_of(pfd);
	struct flow_totals before = totals(n);

	/* A 1-byte keepalive (its last byte again), and an old segment. */
	int raw = peer_raw_tcp(n);
	send_segment(raw, peer_port, port, next - 1, 0, TH_ACK, "d", 1);
	send_segment(raw, peer_port, port, next - 50, 0, TH_ACK | TH_PSH, "dddd", 4);
	/* Both seen (the hook runs before TCP takes or drops them). */
	WAIT_UNTIL(totals(n).ingress_packets >= before.ingress_packets + 2);
	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets);
	ASSERT_EQ_U(t.counted_bytes, before.counted_bytes);
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, peer_port, &f));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 100);

	/* A real byte counts. */
	write_all(pfd, 1, 'd');
	read_exactly(cfd, 1, 'd');
	t = totals(n);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets + 1);
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, peer_port, &f));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 101);
	ASSERT_EQ_U(f.last_payload_dir, FLOWS_DIR_IN);
}

TEST(test_a_flow_classifies_again_when_its_opener_becomes_known)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	/* A segment of no known opener from the peer's port 53: DNS, as the
	 * container's own lookups would be. */
	int raw = peer_raw_tcp(n);
	send_segment(raw, 53, port, 5000, 7000, TH_ACK, "", 0);
	struct flow_info f;
	WAIT_UNTIL(find_flow(n, IPPROTO_TCP, port, 53, &f) && f.packets[FLOWS_DIR_OUT] > 0);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_UNKNOWN);
	ASSERT_EQ_U(f.class, FLOWS_IGN_DNS);

	/* Then the peer connects from its port 53: a client of the container. */
	int pfd = peer_socket(n, AF_INET, SOCK_STREAM);
	int one = 1;
	ASSERT_OK(setsockopt(pfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	struct sockaddr_in from = sin_of(PEER, 53);
	ASSERT_OK(bind(pfd, (struct sockaddr *)&from, sizeof(from)));
	sa.sin_port = htons(port);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	test_defer_close(cfd);
	write_all(pfd, 64, 'c');
	read_exactly(cfd, 64, 'c');
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, 53, &f));
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 64);
	ASSERT_EQ_U(totals(n).counted_packets, 1);
}
