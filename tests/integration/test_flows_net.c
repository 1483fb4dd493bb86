// SPDX-License-Identifier: MIT
/*
 * What the flow counter counts as activity, on the real kernel: a test
 * cgroup is the container, this test's network namespace its host side, and
 * a peer namespace joined by a veth pair the world (traffic to an address of
 * the same namespace would go over lo). Sockets the container owns are made
 * from inside its cgroup; the peer's from outside it, in the peer namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/cgroup.h"
#include "dozed/flow_counter.h"
#include "dozed/macro.h"
#include "harness.h"
#include "netns.h"
#include "testcg.h"

#define HERE "10.211.0.1"
#define PEER "10.211.0.2"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

static uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define WAIT_UNTIL(cond)                                                                           \
	do {                                                                                       \
		uint64_t _deadline_ = test_now_ms() + 5000;                                        \
		while (!(cond)) {                                                                  \
			if (test_now_ms() > _deadline_)                                            \
				FAIL("timed out waiting for %s", #cond);                           \
			usleep(1000);                                                              \
		}                                                                                  \
	} while (0)

struct net {
	int peer; /* the peer namespace */
	char *dir;
	struct flow_counter *c;
	struct flow_attachment *a;
};

static void free_counter(void *c)
{
	flow_counter_free(c);
}

static void detach_net(void *p)
{
	struct net *n = p;
	flow_counter_detach(n->a);
	n->a = NULL;
}

static void net_setup(struct net *n, uint32_t max_flows)
{
	*n = (struct net){.peer = -1};
	ASSERT_OK(netns_enter_private());
	ASSERT_OK(netns_add_peer(HERE "/24", PEER "/24", &n->peer));
	test_defer_close(n->peer);
	n->dir = testcg_create("container");
	test_defer(free, n->dir);
	ASSERT_OK(flow_counter_new(max_flows, &n->c));
	test_defer(free_counter, n->c);
	ASSERT_OK(flow_counter_attach(n->c, n->dir, &n->a));
	test_defer(detach_net, n);
}

/* A socket of the container: a socket belongs to the cgroup its creator
 * was in when it was made, wherever the creator goes next. */
static int socket_in(const char *dir, int domain, int type, int proto)
{
	_cleanup_free_ char *home = NULL;
	ASSERT_OK(cgroup2_dir_from_pid(getpid(), &home));
	ASSERT_OK(testcg_enter(dir));
	int fd = socket(domain, type | SOCK_CLOEXEC, proto);
	int err = errno;
	ASSERT_OK(testcg_enter(home));
	if (fd < 0)
		FAIL("socket in the container: %s", strerror(err));
	test_defer_close(fd);
	return fd;
}

struct fd_set_ {
	size_t n;
	int fd[];
};

static void close_all(void *p)
{
	struct fd_set_ *set = p;
	for (size_t i = 0; i < set->n; i++)
		close(set->fd[i]);
	free(set);
}

/* count IPv4 sockets of the container, closed when the test ends. */
static int *container_sockets(const struct net *n, size_t count, int type)
{
	struct fd_set_ *set = calloc(1, sizeof(*set) + count * sizeof(int));
	ASSERT_TRUE(set);
	test_defer(close_all, set);
	_cleanup_free_ char *home = NULL;
	ASSERT_OK(cgroup2_dir_from_pid(getpid(), &home));
	ASSERT_OK(testcg_enter(n->dir));
	for (; set->n < count; set->n++) {
		set->fd[set->n] = socket(AF_INET, type | SOCK_CLOEXEC, 0);
		if (set->fd[set->n] < 0)
			break;
	}
	ASSERT_OK(testcg_enter(home));
	ASSERT_EQ_U(set->n, count);
	return set->fd;
}

static int peer_socket(const struct net *n, int domain, int type)
{
	int fd = netns_socket(n->peer, domain, type | SOCK_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	test_defer_close(fd);
	return fd;
}

static int container_socket(const struct net *n, int domain, int type, int proto)
{
	return socket_in(n->dir, domain, type, proto);
}

static struct sockaddr_in sin_of(const char *addr, unsigned short port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	ASSERT_TRUE(inet_pton(AF_INET, addr, &sa.sin_addr) == 1);
	return sa;
}

static unsigned short local_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&ss, &len));
	return ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sockaddr_in6 */
}

