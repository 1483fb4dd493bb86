// SPDX-License-Identifier: MIT
/*
 * The ignore rules in the kernel, between a test cgroup and a peer namespace
 * (flows_net.h): a port, an address with the peer's port, a network, IPv6,
 * a flow counted before its rule, and none after an attach again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "flows_net.h"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

TEST(test_a_port_rule_ignores_a_flow_that_was_counted_before_it)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 9090);
	listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(n, lfd, 9090, &cfd);
	test_defer_close(cfd);
	write_all(pfd, 100, 'm');
	read_exactly(cfd, 100, 'm');
	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 9090, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	struct flow_totals before = totals(n);
	ASSERT_TRUE(before.counted_bytes > 0);

	/* A metrics scrape of the container's 9090. */
	set_rules(n, &(struct flow_rule){.proto = IPPROTO_TCP, .port = 9090}, 1);
	write_all(pfd, 200, 'm');
	read_exactly(cfd, 200, 'm');
	write_all(cfd, 50, 'M');
	read_exactly(pfd, 50, 'M');

	WAIT_UNTIL(find_flow(n, IPPROTO_TCP, 9090, 0, &f) && f.payload[FLOWS_DIR_OUT] == 50);
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 0);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 300); /* the detail goes on */
	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.counted_bytes, before.counted_bytes);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets);
	ASSERT_EQ_U(t.counted_last_ns, before.counted_last_ns);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_RULE].packets, 2);
	ASSERT_TRUE(t.ignored[FLOWS_IGN_RULE].packets_out > 0);

	/* No rules: counted again. */
	set_rules(n, NULL, 0);
	write_all(pfd, 10, 'm');
	read_exactly(cfd, 10, 'm');
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 9090, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_TRUE(totals(n).counted_bytes > t.counted_bytes);
}

TEST(test_an_address_rule_with_a_port_is_the_peers_port)
{
	struct net *n = net_setup(0);
	/* The peer serves 7070; the container too. */
	int plfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in psa = sin_of(PEER, 7070);
	listen_on(plfd, (struct sockaddr *)&psa, sizeof(psa));
	int clfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in csa = sin_of(HERE, 7070);
	listen_on(clfd, (struct sockaddr *)&csa, sizeof(csa));

	struct flow_rule rules[] = {
	    {.proto = IPPROTO_UDP, .port = 8125},
	    rule_cidr4(PEER, 32, 7070),
	};
	set_rules(n, rules, ARRAY_SIZE(rules));

	/* To the peer's 7070: its rule. */
	int out = container_socket(n, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(out, (struct sockaddr *)&psa, sizeof(psa)));
	int pafd = accept4(plfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(pafd >= 0);
	test_defer_close(pafd);
	write_all(out, 10, 'o');
	read_exactly(pafd, 10, 'o');
	/* From the peer to the container's 7070: the port is not the peer's. */
	int cafd;
	int in = peer_connects(n, clfd, 7070, &cafd);
	test_defer_close(cafd);
	write_all(in, 20, 'i');
	read_exactly(cafd, 20, 'i');

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 0, 7070, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 1);
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 7070, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	struct flow_totals t = totals(n);
	ASSERT_TRUE(t.counted_bytes > 0);
	ASSERT_EQ_U(t.last_counted.local_port, 7070);

	/* A whole network: both flows, with their next packet. */
	struct flow_rule net = rule_cidr4("10.211.0.0", 24, 0);
	set_rules(n, &net, 1);
	write_all(out, 1, 'o');
	read_exactly(pafd, 1, 'o');
	write_all(in, 1, 'i');
	read_exactly(cafd, 1, 'i');
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 0, 7070, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 0);
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 7070, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(totals(n).counted_bytes, t.counted_bytes);
}

TEST(test_ipv6_flows_are_counted_with_their_v6_peer)
{
	struct net *n = net_setup(0);
	struct sockaddr_in6 sa;
	int lfd = v6_listener(n, &sa);
	unsigned short port = ntohs(sa.sin6_port);
	int pfd = peer_socket(n, AF_INET6, SOCK_STREAM);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	test_defer_close(cfd);
	write_all(pfd, 700, '6');
	read_exactly(cfd, 700, '6');
	write_all(cfd, 1300, '6');
	read_exactly(pfd, 1300, '6');

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, local_port_of(pfd), &f));
	ASSERT_EQ_U(f.peer.ss_family, AF_INET6);
	ASSERT_TRUE(peer_is(&f, "fd00:211::2"));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 700);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 1300);
	struct flow_totals t = totals(n);
	ASSERT_TRUE(t.counted_last_ns > 0);

	/* A v6 network in a rule, as the parser writes it. */
	struct flow_rule net6 = {.has_addr = true, .family = AF_INET6, .prefix_len = 64};
	ASSERT_TRUE(inet_pton(AF_INET6, "fd00:211::", net6.addr) == 1);
	set_rules(n, &net6, 1);
	write_all(pfd, 5, '6');
	read_exactly(cfd, 5, '6');
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, local_port_of(pfd), &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(totals(n).counted_bytes, t.counted_bytes);
}

