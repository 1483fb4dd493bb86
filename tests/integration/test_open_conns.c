// SPDX-License-Identifier: MIT
/*
 * open_conns_list on the real kernel. The test's own private namespace is A
 * (the container), joined by a veth pair to namespace B (a client on another
 * host): A is 10.214.0.1 and fd14::1, B 10.214.0.2 and fd14::2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "dozed/macro.h"
#include "dozed/open_conns.h"
#include "harness.h"
#include "netns.h"
#include "nofile.h"
#include "tcp.h"

#define A4 "10.214.0.1"
#define B4 "10.214.0.2"
#define A6 "fd14::1"
#define B6 "fd14::2"

struct world {
	int a, b; /* namespace fds */
};

static ino_t netns_inode(void)
{
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) < 0)
		FAIL("stat /proc/thread-self/ns/net: %s", strerror(errno));
	return st.st_ino;
}

static struct world world_new(void)
{
	struct world w;
	ASSERT_OK(netns_enter_private());
	if (netns_add_peer(A4 "/24", B4 "/24", &w.b) < 0)
		FAIL("cannot make a namespace joined by a veth pair: ip(8) is needed");
	test_defer_close(w.b);
	const char *a6[] = {"ip", "addr", "add", A6 "/64", "dev", "dzv0", "nodad", NULL};
	const char *b6[] = {"ip", "addr", "add", B6 "/64", "dev", "dzv1", "nodad", NULL};
	cmd_run_ok(-1, a6);
	cmd_run_ok(w.b, b6);
	w.a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(w.a >= 0);
	test_defer_close(w.a);
	return w;
}

/* A connected socket made in namespace ns (-1: here) to addr:port. */
static int connect_from(int ns, const char *addr, uint16_t port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	ASSERT_OK(tcp_sockaddr(addr, port, &sa, &len));
	int fd = netns_socket(ns, sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC);
	ASSERT_OK(fd);
	test_defer_close(fd);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		FAIL("connect to %s:%u: %s", addr, port, strerror(errno));
	return fd;
}

static int listen_in(int ns, const char *addr, uint16_t port)
{
	int fd;
	if (ns < 0) {
		fd = tcp_listen(addr, port);
	} else {
		/* tcp_listen in B: made there, bound and listening from here. */
		struct sockaddr_storage sa;
		socklen_t len;
		ASSERT_OK(tcp_sockaddr(addr, port, &sa, &len));
		fd = netns_socket(ns, sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC);
		ASSERT_OK(fd);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 4096) < 0)
			FAIL("listen on %s:%u in B: %s", addr, port, strerror(errno));
	}
	ASSERT_OK(fd);
	test_defer_close(fd);
	return fd;
}

static int accept_one(int lfd)
{
	int fd = tcp_accept_within(lfd, 10000);
	ASSERT_OK(fd);
	test_defer_close(fd);
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&sa, &len));
	return ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
					     : ((struct sockaddr_in6 *)&sa)->sin6_port);
}

/* "10.214.0.1:7001" or "[fd14::1]:7001". */
static const char *addr_text(const struct sockaddr_storage *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(in4->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, size, "family %d", sa->ss_family);
	}
	return buf;
}

struct listing {
	struct open_conn *c;
	size_t n;
};

/* The last listings, freed when their slot is used again or the test ends:
 * a polling loop makes many, the harness holds few cleanups. */
static struct listing kept[8];
static size_t n_kept;

static void kept_free(void *unused)
{
	(void)unused;
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		free(kept[i].c);
}

/* The connections of namespace ns; the caller is back where it was. */
static const struct listing *list_of(int ns)
{
	if (n_kept == 0)
		test_defer(kept_free, NULL);
	struct listing *slot = &kept[n_kept++ % ARRAY_SIZE(kept)];
	free(slot->c);
	*slot = (struct listing){0};
	ino_t before = netns_inode();
	struct listing l = {0};
	int r = open_conns_list(ns, &l.c, &l.n);
	*slot = l;
	ASSERT_OK(r);
	ASSERT_EQ_U(netns_inode(), before);
	ASSERT_TRUE((l.n == 0) == (l.c == NULL));
	return slot;
}

/* The connection whose peer is peer (text as addr_text), or NULL. */
static const struct open_conn *find_peer(const struct listing *l, const char *peer)
{
	char buf[80];
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(addr_text(&l->c[i].peer, buf, sizeof(buf)), peer) == 0)
			return &l->c[i];
	return NULL;
}

