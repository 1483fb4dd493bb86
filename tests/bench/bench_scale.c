// SPDX-License-Identifier: MIT
/*
 * Scale, with dozed's real parts, each section in a fresh child process and a
 * private network namespace:
 *
 * (a) 5 000 connections held through one wake: the activator on its own
 *     libevent base behind our nft table; 5 000 clients connect to a sleeping
 *     port and send a request, then a backend starts listening and the
 *     activator is told "starting". All answered? Time from "starting" to the
 *     last answer (drain). Once with the activator's default max_held (what
 *     the daemon runs with), then with max_held raised above 5 000 (both
 *     with max_held_per_client = max_held: one address here). Clients,
 *     activator and backend are 3 processes, as on a host; the activator's
 *     needs 2 descriptors per held connection (the client, then its relay to
 *     the backend), so its RLIMIT_NOFILE is raised to 11 024.
 *
 * (b) 1 000 enabled services: 1 000 test cgroups each with the egress
 *     counter attached, the service registry holding 1 000 services (10 ports
 *     each) with ops backed by the real counter, nft table and libevent
 *     timers; only the runtime's start and stop are no-ops, completed at
 *     once. Process RSS, idle CPU of the loop with 1 000 idle timers armed,
 *     one idle-scan pass, and nft set changes with the 10 000 ports of the
 *     1 000 services, asleep, in the set.
 *
 * Prints tables and writes tests/bench/results/scale.csv.
 *
 * Usage: bench_scale [IDLE_SECONDS]   (default 10)
 * BENCH_QUICK=1: 64 held clients, one run of each; 10 services; 0.2 s idle;
 * a few passes; no target judged (see bench.h).
 * DOZED_BENCH_DEBUG=1 in the environment prints the counters of every (a) run.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "bench.h"
#include "dozed/activator.h"
#include "dozed/config.h"
#include "dozed/egress_counter.h"
#include "dozed/log.h"
#include "dozed/nft.h"
#include "dozed/service.h"

#define ACTIVATOR_PORT 16001
#define MARK	       DOZED_MARK_DEFAULT
#define NFT_TABLE      "dozedbenchscale"
#define SERVICE_ID     1

#define HELD_CLIENTS  (bench_quick() ? 64 : 5000)
#define HELD_RUNS_MAX 5
#define HELD_RUNS     (bench_quick() ? 1 : HELD_RUNS_MAX) /* with max_held raised */
/* with the default: a run may wait out the clients' deadline */
#define HELD_RUNS_DEFAULT (bench_quick() ? 1 : 3)
#define HELD_PORT_FIRST	  17000 /* one service port per run */
#define HELD_MAX_RAISED	  8192
#define HELD_DEADLINE_MS  8000 /* for a client's answer, once all have sent */
#define BACKEND_BACKLOG	  4096

#define N_SERVICES_MAX	  1000
#define N_SERVICES	  (bench_quick() ? 10 : N_SERVICES_MAX)
#define PORTS_PER_SERVICE 10
#define SERVICE_PORT_BASE 20000
#define SCAN_PASSES_MAX	  20
#define SCAN_PASSES	  (bench_quick() ? 2 : SCAN_PASSES_MAX)
#define NFT_REPS_MAX	  200
#define NFT_REPS	  (bench_quick() ? 3 : NFT_REPS_MAX)
#define NFT_SPARE_PORT	  19999 /* in no service */

static double idle_seconds = 10.0;

/* Opened before the sections' children are forked: each adds its rows. */
static FILE *csv;

/* Raises this process's RLIMIT_NOFILE to need (the hard limit too, when it is lower). */
static int raise_nofile(rlim_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	rlim_t hard = rl.rlim_max;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int r = -errno;
		fprintf(stderr,
			"bench: raising RLIMIT_NOFILE to %llu: %s (the hard limit is %llu; "
			"raising it needs CAP_SYS_RESOURCE)\n",
			(unsigned long long)need, strerror(-r), (unsigned long long)hard);
		return r;
	}
	return 0;
}

/* Runs base until pred(arg), checking every millisecond; false after timeout_ms. */
struct until {
	struct event_base *base;
	bool (*pred)(void *);
	void *arg;
	double deadline_us;
	bool met;
};

static void until_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct until *u = arg;
	u->met = u->pred(u->arg);
	if (u->met || bench_now_us() > u->deadline_us)
		event_base_loopbreak(u->base);
}

static bool run_until(struct event_base *base, bool (*pred)(void *), void *arg, unsigned timeout_ms)
{
	struct until u = {.base = base,
			  .pred = pred,
			  .arg = arg,
			  .deadline_us = bench_now_us() + timeout_ms * 1000.0};
	if (pred(arg))
		return true;
	struct event *tick = event_new(base, -1, EV_PERSIST, until_tick, &u);
	struct timeval ms = {.tv_sec = 0, .tv_usec = 1000};
	if (!tick || event_add(tick, &ms) < 0)
		return false;
	event_base_dispatch(base);
	event_free(tick);
	return u.met;
}

/* ================================================================================
 * (a) held connections
 *
 * Three processes, as on a real host: the clients, the activator (this one),
 * and the backend, started once every client is held. Each has the
 * descriptors of its own side only.
 * ================================================================================ */

/* What the clients' process reports, on one pipe: first this... */
struct clients_sent {
	size_t connected;
	double connect_all_ms; /* to connect and send, all clients */
};

/* ...then this, once every client was answered or gave up. */
struct clients_result {
	size_t answered, failed;
	/* why they failed */
	size_t not_connected, not_sent, reset, closed, wrong, timed_out;
	double first_us, median_us, last_us; /* answer times, CLOCK_MONOTONIC */
};