static unsigned short listen_on(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;
	ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_OK(bind(fd, sa, len));
	ASSERT_OK(listen(fd, 16));
	return local_port_of(fd);
}

static void write_all(int fd, size_t n, char fill)
{
	char buf[4096];
	memset(buf, fill, sizeof(buf));
	while (n > 0) {
		ssize_t w = write(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (w < 0 && errno == EINTR)
			continue;
		ASSERT_TRUE(w > 0);
		n -= (size_t)w;
	}
}

/* Every byte sent arrives: counting never drops or alters a packet. */
static void read_exactly(int fd, size_t n, char fill)
{
	char buf[4096];
	while (n > 0) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		ASSERT_TRUE(r > 0);
		for (ssize_t i = 0; i < r; i++)
			ASSERT_TRUE(buf[i] == fill);
		n -= (size_t)r;
	}
}

static struct flow_totals totals(const struct net *n)
{
	struct flow_totals t;
	ASSERT_OK(flow_counter_read(n->c, n->a, &t));
	return t;
}

static uint16_t peer_port_of(const struct flow_info *f)
{
	return ntohs(((const struct sockaddr_in *)&f->peer)->sin_port);
}

static bool peer_is(const struct flow_info *f, const char *addr)
{
	char text[INET6_ADDRSTRLEN] = "";
	if (f->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&f->peer)->sin_addr, text,
			  sizeof(text));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&f->peer)->sin6_addr, text,
			  sizeof(text));
	return strcmp(text, addr) == 0;
}

/* The container's flow of proto with that local port (0: any) and peer
 * port (0: any); false if none. */
static bool find_flow(const struct net *n, uint8_t proto, uint16_t local, uint16_t peer,
		      struct flow_info *out)
{
	struct flow_info *flows = NULL;
	size_t count = 0;
	ASSERT_OK(flow_counter_list(n->c, n->a, 0, &flows, &count));
	bool found = false;
	for (size_t i = 0; i < count && !found; i++)
		if (flows[i].proto == proto && (!local || flows[i].local_port == local) &&
		    (!peer || peer_port_of(&flows[i]) == peer)) {
			*out = flows[i];
			found = true;
		}
	free(flows);
	return found;
}

static size_t count_flows(const struct net *n)
{
	struct flow_info *flows = NULL;
	size_t count = 0;
	ASSERT_OK(flow_counter_list(n->c, n->a, 0, &flows, &count));
	free(flows);
	return count;
}

/* Both sides' FIN went through and nothing moved while the totals were
 * read: f and t are one consistent picture of a finished connection. */
static bool closed_both_ways(const struct net *n, uint16_t local, uint16_t peer,
			     struct flow_info *f, struct flow_totals *t)
{
	struct flow_info again;
	if (!find_flow(n, IPPROTO_TCP, local, peer, f) ||
	    !(f->tcp_flags[FLOWS_DIR_IN] & FLOWS_TCP_FIN) ||
	    !(f->tcp_flags[FLOWS_DIR_OUT] & FLOWS_TCP_FIN))
		return false;
	*t = totals(n);
	return find_flow(n, IPPROTO_TCP, local, peer, &again) &&
	       again.packets[FLOWS_DIR_IN] == f->packets[FLOWS_DIR_IN] &&
	       again.packets[FLOWS_DIR_OUT] == f->packets[FLOWS_DIR_OUT] &&
	       t->egress_packets + t->ingress_packets ==
		   f->packets[FLOWS_DIR_IN] + f->packets[FLOWS_DIR_OUT];
}

/* A peer's connection to the container's listener lfd; returns the peer's
 * socket, and the container's in *accepted. */
static int peer_connects(const struct net *n, int lfd, unsigned short port, int *accepted)
{
	int pfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(HERE, port);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	*accepted = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(*accepted >= 0);
	return pfd;
}

