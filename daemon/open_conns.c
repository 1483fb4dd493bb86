// SPDX-License-Identifier: MIT
/*
 * A network namespace's open TCP connections, from its socket table by
 * NETLINK_SOCK_DIAG: two dumps per family, the listening sockets (which
 * local ports a peer may have opened a connection to) and the established
 * ones with their tcp_info (payload counts, ms since the last payload each
 * way). The netlink socket is made inside the namespace, as sock_diag only
 * answers for the namespace its socket lives in.
 */
#include "dozed/open_conns.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dozed/log.h"
#include "dozed/macro.h"

/*
 * At most this many connections are returned: a container with more (a
 * crowd of idle websockets) still costs one bounded allocation (about
 * 1.2 MiB). When the table holds more, those that decide an idle deadline
 * are kept first (unanswered, then inbound), so the cap never hides a
 * blocker behind thousands of outbound ones.
 */
#define OPEN_CONNS_MAX 4096

/* One dump's datagrams: 32 KiB is the most the kernel puts in one (it sizes
 * them by the reader's buffer up to that); twice that, so none is cut. */
#define DIAG_BUF_SIZE (64 * 1024)

/* TCP states as inet_diag numbers them (include/net/tcp_states.h). */
#define DIAG_TCP_ESTABLISHED 1
#define DIAG_TCP_CLOSE_WAIT  8
#define DIAG_TCP_LISTEN	     10

/*
 * A NETLINK_SOCK_DIAG socket in namespace netns_fd. The calling thread goes
 * there for socket() only and comes back to the namespace it was in. A dump
 * is answered at once; a bound all the same, as this runs in the daemon's
 * event loop.
 */
static int diag_socket_new(int netns_fd)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	/* EINVAL when netns_fd is not a network namespace: nothing changed. */
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int r = fd < 0 ? -errno : fd;
	struct timeval tv = {.tv_sec = 2};
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		close(fd);
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Going back to a namespace this thread was in a moment ago
		 * cannot fail short of the kernel running out of memory. Had
		 * it, every socket the daemon makes from now on (the nft
		 * netlink, the activator's) would be made in the container's
		 * namespace: rules and listeners in the wrong place, silently.
		 * Returning an error cannot undo that; stopping can. */
		log_error_errno(errno, "Failed to return to the daemon's own network namespace "
				       "after opening a socket in a container's; stopping");
		abort();
	}
	return r;
}

static int diag_request_send(int fd, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
	    .nlh =
		{
		    .nlmsg_len = sizeof(msg),
		    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		    .nlmsg_seq = seq,
		},
	    .req =
		{
		    .sdiag_family = family,
		    .sdiag_protocol = IPPROTO_TCP,
		    .idiag_ext = ext,
		    .idiag_states = states,
		},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t n = sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel));
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(msg) ? 0 : -EIO;
}

/* Called once per socket of a dump; 0 or -errno, which ends the dump. */
typedef int (*diag_fn)(const struct inet_diag_msg *m, const struct tcp_info *info, size_t info_len,
		       void *userdata);

/* Copies the socket's tcp_info into *info; returns the length the kernel
 * gave (0: none), as an older kernel's is shorter and lacks the last fields. */
static size_t diag_info_get(const struct nlmsghdr *h, const struct inet_diag_msg *m,
			    struct tcp_info *info)
{
	memset(info, 0, sizeof(*info));
	size_t got = 0;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type != INET_DIAG_INFO)
			continue;
		got = RTA_PAYLOAD(a) < sizeof(*info) ? RTA_PAYLOAD(a) : sizeof(*info);
		memcpy(info, RTA_DATA(a), got);
	}
	return got;
}

/* Walks one datagram; 1 when the dump's end was in it, 0 to read on. */
static int diag_datagram_walk(const void *buf, size_t len, uint32_t seq, diag_fn fn, void *userdata)
{
	/* NLMSG_OK and NLMSG_NEXT, without their mix of signed and unsigned. */
	size_t left = len;
	const struct nlmsghdr *h = buf;
	for (; left >= sizeof(*h) && h->nlmsg_len >= sizeof(*h) && h->nlmsg_len <= left;
	     left -= NLMSG_ALIGN(h->nlmsg_len) < left ? NLMSG_ALIGN(h->nlmsg_len) : left,
	     h = (const struct nlmsghdr *)((const char *)h + NLMSG_ALIGN(h->nlmsg_len))) {
		if (h->nlmsg_seq != seq)
			continue; /* not an answer to this request */
		if (h->nlmsg_type == NLMSG_DONE) {
			/* A dump that failed part way says so here. */
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
				int err = *(const int *)NLMSG_DATA(h);
				if (err < 0)
					return err;
			}
			return 1;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return -EBADMSG;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error < 0 ? e->error : -EPROTO;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
			return -EBADMSG;
		const struct inet_diag_msg *m = NLMSG_DATA(h);
		struct tcp_info info;
		size_t info_len = diag_info_get(h, m, &info);
		int r = fn(m, &info, info_len, userdata);
		if (r < 0)
			return r;
	}
	/* The kernel sends whole messages; bytes left over mean a cut one. */
	return left == 0 ? 0 : -EBADMSG;
}