struct held_run {
	size_t max_held;
	uint16_t port;

	struct event_base *base;
	struct activator *act;
	struct nft_ctx *nft;
	int clients_fd; /* read end of the clients' pipe */
	bool have_sent, have_result;
	struct clients_sent sent;
	struct clients_result result;
	int wakes_requested;
	double starting_us, ready_us;
	uint64_t accepted; /* by the activator */
};

static int held_route(void *ud, const struct sockaddr_storage *dst, struct activator_route *route)
{
	const struct held_run *run = ud;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)dst;
	if (dst->ss_family != AF_INET || ntohs(in4->sin_port) != run->port)
		return -ENOENT;
	*route = (struct activator_route){.service_id = SERVICE_ID};
	return 0;
}

static void held_wake_requested(void *ud, uint64_t id, const struct sockaddr_storage *client)
{
	(void)id;
	(void)client;
	struct held_run *run = ud;
	/* "starting" comes once every client is held and the backend listens. */
	run->wakes_requested++;
}

static void held_ready(void *ud, uint64_t id, uint64_t probe_us, uint64_t total_us)
{
	(void)id;
	(void)probe_us;
	(void)total_us;
	struct held_run *run = ud;
	run->ready_us = bench_now_us();
	/* As the daemon does: new connections go straight to the service. */
	(void)nft_set_remove_ports(run->nft, &run->port, 1);
}

static void held_wake_failed(void *ud, uint64_t id, int reason)
{
	(void)ud;
	(void)id;
	fprintf(stderr, "bench: the wake failed: %s\n", strerror(-reason));
}

static const struct activator_ops held_ops = {
    .route_lookup = held_route,
    .wake_requested = held_wake_requested,
    .service_ready = held_ready,
    .wake_failed = held_wake_failed,
};

/* --- the backend: one epoll loop answering "R<n>\n" with "A<n>\n" ------------------ */

static int listen_loopback(uint16_t port)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, BACKEND_BACKLOG) < 0)
		return -errno;
	return TAKE_FD(fd);
}

/* Serves until killed. */
static void backend_process(int lfd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event l = {.events = EPOLLIN, .data.fd = lfd};
	if (raise_nofile(HELD_CLIENTS + 256) < 0 || ep < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &l) < 0)
		_exit(1);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
				continue;
			}
			/* Requests are a few bytes: they come in one read. The
			 * activator's probes connect and close without one. */
			char buf[64];
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 1 && buf[0] == 'R' && buf[r - 1] == '\n') {
				buf[0] = 'A';
				(void)!write(fd, buf, (size_t)r);
			}
			close(fd);
		}
	}
}

/* --- the clients: connect all, send all, then wait for every answer --------------- */

struct client {
	int fd;
	size_t len;
	char buf[24];
	double answered_us; /* 0: not (yet) */
};

static void clients_process(uint16_t port, int out)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct client *cl = calloc(HELD_CLIENTS, sizeof(*cl));
	double *times = calloc(HELD_CLIENTS, sizeof(double));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || !times || ep < 0 || raise_nofile(HELD_CLIENTS + 256) < 0)
		_exit(1);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct clients_sent sent = {0};
	struct clients_result res = {0};
	double t0 = bench_now_us();
	for (size_t i = 0; i < HELD_CLIENTS; i++) {
		cl[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cl[i].fd >= 0 && connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(cl[i].fd);
			cl[i].fd = -1;
		}
		if (cl[i].fd >= 0)
			sent.connected++;
		else
			res.not_connected++;
	}
	size_t open_fds = 0;
	for (size_t i = 0; i < HELD_CLIENTS; i++) {
		if (cl[i].fd < 0)
			continue;
		char req[24];
		int len = snprintf(req, sizeof(req), "R%zu\n", i);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = i};
		/* A client the activator reset (over max_held) fails here or below. */
		if (write(cl[i].fd, req, (size_t)len) != len ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) < 0) {
			close(cl[i].fd);
			cl[i].fd = -1;
			res.not_sent++;
			continue;
		}
		open_fds++;
	}
	sent.connect_all_ms = (bench_now_us() - t0) / 1000;
	if (write(out, &sent, sizeof(sent)) != sizeof(sent))
		_exit(1);

	double deadline = bench_now_us() + HELD_DEADLINE_MS * 1000.0;
	struct epoll_event evs[256];
	while (open_fds > 0 && bench_now_us() < deadline) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			size_t i = (size_t)evs[k].data.u64;
			struct client *c = &cl[i];
			ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0)
				c->len += (size_t)r;
			if (c->len > 0 && c->buf[c->len - 1] == '\n') {
				char want[24];
				int wl = snprintf(want, sizeof(want), "A%zu\n", i);
				if ((size_t)wl == c->len && memcmp(want, c->buf, c->len) == 0) {
					c->answered_us = bench_now_us();
					res.answered++;
				} else {
					res.wrong++;
				}
			} else if (r > 0 && c->len < sizeof(c->buf) - 1) {
				continue;
			} else if (r < 0) {
				res.reset++;
			} else {
				res.closed++; /* without an answer */
			}
			close(c->fd);
			c->fd = -1;
			open_fds--;
		}
	}
	size_t n_times = 0;
	for (size_t i = 0; i < HELD_CLIENTS; i++) {
		if (cl[i].fd >= 0)
			res.timed_out++;
		if (cl[i].answered_us > 0)
			times[n_times++] = cl[i].answered_us;
	}
	res.failed =
	    res.not_connected + res.not_sent + res.reset + res.closed + res.wrong + res.timed_out;
	if (n_times > 0) {
		struct bench_stat st = bench_stat_of(times, n_times, false);
		res.first_us = times[0];
		res.median_us = st.p50;
		res.last_us = times[n_times - 1];
	}
	_exit(write(out, &res, sizeof(res)) == sizeof(res) ? 0 : 1);
}