TEST(test_a_connect_only_check_makes_a_flow_opened_by_the_peer_and_counts_nothing)
{
	struct net n;
	net_setup(&n, 0);
	int lfd = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));

	/* A load balancer's health check: connect, close, not a byte. */
	int cfd;
	int pfd = peer_connects(&n, lfd, port, &cfd);
	unsigned short peer_port = local_port_of(pfd);
	/* Both sides close; the fds stay until the test ends. */
	test_defer_close(cfd);
	ASSERT_OK(shutdown(pfd, SHUT_RDWR));
	ASSERT_OK(shutdown(cfd, SHUT_RDWR));

	struct flow_info f;
	struct flow_totals t;
	WAIT_UNTIL(closed_both_ways(&n, port, peer_port, &f, &t));
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
	struct net n;
	net_setup(&n, 0);
	int lfd = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	ASSERT_EQ_U(totals(&n).counted_last_ns, 0);

	uint64_t t0 = coarse_ns();
	int cfd;
	int pfd = peer_connects(&n, lfd, port, &cfd);
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
	WAIT_UNTIL(closed_both_ways(&n, port, peer_port, &f, &t));
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
	struct net n;
	net_setup(&n, 0);
	int lfd = peer_socket(&n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(PEER, 0);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));

	sa.sin_port = htons(port);
	int cfd = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)));
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(afd >= 0);
	test_defer_close(afd);
	write_all(cfd, 321, 'c');
	read_exactly(afd, 321, 'c');

	struct flow_info f;
	WAIT_UNTIL(find_flow(&n, IPPROTO_TCP, local_port_of(cfd), port, &f) &&
		   f.payload[FLOWS_DIR_OUT] == 321);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_CONTAINER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 0);
	ASSERT_TRUE(f.tcp_flags[FLOWS_DIR_OUT] & FLOWS_TCP_SYN);
	ASSERT_TRUE(f.last_counted_ns > 0);
}

TEST(test_the_flows_of_a_nested_cgroup_are_the_containers)
{
	struct net n;
	net_setup(&n, 0);
	_cleanup_free_ char *inner = testcg_create("container/init/app");
	int lfd = peer_socket(&n, AF_INET, SOCK_STREAM);
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
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, local_port_of(cfd), ntohs(sa.sin_port), &f));
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 77);
	ASSERT_EQ_U(totals(&n).flows_created, 1);
}

static int udp_peer(const struct net *n, unsigned short port)
{
	int fd = peer_socket(n, AF_INET, SOCK_DGRAM);
	struct sockaddr_in sa = sin_of(PEER, port);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static void udp_send(int fd, const char *addr, unsigned short port, size_t len)
{
	char buf[2048];
	memset(buf, 'u', len);
	struct sockaddr_in sa = sin_of(addr, port);
	ASSERT_EQ_U(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)), len);
}

static size_t udp_recv(int fd, struct sockaddr_in *from)
{
	char buf[2048];
	socklen_t len = sizeof(*from);
	ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &len);
	ASSERT_TRUE(r >= 0);
	return (size_t)r;
}

TEST(test_dns_and_ntp_the_container_sends_are_ignored)
{
	struct net n;
	net_setup(&n, 0);
	int dns = udp_peer(&n, 53), ntp = udp_peer(&n, 123);
	int fd = container_socket(&n, AF_INET, SOCK_DGRAM, 0);

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

	struct flow_totals t = totals(&n);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].packets, 2);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].packets_out, 1); /* one query */
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_DNS].bytes, 28 + 30 + 28 + 40);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].packets, 1);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].packets_out, 1);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_NTP].bytes, 28 + 48);
	ASSERT_EQ_U(t.counted_packets, 0);
	ASSERT_EQ_U(t.counted_last_ns, 0);

	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_UDP, local_port_of(fd), 53, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_DNS);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_CONTAINER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 30);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 40);
	ASSERT_TRUE(find_flow(&n, IPPROTO_UDP, local_port_of(fd), 123, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_NTP);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 48);
}

static void set_rules(const struct net *n, const struct flow_rule *rules, size_t count)
{
	struct flow_rules r = {.n = count};
	if (count)
		memcpy(r.rule, rules, count * sizeof(*rules));
	ASSERT_OK(flow_counter_set_rules(n->c, n->a, &r));
}

