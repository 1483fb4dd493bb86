// SPDX-License-Identifier: MIT
/*
 * A wake during a storm of scrapes, against the same wake alone: the issue's
 * "the loop keeps serving wakes". One service of a real runtime, put to sleep
 * and woken by one client (connect -> first byte of GET /), RUNS times alone
 * and RUNS times while a child process keeps CONNS scrapes of dozed's
 * /metrics in flight (each on a new connection, again as soon as one ends),
 * alternated in ABBA order so that a slow spell of the machine falls on both.
 * Besides the client's time, dozed's own part of each wake (the ready event's
 * total less its start and probe: hold, inspect, bookkeeping — what a busy
 * loop would delay) and the storm's whole answers (200, Content-Length bytes,
 * a final newline) and its rate.
 *
 *   bench_scrape NAME PORT CONTROL METRICS_PORT RUNS CONNS LABEL
 *
 * Run in the runtime's network namespace (tests/bench/bench_scrape.sh sets
 * it all up); exit 1 when a step failed or any scrape was not whole.
 */
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/wait.h>

#include "bench_wake_common.h"

#define MAX_CONNS 1024

/* --- the storm ----------------------------------------------------------------- */

struct scrape {
	int fd;
	char head[2048];
	size_t head_len;
	bool in_body;
	int status;
	long long clen; /* -1: none given */
	long long body;
	char last;
};

struct storm_stats {
	uint64_t whole, bad, connect_failed;
	double seconds;
};

static volatile sig_atomic_t storm_stop;
static void storm_on_term(int sig)
{
	(void)sig;
	storm_stop = 1;
}

static int scrape_open(struct scrape *s, uint16_t port)
{
	*s = (struct scrape){.fd = -1, .clen = -1};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(fd);
		return r;
	}
	s->fd = fd;
	return 0;
}

/* HTTP/1.0: the answer is never chunked and ends with the connection. */
static const char scrape_request[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";

static void head_parse(struct scrape *s)
{
	s->head[s->head_len] = '\0';
	if (sscanf(s->head, "HTTP/1.%*d %d", &s->status) != 1)
		s->status = 0;
	for (char *p = s->head; (p = strchr(p, '\n')); p++)
		if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
			s->clen = strtoll(p + 16, NULL, 10);
}

/* Reads what is there: 1 when the answer ended (EOF), 0 for more, <0 error. */
static int scrape_read(struct scrape *s)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n == 0)
			return 1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		size_t i = 0;
		while (!s->in_body && i < (size_t)n) {
			if (s->head_len < sizeof(s->head) - 1)
				s->head[s->head_len++] = buf[i];
			i++;
			if (s->head_len >= 4 &&
			    memcmp(s->head + s->head_len - 4, "\r\n\r\n", 4) == 0) {
				s->in_body = true;
				head_parse(s);
			}
		}
		if (i < (size_t)n) {
			s->body += (long long)n - (long long)i;
			s->last = buf[n - 1];
		}
	}
}

static bool scrape_whole(const struct scrape *s)
{
	return s->in_body && s->status == 200 && s->clen > 0 && s->body == s->clen &&
	       s->last == '\n';
}

/*
 * The child: conns scrapes until SIGTERM, stats written to out. pace_ms 0:
 * each again as soon as it ends (as fast as dozed answers); else rounds of
 * conns at once every pace_ms (a slot still busy skips a round). ready_fd
 * hears when the storm is at full tilt: every slot answered once, or (paced)
 * the moment the second round's connections are made.
 */
