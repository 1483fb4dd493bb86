/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The flow tests' world: a test cgroup is the container, the test's network
 * namespace its host side, and a peer namespace joined by a veth pair the
 * world (traffic to an address of the same namespace would go over lo).
 * Sockets the container owns are made from inside its cgroup; the peer's
 * from outside it, in the peer namespace. Header-only: each test binary is
 * one file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

static inline uint64_t coarse_ns(void)
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

static inline void free_counter(void *c)
{
	flow_counter_free(c);
}

static inline void detach_net(void *p)
{
	struct net *n = p;
	flow_counter_detach(n->a);
	n->a = NULL;
}

/* The world, for the test that calls it; cleaned up when it ends. On the
 * heap: cleanups run after the test function returned. */
static inline struct net *net_setup(uint32_t max_flows)
{
	struct net *n = calloc(1, sizeof(*n));
	ASSERT_TRUE(n);
	n->peer = -1;
	test_defer(free, n);
	ASSERT_OK(netns_enter_private());
	ASSERT_OK(netns_add_peer(HERE "/24", PEER "/24", &n->peer));
	test_defer_close(n->peer);
	n->dir = testcg_create("container");
	test_defer(free, n->dir);
	ASSERT_OK(flow_counter_new(max_flows, &n->c));
	test_defer(free_counter, n->c);
	ASSERT_OK(flow_counter_attach(n->c, n->dir, &n->a));
	test_defer(detach_net, n);
	return n;
}

/* A socket of the container: a socket belongs to the cgroup its creator
 * was in when it was made, wherever the creator goes next. */
static inline int socket_in(const char *dir, int domain, int type, int proto)
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

static inline void close_all(void *p)
{
	struct fd_set_ *set = p;
	for (size_t i = 0; i < set->n; i++)
		close(set->fd[i]);
	free(set);
}

/* count IPv4 sockets of the container, closed when the test ends. */
static inline int *container_sockets(const struct net *n, size_t count, int type)
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

static inline int peer_socket(const struct net *n, int domain, int type)
{
	int fd = netns_socket(n->peer, domain, type | SOCK_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	test_defer_close(fd);
	return fd;
}

static inline int container_socket(const struct net *n, int domain, int type, int proto)
{
	return socket_in(n->dir, domain, type, proto);
}

static inline struct sockaddr_in sin_of(const char *addr, unsigned short port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	ASSERT_TRUE(inet_pton(AF_INET, addr, &sa.sin_addr) == 1);
	return sa;
}

static inline unsigned short local_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&ss, &len));
	return ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sockaddr_in6 */
}

static inline unsigned short listen_on(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;
	ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_OK(bind(fd, sa, len));
	ASSERT_OK(listen(fd, 16));
	return local_port_of(fd);
}

static inline void write_all(int fd, size_t n, char fill)
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
static inline void read_exactly(int fd, size_t n, char fill)
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

static inline struct flow_totals totals(const struct net *n)
{
	struct flow_totals t;
	ASSERT_OK(flow_counter_read(n->c, n->a, &t));
	return t;
}

static inline uint16_t peer_port_of(const struct flow_info *f)
{
	return ntohs(((const struct sockaddr_in *)&f->peer)->sin_port);
}

static inline bool peer_is(const struct flow_info *f, const char *addr)
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
static inline bool find_flow(const struct net *n, uint8_t proto, uint16_t local, uint16_t peer,
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

static inline size_t count_flows(const struct net *n)
{
	struct flow_info *flows = NULL;
	size_t count = 0;
	ASSERT_OK(flow_counter_list(n->c, n->a, 0, &flows, &count));
	free(flows);
	return count;
}

/* Both sides' FIN went through and nothing moved while the totals were
 * read: f and t are one consistent picture of a finished connection. */
static inline bool closed_both_ways(const struct net *n, uint16_t local, uint16_t peer,
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
static inline int peer_connects(const struct net *n, int lfd, unsigned short port, int *accepted)
{
	int pfd = peer_socket(n, AF_INET, SOCK_STREAM);
	struct sockaddr_in sa = sin_of(HERE, port);
	ASSERT_OK(connect(pfd, (struct sockaddr *)&sa, sizeof(sa)));
	*accepted = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(*accepted >= 0);
	return pfd;
}

static inline int udp_peer(const struct net *n, unsigned short port)
{
	int fd = peer_socket(n, AF_INET, SOCK_DGRAM);
	struct sockaddr_in sa = sin_of(PEER, port);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static inline void udp_send(int fd, const char *addr, unsigned short port, size_t len)
{
	char buf[2048];
	memset(buf, 'u', len);
	struct sockaddr_in sa = sin_of(addr, port);
	ASSERT_EQ_U(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)), len);
}

static inline size_t udp_recv(int fd, struct sockaddr_in *from)
{
	char buf[2048];
	socklen_t len = sizeof(*from);
	ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &len);
	ASSERT_TRUE(r >= 0);
	return (size_t)r;
}

