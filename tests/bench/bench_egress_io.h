/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * bench_egress's traffic: the peer (threads of the benchmark's process, with
 * their sockets in the peer's namespace) and the container (a child process
 * in the test cgroup), and what they moved; the kernel's statistics of the
 * programs on the cgroup; the start of the container and main's arguments.
 * bench_egress.c and bench_egress_wake.c include it.
 */

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "bench.h"

#define PEER_ADDR "10.213.0.2"
#define PEER_PORT 5201 /* TCP for the streams, UDP for the spray */
#define CHUNK	  (128 * 1024)
/* The spray's peers: every address of SPRAY_NET is the peer's (a local
 * route there), 10.214.0-63.1-254 are sent to in turn. */
#define SPRAY_NET   "10.214.0.0/16"
#define SPRAY_BASE  0x0ad60000u /* 10.214.0.0 */
#define SPRAY_PEERS (64 * 254)

/* TRAFFIC_RR1: the ping-pong with the peer on the container's CPU. */
enum traffic { TRAFFIC_SEND, TRAFFIC_RECV, TRAFFIC_RR, TRAFFIC_RR1, TRAFFIC_SPRAY, N_TRAFFIC };

/* The first byte of a TCP connection picks the peer's part: 'S' sink, 'T'
 * transmit until the container hangs up, 'E' echo, 'e' echo from CPU 0. */
static const char traffic_modes[N_TRAFFIC] = {
    [TRAFFIC_SEND] = 'S', [TRAFFIC_RECV] = 'T', [TRAFFIC_RR] = 'E', [TRAFFIC_RR1] = 'e'};

/* What the peer moved so far, per traffic: bytes read, bytes written, round
 * trips, datagrams received. */
static atomic_uint_fast64_t peer_moved[N_TRAFFIC];
/* Shared with the container: mapped before the fork. */
struct shared {
	atomic_uint_fast64_t spray_sent; /* datagrams the container sent so far */
	atomic_int stop;		 /* set: the container ends its stream */
};
static struct shared *shared;

/* What a run's rate counts: the peer's figure for TCP, the sender's for UDP. */
static inline uint64_t traffic_moved(enum traffic t)
{
	return t == TRAFFIC_SPRAY ? atomic_load(&shared->spray_sent) : atomic_load(&peer_moved[t]);
}

static inline int read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		got += (size_t)r;
	}
	return 0;
}

static inline int write_full(int fd, const void *buf, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t w = write(fd, (const char *)buf + put, n - put);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		put += (size_t)w;
	}
	return 0;
}

static inline void sleep_until_us(double t_us)
{
	struct timespec ts = {.tv_sec = (time_t)(t_us / 1e6),
			      .tv_nsec = (long)((t_us - (double)(time_t)(t_us / 1e6) * 1e6) * 1e3)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* TCP segments retransmitted in this network namespace so far (/proc/net/snmp). */
static inline uint64_t tcp_retrans_segs(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/snmp", "re");
	char names[1024], values[1024];
	if (!f)
		return 0;
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		if (strncmp(names, "Tcp:", 4) != 0)
			continue;
		char *sn = NULL, *sv = NULL;
		char *n = strtok_r(names, " \n", &sn), *v = strtok_r(values, " \n", &sv);
		while (n && v) {
			if (strcmp(n, "RetransSegs") == 0)
				return strtoull(v, NULL, 10);
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
	}
	return 0;
}

/* --- the peer: threads of this process, sockets in the peer's namespace ------------ */

static inline void pin_thread_to_cpu(int cpu)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *peer_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char buf[CHUNK];
	char mode = 0;
	if (read_full(fd, &mode, 1) < 0)
		goto out;
	if (mode == 'S') {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			peer_moved[TRAFFIC_SEND] += (uint64_t)n;
	} else if (mode == 'T') {
		memset(buf, 'x', sizeof(buf));
		ssize_t n;
		while ((n = write(fd, buf, sizeof(buf))) > 0)
			peer_moved[TRAFFIC_RECV] += (uint64_t)n;
	} else if (mode == 'E' || mode == 'e') {
		enum traffic t = mode == 'E' ? TRAFFIC_RR : TRAFFIC_RR1;
		if (mode == 'e')
			pin_thread_to_cpu(0);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char c;
		while (read(fd, &c, 1) == 1 && write(fd, &c, 1) == 1)
			peer_moved[t]++;
	}
out:
	close(fd);
	return NULL;
}

static void *peer_accept_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	pin_thread_to_cpu(1); /* inherited by the connection threads */
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		pthread_t t;
		if (pthread_create(&t, NULL, peer_conn, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

/* Counts the spray's datagrams, whichever of the peer's addresses they went to. */
static void *peer_udp_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	pin_thread_to_cpu(1);
	enum { BATCH = 64 };
	static char bufs[BATCH][64];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof(bufs[i])};
		msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
	}
	for (;;) {
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0 && errno != EINTR)
			return NULL;
		if (n > 0)
			peer_moved[TRAFFIC_SPRAY] += (uint64_t)n;
	}
}