static const struct open_conn *must_find(const struct listing *l, const char *peer)
{
	const struct open_conn *c = find_peer(l, peer);
	if (!c) {
		char buf[80];
		fprintf(stderr, "listed (%zu):\n", l->n);
		for (size_t i = 0; i < l->n; i++)
			fprintf(stderr, "  peer %s\n", addr_text(&l->c[i].peer, buf, sizeof(buf)));
		FAIL("no open connection with peer %s", peer);
	}
	return c;
}

static const char *text(const struct sockaddr_storage *sa)
{
	static char buf[80];
	return addr_text(sa, buf, sizeof(buf));
}

static void peer_text(char *buf, size_t size, const char *addr, int fd)
{
	snprintf(buf, size, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, local_port(fd));
}

/* Polls A's listing until the connection with peer satisfies want. */
static const struct open_conn *wait_for(int ns, const char *peer,
					bool (*want)(const struct open_conn *), const char *what)
{
	uint64_t deadline = test_now_ms() + 5000;
	for (;;) {
		const struct open_conn *c = find_peer(list_of(ns), peer);
		if (want(c))
			return c;
		if (test_now_ms() > deadline)
			FAIL("the connection with %s never became %s", peer, what);
		usleep(2000);
	}
}

static bool answered(const struct open_conn *c)
{
	return c && !c->unanswered;
}

static bool gone(const struct open_conn *c)
{
	return c == NULL;
}

static bool quiet_10ms(const struct open_conn *c)
{
	return c && c->last_recv_ms >= 10 && c->last_sent_ms >= 10;
}

TEST(test_an_inbound_connection_from_another_host_is_listed_with_its_addresses)
{
	struct world w = world_new();
	int lfd = listen_in(-1, A4, 7001);
	int client = connect_from(w.b, A4, 7001);
	(void)accept_one(lfd);
	char peer[80];
	peer_text(peer, sizeof(peer), B4, client);

	const struct listing *l = list_of(w.a);
	ASSERT_EQ_U(l->n, 1);
	const struct open_conn *c = must_find(l, peer);
	ASSERT_STREQ(text(&c->local), A4 ":7001");
	ASSERT_TRUE(c->inbound);
	ASSERT_TRUE(!c->unanswered);
	ASSERT_EQ_U(c->bytes_received, 0);
	ASSERT_EQ_U(c->bytes_sent, 0);
}

TEST(test_a_request_read_and_not_answered_is_unanswered_until_the_answer)
{
	struct world w = world_new();
	int lfd = listen_in(-1, A4, 7001);
	int client = connect_from(w.b, A4, 7001);
	int server = accept_one(lfd);
	char peer[80];
	peer_text(peer, sizeof(peer), B4, client);

	/* Sent at once after connecting, as redis-cli or psql do: within the
	 * handshake's jiffy, both times are equal. */
	char req[1234], got[sizeof(req)];
	memset(req, 'q', sizeof(req));
	ASSERT_OK(tcp_write_all(client, req, sizeof(req)));
	ASSERT_EQ_U(tcp_read_all(server, got, sizeof(got)), sizeof(req));
	const struct open_conn *c = must_find(list_of(w.a), peer);
	ASSERT_TRUE(c->unanswered);
	ASSERT_EQ_U(c->bytes_received, sizeof(req));
	ASSERT_EQ_U(c->bytes_sent, 0);

	char ans[77];
	memset(ans, 'a', sizeof(ans));
	ASSERT_OK(tcp_write_all(server, ans, sizeof(ans)));
	c = wait_for(w.a, peer, answered, "answered");
	ASSERT_EQ_U(c->bytes_received, sizeof(req));
	ASSERT_EQ_U(c->bytes_sent, sizeof(ans));
	ASSERT_EQ_U(tcp_read_all(client, got, sizeof(ans)), sizeof(ans));

	/* A second request, well after the answer: its time is the later one. */
	wait_for(w.a, peer, quiet_10ms, "quiet for 10 ms");
	ASSERT_OK(tcp_write_all(client, req, 100));
	ASSERT_EQ_U(tcp_read_all(server, got, 100), 100);
	c = must_find(list_of(w.a), peer);
	ASSERT_TRUE(c->unanswered);
	ASSERT_TRUE(c->last_recv_ms < c->last_sent_ms);
	ASSERT_EQ_U(c->bytes_received, sizeof(req) + 100);
	ASSERT_EQ_U(c->bytes_sent, sizeof(ans));
}

TEST(test_a_connection_the_namespace_opened_is_not_inbound)
{
	struct world w = world_new();
	/* A listens too, on another port: its listeners decide, not their number. */
	(void)listen_in(-1, "0.0.0.0", 7001);
	int lfd = listen_in(w.b, B4, 7002);
	int fd = connect_from(-1, B4, 7002);
	(void)accept_one(lfd);

	const struct listing *l = list_of(w.a);
	ASSERT_EQ_U(l->n, 1);
	const struct open_conn *c = must_find(l, B4 ":7002");
	ASSERT_EQ_U(local_port(fd), ntohs(((struct sockaddr_in *)&c->local)->sin_port));
	ASSERT_TRUE(!c->inbound);
}