/* Dumps the TCP sockets of family in the states (a TCPF_* mask), calling fn
 * for each, until the kernel says done. */
static int diag_dump(int fd, void *buf, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq,
		     diag_fn fn, void *userdata)
{
	int r = diag_request_send(fd, family, states, ext, seq);
	if (r < 0)
		return r;
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = buf, .iov_len = DIAG_BUF_SIZE};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		if (mh.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		if (from.nl_pid != 0)
			continue; /* only the kernel answers a dump */
		r = diag_datagram_walk(buf, (size_t)n, seq, fn, userdata);
		if (r != 0)
			return r < 0 ? r : 0;
	}
}

/* --- the listening ports --------------------------------------------------------- */

struct port_set {
	uint64_t bits[65536 / 64];
};

static int listener_add(const struct inet_diag_msg *m, const struct tcp_info *info, size_t info_len,
			void *userdata)
{
	(void)info;
	(void)info_len;
	struct port_set *ports = userdata;
	uint16_t port = ntohs(m->id.idiag_sport);
	ports->bits[port / 64] |= UINT64_C(1) << (port % 64);
	return 0;
}

static bool port_set_has(const struct port_set *ports, uint16_t port)
{
	return ports->bits[port / 64] & (UINT64_C(1) << (port % 64));
}

/* --- the established connections ------------------------------------------------- */

struct conn_list {
	const struct port_set *listening;
	struct open_conn *items;
	size_t n;
	/* Past the cap: the first index that may still hold an entry of rank
	 * below 1 and below 2 (ranks only rise, so both only move forward). */
	size_t below[2];
};

/* What makes a connection worth keeping when the list is full. */
static int conn_rank(const struct open_conn *c)
{
	return c->unanswered ? 2 : c->inbound ? 1 : 0;
}

/* An address from sock_diag (network order, 4 words) as a sockaddr; a
 * v4-mapped IPv6 address becomes the IPv4 one. */
static void diag_addr_get(uint8_t family, const __be32 addr[4], __be16 port,
			  struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
	if (family == AF_INET6) {
		struct in6_addr a;
		memcpy(&a, addr, sizeof(a));
		if (!IN6_IS_ADDR_V4MAPPED(&a)) {
			in6->sin6_family = AF_INET6;
			in6->sin6_addr = a;
			in6->sin6_port = port;
			return;
		}
		memcpy(&in4->sin_addr, &a.s6_addr[12], 4);
	} else {
		memcpy(&in4->sin_addr, addr, 4);
	}
	in4->sin_family = AF_INET;
	in4->sin_port = port;
}

