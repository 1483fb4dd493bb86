// SPDX-License-Identifier: MIT
/*
 * The runtime client's HTTP code against two libraries, on the same work in
 * one run: today's client (http_unix, linked from libdozed.a), libcurl's
 * multi interface driven from libevent (bench_http_curl.h) and libevent's
 * evhttp client (bench_http_evhttp.h), each on the bench's libevent loop,
 * one connection per request, against a real runtime's API socket.
 *
 *   bench_http_client run RUNTIME SOCKET CONTAINER
 *       wake: POST /containers/ID/start of the stopped container until
 *       answered (the stop between rounds is not timed); inspect: GET
 *       /containers/ID/json; events: GET /events until the headers (stream
 *       up), then a pause is asked for (by today's client, the same for
 *       all) and the first event delivered is timed from the connect (the
 *       unpause between rounds is not timed); memory: a fresh process per
 *       client (this program, exec'd) makes N inspects and reports its RSS
 *       and CPU. Rounds alternate the clients' order. One table.
 *   bench_http_client rss CLIENT SOCKET CONTAINER N      (the memory child)
 *
 * BENCH_QUICK=1: 2 wakes, 5 inspects, 2 event rounds, 20 requests for memory.
 * HTTP_WAKES, HTTP_INSPECTS, HTTP_EVENTS, HTTP_RSS_N: the full run's sizes.
 * Exits 1 if any client failed a step (its rows say which), 2 on bad usage.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "bench_http_curl.h"
#include "bench_http_evhttp.h"
#include "bench_http_peer.h"
#include "dozed/runtime.h"

#define N_PEERS 3
static const struct peer *const peers[N_PEERS] = {&peer_today, &peer_curl, &peer_evhttp};

#define STEP_DEADLINE_US (20 * 1000000.0)
#define API		 "/" RUNTIME_API_VERSION
/* {"type":["container"]}, as the daemon's event stream asks. */
#define EVENTS_TARGET API "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"

static struct event_base *base;
static const char *container;
static char peer_failed[N_PEERS][160];

/* One request's progress, written by the peers' callbacks. */
struct progress {
	bool headers, body, done;
	int err, status;
	double t_headers, t_body, t_done;
	size_t body_len;
	char first[64]; /* the first body bytes, for checking what came */
};

static void on_headers(void *ud, int status)
{
	struct progress *p = ud;
	if (!p->headers) {
		p->headers = true;
		p->status = status;
		p->t_headers = bench_now_us();
	}
}

static void on_body(void *ud, const char *data, size_t len)
{
	struct progress *p = ud;
	if (!p->body) {
		p->body = true;
		p->t_body = bench_now_us();
		size_t n = len < sizeof(p->first) - 1 ? len : sizeof(p->first) - 1;
		memcpy(p->first, data, n);
		p->first[n] = '\0';
	}
	p->body_len += len;
}

static void on_done(void *ud, int err, int status)
{
	struct progress *p = ud;
	p->done = true;
	p->err = err;
	p->status = status;
	p->t_done = bench_now_us();
}

static const struct peer_cb progress_cb = {on_headers, on_body, on_done};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *flag or the step's deadline: false at the deadline. */
static bool run_until(const bool *flag)
{
	double end = bench_now_us() + STEP_DEADLINE_US;
	while (!*flag) {
		if (bench_now_us() > end)
			return false;
		event_base_loop(base, EVLOOP_ONCE);
	}
	return true;
}

/* Untimed steps (stop, start, pause, unpause) go through today's client. */
static int helper_call(const char *method, const char *target, int *status)
{
	struct progress p = {0};
	void *req = NULL;
	int r = peer_today.request(method, target, false, &progress_cb, &p, &req);
	if (r < 0)
		return r;
	bool ok = run_until(&p.done);
	peer_today.release(req);
	if (!ok)
		return -ETIMEDOUT;
	*status = p.status;
	return p.err;
}

static int helper_expect(const char *verb, int ok1, int ok2)
{
	char target[512];
	snprintf(target, sizeof(target), API "/containers/%s/%s", container, verb);
	int status = 0;
	int r = helper_call("POST", target, &status);
	if (r == 0 && status != ok1 && status != ok2)
		r = -EPROTO;
	if (r < 0)
		fprintf(stderr, "bench_http_client: %s of %s: %s (HTTP %d)\n", verb, container,
			strerror(-r), status);
	return r;
}