/* The clients' reports, read without blocking the loop. */
static void read_clients(struct held_run *run)
{
	if (!run->have_sent &&
	    read(run->clients_fd, &run->sent, sizeof(run->sent)) == sizeof(run->sent))
		run->have_sent = true;
	if (run->have_sent && !run->have_result &&
	    read(run->clients_fd, &run->result, sizeof(run->result)) == sizeof(run->result))
		run->have_result = true;
}

static bool all_held(void *arg)
{
	struct held_run *run = arg;
	read_clients(run);
	if (!run->have_sent)
		return false;
	struct activator_counters c;
	activator_get_counters(run->act, &c);
	/* Everyone who connected was accepted: held, or reset over the bound. */
	return c.accepted >= run->sent.connected;
}

static bool clients_reported(void *arg)
{
	struct held_run *run = arg;
	read_clients(run);
	return run->have_result;
}

static void reap(pid_t pid, bool kill_it)
{
	if (pid <= 0)
		return;
	if (kill_it)
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int held_run_once(struct nft_ctx *nft, struct held_run *run)
{
	run->nft = nft;
	run->clients_fd = -1;
	run->base = event_base_new();
	if (!run->base)
		return -ENOMEM;
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.port = ACTIVATOR_PORT;
	cfg.mark = MARK;
	if (run->max_held)
		cfg.max_held = run->max_held;
	run->max_held = cfg.max_held;
	/* All 5 000 clients come from 127.0.0.1, standing for many hosts: the
	 * per-client bound (tests/integration/test_held_bounds.c) would hold
	 * only max_held_per_client of them. */
	cfg.max_held_per_client = cfg.max_held;
	pid_t clients = -1, backend = -1;
	int p[2] = {-1, -1};
	int r = activator_new(run->base, &cfg, &held_ops, run, &run->act);
	if (r == 0)
		r = nft_set_add_ports(nft, &run->port, 1);
	if (r == 0 && pipe2(p, O_CLOEXEC) < 0)
		r = -errno;
	if (r == 0) {
		fflush(NULL);
		clients = fork();
		if (clients == 0) {
			close(p[0]);
			clients_process(run->port, p[1]);
		}
		if (clients < 0)
			r = -errno;
		close(p[1]);
		run->clients_fd = p[0];
		fcntl(p[0], F_SETFL, O_NONBLOCK);
	}
	if (r == 0 && !run_until(run->base, all_held, run, 30000)) {
		fprintf(stderr, "bench: the clients were not all held in time\n");
		r = -ETIMEDOUT;
	}
	if (r == 0) {
		int lfd = listen_loopback(run->port);
		if (lfd < 0)
			r = lfd;
		if (r == 0) {
			fflush(NULL);
			backend = fork();
			if (backend == 0)
				backend_process(lfd);
			if (backend < 0)
				r = -errno;
			close(lfd);
		}
	}
	if (r == 0) {
		run->starting_us = bench_now_us();
		r = activator_service_starting(run->act, SERVICE_ID, NULL);
	}
	if (r == 0 && !run_until(run->base, clients_reported, run, HELD_DEADLINE_MS + 5000)) {
		fprintf(stderr, "bench: the clients did not finish in time\n");
		r = -ETIMEDOUT;
	}
	struct activator_counters c = {0};
	if (run->act)
		activator_get_counters(run->act, &c);
	run->accepted = c.accepted;
	if (getenv("DOZED_BENCH_DEBUG")) {
		const struct clients_result *cr = &run->result;
		fprintf(stderr,
			"bench: port %u: activator accepted %llu, held now %llu, rejected %llu, "
			"probes %llu, relayed %llu, relay connects failed %llu; clients answered "
			"%zu, not connected %zu, not sent %zu, reset %zu, closed %zu, wrong %zu, "
			"timed out %zu; ready after %.1f ms\n",
			run->port, (unsigned long long)c.accepted, (unsigned long long)c.held_now,
			(unsigned long long)c.rejected_full, (unsigned long long)c.probe_attempts,
			(unsigned long long)c.relayed_total,
			(unsigned long long)c.relay_connect_failed, cr->answered, cr->not_connected,
			cr->not_sent, cr->reset, cr->closed, cr->wrong, cr->timed_out,
			(run->ready_us - run->starting_us) / 1000);
	}
	reap(clients, r < 0);
	reap(backend, true);
	if (run->clients_fd >= 0)
		close(run->clients_fd);
	activator_free(run->act);
	event_base_free(run->base);
	(void)nft_set_remove_ports(nft, &run->port, 1);
	return r;
}

static int held_section(void *arg)
{
	(void)arg;
	signal(SIGPIPE, SIG_IGN);
	log_set_max_level(LOG_WARNING);
	/* Here, per connection: the held client, then its relay to the backend;
	 * pipes come from a small pool. Clients and backend have their own. */
	if (netns_enter_private() < 0 || raise_nofile(2 * HELD_CLIENTS + 1024) < 0)
		return 1;
	struct nft_ctx *nft = NULL;
	if (nft_ctx_new(&nft, NFT_TABLE, MARK, ACTIVATOR_PORT) < 0 || nft_table_create(nft) < 0)
		return 1;

	struct activator_config defaults;
	activator_config_defaults(&defaults);
	const size_t settings[2] = {0, HELD_MAX_RAISED}; /* 0: the daemon's default */
	const int n_runs[2] = {HELD_RUNS_DEFAULT, HELD_RUNS};
	static struct held_run runs[2][HELD_RUNS_MAX];
	int r = 0;
	uint16_t port = HELD_PORT_FIRST;
	for (int s = 0; r == 0 && s < 2; s++)
		for (int i = 0; r == 0 && i < n_runs[s]; i++, port++) {
			runs[s][i] = (struct held_run){.max_held = settings[s], .port = port};
			r = held_run_once(nft, &runs[s][i]);
		}
	nft_table_destroy(nft);
	nft_ctx_free(nft);
	if (r < 0) {
		fprintf(stderr, "bench: held connections: %s\n", strerror(-r));
		return 1;
	}

	printf("\n(a) %d clients connect to a sleeping port and send a request; the backend starts "
	       "listening, then\n    the activator is told \"starting\" (real activator behind "
	       "the nft redirect, private netns;\n    clients, activator and backend in 3 "
	       "processes). Worst run for the counts, ms from \"starting\":\n    ready = the "
	       "activator's ready callback, after starting a relay for every held client;\n"
	       "    drain = the last answer\n",
	       HELD_CLIENTS);
	printf("%-26s %4s %9s %8s %7s %8s %8s %8s %8s %8s %8s\n", "activator max_held", "runs",
	       "answered", "rejected", "never", "ready", "first", "median", "drain", "drain",
	       "connect");
	printf("%-26s %4s %9s %8s %7s %8s %8s %8s %8s %8s %8s\n", "", "", "", "(reset)", "answered",
	       "p50", "p50", "p50", "p50", "p95", "all p50");
	bool met[2] = {true, true};
	size_t redirected_back = 0;
	for (int s = 0; s < 2; s++) {
		int n = n_runs[s];
		double ready[HELD_RUNS_MAX] = {0}, first[HELD_RUNS_MAX] = {0},
		       median[HELD_RUNS_MAX] = {0}, drain[HELD_RUNS_MAX] = {0},
		       conn[HELD_RUNS_MAX] = {0};
		size_t worst = HELD_CLIENTS, rejected = 0, never = 0;
		for (int i = 0; i < n; i++) {
			const struct held_run *h = &runs[s][i];
			const struct clients_result *c = &h->result;
			ready[i] = (h->ready_us - h->starting_us) / 1000;
			first[i] = (c->first_us - h->starting_us) / 1000;
			median[i] = (c->median_us - h->starting_us) / 1000;
			drain[i] = (c->last_us - h->starting_us) / 1000;
			conn[i] = h->sent.connect_all_ms;
			if (c->answered < worst)
				worst = c->answered;
			size_t rej = c->not_sent + c->reset + c->closed;
			if (rej > rejected)
				rejected = rej;
			size_t nev = c->not_connected + c->wrong + c->timed_out;
			if (nev > never)
				never = nev;
			if (h->accepted > h->sent.connected &&
			    h->accepted - h->sent.connected > redirected_back)
				redirected_back = h->accepted - h->sent.connected;
		}
		met[s] = worst == HELD_CLIENTS;
		struct bench_stat sr = bench_stat_of(ready, (size_t)n, false),
				  sf = bench_stat_of(first, (size_t)n, false),
				  sm = bench_stat_of(median, (size_t)n, false),
				  sd = bench_stat_of(drain, (size_t)n, false),
				  sc = bench_stat_of(conn, (size_t)n, false);
		char label[64];
		if (s == 0)
			snprintf(label, sizeof(label), "%zu (daemon's default)", defaults.max_held);
		else
			snprintf(label, sizeof(label), "%d (raised)", HELD_MAX_RAISED);
		printf("%-26s %4d %9zu %8zu %7zu %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f\n", label, n,
		       worst, rejected, never, sr.p50, sf.p50, sm.p50, sd.p50, sd.p95, sc.p50);
		if (csv)
			fprintf(csv,
				"held,max_held %zu: answered of %d (worst run),%zu,\n"
				"held,max_held %zu: never answered (worst run),%zu,\n"
				"held,max_held %zu: drain ms,%.1f,%.1f\n"
				"held,max_held %zu: ready ms,%.1f,%.1f\n",
				runs[s][0].max_held, HELD_CLIENTS, worst, runs[s][0].max_held,
				never, runs[s][0].max_held, sd.p50, sd.p95, runs[s][0].max_held,
				sr.p50, sr.p95);
	}
	if (redirected_back > 0)
		printf(
		    "Note: in a run the activator accepted %zu connections more than the clients "
		    "made: relay connections\n  to the backend redirected back to the activator "
		    "and held there, their clients never answered.\n  Likely cause: a relay "
		    "socket reused the source port of a client the activator had reset, and\n  "
		    "that connection's conntrack entry (which carries the redirect) took the "
		    "relay's SYN.\n",
		    redirected_back);
	if (bench_quick())
		printf("Target: not judged (quick run)\n");
	else
		printf(
		    "Target: %d held, 100 %% answered: %s with max_held %d; %s with the daemon's "
		    "default max_held %zu\n",
		    HELD_CLIENTS, met[1] ? "met" : "MISSED", HELD_MAX_RAISED,
		    met[0] ? "met" : "MISSED", defaults.max_held);
	fflush(stdout);
	return 0;
}

/* ================================================================================
 * (b) 1 000 enabled services
 * ================================================================================ */

struct svc_extra {
	struct fleet *f;
	uint64_t id;
	struct event *timer;
	struct egress_attachment *attachment;
	char cgroup[PATH_MAX];
};

struct fleet {
	struct event_base *base;
	struct nft_ctx *nft;
	struct egress_counter *counter;
	struct activator *act;
	struct service_registry *reg;
	struct svc_extra *x[N_SERVICES_MAX];
	uint64_t runtime_calls, events, egress_reads, egress_read_errors;
};

static uint64_t monotonic_us(void)
{
	return (uint64_t)bench_now_us();
}

static uint64_t ops_now_us(void *ud)
{
	(void)ud;
	return monotonic_us();
}

static int ops_redirect_add(void *ud, struct service *s)
{
	struct fleet *f = ud;
	uint16_t ports[SERVICE_MAX_PORTS];
	return nft_set_add_ports(f->nft, ports, service_host_ports(s, ports));
}

static int ops_redirect_remove(void *ud, struct service *s)
{
	struct fleet *f = ud;
	uint16_t ports[SERVICE_MAX_PORTS];
	return nft_set_remove_ports(f->nft, ports, service_host_ports(s, ports));
}

/* No containers here: the bench completes stops and starts itself. */
static void ops_runtime_call(void *ud, struct service *s)
{
	(void)s;
	((struct fleet *)ud)->runtime_calls++;
}

static void ops_activator_starting(void *ud, struct service *s)
{
	struct fleet *f = ud;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(s->ports[0].host_port)};
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct sockaddr_storage ss = {0};
	memcpy(&ss, &dst, sizeof(dst));
	bool held = activator_service_held(f->act, s->id) > 0;
	if (activator_service_starting(f->act, s->id, held ? NULL : &ss) < 0)
		service_on_wake_failed(f->reg, s->id, -EIO);
}