static bool addr_is_loopback(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

/* Where a connection of this rank goes when the list is full: the slot of
 * one ranked lower, or none (-1: it is dropped). */
static ssize_t conn_slot_to_replace(struct conn_list *l, int rank)
{
	for (int below = 0; below < rank; below++) {
		/* below[k]: entries before it all rank above k. */
		size_t *i = &l->below[below];
		while (*i < l->n && conn_rank(&l->items[*i]) > below)
			(*i)++;
		if (*i < l->n)
			return (ssize_t)*i;
	}
	return -1;
}

#define INFO_HAS(len, field)                                                                       \
	((len) >= offsetof(struct tcp_info, field) + sizeof(((struct tcp_info *)0)->field))

static int conn_add(const struct inet_diag_msg *m, const struct tcp_info *info, size_t info_len,
		    void *userdata)
{
	struct conn_list *l = userdata;
	/* CLOSE_WAIT: the peer half-closed after its request (nc -N, a
	 * script's echo | nc) and waits for the answer still. */
	if (m->idiag_state != DIAG_TCP_ESTABLISHED && m->idiag_state != DIAG_TCP_CLOSE_WAIT)
		return 0;
	struct open_conn c = {.half_closed = m->idiag_state == DIAG_TCP_CLOSE_WAIT};
	diag_addr_get(m->idiag_family, m->id.idiag_dst, m->id.idiag_dport, &c.peer);
	if (addr_is_loopback(&c.peer))
		return 0; /* never leaves the container */
	diag_addr_get(m->idiag_family, m->id.idiag_src, m->id.idiag_sport, &c.local);
	c.inbound = port_set_has(l->listening, ntohs(m->id.idiag_sport));
	if (INFO_HAS(info_len, tcpi_bytes_received)) {
		c.last_recv_ms = info->tcpi_last_data_recv;
		c.last_sent_ms = info->tcpi_last_data_sent;
		c.bytes_received = info->tcpi_bytes_received;
		/* The peer's FIN takes a sequence number, which the count holds. */
		if (c.half_closed && c.bytes_received > 0)
			c.bytes_received--;
		/* Payload as it left (retransmissions included), counted when
		 * sent: bytes_acked would lag a delayed ACK behind an answer.
		 * Before Linux 4.19 only the acknowledged count exists. */
		c.bytes_sent = INFO_HAS(info_len, tcpi_bytes_sent) ? info->tcpi_bytes_sent
								   : info->tcpi_bytes_acked;
		/* Both times are "ms ago", in jiffies: the peer's payload came
		 * after the container's last. The handshake stamps both, so a
		 * request sent at once after connecting has the same time as
		 * "sent" until a jiffy passes: equal with nothing ever sent is
		 * unanswered too (a client of Redis or PostgreSQL sends within
		 * microseconds); equal after an answer is answered. */
		c.unanswered = c.bytes_received > 0 &&
			       (c.last_recv_ms < c.last_sent_ms ||
				(c.last_recv_ms == c.last_sent_ms && c.bytes_sent == 0));
	}
	if (l->n < OPEN_CONNS_MAX) {
		l->items[l->n++] = c;
		return 0;
	}
	ssize_t slot = conn_slot_to_replace(l, conn_rank(&c));
	if (slot >= 0)
		l->items[slot] = c;
	return 0;
}

int open_conns_list(int netns_fd, struct open_conn **out, size_t *n)
{
	assert(out);
	assert(n);
	*out = NULL;
	*n = 0;

	_cleanup_close_ int fd = diag_socket_new(netns_fd);
	if (fd < 0)
		return fd;

	_cleanup_free_ void *buf = malloc(DIAG_BUF_SIZE);
	_cleanup_free_ struct port_set *listening = calloc(1, sizeof(*listening));
	_cleanup_free_ struct open_conn *items = malloc(OPEN_CONNS_MAX * sizeof(*items));
	if (!buf || !listening || !items)
		return -ENOMEM;

	/* The listeners first: a connection that shows up between the dumps
	 * to a listener made meanwhile is seen as outbound, once. */
	static const uint8_t families[] = {AF_INET, AF_INET6};
	uint32_t seq = 1;
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		int r = diag_dump(fd, buf, families[i], 1u << DIAG_TCP_LISTEN, 0, seq++,
				  listener_add, listening);
		if (r < 0)
			return r;
	}
	struct conn_list l = {.listening = listening, .items = items};
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		int r = diag_dump(fd, buf, families[i],
				  1u << DIAG_TCP_ESTABLISHED | 1u << DIAG_TCP_CLOSE_WAIT,
				  1 << (INET_DIAG_INFO - 1), seq++, conn_add, &l);
		if (r < 0)
			return r;
	}
	if (l.n == 0)
		return 0;
	struct open_conn *shrunk = realloc(items, l.n * sizeof(*items));
	if (shrunk)
		items = shrunk;
	*out = TAKE_PTR(items);
	*n = l.n;
	return 0;
}

/* --- the fullest listener's backlog ------------------------------------------------ */

struct backlog {
	unsigned queued, max;
};

static int backlog_add(const struct inet_diag_msg *m, const struct tcp_info *info, size_t info_len,
		       void *userdata)
{
	(void)info;
	(void)info_len;
	struct backlog *b = userdata;
	/* A listener's rqueue is its accept queue, its wqueue that queue's
	 * bound (the listen() backlog, capped by somaxconn). */
	uint64_t q = m->idiag_rqueue, mx = m->idiag_wqueue ? m->idiag_wqueue : 1;
	if (b->max == 0 || q * b->max > (uint64_t)b->queued * mx) {
		b->queued = m->idiag_rqueue;
		b->max = m->idiag_wqueue;
	}
	return 0;
}

int open_conns_backlog(int netns_fd, unsigned *queued, unsigned *max)
{
	*queued = *max = 0;
	_cleanup_close_ int fd = diag_socket_new(netns_fd);
	if (fd < 0)
		return fd;
	_cleanup_free_ void *buf = malloc(DIAG_BUF_SIZE);
	if (!buf)
		return -ENOMEM;
	struct backlog b = {0};
	static const uint8_t families[] = {AF_INET, AF_INET6};
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		int r = diag_dump(fd, buf, families[i], 1u << DIAG_TCP_LISTEN, 0, (uint32_t)i + 1,
				  backlog_add, &b);
		if (r < 0)
			return r;
	}
	*queued = b.queued;
	*max = b.max;
	return 0;
}