static void fail_peer(int i, const char *what, int err, int status)
{
	if (peer_failed[i][0])
		return;
	snprintf(peer_failed[i], sizeof(peer_failed[i]), "%s: %s (HTTP %d)", what,
		 err < 0 ? strerror(-err) : "unexpected answer", status);
	fprintf(stderr, "bench_http_client: %s: %s\n", peers[i]->name, peer_failed[i]);
}

/* One timed request; us: start to done. */
static int timed_call(int i, const char *method, const char *target, int want, double *us)
{
	struct progress p = {0};
	void *req = NULL;
	double t0 = bench_now_us();
	int r = peers[i]->request(method, target, false, &progress_cb, &p, &req);
	if (r == 0 && !run_until(&p.done))
		r = -ETIMEDOUT;
	peers[i]->release(req);
	if (r == 0)
		r = p.err;
	if (r < 0 || p.status != want) {
		fail_peer(i, target, r, p.status);
		return r < 0 ? r : -EPROTO;
	}
	*us = p.t_done - t0;
	return 0;
}

/* The event stream: connect → headers (*up_us), pause asked for, → first event (*ev_us). */
static int timed_events(int i, double *up_us, double *ev_us)
{
	struct progress p = {0}, trig = {0};
	void *req = NULL, *treq = NULL;
	char target[512];
	snprintf(target, sizeof(target), API "/containers/%s/pause", container);
	double t0 = bench_now_us();
	int r = peers[i]->request("GET", EVENTS_TARGET, true, &progress_cb, &p, &req);
	if (r == 0 && !run_until(&p.headers))
		r = p.done ? (p.err < 0 ? p.err : -ECONNRESET) : -ETIMEDOUT;
	if (r == 0 && p.status != 200)
		r = -EPROTO;
	if (r == 0)
		r = peer_today.request("POST", target, false, &progress_cb, &trig, &treq);
	if (r == 0 && !run_until(&p.body))
		r = p.done ? (p.err < 0 ? p.err : -ECONNRESET) : -ETIMEDOUT;
	peers[i]->release(req);
	if (treq && !run_until(&trig.done))
		fprintf(stderr, "bench_http_client: the pause of %s did not end\n", container);
	peer_today.release(treq);
	if (r == 0 && !strstr(p.first, "\"status\""))
		r = -EBADMSG;
	if (r < 0) {
		fail_peer(i, "events", r, p.status);
		return r;
	}
	*up_us = p.t_headers - t0;
	*ev_us = p.t_body - t0;
	return helper_expect("unpause", 204, 304);
}

/* --- results ------------------------------------------------------------------------ */

struct series {
	double *v;
	size_t n;
};

static void series_add(struct series *s, double x)
{
	s->v[s->n++] = x;
}

/* s left-aligned in width columns: UTF-8 ("→") counted by characters. */
static void print_cell(const char *s, int width)
{
	int chars = 0;
	for (const char *c = s; *c; c++)
		chars += ((unsigned char)*c & 0xc0) != 0x80;
	printf("%s%*s ", s, chars < width ? width - chars : 0, "");
}

static void print_rows(const char *work, struct series *s, double scale, const char *unit)
{
	double base_p50 = 0;
	for (int i = 0; i < N_PEERS; i++) {
		if (s[i].n == 0) {
			print_cell(i ? "" : work, 34);
			printf("%-28s %s\n", peers[i]->name,
			       peer_failed[i][0] ? peer_failed[i] : "no samples");
			continue;
		}
		double lo, hi;
		bench_median_ci95(s[i].v, s[i].n, &lo, &hi);
		struct bench_stat st = bench_stat_of(s[i].v, s[i].n, false);
		if (i == 0)
			base_p50 = st.p50;
		char ratio[16] = "-";
		if (base_p50 > 0)
			snprintf(ratio, sizeof(ratio), "%.2fx", st.p50 / base_p50);
		print_cell(i ? "" : work, 34);
		printf("%-28s %9.3f %9.3f %7s   [%.3f, %.3f] %s, n=%zu\n", peers[i]->name,
		       st.p50 / scale, st.p95 / scale, ratio, lo / scale, hi / scale, unit, s[i].n);
	}
}

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoul(v, NULL, 10) : dflt;
}

/* The memory child, exec'd fresh: "rss_start_kb rss_end_kb hwm_kb cpu_us_per_request". */
static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			kb = strtol(line + kl + 1, NULL, 10);
	fclose(f);
	return kb;
}