static void ops_activator_failed(void *ud, struct service *s)
{
	activator_service_failed(((struct fleet *)ud)->act, s->id);
}

static size_t ops_activator_held(void *ud, struct service *s)
{
	return activator_service_held(((struct fleet *)ud)->act, s->id);
}

static size_t ops_activator_waiting(void *ud, struct service *s)
{
	return activator_service_waiting(((struct fleet *)ud)->act, s->id);
}

static void ops_egress_read(void *ud, struct service *s)
{
	struct fleet *f = ud;
	struct svc_extra *x = s->userdata;
	struct egress_totals t;
	f->egress_reads++;
	if (!x->attachment || egress_counter_read(f->counter, x->attachment, &t) < 0) {
		f->egress_read_errors++;
		return;
	}
	s->egress_bytes = t.bytes;
	s->egress_packets = t.packets;
	if (t.last_ns)
		s->last_activity_us = t.last_ns / 1000;
}

static void ops_timer_set(void *ud, struct service *s, uint64_t at_us)
{
	(void)ud;
	struct svc_extra *x = s->userdata;
	if (at_us == 0) {
		evtimer_del(x->timer);
		return;
	}
	uint64_t t = monotonic_us(), in = at_us > t ? at_us - t : 0;
	struct timeval tv = {.tv_sec = (time_t)(in / 1000000),
			     .tv_usec = (suseconds_t)(in % 1000000)};
	evtimer_add(x->timer, &tv);
}

