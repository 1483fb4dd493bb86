// SPDX-License-Identifier: MIT
/*
 * What the flow counter counts as activity, on the real kernel, between a
 * test cgroup and a peer namespace (flows_net.h): connect-only checks,
 * requests and responses, who opened a flow, DNS, NTP and ICMP, the map's
 * bound and detach. The ignore rules are test_flows_rules.c's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "flows_net.h"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

TEST(test_a_connect_only_check_makes_a_flow_opened_by_the_peer_and_counts_nothing)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));

	/* A load balancer's health check: connect, close, not a byte. */
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	unsigned short peer_port = local_port_of(pfd);
	/* Both sides close; the fds stay until the test ends. */
	test_defer_close(cfd);
	ASSERT_OK(shutdown(pfd, SHUT_RDWR));
	ASSERT_OK(shutdown(cfd, SHUT_RDWR));

	struct flow_info f;
	struct flow_totals t;
	WAIT_UNTIL(closed_both_ways(n, port, peer_port, &f, &t));
	ASSERT_TRUE(peer_is(&f, PEER));
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 0);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 0);
	ASSERT_EQ_U(f.last_counted_ns, 0);
	ASSERT_TRUE(f.tcp_flags[FLOWS_DIR_IN] & FLOWS_TCP_SYN);
	ASSERT_EQ_U(f.tcp_flags[FLOWS_DIR_OUT] & (FLOWS_TCP_SYN | FLOWS_TCP_ACK),
		    FLOWS_TCP_SYN | FLOWS_TCP_ACK);

	ASSERT_EQ_U(t.counted_last_ns, 0);
	ASSERT_EQ_U(t.counted_packets, 0);
	ASSERT_TRUE(t.ignored[FLOWS_IGN_NO_PAYLOAD].packets > 0);
	/* Every packet of the check, and nothing else. */
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NO_PAYLOAD].packets,
		    f.packets[FLOWS_DIR_IN] + f.packets[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NO_PAYLOAD].packets_out, f.packets[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NO_PAYLOAD].bytes,
		    f.bytes[FLOWS_DIR_IN] + f.bytes[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.flows_created, 1);
}

TEST(test_a_request_and_its_response_count_both_ways_with_their_payload)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	ASSERT_EQ_U(totals(n).counted_last_ns, 0);

	uint64_t t0 = coarse_ns();
	int cfd;
	int pfd = peer_connects(n, lfd, port, &cfd);
	unsigned short peer_port = local_port_of(pfd);
	write_all(pfd, 1000, 'q');
	read_exactly(cfd, 1000, 'q');
	write_all(cfd, 50000, 'r');
	read_exactly(pfd, 50000, 'r');
	/* Both sides close; the fds stay until the test ends. */
	test_defer_close(cfd);
	ASSERT_OK(shutdown(pfd, SHUT_RDWR));
	ASSERT_OK(shutdown(cfd, SHUT_RDWR));

	struct flow_info f;
	struct flow_totals t;
	WAIT_UNTIL(closed_both_ways(n, port, peer_port, &f, &t));
	ASSERT_TRUE(peer_is(&f, PEER));
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.rule, -1);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 1000);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 50000);
	ASSERT_TRUE(f.last_payload_ns[FLOWS_DIR_IN] >= t0);
	ASSERT_TRUE(f.last_payload_ns[FLOWS_DIR_OUT] >= f.last_payload_ns[FLOWS_DIR_IN]);
	ASSERT_TRUE(f.last_counted_ns >= t0);
	ASSERT_TRUE(f.first_ns >= t0 && f.last_ns >= f.last_counted_ns);

	ASSERT_TRUE(t.counted_last_ns >= t0);
	ASSERT_GE_U(t.counted_bytes, 51000);
	/* What was not counted had no payload; the flow is all there was. */
	ASSERT_EQ_U(t.counted_bytes + t.ignored[FLOWS_IGN_NO_PAYLOAD].bytes,
		    f.bytes[FLOWS_DIR_IN] + f.bytes[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.egress_bytes, f.bytes[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.ingress_bytes, f.bytes[FLOWS_DIR_IN]);
	ASSERT_EQ_U(t.egress_packets, f.packets[FLOWS_DIR_OUT]);
	ASSERT_EQ_U(t.ingress_packets, f.packets[FLOWS_DIR_IN]);
	/* The last counted packet is this flow's, read back whole. */
	ASSERT_EQ_U(t.last_counted.proto, IPPROTO_TCP);
	ASSERT_TRUE(peer_is(&t.last_counted, PEER));
	ASSERT_EQ_U(t.last_counted.local_port, port);
	ASSERT_EQ_U(peer_port_of(&t.last_counted), peer_port);
	ASSERT_EQ_U(t.last_counted.payload[FLOWS_DIR_OUT], 50000);
}

TEST(test_a_connection_the_container_makes_is_opened_by_the_container)
{
	struct net *n = net_setup(0);
	int lfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(PEER, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));

	sa.sin_port = htons(port);
	int cfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)));
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(afd >= 0);
	test_defer_close(afd);
	write_all(cfd, 321, 'c');
	read_exactly(afd, 321, 'c');

	struct flow_info f;
	WAIT_UNTIL(find_flow(n, IPPROTO_TCP, local_port_of(cfd), port, &f) &&
		   f.payload[FLOWS_DIR_OUT] == 321);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_CONTAINER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 0);
	ASSERT_TRUE(f.tcp_flags[FLOWS_DIR_OUT] & FLOWS_TCP_SYN);
	ASSERT_TRUE(f.last_counted_ns > 0);
}