static struct flow_rule rule_cidr4(const char *addr, unsigned prefix, uint16_t port)
{
	struct flow_rule r = {
	    .has_addr = true, .family = AF_INET, .prefix_len = (uint8_t)prefix, .port = port};
	ASSERT_TRUE(inet_pton(AF_INET, addr, r.addr) == 1);
	return r;
}

TEST(test_a_port_rule_ignores_a_flow_that_was_counted_before_it)
{
	struct net n;
	net_setup(&n, 0);
	int lfd = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 9090);
	listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	int cfd;
	int pfd = peer_connects(&n, lfd, 9090, &cfd);
	test_defer_close(cfd);
	write_all(pfd, 100, 'm');
	read_exactly(cfd, 100, 'm');
	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 9090, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	struct flow_totals before = totals(&n);
	ASSERT_TRUE(before.counted_bytes > 0);

	/* A metrics scrape of the container's 9090. */
	set_rules(&n, &(struct flow_rule){.proto = IPPROTO_TCP, .port = 9090}, 1);
	write_all(pfd, 200, 'm');
	read_exactly(cfd, 200, 'm');
	write_all(cfd, 50, 'M');
	read_exactly(pfd, 50, 'M');

	WAIT_UNTIL(find_flow(&n, IPPROTO_TCP, 9090, 0, &f) && f.payload[FLOWS_DIR_OUT] == 50);
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 0);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 300); /* the detail goes on */
	struct flow_totals t = totals(&n);
	ASSERT_EQ_U(t.counted_bytes, before.counted_bytes);
	ASSERT_EQ_U(t.counted_packets, before.counted_packets);
	ASSERT_EQ_U(t.counted_last_ns, before.counted_last_ns);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_RULE].packets, 2);
	ASSERT_TRUE(t.ignored[FLOWS_IGN_RULE].packets_out > 0);

	/* No rules: counted again. */
	set_rules(&n, NULL, 0);
	write_all(pfd, 10, 'm');
	read_exactly(cfd, 10, 'm');
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 9090, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_TRUE(totals(&n).counted_bytes > t.counted_bytes);
}

TEST(test_an_address_rule_with_a_port_is_the_peers_port)
{
	struct net n;
	net_setup(&n, 0);
	/* The peer serves 7070; the container too. */
	int plfd = peer_socket(&n, AF_INET, SOCK_STREAM);
	struct sockaddr_in psa = sin_of(PEER, 7070);
	listen_on(plfd, (struct sockaddr *)&psa, sizeof(psa));
	int clfd = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in csa = sin_of(HERE, 7070);
	listen_on(clfd, (struct sockaddr *)&csa, sizeof(csa));

	struct flow_rule rules[] = {
	    {.proto = IPPROTO_UDP, .port = 8125},
	    rule_cidr4(PEER, 32, 7070),
	};
	set_rules(&n, rules, ARRAY_SIZE(rules));

	/* To the peer's 7070: its rule. */
	int out = container_socket(&n, AF_INET, SOCK_STREAM, 0);
	ASSERT_OK(connect(out, (struct sockaddr *)&psa, sizeof(psa)));
	int pafd = accept4(plfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(pafd >= 0);
	test_defer_close(pafd);
	write_all(out, 10, 'o');
	read_exactly(pafd, 10, 'o');
	/* From the peer to the container's 7070: the port is not the peer's. */
	int cafd;
	int in = peer_connects(&n, clfd, 7070, &cafd);
	test_defer_close(cafd);
	write_all(in, 20, 'i');
	read_exactly(cafd, 20, 'i');

	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 0, 7070, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 1);
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 7070, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	struct flow_totals t = totals(&n);
	ASSERT_TRUE(t.counted_bytes > 0);
	ASSERT_EQ_U(t.last_counted.local_port, 7070);

	/* A whole network: both flows, with their next packet. */
	struct flow_rule net = rule_cidr4("10.211.0.0", 24, 0);
	set_rules(&n, &net, 1);
	write_all(out, 1, 'o');
	read_exactly(pafd, 1, 'o');
	write_all(in, 1, 'i');
	read_exactly(cafd, 1, 'i');
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 0, 7070, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(f.rule, 0);
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, 7070, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(totals(&n).counted_bytes, t.counted_bytes);
}