static void ops_emit(void *ud, struct service *s, const char *event, struct json_object *facts)
{
	(void)s;
	(void)event;
	((struct fleet *)ud)->events++;
	json_object_put(facts);
}

static void ops_forget(void *ud, struct service *s)
{
	struct fleet *f = ud;
	struct svc_extra *x = s->userdata;
	if (!x)
		return;
	egress_counter_detach(x->attachment);
	if (x->timer)
		event_free(x->timer);
	for (size_t i = 0; i < N_SERVICES; i++)
		if (f->x[i] == x)
			f->x[i] = NULL;
	free(x);
	s->userdata = NULL;
}

static void ops_state_changed(void *ud, struct service *s, enum service_state from)
{
	(void)ud, (void)s, (void)from;
}

static const struct service_ops fleet_ops = {
    .now_us = ops_now_us,
    .redirect_add = ops_redirect_add,
    .redirect_remove = ops_redirect_remove,
    .runtime_stop = ops_runtime_call,
    .runtime_start = ops_runtime_call,
    .activator_starting = ops_activator_starting,
    .activator_failed = ops_activator_failed,
    .activator_held = ops_activator_held,
    .activator_waiting = ops_activator_waiting,
    .egress_read = ops_egress_read,
    .timer_set = ops_timer_set,
    .emit = ops_emit,
    .forget = ops_forget,
    .state_changed = ops_state_changed,
};

/* The activator's side of the daemon, for completeness: no client comes here. */
static int fleet_route(void *ud, const struct sockaddr_storage *dst, struct activator_route *route)
{
	struct fleet *f = ud;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)dst;
	struct service *s =
	    dst->ss_family == AF_INET ? service_find_by_port(f->reg, ntohs(in4->sin_port)) : NULL;
	if (!s)
		return -ENOENT;
	*route = (struct activator_route){.service_id = s->id, .wake_min_bytes = s->wake_on_data};
	return 0;
}

static void fleet_wake_requested(void *ud, uint64_t id, const struct sockaddr_storage *client)
{
	service_on_wake_requested(((struct fleet *)ud)->reg, id, client);
}

static void fleet_ready(void *ud, uint64_t id, uint64_t probe_us, uint64_t total_us)
{
	service_on_ready(((struct fleet *)ud)->reg, id, probe_us, total_us);
}

static void fleet_wake_failed(void *ud, uint64_t id, int reason)
{
	service_on_wake_failed(((struct fleet *)ud)->reg, id, reason);
}