static int storm_run(uint16_t port, int conns, int pace_ms, int ready_fd, int out_fd)
{
	static struct scrape sc[MAX_CONNS];
	static struct pollfd pfd[MAX_CONNS];
	static bool sent[MAX_CONNS], waiting[MAX_CONNS];
	struct storm_stats st = {0};
	bool told = false;
	double t0 = now_ms(), round_at = t0 + pace_ms;
	for (int i = 0; i < conns; i++) {
		if (scrape_open(&sc[i], port) < 0)
			st.connect_failed++;
		sent[i] = waiting[i] = false;
	}
	while (!storm_stop) {
		double now = now_ms();
		if (pace_ms > 0 && now >= round_at) {
			for (int i = 0; i < conns; i++)
				if (waiting[i]) {
					waiting[i] = false;
					if (scrape_open(&sc[i], port) < 0)
						st.connect_failed++;
				}
			round_at += pace_ms;
			if (!told) {
				told = true;
				if (write(ready_fd, "r", 1) != 1)
					break;
			}
		}
		for (int i = 0; i < conns; i++) {
			pfd[i].fd = waiting[i] ? -1 : sc[i].fd;
			pfd[i].events = sent[i] ? POLLIN : POLLOUT;
			pfd[i].revents = 0;
		}
		int wait_ms = 100;
		if (pace_ms > 0 && round_at - now < wait_ms)
			wait_ms = round_at - now > 0 ? (int)(round_at - now) + 1 : 0;
		if (poll(pfd, (nfds_t)conns, wait_ms) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < conns; i++) {
			struct scrape *s = &sc[i];
			int done = 0;
			if (waiting[i]) {
				continue;
			} else if (s->fd < 0) {
				done = -1;
			} else if (!sent[i] && pfd[i].revents) {
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				/* The request is far below a socket buffer: one write. */
				if (err ||
				    write(s->fd, scrape_request, sizeof(scrape_request) - 1) !=
					(ssize_t)(sizeof(scrape_request) - 1))
					done = -1;
				else
					sent[i] = true;
			} else if (sent[i] && pfd[i].revents) {
				done = scrape_read(s);
			}
			if (done == 0)
				continue;
			if (done > 0 && scrape_whole(s))
				st.whole++;
			else if (done > 0 || sent[i])
				st.bad++;
			else
				st.connect_failed++;
			if (s->fd >= 0)
				close(s->fd);
			s->fd = -1;
			sent[i] = false;
			if (pace_ms > 0)
				waiting[i] = true;
			else if (scrape_open(s, port) < 0)
				st.connect_failed++;
		}
		if (pace_ms == 0 && !told && st.whole + st.bad >= (uint64_t)conns) {
			told = true;
			if (write(ready_fd, "r", 1) != 1)
				break;
		}
	}
	st.seconds = (now_ms() - t0) / 1000;
	if (write(out_fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
		return 1;
	return 0;
}

struct storm {
	pid_t pid;
	int ready_fd, out_fd;
};

static int storm_start(struct storm *s, uint16_t port, int conns, int pace_ms)
{
	int ready[2], out[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		signal(SIGTERM, storm_on_term);
		close(ready[0]);
		close(out[0]);
		_exit(storm_run(port, conns, pace_ms, ready[1], out[1]));
	}
	close(ready[1]);
	close(out[1]);
	*s = (struct storm){.pid = pid, .ready_fd = ready[0], .out_fd = out[0]};
	/* Wait for full tilt, at most 30 s. */
	struct pollfd p = {.fd = s->ready_fd, .events = POLLIN};
	char c;
	if (poll(&p, 1, 30000) != 1 || read(s->ready_fd, &c, 1) != 1) {
		fprintf(stderr, "bench_scrape: the storm never had its %d first answers\n", conns);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ETIMEDOUT;
	}
	return 0;
}

static int storm_end(struct storm *s, struct storm_stats *st)
{
	kill(s->pid, SIGTERM);
	ssize_t n = read(s->out_fd, st, sizeof(*st));
	int status;
	waitpid(s->pid, &status, 0);
	close(s->ready_fd);
	close(s->out_fd);
	return n == (ssize_t)sizeof(*st) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
											  : -EIO;
}

/* --- the wakes ----------------------------------------------------------------- */

/* dozed's own part of the last wake: total less start and probe (ms). */
static bool last_own_ms(const char *control, const char *name, double *own)
{
	struct json_object *e = last_event(control, name, "ready");
	if (!e)
		return false;
	double total = event_number(e, "total_ms"), start = event_number(e, "start_ms"),
	       probe = event_number(e, "probe_ms");
	json_object_put(e);
	if (isnan(total) || isnan(start) || isnan(probe))
		return false;
	*own = total - start - probe;
	return true;
}

struct side {
	const char *what;
	int pace_ms; /* -1: no storm */
	double first_byte[MAX_RUNS], own[MAX_RUNS];
	int n;
	struct storm_stats storm;
	struct bench_stat fb, ow;
};

static void row(const char *what, const struct side *sd, struct bench_stat st,
		const struct side *base, struct bench_stat base_st)
{
	char text[96];
	snprintf(text, sizeof(text), "%s, %s", sd->what, what);
	printf("%-58s %9.1f %9.1f", text, st.p50, st.p95);
	if (sd != base)
		printf(" %7.2fx %7.2fx", st.p50 / base_st.p50, st.p95 / base_st.p95);
	printf("\n");
}

/* One wake: asleep, the storm at full tilt, one client until its first byte. */
static int wake_once(struct side *sd, const char *name, const char *control,
		     const struct wake_target *t, uint16_t metrics_port, int conns)
{
	char req[256], why[512];
	snprintf(req, sizeof(req), "{\"cmd\":\"sleep\",\"service\":\"%s\"}", name);
	if (!control_ok(control, req) || !wait_state(control, name, "asleep"))
		return -1;
	struct storm storm = {.pid = -1};
	bool storm_on = sd->pace_ms >= 0;
	if (storm_on && storm_start(&storm, metrics_port, conns, sd->pace_ms) < 0)
		return -1;
	int not_ready = 0;
	double ms = ask_until_answered(t, now_ms(), 20000, &not_ready, why, sizeof(why));
	struct storm_stats st = {0};
	if (storm_on && storm_end(&storm, &st) < 0)
		return fprintf(stderr, "bench_scrape: the storm's child failed\n"), -1;
	if (ms < 0)
		return fprintf(stderr, "bench_scrape: %s: %s\n", name, why), -1;
	if (!wait_state(control, name, "awake"))
		return -1;
	double own;
	if (!last_own_ms(control, name, &own))
		return fprintf(stderr, "bench_scrape: %s: no ready event\n", name), -1;
	sd->first_byte[sd->n] = ms;
	sd->own[sd->n] = own;
	sd->n++;
	sd->storm.whole += st.whole;
	sd->storm.bad += st.bad;
	sd->storm.connect_failed += st.connect_failed;
	sd->storm.seconds += st.seconds;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr,
			"usage: bench_scrape NAME PORT CONTROL METRICS_PORT RUNS CONNS LABEL\n");
		return 2;
	}
	const char *name = argv[1], *control = argv[3], *label = argv[7];
	struct wake_target t = {.proto = BENCH_PROTO_HTTP, .port = (uint16_t)atoi(argv[2])};
	uint16_t metrics_port = (uint16_t)atoi(argv[4]);
	int runs = atoi(argv[5]), conns = atoi(argv[6]);
	if (runs < 1 || runs > MAX_RUNS || conns < 1 || conns > MAX_CONNS)
		return fprintf(stderr, "bench_scrape: RUNS 1..%d, CONNS 1..%d\n", MAX_RUNS,
			       MAX_CONNS),
		       2;
	signal(SIGPIPE, SIG_IGN);

	static struct side sides[3] = {
	    {.what = "alone", .pace_ms = -1},
	    {.what = "rounds", .pace_ms = 1000},
	    {.what = "closed loop", .pace_ms = 0},
	};
	/* ABCCBA: a slow spell of the machine falls on every side alike. */
	static const int order[6] = {0, 1, 2, 2, 1, 0};
	for (int i = 0; i < 3 * runs; i++)
		if (wake_once(&sides[order[i % 6]], name, control, &t, metrics_port, conns) < 0)
			return 1;

	printf("\nWake during a scrape storm, busybox httpd, %s: %d wakes each, ABCCBA (ms; "
	       "ratio to alone)\n",
	       label, runs);
	printf("  rounds: %d scrapes of /metrics at once every second, the wake's client at a "
	       "round's start;\n  closed loop: %d scrapes in flight, each again as soon as it "
	       "ends\n",
	       conns, conns);
	printf("%-58s %9s %9s %8s %8s\n", "", "p50", "p95", "p50", "p95");
	for (int k = 0; k < 3; k++) {
		sides[k].fb = bench_stat_of(sides[k].first_byte, (size_t)sides[k].n, false);
		sides[k].ow = bench_stat_of(sides[k].own, (size_t)sides[k].n, false);
	}
	for (int k = 0; k < 3; k++)
		row("client connect -> first byte", &sides[k], sides[k].fb, &sides[0], sides[0].fb);
	for (int k = 0; k < 3; k++)
		row("dozed's own work", &sides[k], sides[k].ow, &sides[0], sides[0].ow);
	int failed = 0;
	FILE *csv = bench_csv_open_mode("scrape.csv", "a");
	for (int k = 1; k < 3; k++) {
		const struct storm_stats *ss = &sides[k].storm;
		char text[96];
		snprintf(text, sizeof(text), "%s, scrapes/s during the wakes", sides[k].what);
		printf("%-58s %9.0f   (%llu whole answers, %llu not whole, %llu connects "
		       "failed)\n",
		       text, ss->seconds > 0 ? (double)ss->whole / ss->seconds : 0,
		       (unsigned long long)ss->whole, (unsigned long long)ss->bad,
		       (unsigned long long)ss->connect_failed);
		if (ss->bad || ss->whole == 0) {
			fprintf(stderr, "bench_scrape: %s: %llu scrapes were not whole answers\n",
				sides[k].what, (unsigned long long)ss->bad);
			failed = 1;
		}
	}
	printf("  (dozed's own work: the ready event's total less its start and probe — "
	       "hold, inspect, bookkeeping on its loop)\n");
	for (int k = 0; csv && k < 3; k++)
		fprintf(csv, "%s,%s,%d,%d,%.1f,%.1f,%.1f,%.1f,%llu,%llu\n", label, sides[k].what,
			runs, conns, sides[k].fb.p50, sides[k].fb.p95, sides[k].ow.p50,
			sides[k].ow.p95, (unsigned long long)sides[k].storm.whole,
			(unsigned long long)sides[k].storm.bad);
	if (csv)
		fclose(csv);
	return failed;
}