static uint16_t icmp_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

TEST(test_a_ping_is_ignored_as_icmp)
{
	struct net n;
	net_setup(&n, 0);
	int fd = container_socket(&n, AF_INET, SOCK_RAW, IPPROTO_ICMP);
	uint8_t echo[64] = {ICMP_ECHO, 0, 0, 0, 0x12, 0x34, 0, 1};
	uint16_t sum = icmp_checksum(echo, sizeof(echo));
	memcpy(echo + 2, &sum, 2);
	struct sockaddr_in sa = sin_of(PEER, 0);
	ASSERT_EQ_U(sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&sa, sizeof(sa)),
		    sizeof(echo));
	/* The peer's kernel answers: a raw socket reads it, IP header first. */
	uint8_t reply[256];
	for (;;) {
		ssize_t r = recv(fd, reply, sizeof(reply), 0);
		ASSERT_TRUE(r > 0);
		size_t ihl = (reply[0] & 0x0f) * 4u;
		if ((size_t)r >= ihl + 8 && reply[ihl] == ICMP_ECHOREPLY)
			break;
	}

	struct flow_totals t = totals(&n);
	ASSERT_EQ_U(t.ignored[FLOWS_IGN_ICMP].packets_out, 1);
	ASSERT_GE_U(t.ignored[FLOWS_IGN_ICMP].packets, 2);
	ASSERT_EQ_U(t.counted_packets, 0);
	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_ICMP, 0, 0, &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_ICMP);
	ASSERT_EQ_U(f.local_port, 0);
	ASSERT_EQ_U(peer_port_of(&f), 0);
	ASSERT_TRUE(peer_is(&f, PEER));
	ASSERT_EQ_U(f.bytes[FLOWS_DIR_OUT], 20 + sizeof(echo));
}

TEST(test_ipv6_flows_are_counted_with_their_v6_peer)
{
	struct net n;
	net_setup(&n, 0);
	const char *here[] = {"ip", "addr", "add", "fd00:211::1/64", "dev", "dzv0", "nodad", NULL};
	const char *there[] = {"ip", "addr", "add", "fd00:211::2/64", "dev", "dzv1", "nodad", NULL};
	ASSERT_EQ_U(run_cmd(-1, here, NULL), 0);
	ASSERT_EQ_U(run_cmd(n.peer, there, NULL), 0);

	int lfd = container_socket(&n, AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	ASSERT_TRUE(inet_pton(AF_INET6, "fd00:211::1", &sa.sin6_addr) == 1);
	unsigned short port = listen_on(lfd, (struct sockaddr *)&sa, sizeof(sa));
	sa.sin6_port = htons(port);
	int pfd = peer_socket(&n, AF_INET6, SOCK_STREAM);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	test_defer_close(cfd);
	write_all(pfd, 700, '6');
	read_exactly(cfd, 700, '6');
	write_all(cfd, 1300, '6');
	read_exactly(pfd, 1300, '6');

	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, port, local_port_of(pfd), &f));
	ASSERT_EQ_U(f.peer.ss_family, AF_INET6);
	ASSERT_TRUE(peer_is(&f, "fd00:211::2"));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(f.opener, FLOWS_OPENER_PEER);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_IN], 700);
	ASSERT_EQ_U(f.payload[FLOWS_DIR_OUT], 1300);
	struct flow_totals t = totals(&n);
	ASSERT_TRUE(t.counted_last_ns > 0);

	/* A v6 network in a rule, as the parser writes it. */
	struct flow_rule net6 = {.has_addr = true, .family = AF_INET6, .prefix_len = 64};
	ASSERT_TRUE(inet_pton(AF_INET6, "fd00:211::", net6.addr) == 1);
	set_rules(&n, &net6, 1);
	write_all(pfd, 5, '6');
	read_exactly(cfd, 5, '6');
	ASSERT_TRUE(find_flow(&n, IPPROTO_TCP, port, local_port_of(pfd), &f));
	ASSERT_EQ_U(f.class, FLOWS_IGN_RULE);
	ASSERT_EQ_U(totals(&n).counted_bytes, t.counted_bytes);
}