TEST(test_attaching_again_starts_with_no_rules)
{
	struct net *n = net_setup(0);
	int sink = udp_peer(n, 8125);
	set_rules(n, &(struct flow_rule){.proto = IPPROTO_UDP, .port = 8125}, 1);
	int fd = container_socket(n, AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in from;
	udp_send(fd, PEER, 8125, 10);
	ASSERT_EQ_U(udp_recv(sink, &from), 10);
	ASSERT_EQ_U(totals(n).ignored[FLOWS_IGN_RULE].packets, 1);
	ASSERT_EQ_U(totals(n).counted_packets, 0);

	/* The container restarted in the same cgroup: no rule until set. */
	flow_counter_detach(n->a);
	n->a = NULL;
	ASSERT_OK(flow_counter_attach(n->c, n->dir, &n->a));
	udp_send(fd, PEER, 8125, 10);
	ASSERT_EQ_U(udp_recv(sink, &from), 10);
	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_UDP, local_port_of(fd), 8125, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(totals(n).counted_packets, 1);
}

TEST(test_a_port_rule_is_the_port_of_the_side_that_was_opened)
{
	struct net *n = net_setup(0);
	int lfd = container_socket(n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 8080);
	listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	/* tcp/40000 is the container's 40000 for flows a peer opens: a client
	 * that happens to connect from its port 40000 is not it. */
	set_rules(n, &(struct flow_rule){.proto = IPPROTO_TCP, .port = 40000}, 1);
	int pfd = peer_socket(n, AF_INET, SOCK_STREAM);
	int one = 1;
	ASSERT_OK(setsockopt(pfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	struct sockaddr_in from = sin_of(PEER, 40000);
	ASSERT_OK(bind(pfd, (struct sockaddr *)&from, sizeof(from)));
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	test_defer_close(cfd);
	write_all(pfd, 123, 'p');
	read_exactly(cfd, 123, 'p');

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, 8080, 40000, &f));
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 123);
	ASSERT_TRUE(totals(n).counted_packets > 0);
	ASSERT_EQ_U(totals(n).ignored[FLOWS_IGN_RULE].packets, 0);
}

TEST(test_the_clients_of_an_ntp_or_dns_server_container_count)
{
	struct net *n = net_setup(0);
	unsigned short port;
	int srv = udp_server(n, &port);
	/* Clients from their ports 123 and 53 (an NTP peer, a resolver's
	 * forwarder) to the container's server, and its answers. */
	int ntp = udp_peer(n, 123), dns = udp_peer(n, 53);
	udp_send(ntp, HERE, port, 48);
	struct sockaddr_in from;
	ASSERT_EQ_U(udp_recv(srv, &from), 48);
	ASSERT_EQ_U(sendto(srv, "answer", 6, 0, (struct sockaddr *)&from, sizeof(from)), 6);
	ASSERT_EQ_U(udp_recv(ntp, &from), 6);
	udp_send(dns, HERE, port, 30);
	ASSERT_EQ_U(udp_recv(srv, &from), 30);

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_UDP, port, 123, &f));
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_TRUE(find_flow(n, IPPROTO_UDP, port, 53, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	struct flow_totals t = totals(n);
	ASSERT_EQ_U(t.counted_packets, 3);
	ASSERT_EQ_U(t.counted_bytes, 28 + 48 + 28 + 6 + 28 + 30);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].packets + t.ignored[FLOWS_IGN_DNS].packets, 0);
}

TEST(test_an_ipv6_upload_with_destination_options_counts)
{
	struct net *n = net_setup(0);
	struct sockaddr_in6 sa;
	int lfd = v6_listener(n, &sa);
	unsigned short port = ntohs(sa.sin6_port);
	int pfd = peer_socket(n, AF_INET6, SOCK_STREAM);
	/* A destination options header of 8 bytes: one PadN of 4. */
	uint8_t opts[8] = {0, 0, 1, 4, 0, 0, 0, 0};
	ASSERT_OK(setsockopt(pfd, IPPROTO_IPV6, IPV6_DSTOPTS, opts, sizeof(opts)));
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	test_defer_close(cfd);
	write_all(pfd, 20000, 'u');
	read_exactly(cfd, 20000, 'u');

	struct flow_info f;
	ASSERT_TRUE(find_flow(n, IPPROTO_TCP, port, local_port_of(pfd), &f));
	ASSERT_TRUE(peer_is(&f, "fd00:211::2"));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 20000);
	struct flow_totals t = totals(n);
	ASSERT_TRUE(t.counted_bytes > 0);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_ICMP].packets_out, 0);
}