TEST(test_loopback_connections_inside_the_namespace_are_left_out)
{
	struct world w = world_new();
	int l4 = listen_in(-1, "127.0.0.1", 7003);
	int l6 = listen_in(-1, "::1", 7003);
	/* Dual-stack: 127.0.0.1 reaches it as ::ffff:127.0.0.1. */
	int mapped = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(mapped >= 0);
	test_defer_close(mapped);
	struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(7004)};
	ASSERT_OK(bind(mapped, (struct sockaddr *)&any, sizeof(any)));
	ASSERT_OK(listen(mapped, 16));
	(void)connect_from(-1, "127.0.0.1", 7003);
	(void)connect_from(-1, "::1", 7003);
	(void)connect_from(-1, "127.0.0.1", 7004);
	(void)connect_from(-1, "127.1.2.3", 7004);
	(void)accept_one(l4);
	(void)accept_one(l6);
	(void)accept_one(mapped);
	(void)accept_one(mapped);
	ASSERT_EQ_U(list_of(w.a)->n, 0);

	/* One from B beside them is the only one. */
	int client = connect_from(w.b, A4, 7004);
	(void)accept_one(mapped);
	char peer[80];
	peer_text(peer, sizeof(peer), B4, client);
	const struct listing *l = list_of(w.a);
	ASSERT_EQ_U(l->n, 1);
	(void)must_find(l, peer);
}

TEST(test_ipv6_peers_and_v4_mapped_ones_are_listed_in_their_own_family)
{
	struct world w = world_new();
	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0); /* dual-stack */
	ASSERT_TRUE(lfd >= 0);
	test_defer_close(lfd);
	struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(7005)};
	ASSERT_OK(bind(lfd, (struct sockaddr *)&any, sizeof(any)));
	ASSERT_OK(listen(lfd, 16));
	int c6 = connect_from(w.b, A6, 7005);
	(void)accept_one(lfd);
	int c4 = connect_from(w.b, A4, 7005);
	(void)accept_one(lfd);

	const struct listing *l = list_of(w.a);
	ASSERT_EQ_U(l->n, 2);
	char peer[80];
	peer_text(peer, sizeof(peer), B6, c6);
	const struct open_conn *c = must_find(l, peer);
	ASSERT_EQ_U(c->local.ss_family, AF_INET6);
	ASSERT_STREQ(text(&c->local), "[" A6 "]:7005");
	ASSERT_TRUE(c->inbound);
	peer_text(peer, sizeof(peer), B4, c4);
	c = must_find(l, peer);
	ASSERT_EQ_U(c->local.ss_family, AF_INET);
	ASSERT_STREQ(text(&c->local), A4 ":7005");
	ASSERT_TRUE(c->inbound);
}

TEST(test_a_closed_connection_disappears)
{
	struct world w = world_new();
	int lfd = listen_in(-1, A4, 7001);
	int client = connect_from(w.b, A4, 7001);
	int server = accept_one(lfd);
	char peer[80];
	peer_text(peer, sizeof(peer), B4, client);
	(void)must_find(list_of(w.a), peer);

	/* The peer closes: the container's side waits for its own close in
	 * CLOSE_WAIT, listed as half closed; closed there too, it is gone. */
	ASSERT_OK(shutdown(client, SHUT_RDWR));
	char c;
	ASSERT_EQ_U(read(server, &c, 1), 0);
	const struct open_conn *half = must_find(list_of(w.a), peer);
	ASSERT_TRUE(half->half_closed);
	ASSERT_TRUE(!half->unanswered);
	ASSERT_OK(close(server));
	wait_for(w.a, peer, gone, "gone");
	ASSERT_EQ_U(list_of(w.a)->n, 0);
}

TEST(test_a_request_before_a_half_close_is_unanswered_until_the_answer)
{
	struct world w = world_new();
	int lfd = listen_in(-1, A4, 7001);
	int client = connect_from(w.b, A4, 7001);
	int server = accept_one(lfd);
	char peer[80];
	peer_text(peer, sizeof(peer), B4, client);
	/* As `echo CMD | nc -N` does: the request, then the end of its side. */
	char req[40], got[sizeof(req)];
	memset(req, 'r', sizeof(req));
	ASSERT_OK(tcp_write_all(client, req, sizeof(req)));
	ASSERT_OK(shutdown(client, SHUT_WR));
	ASSERT_EQ_U(tcp_read_all(server, got, sizeof(got)), sizeof(req));
	char c;
	ASSERT_EQ_U(read(server, &c, 1), 0);
	const struct open_conn *o = must_find(list_of(w.a), peer);
	ASSERT_TRUE(o->half_closed);
	ASSERT_TRUE(o->inbound);
	ASSERT_TRUE(o->unanswered);
	ASSERT_EQ_U(o->bytes_received, sizeof(req));
}