/* A bound socket of type on 0.0.0.0:PEER_PORT in namespace ns_fd (TCP: listening). */
static inline int peer_socket(int ns_fd, int type)
{
	int fd = netns_socket(ns_fd, AF_INET, type | SOCK_CLOEXEC);
	if (fd < 0)
		return fd;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT)};
	int one = 1, rcvbuf = 8 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (type == SOCK_DGRAM &&
	     setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The peer's TCP listener and UDP sink, each served by a thread. */
static inline int peers_start(int ns_fd)
{
	shared =
	    mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return -errno;
	int tfd = peer_socket(ns_fd, SOCK_STREAM), ufd = peer_socket(ns_fd, SOCK_DGRAM);
	if (tfd < 0 || ufd < 0)
		return tfd < 0 ? tfd : ufd;
	pthread_t t;
	if (pthread_create(&t, NULL, peer_accept_main, (void *)(intptr_t)tfd) != 0 ||
	    pthread_create(&t, NULL, peer_udp_main, (void *)(intptr_t)ufd) != 0)
		return -EAGAIN;
	return 0;
}

/* SPRAY_NET is reached through the peer here, and all of it is the peer's there. */
static inline int spray_routes_add(int peer_ns_fd)
{
	const char *const here[] = {"ip", "route", "add", SPRAY_NET, "via", PEER_ADDR, NULL};
	const char *const there[] = {"ip", "route", "add", "local", SPRAY_NET, "dev", "lo", NULL};
	int r = run_cmd(-1, here, NULL);
	if (r == 0)
		r = run_cmd(peer_ns_fd, there, NULL);
	if (r != 0)
		fprintf(stderr, "bench: adding the routes to %s: %s\n", SPRAY_NET,
			r < 0 ? strerror(-r) : "ip route failed");
	return r == 0 ? 0 : -EIO;
}

/* --- the container: a child process in the test cgroup ---------------------------- */

/* A stream lasts until shared->stop: the switches between runs take what
 * they take on a busy machine. */
struct request {
	enum traffic traffic;
};

struct result {
	int err;
	uint64_t moved; /* bytes, round trips or datagrams, as the container saw them */
};

static inline int connect_peer(char mode)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT)};
	inet_pton(AF_INET, PEER_ADDR, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write_full(fd, &mode, 1) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (mode == 'E' || mode == 'e') {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

/* 1 byte to each of the spray's peers in turn: each datagram a flow of its own. */
static inline struct result spray(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return (struct result){.err = -errno};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PEER_PORT)};
	struct result res = {0};
	for (uint32_t i = 0;; i++) {
		if (i % 64 == 0 && atomic_load_explicit(&shared->stop, memory_order_relaxed))
			break;
		uint32_t k = i % SPRAY_PEERS;
		sa.sin_addr.s_addr = htonl(SPRAY_BASE | (k / 254) << 8 | (k % 254 + 1));
		if (sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) == 1) {
			res.moved++;
			atomic_fetch_add_explicit(&shared->spray_sent, 1, memory_order_relaxed);
		} else if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN) {
			return (struct result){.err = -errno};
		}
	}
	return res;
}

