// SPDX-License-Identifier: MIT
/*
 * Connections held through one wake, with dozed's real activator, in a
 * child process and a private network namespace:
 *
 * 5 000 connections held through one wake: the activator on its own
 * libevent base behind our nft table; 5 000 clients connect to a sleeping
 * port and send a request, then a backend starts listening and the
 * activator is told "starting". All answered? Time from "starting" to the
 * last answer (drain). Once with the activator's default max_held (what
 * the daemon runs with), then with max_held raised above 5 000 (both
 * with max_held_per_client = max_held: one address here). Clients,
 * activator and backend are 3 processes, as on a host; the activator's
 * needs 2 descriptors per held connection (the client, then its relay to
 * the backend), so its RLIMIT_NOFILE is raised to 11 024.
 *
 * Table (a) of the scale benchmarks; (b) is bench_fleet. Prints the table
 * and writes tests/bench/results/held.csv.
 *
 * Usage: bench_held
 * BENCH_QUICK=1: 64 held clients, one run of each; no target judged (see bench.h).
 * DOZED_BENCH_DEBUG=1 in the environment prints the counters of every run.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "bench.h"
#include "dozed/activator.h"
#include "dozed/config.h"
#include "dozed/log.h"
#include "dozed/nft.h"
#include "nofile.h"

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

/* Opened before the section's child is forked: it adds its rows. */
static FILE *csv;

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

static void held_wake_failed(void *ud, uint64_t id, int reason, const char *last_answer)
{
	(void)last_answer;
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
	if (nofile_raise(HELD_CLIENTS + 256) < 0 || ep < 0 ||
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
	if (!cl || !times || ep < 0 || nofile_raise(HELD_CLIENTS + 256) < 0)
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
	if (netns_enter_private() < 0 || nofile_raise(2 * HELD_CLIENTS + 1024) < 0)
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

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "bench_held: needs root (namespaces, nftables)\n");
		return 1;
	}
	csv = bench_csv_open("held.csv");
	if (csv) {
		fprintf(csv, "section,measure,p50,p95\n");
		fflush(csv);
	}
	int r = bench_run_supervised(held_section, NULL);
	if (csv)
		fclose(csv);
	return r == 0 ? 0 : 1;
}