TEST(test_another_namespace_is_listed_from_its_own_side)
{
	struct world w = world_new();
	int lfd = listen_in(-1, A4, 7001);
	int client = connect_from(w.b, A4, 7001);
	(void)accept_one(lfd);
	int blfd = listen_in(w.b, B4, 7002);
	int out = connect_from(-1, B4, 7002);
	(void)accept_one(blfd);

	const struct listing *l = list_of(w.b);
	ASSERT_EQ_U(l->n, 2);
	const struct open_conn *c = must_find(l, A4 ":7001");
	ASSERT_TRUE(!c->inbound);
	ASSERT_EQ_U(local_port(client), ntohs(((struct sockaddr_in *)&c->local)->sin_port));
	char peer[80];
	peer_text(peer, sizeof(peer), A4, out);
	c = must_find(l, peer);
	ASSERT_TRUE(c->inbound);
	ASSERT_STREQ(text(&c->local), B4 ":7002");
}

TEST(test_an_fd_that_is_not_a_network_namespace_is_refused)
{
	struct world w = world_new();
	(void)w;
	static const char *const paths[] = {"/proc/self/ns/uts", "/dev/null"};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		_cleanup_close_ int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		ASSERT_TRUE(fd >= 0);
		ino_t before = netns_inode();
		struct open_conn *out = (struct open_conn *)&fd; /* overwritten */
		size_t n = 99;
		ASSERT_ERR(open_conns_list(fd, &out, &n), EINVAL);
		ASSERT_TRUE(out == NULL && n == 0);
		ASSERT_EQ_U(netns_inode(), before);
	}
	struct open_conn *out = NULL;
	size_t n = 0;
	ASSERT_ERR(open_conns_list(-1, &out, &n), EBADF);
	/* The namespace still works: a socket made now is made here. */
	(void)listen_in(-1, A4, 7001);
	ASSERT_EQ_U(list_of(w.a)->n, 0);
}

struct fds {
	size_t n;
	int fd[];
};

static void fds_close(void *p)
{
	struct fds *f = p;
	for (size_t i = 0; i < f->n; i++)
		close(f->fd[i]);
	free(f);
}

TEST(test_past_the_cap_unanswered_connections_are_kept_over_outbound_ones)
{
	/* 9 000 outbound connections of A to three listeners in B (none
	 * accepted: each backlog holds 3 000), then 20 inbound ones whose
	 * peers wait for an answer. The dump's order is the hash table's, so
	 * without the preference most of the 20 would fall past the cap. */
	enum { OUTBOUND = 9000, WAITING = 20 };
	ASSERT_OK(nofile_raise(OUTBOUND + WAITING + 256));
	struct world w = world_new();
	for (uint16_t p = 7100; p < 7103; p++)
		(void)listen_in(w.b, B4, p);
	struct fds *out = calloc(1, sizeof(*out) + OUTBOUND * sizeof(int));
	ASSERT_TRUE(out != NULL);
	test_defer(fds_close, out);
	for (int i = 0; i < OUTBOUND; i++) {
		int fd = tcp_connect(B4, (uint16_t)(7100 + i % 3), 0);
		if (fd < 0)
			FAIL("outbound connection %d: %s", i, strerror(-fd));
		out->fd[out->n++] = fd;
	}
	int lfd = listen_in(-1, A4, 7001);
	for (int i = 0; i < WAITING; i++) {
		int client = connect_from(w.b, A4, 7001);
		ASSERT_OK(tcp_write_all(client, "GET", 3));
	}
	/* Each request is in the server's socket once it is acknowledged. */
	uint64_t deadline = test_now_ms() + 10000;
	size_t waiting, n;
	do {
		const struct listing *l = list_of(w.a);
		n = l->n;
		waiting = 0;
		for (size_t i = 0; i < l->n; i++)
			waiting +=
			    l->c[i].unanswered && l->c[i].inbound && l->c[i].bytes_received == 3;
	} while (waiting < WAITING && test_now_ms() < deadline && usleep(10000) == 0);
	ASSERT_EQ_U(n, 4096);
	ASSERT_EQ_U(waiting, WAITING);
	(void)lfd;
}