TEST(test_the_flows_of_a_nested_cgroup_are_the_containers)
{
	struct net *n = net_setup(0);
	_cleanup_free_ char *inner = testcg_create("container/init/app");
	int lfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(PEER, 0);
	sa.sin_port = htons(listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa)));

	int cfd = socket_in(inner, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)));
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(afd >= 0);
	test_defer_close(afd);
	write_all(cfd, 77, 'n');
	read_exactly(afd, 77, 'n');

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, local_port_of(cfd), ntohs(sa.sin_port), &f));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 77);
	ASSERT_EQ_U(totals(n).flows_created, 1);
}

TEST(test_dns_and_ntp_the_container_sends_are_ignored)
{
	struct net *n = net_setup(0);
	int dns = udp_peer(n, 53), ntp = udp_peer(n, 123);
	int fd = container_socket(n, AF_INET, SOCK_DGRAM, 0);

	udp_send(fd, PEER, 53, 30);
	struct sockaddr_in from;
	ASSERT_EQ_U(udp_recv(dns, &from), 30);
	/* The answer, to the address the query came from. */
	ASSERT_EQ_U(sendto(dns, "answer-answer-answer-answer-answer-answer", 40, 0,
			   (struct sockaddr *)&from, sizeof(from)),
		    40);
	ASSERT_EQ_U(udp_recv(fd, &from), 40);
	udp_send(fd, PEER, 123, 48);
	ASSERT_EQ_U(udp_recv(ntp, &from), 48);

	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].packets, 2);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].packets_out, 1); /* one query */
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].bytes, 28 + 30 + 28 + 40);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].packets, 1);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].packets_out, 1);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].bytes, 28 + 48);
	ASSERT_EQ_U(t.counted_packets, 0);
	ASSERT_EQ_U(t.counted_last_ns, 0);

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_UDP, local_port_of(fd), 53, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_DNS);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_CONTAINER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 30);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 40);
	ASSERT_TRUE(find_flow(n, IPPROTO_UDP, local_port_of(fd), 123, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_NTP);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 48);
}

TEST(test_a_ping_is_ignored_as_icmp)
{
	struct net *n = net_setup(0);
	int fd = container_socket(n, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	echo_request_send(fd, PEER, 0x1234);
	/* The peer's kernel answers. */
	echo_reply_wait(fd);

	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_ICMP].packets_out, 1);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_ICMP].packets, 2);
	ASSERT_EQ_U(t.counted_packets, 0);
	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_ICMP, 0, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_ICMP);
	ASSERT_EQ_U(f.local_port, 0);
	ASSERT_EQ_U(peer_port_of(&f), 0);
	ASSERT_TRUE(peer_is(&f, PEER));
	ASSERT_EQ_U(f.bytes[FLOWS_DIR_OUT], 20 + ECHO_LEN);
}

TEST(test_more_flows_than_the_map_holds_are_evicted_and_counted)
{
	struct net *n = net_setup(64);
	int sink = udp_peer(n, 7000);
	enum { FLOWS = 100, LEN = 100 };
	uint64_t t0 = coarse_ns();
	unsigned short last_port = 0;
	int *fds = container_sockets(n, FLOWS, SOCK_DGRAM);
	for (int i = 0; i < FLOWS; i++) {
		udp_send(fds[i], PEER, 7000, LEN);
		last_port = local_port_of(fds[i]);
		struct sockaddr_in from;
		ASSERT_EQ_U(udp_recv(sink, &from), LEN); /* never dropped */
	}

	struct flow_map_stats m;
	ASSERT_OK(flow_counter_map_stats(n->c, &m));
	ASSERT_EQ_U(m.capacity, 64);
	ASSERT_EQ_U(m.created, FLOWS);
	ASSERT_TRUE(m.live <= 64);
	ASSERT_GE_U(m.evicted, FLOWS - 64);
	ASSERT_EQ_U(m.evicted, m.created - m.live - m.deleted);
	ASSERT_EQ_U(m.deleted, 0);
	ASSERT_EQ_U(count_flows(n), m.live);

	/* Losing detail loses no activity. */
	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.flows_created, FLOWS);
	ASSERT_EQ_U(t.counted_packets, FLOWS);
	ASSERT_EQ_U(t.counted_bytes, FLOWS * (20 + 8 + LEN));
	ASSERT_TRUE(t.counted_last_ns >= t0);
	ASSERT_EQ_U(t.last_counted.local_port, last_port);
	ASSERT_EQ_U(peer_port_of(&t.last_counted), 7000);
	ASSERT_EQ_U(t.last_counted_dir, FLOWS_DIR_OUT);
}