/*
 * The resident KiB of the mappings of the libraries named in HTTP_EXTRA_LIBS
 * (basenames, space-separated: those libcurl brings that the daemon does not
 * map, listed by bench_http_client.sh); -1 when unset.
 */
static long extra_libs_kb(void)
{
	const char *list = getenv("HTTP_EXTRA_LIBS");
	if (!list || !*list)
		return -1;
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[1024];
	long kb = 0;
	bool counting = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char path[512] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %511s", &a, &b, path) >= 2) {
			const char *bn = strrchr(path, '/');
			bn = bn ? bn + 1 : path;
			size_t bl = strlen(bn);
			counting = false;
			for (const char *w = strstr(list, bn); bl && w; w = strstr(w + 1, bn))
				if ((w == list || w[-1] == ' ') && (w[bl] == ' ' || w[bl] == '\0'))
					counting = true;
		} else if (counting && strncmp(line, "Rss:", 4) == 0) {
			kb += strtol(line + 4, NULL, 10);
		}
	}
	fclose(f);
	return kb;
}

static int rss_child(int i, const char *sock, size_t n)
{
	long start_kb = status_kb("VmRSS");
	if (peers[i]->setup(base, sock) < 0)
		return 1;
	char target[512];
	snprintf(target, sizeof(target), API "/containers/%s/json", container);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	for (size_t k = 0; k < n; k++) {
		double us;
		if (timed_call(i, "GET", target, 200, &us) < 0)
			return 1;
	}
	getrusage(RUSAGE_SELF, &ru1);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
		     (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
		     (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
	printf("%ld %ld %ld %.1f %ld\n", start_kb, status_kb("VmRSS"), status_kb("VmHWM"),
	       cpu / (double)n, extra_libs_kb());
	peers[i]->teardown();
	return 0;
}

/* Runs the memory child for peer i; fills out[4] from its line. */
static int rss_measure(int i, const char *sock, size_t n, double out[5])
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		char idx[8], num[24];
		snprintf(idx, sizeof(idx), "%d", i);
		snprintf(num, sizeof(num), "%zu", n);
		execl("/proc/self/exe", "bench_http_client", "rss", idx, sock, container, num,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char buf[256] = "";
	ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (got <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    sscanf(buf, "%lf %lf %lf %lf %lf", &out[0], &out[1], &out[2], &out[3], &out[4]) != 5)
		return -EIO;
	return 0;
}

static int run(const char *runtime, const char *sock)
{
	bool quick = bench_quick();
	size_t wakes = quick ? 2 : env_size("HTTP_WAKES", 30);
	size_t inspects = quick ? 5 : env_size("HTTP_INSPECTS", 200);
	size_t events = quick ? 2 : env_size("HTTP_EVENTS", 30);
	size_t rss_n = quick ? 20 : env_size("HTTP_RSS_N", 1000);
	size_t cap = wakes + inspects + events + 1;
	struct series wake[N_PEERS], insp[N_PEERS], up[N_PEERS], ev[N_PEERS];
	for (int i = 0; i < N_PEERS; i++) {
		wake[i] = (struct series){calloc(cap, sizeof(double)), 0};
		insp[i] = (struct series){calloc(cap, sizeof(double)), 0};
		up[i] = (struct series){calloc(cap, sizeof(double)), 0};
		ev[i] = (struct series){calloc(cap, sizeof(double)), 0};
		if (!wake[i].v || !insp[i].v || !up[i].v || !ev[i].v)
			return 1;
	}
	for (int i = 0; i < N_PEERS; i++)
		if (peers[i]->setup(base, sock) < 0)
			fail_peer(i, "setup", -EIO, 0);

	char t_start[512], t_json[512];
	snprintf(t_start, sizeof(t_start), API "/containers/%s/start", container);
	snprintf(t_json, sizeof(t_json), API "/containers/%s/json", container);
	/* Warm-up: each client's code and the runtime's handler paged in. */
	helper_expect("start", 204, 304);
	for (int i = 0; i < N_PEERS; i++) {
		double us;
		timed_call(i, "GET", t_json, 200, &us);
	}
	if (helper_expect("stop?t=2", 204, 304) < 0)
		return 1;
	for (size_t r = 0; r < wakes; r++)
		for (int k = 0; k < N_PEERS; k++) {
			int i = (int)((r + (size_t)k) % N_PEERS);
			double us;
			if (peer_failed[i][0])
				continue;
			if (timed_call(i, "POST", t_start, 204, &us) == 0)
				series_add(&wake[i], us);
			if (helper_expect("stop?t=2", 204, 304) < 0)
				return 1;
		}
	if (helper_expect("start", 204, 304) < 0)
		return 1;
	for (size_t r = 0; r < inspects; r++)
		for (int k = 0; k < N_PEERS; k++) {
			int i = (int)((r + (size_t)k) % N_PEERS);
			double us;
			if (!peer_failed[i][0] && timed_call(i, "GET", t_json, 200, &us) == 0)
				series_add(&insp[i], us);
		}
	for (size_t r = 0; r < events; r++)
		for (int k = 0; k < N_PEERS; k++) {
			int i = (int)((r + (size_t)k) % N_PEERS);
			double u, e;
			if (peer_failed[i][0])
				continue;
			if (timed_events(i, &u, &e) == 0) {
				series_add(&up[i], u);
				series_add(&ev[i], e);
			}
		}
	double mem[N_PEERS][5] = {{0}};
	bool mem_ok[N_PEERS] = {false};
	for (int i = 0; i < N_PEERS; i++) {
		if (peer_failed[i][0])
			continue;
		int r = rss_measure(i, sock, rss_n, mem[i]);
		if (r < 0)
			fail_peer(i, "memory child", r, 0);
		mem_ok[i] = r == 0;
	}
	for (int i = 0; i < N_PEERS; i++)
		peers[i]->teardown();

	printf("\nHTTP clients against %s's API socket, one connection per request "
	       "(rounds alternate the clients' order)\n",
	       runtime);
	printf("%-34s %-28s %9s %9s %7s   %s\n", "work", "client", "median", "p95", "ratio",
	       "95% CI of the median");
	print_rows("wake: POST start → answered", wake, 1000, "ms");
	print_rows("inspect: GET json round trip", insp, 1000, "ms");
	print_rows("events: connect → stream up", up, 1000, "ms");
	print_rows("events: connect → first event", ev, 1000, "ms");
	printf("%-34s %-28s %9s %9s %9s %12s %10s\n", "memory: fresh process,", "client",
	       "RSS start", "RSS end", "peak", "CPU/request", "curl libs");
	for (int i = 0; i < N_PEERS; i++) {
		char work[48];
		snprintf(work, sizeof(work), "%zu inspects (KiB)", rss_n);
		if (!mem_ok[i]) {
			printf("%-34s %-28s %s\n", i ? "" : work, peers[i]->name,
			       peer_failed[i][0] ? peer_failed[i] : "failed");
			continue;
		}
		char libs[24] = "-";
		if (mem[i][4] >= 0)
			snprintf(libs, sizeof(libs), "%.0f", mem[i][4]);
		printf("%-34s %-28s %9.0f %9.0f %9.0f %9.1f µs %10s\n", i ? "" : work,
		       peers[i]->name, mem[i][0], mem[i][1], mem[i][2], mem[i][3], libs);
	}
	printf("(one binary for the three: RSS start includes libcurl's libraries, mapped at load "
	       "for each; a client adds RSS end - RSS start; \"curl libs\": the resident KiB of "
	       "the libraries libcurl brings that dozed does not map, at the end)\n");
	int failed = 0;
	for (int i = 0; i < N_PEERS; i++) {
		failed |= peer_failed[i][0] != 0;
		free(wake[i].v);
		free(insp[i].v);
		free(up[i].v);
		free(ev[i].v);
	}
	return failed;
}

int main(int argc, char **argv)
{
	base = event_base_new();
	if (!base)
		return 1;
	/* A tick keeps EVLOOP_ONCE from waiting past a step's deadline. */
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	if (!tick || event_add(tick, &(struct timeval){0, 100000}) < 0)
		return 1;
	int ret = 2;
	if (argc == 5 && strcmp(argv[1], "run") == 0) {
		container = argv[4];
		ret = peer_today.setup(base, argv[3]) < 0 ? 1 : run(argv[2], argv[3]);
	} else if (argc == 6 && strcmp(argv[1], "rss") == 0) {
		int i = atoi(argv[2]);
		container = argv[4];
		ret = i >= 0 && i < N_PEERS ? rss_child(i, argv[3], strtoul(argv[5], NULL, 10)) : 2;
	} else {
		fprintf(stderr,
			"usage: %s run RUNTIME SOCKET CONTAINER\n"
			"       %s rss CLIENT SOCKET CONTAINER N\n",
			argv[0], argv[0]);
	}
	event_free(tick);
	event_base_free(base);
	return ret;
}