static inline void set_rules(const struct net *n, const struct flow_rule *rules, size_t count)
{
	struct flow_rules r = {.n = count};
	if (count)
		memcpy(r.rule, rules, count * sizeof(*rules));
	ASSERT_OK(flow_counter_set_rules(n->c, n->a, &r));
}

static inline struct flow_rule rule_cidr4(const char *addr, unsigned prefix, uint16_t port)
{
	struct flow_rule r = {
	    .has_addr = true, .family = AF_INET, .prefix_len = (uint8_t)prefix, .port = port};
	ASSERT_TRUE(inet_pton(AF_INET, addr, r.addr) == 1);
	return r;
}

/* A container UDP socket bound to HERE, its port in *port. */
static inline int udp_server(const struct net *n, unsigned short *port)
{
	int fd = container_socket(n, AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = sin_of(HERE, 0);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	*port = local_port_of(fd);
	return fd;
}

/* fd00:211::1 on the container's side of the veth, fd00:211::2 on the
 * peer's, and a container listener on the first: its socket, its address
 * and port in *sa. */
static inline int v6_listener(const struct net *n, struct sockaddr_in6 *sa)
{
	const char *here[] = {"ip", "addr", "add", "fd00:211::1/64", "dev", "dzv0", "nodad", NULL};
	const char *there[] = {"ip", "addr", "add", "fd00:211::2/64", "dev", "dzv1", "nodad", NULL};
	ASSERT_EQ_U(run_cmd(-1, here, NULL), 0);
	ASSERT_EQ_U(run_cmd(n->peer, there, NULL), 0);
	int lfd = container_socket(n, AF_INET6, SOCK_STREAM, 0);
	*sa = (struct sockaddr_in6){.sin6_family = AF_INET6};
	ASSERT_TRUE(inet_pton(AF_INET6, "fd00:211::1", &sa->sin6_addr) == 1);
	sa->sin6_port = htons(listen_on(lfd, (struct sockaddr *)sa, sizeof(*sa)));
	return lfd;
}

static inline uint16_t icmp_checksum(const void *data, size_t len)
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

#define ECHO_LEN 64 /* an echo request's ICMP bytes: header and payload */

/* An echo request (identifier id, sequence 1) from raw ICMP socket fd to addr. */
static inline void echo_request_send(int fd, const char *addr, uint16_t id)
{
	uint8_t echo[ECHO_LEN] = {ICMP_ECHO, 0, 0, 0, (uint8_t)(id >> 8), (uint8_t)id, 0, 1};
	uint16_t sum = icmp_checksum(echo, sizeof(echo));
	memcpy(echo + 2, &sum, 2);
	struct sockaddr_in sa = sin_of(addr, 0);
	ASSERT_EQ_U(sendto(fd, echo, sizeof(echo), 0, (struct sockaddr *)&sa, sizeof(sa)),
		    sizeof(echo));
}

/* Reads a raw ICMP socket (IP header first) until an echo reply. */
static inline void echo_reply_wait(int fd)
{
	uint8_t reply[256];
	for (;;) {
		ssize_t r = recv(fd, reply, sizeof(reply), 0);
		ASSERT_TRUE(r > 0);
		size_t ihl = (reply[0] & 0x0f) * 4u;
		if ((size_t)r >= ihl + 8 && reply[ihl] == ICMP_ECHOREPLY)
			return;
	}
}