static void detach_other(void *a)
{
	flow_counter_detach(a);
}

TEST(test_a_purge_after_detach_deletes_the_cgroups_flows_and_only_theirs)
{
	struct net *n = net_setup(0);
	_cleanup_free_ char *other_dir = testcg_create("other");
	struct flow_attachment *other = NULL;
	ASSERT_OK(flow_counter_attach(n->c, other_dir, &other));
	test_defer(detach_other, other);
	int sink = udp_peer(n, 7000);
	for (int i = 0; i < 3; i++) {
		int fd = container_socket(n, AF_INET, SOCK_DGRAM, 0);
		udp_send(fd, PEER, 7000, 10);
		struct sockaddr_in from;
		ASSERT_EQ_U(udp_recv(sink, &from), 10);
	}
	int ofd = socket_in(other_dir, AF_INET, SOCK_DGRAM, 0);
	udp_send(ofd, PEER, 7000, 10);
	struct sockaddr_in from;
	ASSERT_EQ_U(udp_recv(sink, &from), 10);
	ASSERT_EQ_U(count_flows(n), 3);

	flow_counter_detach(n->a);
	n->a = NULL;
	struct flow_map_stats m;
	/* Until the purge they stay, live. */
	ASSERT_OK(flow_counter_map_stats(n->c, &m));
	ASSERT_EQ_U(m.live, 4);
	ASSERT_OK(flow_counter_purge(n->c));
	ASSERT_OK(flow_counter_map_stats(n->c, &m));
	ASSERT_EQ_U(m.live, 1);
	ASSERT_EQ_U(m.deleted, 3);
	ASSERT_EQ_U(m.created, 4);
	ASSERT_EQ_U(m.evicted, 0);
	/* A second purge has nothing to do. */
	ASSERT_OK(flow_counter_purge(n->c));
	ASSERT_OK(flow_counter_map_stats(n->c, &m));
	ASSERT_EQ_U(m.live, 1);
}

TEST(test_detach_deletes_the_cgroups_flows)
{
	struct net *n = net_setup(0);
	int sink = udp_peer(n, 7000);
	for (int i = 0; i < 3; i++) {
		int fd = container_socket(n, AF_INET, SOCK_DGRAM, 0);
		udp_send(fd, PEER, 7000, 10);
		struct sockaddr_in from;
		ASSERT_EQ_U(udp_recv(sink, &from), 10);
	}
	ASSERT_EQ_U(count_flows(n), 3);

	flow_counter_detach(n->a);
	n->a = NULL;
	struct flow_map_stats m;
	ASSERT_OK(flow_counter_purge(n->c));
	ASSERT_OK(flow_counter_map_stats(n->c, &m));
	ASSERT_EQ_U(m.live, 0);
	ASSERT_EQ_U(m.deleted, 3);
	ASSERT_EQ_U(m.created, 3);
	ASSERT_EQ_U(m.evicted, 0);
}

TEST(test_one_walk_lists_every_containers_flows_each_under_its_cgroup)
{
	struct net *n = net_setup(0);
	_cleanup_free_ char *other_dir = testcg_create("other");
	struct flow_attachment *other = NULL;
	ASSERT_OK(flow_counter_attach(n->c, other_dir, &other));
	test_defer(detach_other, other);
	int lfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(PEER, 0);
	sa.sin_port = htons(listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	const char *dirs[] = {n->dir, other_dir};
	size_t sent[] = {11, 22};
	for (size_t i = 0; i < 2; i++) {
		int cfd = socket_in(dirs[i], AF_INET, SOCK_STREAM, 0);
		ASSERT_OK(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)));
		int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ASSERT_TRUE(afd >= 0);
		test_defer_close(afd);
		write_all(cfd, sent[i], 'w');
		read_exactly(afd, sent[i], 'w');
	}
	const uint64_t ids[] = {flow_attachment_cgroup_id(n->a), flow_attachment_cgroup_id(other)};
	struct flow_info *all = NULL;
	size_t count = 0;
	ASSERT_OK(flow_counter_list_all(n->c, 0, &all, &count));
	test_defer(free, all);
	ASSERT_EQ_U(count, 2);
	for (size_t i = 0; i < 2; i++) {
		size_t j = all[0].cgroup_id == ids[i] ? 0 : 1;
		ASSERT_EQ_U(all[j].cgroup_id, ids[i]);
		ASSERT_EQ_U(all[j].payload[FLOWS_DIR_OUT], sent[i]);
	}
	/* A window after them: none. */
	struct flow_info *none = NULL;
	ASSERT_OK(flow_counter_list_all(n->c, coarse_ns() + 1000000000ull, &none, &count));
	ASSERT_EQ_U(count, 0);
	ASSERT_TRUE(none == NULL);
}
