// SPDX-License-Identifier: MIT
/*
 * flood: many connections at once from one process, for the abuse and soak
 * tests (a shell opening 5 000 sockets forks too much to be a fair attacker).
 *
 *   flood [-b SRC [-B K]] tcp ADDR PORT N MODE ARGS...
 *   flood unix PATH N MODE ARGS...
 *
 * MODE:
 *   get PATH TIMEOUT_S      send "GET PATH HTTP/1.0", read each answer to its end
 *   loop PATH SECONDS       the same, each connection replaced by a new one as
 *                           soon as it ends, for SECONDS (or until SIGTERM)
 *   rst PATH BYTES TIMEOUT_S send it, read BYTES of the answer, then reset
 *                           (SO_LINGER 0): a client gone in the middle of a relay
 *   silent HOLD_S           connect and send nothing; hold until HOLD_S or SIGTERM
 *   follow HOLD_S           (unix) ask for events --follow, then never read
 *   send LINE TIMEOUT_S     (unix) send LINE and a newline, read each answer line
 *
 * -b SRC binds the sockets to SRC (IPv4), -B K spreads them over K addresses
 * from SRC on. Prints one line of counts, key=value:
 *   connected  connects that succeeded
 *   ok         answers that began "HTTP/1.x 200" (get), lines with "ok":true (send),
 *              resets sent after BYTES (rst)
 *   bytes      bytes received in all
 *   reset      connections the peer reset (or refused, or ended before BYTES)
 *   eof        connections the peer closed with nothing to read (silent, follow)
 *   open       connections still open at the end (silent, follow: held to the end;
 *              loop: requests under way when it stopped)
 *   timeout    connections unfinished at the deadline (get, rst, send)
 * and what the resets were: refused (the connect failed), rst (a read or
 * send failed: reset by the peer), empty (closed with no answer), bad (closed
 * after an answer that was not a whole "200", or before BYTES).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_GET, MODE_RST, MODE_SILENT, MODE_FOLLOW, MODE_SEND };

struct conn {
	int fd;
	bool connected, done;
	size_t got;
	long long started_ms;
	char head[16];
};

/* Where and how every connection is made. */
struct target {
	bool unix_sock, bind_src;
	struct sockaddr_storage dst;
	socklen_t dlen;
	struct in_addr src;
	unsigned spread;
	int epfd;
};

struct counts {
	unsigned long connected, ok, reset, eof, open, timeout;
	/* What the resets were: refused connects, read errors (RST), answers
	 * that were empty, answers that were not a whole "200". */
	unsigned long refused, rst, empty, bad;
	int refused_errno; /* the last refused connect's */
	unsigned long long bytes;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: flood [-b SRC [-B K]] tcp ADDR PORT N MODE ARGS...\n"
		"       flood unix PATH N MODE ARGS...\n"
		"MODE: get PATH TIMEOUT_S | loop PATH SECONDS | rst PATH BYTES TIMEOUT_S |\n"
		"      silent HOLD_S | follow HOLD_S | send LINE TIMEOUT_S\n");
	return 2;
}