static const struct activator_ops fleet_activator_ops = {
    .route_lookup = fleet_route,
    .wake_requested = fleet_wake_requested,
    .service_ready = fleet_ready,
    .wake_failed = fleet_wake_failed,
};

static void service_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	service_on_timer(x->f->reg, x->id);
}

/* Resident set of this process, from /proc/self/status (field "VmRSS:" or "VmHWM:"), KiB. */
static long status_kib(const char *field)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t len = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0)
			return strtol(line + len, NULL, 10);
	return -1;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void on_idle_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

struct fleet_results {
	long rss_base_kib, rss_awake_kib, rss_asleep_kib, hwm_kib, hwm_base_kib;
	double cgroups_ms, enable_ms, sleep_all_ms;
	double idle_cpu_pct, idle_wall_s;
	uint64_t idle_timer_fires;
	struct bench_stat scan_ms, reads_ms;
	struct bench_stat nft_add_us, nft_remove_us, svc_redirect_us, svc_unredirect_us;
	size_t ports_in_set;
};

static uint64_t timer_fires;

static void counting_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	timer_fires++;
	service_timer_cb(fd, what, arg);
}

static int fleet_build(struct fleet *f, struct fleet_results *res)
{
	double t0 = bench_now_us();
	for (size_t i = 0; i < N_SERVICES; i++) {
		struct svc_extra *x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		f->x[i] = x;
		x->f = f;
		char name[32];
		snprintf(name, sizeof(name), "svc%04zu", i);
		int r = bench_cgroup_create(name, x->cgroup, sizeof(x->cgroup));
		if (r < 0)
			return r;
	}
	res->cgroups_ms = (bench_now_us() - t0) / 1000;

	/* As the daemon enables a running container: add it (AWAKE, idle timer
	 * armed), then attach the counter to its cgroup. */
	t0 = bench_now_us();
	for (size_t i = 0; i < N_SERVICES; i++) {
		struct svc_extra *x = f->x[i];
		x->timer = evtimer_new(f->base, counting_timer_cb, x);
		if (!x->timer)
			return -ENOMEM;
		struct service_port ports[PORTS_PER_SERVICE];
		for (size_t k = 0; k < PORTS_PER_SERVICE; k++)
			ports[k] = (struct service_port){
			    .host_port = (uint16_t)(SERVICE_PORT_BASE + i * PORTS_PER_SERVICE + k),
			    .container_port = (uint16_t)(8000 + k)};
		char name[32], id[65];
		snprintf(name, sizeof(name), "svc%04zu", i);
		/* A container id is 64 hex digits. */
		snprintf(id, sizeof(id), "%016zx%016zx%016zx%016zx", i, i * 7, i * 13, i * 31);
		struct service_spec spec = {.name = name,
					    .container_id = id,
					    .idle_us = DOZED_IDLE_DEFAULT_US,
					    .ports = ports,
					    .n_ports = PORTS_PER_SERVICE,
					    .userdata = x};
		struct service *s = NULL;
		int r = service_add(f->reg, &spec, true, &s);
		if (r < 0)
			return r;
		x->id = s->id;
		r = egress_counter_attach(f->counter, x->cgroup, &x->attachment);
		if (r < 0)
			return r;
	}
	res->enable_ms = (bench_now_us() - t0) / 1000;
	return 0;
}

static int fleet_measure_awake(struct fleet *f, struct fleet_results *res)
{
	res->rss_awake_kib = status_kib("VmRSS:");

	/* Idle: the loop with 1 000 idle timers armed, nothing else to do. */
	struct event *end = evtimer_new(f->base, on_idle_end, f->base);
	struct timeval tv = {
	    .tv_sec = (time_t)idle_seconds,
	    .tv_usec = (suseconds_t)((idle_seconds - (double)(time_t)idle_seconds) * 1e6)};
	if (!end || evtimer_add(end, &tv) < 0)
		return -ENOMEM;
	timer_fires = 0;
	double c0 = cpu_seconds(), w0 = bench_now_us();
	event_base_dispatch(f->base);
	double c1 = cpu_seconds(), w1 = bench_now_us();
	event_free(end);
	res->idle_wall_s = (w1 - w0) / 1e6;
	res->idle_cpu_pct = (c1 - c0) / res->idle_wall_s * 100.0;
	res->idle_timer_fires = timer_fires;

	/* One idle-scan pass: every service's timer handler, as if all were due
	 * at once (each reads its counter and re-arms its timer). */
	double scan[SCAN_PASSES_MAX], reads[SCAN_PASSES_MAX];
	for (int p = 0; p < SCAN_PASSES; p++) {
		uint64_t errors = f->egress_read_errors;
		double t0 = bench_now_us();
		for (size_t i = 0; i < N_SERVICES; i++)
			service_on_timer(f->reg, f->x[i]->id);
		scan[p] = (bench_now_us() - t0) / 1000;
		if (f->egress_read_errors != errors)
			return -EIO;
		/* The counter reads alone, for where the time goes. */
		t0 = bench_now_us();
		for (size_t i = 0; i < N_SERVICES; i++) {
			struct egress_totals t;
			if (egress_counter_read(f->counter, f->x[i]->attachment, &t) < 0)
				return -EIO;
		}
		reads[p] = (bench_now_us() - t0) / 1000;
	}
	res->scan_ms = bench_stat_of(scan, SCAN_PASSES, false);
	res->reads_ms = bench_stat_of(reads, SCAN_PASSES, false);
	for (struct service *s = service_first(f->reg); s; s = s->next)
		if (s->state != SERVICE_AWAKE)
			return -EPROTO; /* nothing may have gone to sleep */
	return 0;
}