TEST(test_attaching_again_starts_with_no_rules)
{
	struct net n;
	net_setup(&n, 0);
	int sink = udp_peer(&n, 8125);
	set_rules(&n, &(struct flow_rule){.proto = IPPROTO_UDP, .port = 8125}, 1);
	int fd = container_socket(&n, AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in from;
	udp_send(fd, PEER, 8125, 10);
	ASSERT_EQ_U(udp_recv(sink, &from), 10);
	ASSERT_EQ_U(totals(&n).ignored[FLOWS_IGN_RULE].packets, 1);
	ASSERT_EQ_U(totals(&n).counted_packets, 0);

	/* The container restarted in the same cgroup: no rule until set. */
	flow_counter_detach(n.a);
	n.a = NULL;
	ASSERT_OK(flow_counter_attach(n.c, n.dir, &n.a));
	udp_send(fd, PEER, 8125, 10);
	ASSERT_EQ_U(udp_recv(sink, &from), 10);
	struct flow_info f;
	ASSERT_TRUE(find_flow(&n, IPPROTO_UDP, local_port_of(fd), 8125, &f));
	ASSERT_EQ_U(f.class, FLOWS_COUNTED);
	ASSERT_EQ_U(totals(&n).counted_packets, 1);
}

TEST(test_more_flows_than_the_map_holds_are_evicted_and_counted)
{
	struct net n;
	net_setup(&n, 64);
	int sink = udp_peer(&n, 7000);
	enum { FLOWS = 100, LEN = 100 };
	uint64_t t0 = coarse_ns();
	unsigned short last_port = 0;
	int *fds = container_sockets(&n, FLOWS, SOCK_DGRAM);
	for (int i = 0; i < FLOWS; i++) {
		udp_send(fds[i], PEER, 7000, LEN);
		last_port = local_port_of(fds[i]);
		struct sockaddr_in from;
		ASSERT_EQ_U(udp_recv(sink, &from), LEN); /* never dropped */
	}

	struct flow_map_stats m;
	ASSERT_OK(flow_counter_map_stats(n.c, &m));
	ASSERT_EQ_U(m.capacity, 64);
	ASSERT_EQ_U(m.created, FLOWS);
	ASSERT_TRUE(m.live <= 64);
	ASSERT_GE_U(m.evicted, FLOWS - 64);
	ASSERT_EQ_U(m.evicted, m.created - m.live - m.deleted);
	ASSERT_EQ_U(m.deleted, 0);
	ASSERT_EQ_U(count_flows(&n), m.live);

	/* Losing detail loses no activity. */
	struct flow_totals t = totals(&n);
	ASSERT_EQ_U(t.flows_created, FLOWS);
	ASSERT_EQ_U(t.counted_packets, FLOWS);
	ASSERT_EQ_U(t.counted_bytes, FLOWS * (20 + 8 + LEN));
	ASSERT_TRUE(t.counted_last_ns >= t0);
	ASSERT_EQ_U(t.last_counted.local_port, last_port);
	ASSERT_EQ_U(peer_port_of(&t.last_counted), 7000);
	ASSERT_EQ_U(t.last_counted_dir, FLOWS_DIR_OUT);
}

TEST(test_detach_deletes_the_cgroups_flows)
{
	struct net n;
	net_setup(&n, 0);
	int sink = udp_peer(&n, 7000);
	for (int i = 0; i < 3; i++) {
		int fd = container_socket(&n, AF_INET, SOCK_DGRAM, 0);
		udp_send(fd, PEER, 7000, 10);
		struct sockaddr_in from;
		ASSERT_EQ_U(udp_recv(sink, &from), 10);
	}
	ASSERT_EQ_U(count_flows(&n), 3);

	flow_counter_detach(n.a);
	n.a = NULL;
	struct flow_map_stats m;
	ASSERT_OK(flow_counter_map_stats(n.c, &m));
	ASSERT_EQ_U(m.live, 0);
	ASSERT_EQ_U(m.deleted, 3);
	ASSERT_EQ_U(m.created, 3);
	ASSERT_EQ_U(m.evicted, 0);
}