/* Keeps the connection (or the spray) busy until told to stop. */
static inline struct result stream(enum traffic traffic)
{
	if (traffic == TRAFFIC_SPRAY)
		return spray();
	static char buf[CHUNK];
	memset(buf, 'x', sizeof(buf));
	_cleanup_close_ int fd = connect_peer(traffic_modes[traffic]);
	if (fd < 0)
		return (struct result){.err = fd};
	struct result res = {0};
	char c = 'p';
	while (!atomic_load_explicit(&shared->stop, memory_order_relaxed)) {
		ssize_t n;
		if (traffic == TRAFFIC_SEND)
			n = write(fd, buf, sizeof(buf));
		else if (traffic == TRAFFIC_RECV)
			n = read(fd, buf, sizeof(buf));
		else
			n = write(fd, &c, 1) == 1 ? read(fd, &c, 1) : -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (struct result){.err = n < 0 ? -errno : -EPIPE};
		res.moved += traffic == TRAFFIC_RR || traffic == TRAFFIC_RR1 ? 1 : (uint64_t)n;
	}
	return res;
}

/* Serves requests from the parent until it closes the pipe. */
static inline void container_main(const char *cgroup_dir, int req_fd, int res_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Join the cgroup before any socket exists: a socket counts for the
	 * cgroup its creator was in when it was made. */
	int r = bench_cgroup_enter(cgroup_dir);
	if (r < 0) {
		fprintf(stderr, "bench: joining %s: %s\n", cgroup_dir, strerror(-r));
		_exit(2);
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	struct request req;
	while (read_full(req_fd, &req, sizeof(req)) == 0) {
		struct result res = stream(req.traffic);
		if (write_full(res_fd, &res, sizeof(res)) < 0)
			break;
	}
	_exit(0);
}

/* Forks the container, serving on two pipes: requests in *req_fd, results
 * from *res_fd. */
static inline int container_start(const char *cgroup_dir, pid_t *pid, int *req_fd, int *res_fd)
{
	int req[2], res[2];
	if (pipe2(req, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(res, O_CLOEXEC) < 0) {
		int r = -errno;
		close(req[0]);
		close(req[1]);
		return r;
	}
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		int r = -errno;
		for (int i = 0; i < 2; i++) {
			close(req[i]);
			close(res[i]);
		}
		return r;
	}
	if (*pid == 0) {
		close(req[1]);
		close(res[0]);
		container_main(cgroup_dir, req[0], res[1]);
	}
	close(req[0]);
	close(res[1]);
	*req_fd = req[1];
	*res_fd = res[0];
	return 0;
}

/* The eBPF programs on dir's hook type: their number, and the first one's id in *id. */
static inline int cgroup_progs(const char *dir, enum bpf_attach_type type, __u32 *id)
{
	_cleanup_close_ int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return -errno;
	__u32 ids[4] = {0}, n = 4;
	if (bpf_prog_query(cg, type, 0, NULL, ids, &n) < 0)
		return -errno;
	if (id)
		*id = ids[0];
	return (int)n;
}

/* Run time and run count of the one eBPF program on dir's hook type, from the kernel. */
static inline int prog_stats(const char *dir, enum bpf_attach_type type, uint64_t *run_ns,
			     uint64_t *run_cnt)
{
	__u32 id = 0;
	int n = cgroup_progs(dir, type, &id);
	if (n < 0)
		return n;
	if (n != 1)
		return -ENOENT; /* someone else's program would count too */
	_cleanup_close_ int prog = bpf_prog_get_fd_by_id(id);
	if (prog < 0)
		return -errno;
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog, &info, &len) < 0)
		return -errno;
	*run_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

/* Both benchmarks' main: [SECONDS_PER_RUN [PAIRS]] (BENCH_QUICK=1: 2 pairs of
 * 0.02 s), root, the body under bench_run_supervised in its own cgroups. */
static inline int egress_main(int argc, char **argv, const char *name, double *seconds_per_run,
			      int *pairs, int max_pairs, int (*body)(void *))
{
	if (argc > 1)
		*seconds_per_run = atof(argv[1]);
	if (argc > 2)
		*pairs = atoi(argv[2]);
	if (bench_quick()) {
		*seconds_per_run = 0.02;
		*pairs = 2;
	}
	if (*seconds_per_run < 0.01 || *pairs < 1 || *pairs > max_pairs) {
		fprintf(stderr, "usage: %s [SECONDS_PER_RUN (>= 0.01) [PAIRS (1..%d)]]\n", argv[0],
			max_pairs);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "%s: needs root (eBPF, cgroups, namespaces)\n", name);
		return 1;
	}
	if (bench_cgroup_root_create() < 0)
		return 1;
	int r = bench_run_supervised(body, NULL);
	bench_cgroup_remove_all();
	return r == 0 ? 0 : 1;
}