/* All asleep, as after their idle time: the 10 000 ports in the set. */
static int fleet_sleep_all(struct fleet *f, struct fleet_results *res)
{
	double t0 = bench_now_us();
	for (size_t i = 0; i < N_SERVICES; i++) {
		struct service *s = service_find_by_id(f->reg, f->x[i]->id);
		int r = service_sleep_now(f->reg, s, "bench");
		if (r < 0)
			return r;
		service_on_stop_done(f->reg, s->id, 0, NULL);
		if (s->state != SERVICE_ASLEEP)
			return -EPROTO;
	}
	res->sleep_all_ms = (bench_now_us() - t0) / 1000;
	res->rss_asleep_kib = status_kib("VmRSS:");

	_cleanup_free_ uint16_t *ports = NULL;
	size_t n = 0;
	int r = nft_set_list_ports(f->nft, &ports, &n);
	if (r < 0)
		return r;
	res->ports_in_set = n;

	double add[NFT_REPS_MAX], rem[NFT_REPS_MAX], svc_add[NFT_REPS_MAX], svc_rem[NFT_REPS_MAX];
	uint16_t spare = NFT_SPARE_PORT;
	struct service *s = service_find_by_id(f->reg, f->x[N_SERVICES / 2]->id);
	for (int i = 0; i < NFT_REPS; i++) {
		double a = bench_now_us();
		r = nft_set_add_ports(f->nft, &spare, 1);
		double b = bench_now_us();
		if (r == 0)
			r = nft_set_remove_ports(f->nft, &spare, 1);
		double c = bench_now_us();
		/* One service's 10 ports, through the ops the state machine uses. */
		if (r == 0)
			r = fleet_ops.redirect_remove(f, s);
		double d = bench_now_us();
		if (r == 0)
			r = fleet_ops.redirect_add(f, s);
		double e = bench_now_us();
		if (r < 0)
			return r;
		add[i] = b - a;
		rem[i] = c - b;
		svc_rem[i] = d - c;
		svc_add[i] = e - d;
	}
	res->nft_add_us = bench_stat_of(add, NFT_REPS, false);
	res->nft_remove_us = bench_stat_of(rem, NFT_REPS, false);
	res->svc_unredirect_us = bench_stat_of(svc_rem, NFT_REPS, false);
	res->svc_redirect_us = bench_stat_of(svc_add, NFT_REPS, false);
	return 0;
}

static void fleet_print(const struct fleet *f, const struct fleet_results *res)
{
	const double mib = 1024.0;
	double per_service_kib =
	    (double)(res->rss_awake_kib - res->rss_base_kib) / (double)N_SERVICES;
	double rss_mib = (double)(res->rss_awake_kib > res->rss_asleep_kib ? res->rss_awake_kib
									   : res->rss_asleep_kib) /
			 mib;
	double scan_per_service_us = res->scan_ms.p50 * 1000 / N_SERVICES;
	printf("\n(b) %d enabled services (%d ports each; real egress counter on %d test cgroups, "
	       "real nft table,\n    libevent timers, activator; runtime start/stop are no-ops "
	       "completed at once)\n",
	       N_SERVICES, PORTS_PER_SERVICE, N_SERVICES);
	printf("%-58s %12s %12s\n", "measure", "p50", "p95");
	printf("%-58s %9.1f MiB\n", "RSS before any service (counter loaded, nft, activator)",
	       (double)res->rss_base_kib / mib);
	printf("%-58s %9.1f MiB   (%.1f KiB per service)\n",
	       "RSS, 1000 services awake, counters attached, timers armed",
	       (double)res->rss_awake_kib / mib, per_service_kib);
	printf("%-58s %9.1f MiB\n", "RSS, 1000 services asleep, 10000 ports in the set",
	       (double)res->rss_asleep_kib / mib);
	printf("%-58s %9.1f MiB   (%.1f MiB before any service: libbpf reads the kernel's BTF)\n",
	       "peak RSS (VmHWM)", (double)res->hwm_kib / mib, (double)res->hwm_base_kib / mib);
	printf("%-58s %11.3f%%   (%llu timer fires in %.1f s)\n",
	       "idle CPU, loop with 1000 idle timers armed (% of a core)", res->idle_cpu_pct,
	       (unsigned long long)res->idle_timer_fires, res->idle_wall_s);
	printf("%-58s %12.2f %12.2f\n", "idle-scan pass, 1000 services (ms)", res->scan_ms.p50,
	       res->scan_ms.p95);
	printf("%-58s %12.2f %12.2f\n", "  of which 1000 counter reads alone (ms)",
	       res->reads_ms.p50, res->reads_ms.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: add 1 port, 10000 present (µs)", res->nft_add_us.p50,
	       res->nft_add_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: remove 1 port, 10000 present (µs)",
	       res->nft_remove_us.p50, res->nft_remove_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: redirect one service's 10 ports, via its ops (µs)",
	       res->svc_redirect_us.p50, res->svc_redirect_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: unredirect one service's 10 ports, via its ops (µs)",
	       res->svc_unredirect_us.p50, res->svc_unredirect_us.p95);
	printf(
	    "Set-up, once: %d cgroups made in %.0f ms; %d services enabled and counters attached "
	    "in %.0f ms;\n  all put to sleep (10 ports each into the set) in %.0f ms; %zu ports "
	    "in the set; %llu egress reads, %llu events\n",
	    N_SERVICES, res->cgroups_ms, N_SERVICES, res->enable_ms, res->sleep_all_ms,
	    res->ports_in_set, (unsigned long long)f->egress_reads, (unsigned long long)f->events);
	printf("Steady state: each awake service's timer fires at most once per idle time; at "
	       "%.1f µs per fire that is\n  %.4f %% of a core with the default idle of 10 min, "
	       "%.3f %% with an idle of 1 min.\n",
	       scan_per_service_us,
	       scan_per_service_us * N_SERVICES / (DOZED_IDLE_DEFAULT_US / 1e6) / 1e4,
	       scan_per_service_us * N_SERVICES / 60.0 / 1e4);
	if (bench_quick())
		printf("Targets: not judged (quick run)\n");
	else
		printf("Targets: RSS <= 16 MiB with 1000 services: %s (%.1f MiB); idle CPU <= 0.5 "
		       "%% of "
		       "one core: %s (%.3f %%)\n",
		       rss_mib <= 16.0 ? "met" : "MISSED", rss_mib,
		       res->idle_cpu_pct <= 0.5 ? "met" : "MISSED", res->idle_cpu_pct);
	if (csv) {
		fprintf(csv, "services,rss_base_mib,%.2f,\n", (double)res->rss_base_kib / mib);
		fprintf(csv, "services,rss_awake_mib,%.2f,\n", (double)res->rss_awake_kib / mib);
		fprintf(csv, "services,rss_asleep_mib,%.2f,\n", (double)res->rss_asleep_kib / mib);
		fprintf(csv, "services,rss_peak_mib,%.2f,\n", (double)res->hwm_kib / mib);
		fprintf(csv, "services,idle_cpu_pct,%.4f,\n", res->idle_cpu_pct);
		fprintf(csv, "services,idle_scan_ms,%.3f,%.3f\n", res->scan_ms.p50,
			res->scan_ms.p95);
		fprintf(csv, "services,counter_reads_ms,%.3f,%.3f\n", res->reads_ms.p50,
			res->reads_ms.p95);
		fprintf(csv, "services,nft_add_1_of_10000_us,%.0f,%.0f\n", res->nft_add_us.p50,
			res->nft_add_us.p95);
		fprintf(csv, "services,nft_remove_1_of_10000_us,%.0f,%.0f\n",
			res->nft_remove_us.p50, res->nft_remove_us.p95);
		fprintf(csv, "services,nft_redirect_service_us,%.0f,%.0f\n",
			res->svc_redirect_us.p50, res->svc_redirect_us.p95);
		fprintf(csv, "services,nft_unredirect_service_us,%.0f,%.0f\n",
			res->svc_unredirect_us.p50, res->svc_unredirect_us.p95);
	}
}