static int open_socket(bool unix_sock, const struct sockaddr *dst, socklen_t dlen,
		       const struct in_addr *src)
{
	int fd =
	    socket(unix_sock ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (src) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = *src};
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	if (connect(fd, dst, dlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void finish(struct conn *c, int epfd)
{
	if (c->done)
		return;
	c->done = true;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
}

/* Opens connection i (again): 0, or -errno with the connection done. */
static int conn_open(const struct target *t, struct conn *cs, long i)
{
	struct in_addr s = t->src;
	s.s_addr = htonl(ntohl(t->src.s_addr) + (uint32_t)(i % t->spread));
	memset(&cs[i], 0, sizeof(cs[i]));
	int fd = open_socket(t->unix_sock, (const struct sockaddr *)&t->dst, t->dlen,
			     t->bind_src && !t->unix_sock ? &s : NULL);
	if (fd < 0) {
		cs[i].done = true;
		return fd;
	}
	cs[i].fd = fd;
	cs[i].started_ms = now_ms();
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
				 .data.u64 = (uint64_t)i};
	epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static void reset_and_finish(struct conn *c, int epfd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	finish(c, epfd);
}

static bool head_ok(const struct conn *c, enum mode m)
{
	if (m == MODE_SEND)
		return memmem(c->head, sizeof(c->head), "\"ok\":true", 9) != NULL;
	return strncmp(c->head, "HTTP/1.", 7) == 0 && strncmp(c->head + 8, " 200", 4) == 0;
}

int main(int argc, char **argv)
{
	struct target t = {.spread = 1};
	int opt;
	while ((opt = getopt(argc, argv, "+b:B:")) != -1) {
		if (opt == 'b' && inet_pton(AF_INET, optarg, &t.src) == 1)
			t.bind_src = true;
		else if (opt == 'B' && atoi(optarg) > 0)
			t.spread = (unsigned)atoi(optarg);
		else
			return usage();
	}
	argv += optind;
	argc -= optind;
	if (argc < 1)
		return usage();
	bool unix_sock = t.unix_sock = strcmp(argv[0], "unix") == 0;
	int a = unix_sock ? 1 : 2; /* index of the last address argument */
	if ((!unix_sock && strcmp(argv[0], "tcp") != 0) || argc < a + 3)
		return usage();

	if (unix_sock) {
		struct sockaddr_un *un = (struct sockaddr_un *)&t.dst;
		un->sun_family = AF_UNIX;
		if (strlen(argv[1]) >= sizeof(un->sun_path))
			return usage();
		strcpy(un->sun_path, argv[1]);
		t.dlen = sizeof(*un);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&t.dst;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(argv[2]));
		if (inet_pton(AF_INET, argv[1], &in->sin_addr) != 1)
			return usage();
		t.dlen = sizeof(*in);
	}
	long n = atol(argv[a + 1]);
	const char *ms = argv[a + 2];
	char **rest = argv + a + 3;
	int nrest = argc - a - 3;
	enum mode m;
	char req[4096] = "";
	size_t want = 0;
	long secs;
	bool loop = false;
	if ((strcmp(ms, "get") == 0 || strcmp(ms, "loop") == 0) && nrest == 2) {
		m = MODE_GET;
		loop = strcmp(ms, "loop") == 0;
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", rest[0]);
		secs = atol(rest[1]);
	} else if (strcmp(ms, "rst") == 0 && nrest == 3) {
		m = MODE_RST;
		snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", rest[0]);
		want = (size_t)atol(rest[1]);
		secs = atol(rest[2]);
	} else if (strcmp(ms, "silent") == 0 && nrest == 1) {
		m = MODE_SILENT;
		secs = atol(rest[0]);
	} else if (strcmp(ms, "follow") == 0 && nrest == 1 && unix_sock) {
		m = MODE_FOLLOW;
		snprintf(req, sizeof(req), "{\"cmd\":\"events\",\"follow\":true}\n");
		secs = atol(rest[0]);
	} else if (strcmp(ms, "send") == 0 && nrest == 2 && unix_sock) {
		m = MODE_SEND;
		snprintf(req, sizeof(req), "%s\n", rest[0]);
		secs = atol(rest[1]);
	} else {
		return usage();
	}
	if (n <= 0 || secs <= 0)
		return usage();

	struct rlimit rl = {.rlim_cur = (rlim_t)n + 64, .rlim_max = (rlim_t)n + 64};
	struct rlimit cur;
	if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur < rl.rlim_cur &&
	    setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "flood: cannot raise RLIMIT_NOFILE to %lu: %s\n",
			(unsigned long)rl.rlim_cur, strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	int epfd = t.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc((size_t)n, sizeof(*cs));
	if (epfd < 0 || !cs) {
		fprintf(stderr, "flood: %s\n", strerror(errno));
		return 1;
	}
	struct counts k = {0};
	long live = 0;
	for (long i = 0; i < n; i++) {
		int r = conn_open(&t, cs, i);
		if (r < 0) {
			k.reset++;
			k.refused++;
			k.refused_errno = -r;
		} else
			live++;
	}

	long long deadline = now_ms() + secs * 1000, next_scan = now_ms() + 1000;
	/* loop: each finished connection is replaced at once, until the end;
	 * one that has no whole answer within REQUEST_TIMEOUT_MS counts as such. */
#define REQUEST_TIMEOUT_MS 30000
#define END_CONN()                                                                                 \
	do {                                                                                       \
		finish(c, epfd);                                                                   \
		long idx_ = c - cs;                                                                \
		int r_ = 0;                                                                        \
		if (!loop || stop || now_ms() >= deadline || (r_ = conn_open(&t, cs, idx_)) < 0)   \
			live--;                                                                    \
		if (r_ < 0) {                                                                      \
			k.reset++;                                                                 \
			k.refused++;                                                               \
			k.refused_errno = -r_;                                                     \
		}                                                                                  \
	} while (0)
	struct epoll_event evs[256];
	char buf[65536];
	while (live > 0 && !stop) {
		long long left = deadline - now_ms();
		if (left <= 0)
			break;
		int r = epoll_wait(epfd, evs, 256, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (loop && now_ms() >= next_scan) {
			next_scan = now_ms() + 1000;
			for (long i = 0; i < n; i++) {
				struct conn *c = &cs[i];
				if (!c->done && now_ms() - c->started_ms > REQUEST_TIMEOUT_MS) {
					k.timeout++;
					END_CONN();
				}
			}
		}
		for (int e = 0; e < r; e++) {
			struct conn *c = &cs[evs[e].data.u64];
			if (c->done)
				continue;
			if (!c->connected && (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					k.reset++;
					k.refused++;
					k.refused_errno = err;
					END_CONN();
					continue;
				}
				c->connected = true;
				k.connected++;
				if (req[0] && send(c->fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
					k.reset++;
					k.rst++;
					END_CONN();
					continue;
				}
				struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
							 .data.u64 = evs[e].data.u64};
				epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				if (m == MODE_SILENT || m == MODE_FOLLOW) {
					/* Held; these never read, but they see a close. */
					if (m == MODE_FOLLOW) {
						ev.events = EPOLLRDHUP;
						epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
					}
					continue;
				}
			}
			if (m == MODE_FOLLOW) {
				if (evs[e].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
					k.eof++;
					END_CONN();
				}
				continue;
			}
			if (!(evs[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t got = recv(c->fd, buf, sizeof(buf), 0);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got > 0) {
				if (c->got < sizeof(c->head))
					memcpy(c->head + c->got, buf,
					       (size_t)got < sizeof(c->head) - c->got
						   ? (size_t)got
						   : sizeof(c->head) - c->got);
				c->got += (size_t)got;
				k.bytes += (unsigned long long)got;
				if (m == MODE_SILENT) {
					/* Anything said to a silent client counts as an answer. */
					continue;
				}
				if (m == MODE_RST && c->got >= want) {
					k.ok++;
					reset_and_finish(c, epfd);
					live--;
				} else if (m == MODE_SEND && memchr(buf, '\n', (size_t)got)) {
					if (head_ok(c, m))
						k.ok++;
					else
						k.reset++;
					END_CONN();
				}
				continue;
			}
			/* The peer closed (got == 0) or reset (got < 0). */
			if (got < 0 || m == MODE_RST || (m == MODE_GET && c->got == 0)) {
				k.reset++;
				if (got < 0)
					k.rst++;
				else if (c->got == 0)
					k.empty++;
				else
					k.bad++;
			} else if (m == MODE_SILENT) {
				k.eof++;
			} else if (head_ok(c, m)) {
				k.ok++;
			} else {
				k.reset++;
				k.bad++;
			}
			END_CONN();
		}
	}
	for (long i = 0; i < n; i++) {
		if (cs[i].done)
			continue;
		/* loop: requests under way when it was told to stop. */
		if (((m == MODE_SILENT || m == MODE_FOLLOW) && cs[i].connected) || loop)
			k.open++;
		else
			k.timeout++;
		close(cs[i].fd);
	}
	printf("connected=%lu ok=%lu bytes=%llu reset=%lu eof=%lu open=%lu timeout=%lu "
	       "(resets: refused=%lu rst=%lu empty=%lu bad=%lu%s%s)\n",
	       k.connected, k.ok, k.bytes, k.reset, k.eof, k.open, k.timeout, k.refused, k.rst,
	       k.empty, k.bad, k.refused_errno ? "; last refusal: " : "",
	       k.refused_errno ? strerror(k.refused_errno) : "");
	free(cs);
	close(epfd);
	return 0;
}
