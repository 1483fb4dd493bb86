// SPDX-License-Identifier: MIT
/*
 * Relay benchmark: throughput (1 and 4 streams) and request/response round
 * trips through dozed's activator relay, side by side with a direct
 * connection, systemd-socket-proxyd, haproxy (TCP mode) and socat, in one run,
 * in a private network namespace. Prints a table and writes
 * tests/bench/results/relay.csv.
 *
 * The service port stays in the redirect set, so every connection goes through
 * the activator (hold, probe, relay), as connections do that arrive during a wake.
 *
 * BENCH_QUICK=1: direct and dozed only (no peers), 0.1 s per stream test, 200
 * round trips; fails when dozed's relay moved nothing (see bench.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dozed/activator.h"
#include "dozed/log.h"
#include "dozed/nft.h"

#define BACKEND_PORT   21000 /* the "service" */
#define ACTIVATOR_PORT 21001
#define SOCAT_PORT     21002
#define PROXYD_PORT    21003
#define HAPROXY_PORT   21004
#define SERVICE_PORT   21005 /* the same backend, behind the redirect set */
#define MARK	       0x1d0

static double seconds_per_test = 2.0;
static int rtt_rounds = 20000;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- backend: sink ('S') or echo ('E'), chosen by the first byte ------------ */

static void *backend_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char buf[1 << 17];
	char mode;
	if (read(fd, &mode, 1) != 1)
		goto out;
	if (mode == 'E') {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0 || write(fd, buf, (size_t)n) != n)
				break;
		}
	} else {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
out:
	close(fd);
	return NULL;
}

static void *backend_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t t;
		pthread_create(&t, NULL, backend_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

static int listen_loopback(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "bench: listen on %u: %s\n", port, strerror(errno));
		exit(1);
	}
	return fd;
}

static int connect_loopback(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* --- the activator, in its own thread, as in the daemon --------------------- */

static struct activator *act;

static int route_lookup(void *ud, const struct sockaddr_storage *dst, struct activator_route *r)
{
	(void)ud;
	(void)dst;
	*r = (struct activator_route){.service_id = 1};
	return 0;
}

static void wake_requested(void *ud, uint64_t id, const struct sockaddr_storage *client)
{
	(void)ud;
	(void)client;
	activator_service_starting(act, id, NULL);
}

static void service_ready(void *ud, uint64_t id, uint64_t probe_us, uint64_t total_us)
{
	(void)ud;
	(void)id;
	(void)probe_us;
	(void)total_us;
}

static void wake_failed(void *ud, uint64_t id, int reason, const char *last_answer)
{
	(void)last_answer;
	(void)ud;
	(void)id;
	fprintf(stderr, "bench: wake failed: %s\n", strerror(-reason));
}

static void *activator_main(void *arg)
{
	(void)arg;
	struct event_base *base = event_base_new();
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.port = ACTIVATOR_PORT;
	cfg.mark = MARK;
	static const struct activator_ops ops = {
	    .route_lookup = route_lookup,
	    .wake_requested = wake_requested,
	    .service_ready = service_ready,
	    .wake_failed = wake_failed,
	};
	if (activator_new(base, &cfg, &ops, NULL, &act) < 0)
		exit(1);
	event_base_dispatch(base);
	return NULL;
}

/* --- measurements ------------------------------------------------------------ */

struct stream_arg {
	uint16_t port;
	double seconds;
	uint64_t bytes;
	int error;
};

static void *stream_main(void *arg)
{
	struct stream_arg *s = arg;
	static __thread char buf[1 << 17];
	int fd = connect_loopback(s->port);
	if (fd < 0 || write(fd, "S", 1) != 1) {
		s->error = 1;
		return NULL;
	}
	memset(buf, 'x', sizeof(buf));
	double end = now_s() + s->seconds;
	while (now_s() < end) {
		ssize_t n = write(fd, buf, sizeof(buf));
		if (n <= 0) {
			s->error = 1;
			break;
		}
		s->bytes += (uint64_t)n;
	}
	close(fd);
	return NULL;
}

/* MB/s of n parallel upload streams. */
static double measure_throughput(uint16_t port, int n)
{
	struct stream_arg args[8] = {0};
	pthread_t t[8];
	for (int i = 0; i < n; i++) {
		args[i] = (struct stream_arg){.port = port, .seconds = seconds_per_test};
		pthread_create(&t[i], NULL, stream_main, &args[i]);
	}
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (args[i].error)
			return -1;
		total += args[i].bytes;
	}
	return (double)total / seconds_per_test / 1e6;
}

/* Median and p95 of 1-byte request/response round trips, in µs. */
static int measure_rtt(uint16_t port, double *p50, double *p95)
{
	int fd = connect_loopback(port);
	if (fd < 0 || write(fd, "E", 1) != 1)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	double *samples = calloc((size_t)rtt_rounds, sizeof(double));
	char c = 'p';
	for (int i = 0; i < rtt_rounds; i++) {
		double t0 = now_s();
		if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
			free(samples);
			close(fd);
			return -1;
		}
		samples[i] = (now_s() - t0) * 1e6;
	}
	close(fd);
	struct bench_stat st = bench_stat_of(samples, (size_t)rtt_rounds, false);
	*p50 = st.p50;
	*p95 = st.p95;
	free(samples);
	return 0;
}

/* --- peers --------------------------------------------------------------------- */