static int services_section(void *arg)
{
	(void)arg;
	signal(SIGPIPE, SIG_IGN);
	log_set_max_level(LOG_WARNING);
	if (netns_enter_private() < 0 || raise_nofile(4 * N_SERVICES + 1024) < 0)
		return 1;
	static struct fleet f;
	static struct fleet_results res;
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.port = ACTIVATOR_PORT;
	cfg.mark = MARK;
	int r = -ENOMEM;
	f.base = event_base_new();
	if (f.base)
		r = nft_ctx_new(&f.nft, NFT_TABLE, MARK, ACTIVATOR_PORT);
	if (r == 0)
		r = nft_table_create(f.nft);
	if (r == 0)
		r = egress_counter_new(&f.counter);
	if (r == 0)
		r = activator_new(f.base, &cfg, &fleet_activator_ops, &f, &f.act);
	if (r == 0) {
		r = service_registry_new(&fleet_ops, &f, &f.reg);
		if (r == -EINVAL)
			fprintf(stderr,
				"bench: the registry refused fleet_ops: an op is missing\n");
	}
	if (r == 0) {
		res.rss_base_kib = status_kib("VmRSS:");
		res.hwm_base_kib = status_kib("VmHWM:");
		r = fleet_build(&f, &res);
	}
	if (r == 0)
		r = fleet_measure_awake(&f, &res);
	if (r == 0)
		r = fleet_sleep_all(&f, &res);
	res.hwm_kib = status_kib("VmHWM:");
	/* Every service's forget detaches its counter and frees its timer. */
	service_registry_free(f.reg);
	for (size_t i = 0; i < N_SERVICES; i++)
		if (f.x[i]) {
			egress_counter_detach(f.x[i]->attachment);
			if (f.x[i]->timer)
				event_free(f.x[i]->timer);
			free(f.x[i]);
		}
	activator_free(f.act);
	egress_counter_free(f.counter);
	if (f.nft)
		nft_table_destroy(f.nft);
	nft_ctx_free(f.nft);
	if (f.base)
		event_base_free(f.base);
	if (r < 0) {
		fprintf(stderr, "bench: 1000 services: %s\n", strerror(-r));
		return 1;
	}
	fleet_print(&f, &res);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		idle_seconds = atof(argv[1]);
	if (bench_quick())
		idle_seconds = 0.2;
	if (idle_seconds <= 0) {
		fprintf(stderr, "usage: %s [IDLE_SECONDS]\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_scale: needs root (eBPF, cgroups, namespaces, nftables)\n");
		return 1;
	}
	csv = bench_csv_open("scale.csv");
	if (csv) {
		fprintf(csv, "section,measure,p50,p95\n");
		fflush(csv);
	}
	int r = bench_run_supervised(held_section, NULL);
	if (csv)
		fflush(csv);
	if (r == -EINTR || bench_cgroup_root_create() < 0)
		return 1;
	int r2 = bench_run_supervised(services_section, NULL);
	bench_cgroup_remove_all();
	if (csv)
		fclose(csv);
	return r == 0 && r2 == 0 ? 0 : 1;
}