static pid_t spawn(const char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int wait_port(uint16_t port)
{
	for (int i = 0; i < 500; i++) {
		int fd = connect_loopback(port);
		if (fd >= 0) {
			/* The peer forwards this empty connection; the backend sees EOF. */
			close(fd);
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

struct peer {
	const char *name;
	uint16_t port;
	pid_t pid;
	bool available;
	double mbps1, mbps4, rtt50, rtt95;
};

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds_per_test = atof(argv[1]);
	if (bench_quick()) {
		seconds_per_test = 0.1;
		rtt_rounds = 200;
	}
	if (netns_enter_private() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	log_set_max_level(LOG_WARNING);

	struct nft_ctx *nft = NULL;
	uint16_t port = SERVICE_PORT;
	if (nft_ctx_new(&nft, "dozedbench", MARK, ACTIVATOR_PORT) < 0 ||
	    nft_table_create(nft) < 0 || nft_set_add_ports(nft, &port, 1) < 0)
		return 1;

	pthread_t bt, st, at;
	pthread_create(&bt, NULL, backend_main, (void *)(intptr_t)listen_loopback(BACKEND_PORT));
	pthread_create(&st, NULL, backend_main, (void *)(intptr_t)listen_loopback(SERVICE_PORT));
	pthread_create(&at, NULL, activator_main, NULL);

	char target[32], listen_arg[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", BACKEND_PORT);
	struct peer peers[] = {
	    {.name = "direct", .port = BACKEND_PORT},
	    {.name = "dozed (splice)", .port = SERVICE_PORT}, /* redirected */
	    {.name = "systemd-socket-proxyd", .port = PROXYD_PORT},
	    {.name = "haproxy (tcp)", .port = HAPROXY_PORT},
	    {.name = "socat", .port = SOCAT_PORT},
	};

	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", PROXYD_PORT);
	const char *proxyd[] = {"systemd-socket-activate",
				"-l",
				listen_arg,
				"/lib/systemd/systemd-socket-proxyd",
				target,
				NULL};
	char socat_listen[64], socat_to[64];
	snprintf(socat_listen, sizeof(socat_listen), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork",
		 SOCAT_PORT);
	snprintf(socat_to, sizeof(socat_to), "TCP:%s", target);
	const char *socat[] = {"socat", socat_listen, socat_to, NULL};
	char cfg_path[] = "/tmp/dozed-bench-haproxy.XXXXXX";
	int cfd = mkstemp(cfg_path);
	dprintf(cfd,
		"global\n  maxconn 4096\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n"
		"  timeout client 60s\n  timeout server 60s\nlisten relay\n  bind 127.0.0.1:%d\n"
		"  server backend %s\n",
		HAPROXY_PORT, target);
	close(cfd);
	const char *haproxy[] = {"haproxy", "-q", "-f", cfg_path, NULL};

	size_t n_peers = sizeof(peers) / sizeof(peers[0]);
	if (bench_quick()) {
		n_peers = 2; /* direct and dozed */
	} else {
		peers[2].pid = spawn(proxyd);
		peers[3].pid = spawn(haproxy);
		peers[4].pid = spawn(socat);
	}
	for (size_t i = 0; i < n_peers; i++) {
		struct peer *p = &peers[i];
		p->available = i < 2 ? true : wait_port(p->port) == 0;
		if (!p->available) {
			fprintf(stderr, "bench: %s did not start; its row is empty\n", p->name);
			continue;
		}
		p->mbps1 = measure_throughput(p->port, 1);
		p->mbps4 = measure_throughput(p->port, 4);
		if (measure_rtt(p->port, &p->rtt50, &p->rtt95) < 0)
			p->rtt50 = p->rtt95 = -1;
	}
	for (size_t i = 2; i < n_peers; i++) {
		if (peers[i].pid > 0) {
			kill(peers[i].pid, SIGTERM);
			waitpid(peers[i].pid, NULL, 0);
		}
	}
	unlink(cfg_path);

	FILE *csv = bench_csv_open("relay.csv");
	if (csv)
		fprintf(csv, "peer,mbps_1_stream,mbps_4_streams,rtt_p50_us,rtt_p95_us\n");
	printf("\nRelay (%.1f s per stream test, %d round trips; ratios to direct)%s\n",
	       seconds_per_test, rtt_rounds, bench_quick() ? " [quick run: no results]" : "");
	printf("%-22s %12s %7s %12s %7s %10s %10s %10s\n", "peer", "1 stream", "ratio", "4 streams",
	       "ratio", "RTT p50", "RTT p95", "added p50");
	printf("%-22s %12s %7s %12s %7s %10s %10s %10s\n", "", "MB/s", "", "MB/s", "", "µs", "µs",
	       "µs");
	const struct peer *d = &peers[0];
	for (size_t i = 0; i < n_peers; i++) {
		const struct peer *p = &peers[i];
		if (!p->available) {
			printf("%-22s %12s\n", p->name, "(not run)");
			continue;
		}
		printf("%-22s %12.0f %6.2fx %12.0f %6.2fx %10.1f %10.1f %+10.1f\n", p->name,
		       p->mbps1, p->mbps1 / d->mbps1, p->mbps4, p->mbps4 / d->mbps4, p->rtt50,
		       p->rtt95, p->rtt50 - d->rtt50);
		if (csv)
			fprintf(csv, "%s,%.0f,%.0f,%.1f,%.1f\n", p->name, p->mbps1, p->mbps4,
				p->rtt50, p->rtt95);
	}
	if (csv)
		fclose(csv);
	nft_table_destroy(nft);
	nft_ctx_free(nft);
	/* A relay that moved nothing, or lost a round trip, is broken, not slow. */
	bool broken = false;
	for (size_t i = 0; i < 2; i++)
		if (peers[i].mbps1 <= 0 || peers[i].mbps4 <= 0 || peers[i].rtt50 < 0) {
			fprintf(stderr, "bench: %s: a stream or the round trips failed\n",
				peers[i].name);
			broken = true;
		}
	fflush(stdout);
	fflush(stderr);
	/* Threads block in accept and in the loop: leave without joining them. */
	_exit(broken ? 1 : 0);
}
