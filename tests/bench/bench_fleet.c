// SPDX-License-Identifier: MIT
/*
 * 1 000 enabled services, with dozed's real parts, in a child process and a
 * private network namespace: 1 000 test cgroups each with the flow counter
 * attached (both programs, as the daemon attaches them), the service
 * registry holding 1 000 services (10 ports each) with ops backed by the
 * real counter, nft table and libevent timers; only the runtime's start and
 * stop are no-ops, completed at once. Then FLOWS_PER_SERVICE flows for each
 * service (a process in its cgroup sends a datagram to each of as many peer
 * addresses across a veth pair), so that the flow map holds 30 000 flows
 * as a busy host's would, and every service's flows listed once (what
 * `dozectl flows` asks the daemon). Process RSS, idle CPU of the loop with
 * 1 000 idle timers armed, one idle-scan pass, and nft set changes with the
 * 10 000 ports of the 1 000 services, asleep, in the set.
 *
 * Table (b) of the scale benchmarks; (a) is bench_held. Prints the table
 * and writes tests/bench/results/fleet.csv.
 *
 * Usage: bench_fleet [IDLE_SECONDS]   (default 10)
 * BENCH_QUICK=1: 10 services; 0.2 s idle; a few passes; no target judged
 * (see bench.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/resource.h>

#include "bench.h"
#include "dozed/activator.h"
#include "dozed/config.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/nft.h"
#include "dozed/clock.h"
#include "dozed/service.h"
#include "bench_fleet_report.h"
#include "bench_flows.h"
#include "nofile.h"

#define ACTIVATOR_PORT 16001
#define MARK	       DOZED_MARK_DEFAULT
#define NFT_TABLE      "dozedbenchscale"

#define SERVICE_PORT_BASE 20000
#define SCAN_PASSES_MAX	  20
#define SCAN_PASSES	  (bench_quick() ? 2 : SCAN_PASSES_MAX)
#define NFT_REPS_MAX	  200
#define NFT_REPS	  (bench_quick() ? 3 : NFT_REPS_MAX)
#define NFT_SPARE_PORT	  19999 /* in no service */

static double idle_seconds = 10.0;

struct svc_extra {
	struct fleet *f;
	uint64_t id;
	struct event *timer;
	struct flow_attachment *attachment;
	char cgroup[PATH_MAX];
};

struct fleet {
	struct event_base *base;
	struct nft_ctx *nft;
	struct flow_counter *counter;
	struct activator *act;
	struct service_registry *reg;
	struct svc_extra *x[N_SERVICES_MAX];
	uint64_t runtime_calls, events, egress_reads, egress_read_errors;
};

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
		service_on_wake_failed(f->reg, s->id, -EIO, "");
}

static bool ops_runtime_stop_cancel(void *ud, struct service *s)
{
	(void)ud, (void)s;
	return false;
}

static void ops_activator_probe_cancel(void *ud, struct service *s)
{
	activator_service_probe_cancel(((struct fleet *)ud)->act, s->id);
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
	struct flow_totals t;
	f->egress_reads++;
	if (!x->attachment || flow_counter_read(f->counter, x->attachment, &t) < 0) {
		f->egress_read_errors++;
		return;
	}
	service_note_egress(s, t.egress_bytes, t.egress_packets, t.counted_last_ns);
	/* The words the daemon keeps for its status, as cheaply. */
	if (t.counted_last_ns && t.last_counted.peer.ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&t.last_counted.peer;
		char addr[INET_ADDRSTRLEN], what[96];
		inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof(addr));
		snprintf(what, sizeof(what), "udp to %s:%u, %llu B out", addr,
			 (unsigned)ntohs(in4->sin_port),
			 (unsigned long long)t.last_counted.bytes[FLOWS_DIR_OUT]);
		service_note_counted(s, what);
	}
}

/* Light sleep is off for the fleet: never called. */
static void ops_runtime_freeze(void *ud, struct service *s)
{
	(void)ud, (void)s;
}

static int ops_runtime_thaw(void *ud, struct service *s, char *why, size_t len)
{
	(void)ud, (void)s;
	snprintf(why, len, "no freezer in the bench");
	return -EOPNOTSUPP;
}

/* No container here has open connections: what a sleep would cut is read
 * only at an idle deadline, which this bench never reaches. */
static enum service_kept ops_sleep_blocker(void *ud, struct service *s, char *what, size_t len)
{
	(void)ud, (void)s;
	if (len)
		what[0] = '\0';
	return SERVICE_NOT_KEPT;
}

static void ops_timer_set(void *ud, struct service *s, uint64_t at_us)
{
	(void)ud;
	timer_arm_at(((struct svc_extra *)s->userdata)->timer, at_us);
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
	flow_counter_detach(x->attachment);
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
    .now_us = clock_monotonic_us_of,
    .redirect_add = ops_redirect_add,
    .redirect_remove = ops_redirect_remove,
    .runtime_stop = ops_runtime_call,
    .runtime_start = ops_runtime_call,
    .runtime_stop_cancel = ops_runtime_stop_cancel,
    .activator_starting = ops_activator_starting,
    .activator_probe_cancel = ops_activator_probe_cancel,
    .activator_failed = ops_activator_failed,
    .activator_held = ops_activator_held,
    .activator_waiting = ops_activator_waiting,
    .egress_read = ops_egress_read,
    .sleep_blocker = ops_sleep_blocker,
    .runtime_freeze = ops_runtime_freeze,
    .runtime_thaw = ops_runtime_thaw,
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
	(void)total_us;
	service_on_ready(((struct fleet *)ud)->reg, id, probe_us);
}

static void fleet_wake_failed(void *ud, uint64_t id, int reason, const char *last_answer)
{
	(void)last_answer;
	service_on_wake_failed(((struct fleet *)ud)->reg, id, reason, last_answer);
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
		r = flow_counter_attach(f->counter, x->cgroup, &x->attachment);
		if (r < 0)
			return r;
	}
	res->enable_ms = (bench_now_us() - t0) / 1000;
	res->rss_awake_kib = status_kib("VmRSS:");
	return 0;
}

/* Each service's flows in the map, then every service's listed once, as
 * `dozectl flows` (all services) has the daemon do. */
static int fleet_flows(struct fleet *f, struct fleet_results *res)
{
	static const char *cgroups[N_SERVICES_MAX];
	for (size_t i = 0; i < N_SERVICES; i++)
		cgroups[i] = f->x[i]->cgroup;
	double t0 = bench_now_us();
	int r = flows_make(cgroups, N_SERVICES, FLOWS_PER_SERVICE);
	if (r < 0)
		return r;
	res->flows_ms = (bench_now_us() - t0) / 1000;
	r = flow_counter_map_stats(f->counter, &res->map);
	if (r < 0)
		return r;
	static double list_ms[N_SERVICES_MAX];
	t0 = bench_now_us();
	for (size_t i = 0; i < N_SERVICES; i++) {
		double t1 = bench_now_us();
		struct flow_info *flows = NULL;
		size_t n = 0;
		r = flow_counter_list(f->counter, f->x[i]->attachment, 0, &flows, &n);
		list_ms[i] = (bench_now_us() - t1) / 1000;
		free(flows);
		if (r < 0)
			return r;
		res->flows_listed += n;
	}
	res->list_all_ms = (bench_now_us() - t0) / 1000;
	res->list_ms = bench_stat_of(list_ms, N_SERVICES, false);
	res->rss_flows_kib = status_kib("VmRSS:");
	return 0;
}

/* What a container's stop costs the counter with the map full: the detach
 * deletes the cgroup's flows. The services stay, detached. */
static int fleet_detach_some(struct fleet *f, struct fleet_results *res)
{
	double ms[20];
	for (int i = 0; i < DETACH_SAMPLES; i++) {
		struct svc_extra *x = f->x[(size_t)i * N_SERVICES / DETACH_SAMPLES];
		double t0 = bench_now_us();
		flow_counter_detach(x->attachment);
		ms[i] = (bench_now_us() - t0) / 1000;
		x->attachment = NULL;
	}
	res->detach_ms = bench_stat_of(ms, (size_t)DETACH_SAMPLES, false);
	return 0;
}

static int fleet_measure_awake(struct fleet *f, struct fleet_results *res)
{

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
			struct flow_totals t;
			if (flow_counter_read(f->counter, f->x[i]->attachment, &t) < 0)
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

static int services_section(void *arg)
{
	(void)arg;
	signal(SIGPIPE, SIG_IGN);
	log_set_max_level(LOG_WARNING);
	if (netns_enter_private() < 0 || nofile_raise(4 * N_SERVICES + 1024) < 0)
		return 1;
	int sink = flows_peer_add();
	if (sink < 0) {
		fprintf(stderr, "bench: the flows' peer: %s\n", strerror(-sink));
		return 1;
	}
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
		r = flow_counter_new(0, &f.counter);
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
		r = fleet_flows(&f, &res);
	if (r == 0)
		r = fleet_measure_awake(&f, &res);
	if (r == 0)
		r = fleet_detach_some(&f, &res);
	if (r == 0)
		r = fleet_sleep_all(&f, &res);
	res.hwm_kib = status_kib("VmHWM:");
	/* Every service's forget detaches its counter and frees its timer. */
	service_registry_free(f.reg);
	for (size_t i = 0; i < N_SERVICES; i++)
		if (f.x[i]) {
			flow_counter_detach(f.x[i]->attachment);
			if (f.x[i]->timer)
				event_free(f.x[i]->timer);
			free(f.x[i]);
		}
	activator_free(f.act);
	flow_counter_free(f.counter);
	if (f.nft)
		nft_table_destroy(f.nft);
	nft_ctx_free(f.nft);
	if (f.base)
		event_base_free(f.base);
	close(sink);
	if (r < 0) {
		fprintf(stderr, "bench: 1000 services: %s\n", strerror(-r));
		return 1;
	}
	fleet_print(&res, f.egress_reads, f.events);
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
		fprintf(stderr, "bench_fleet: needs root (eBPF, cgroups, namespaces, nftables)\n");
		return 1;
	}
	csv = bench_csv_open("fleet.csv");
	if (csv) {
		fprintf(csv, "section,measure,p50,p95\n");
		fflush(csv);
	}
	if (bench_cgroup_root_create() < 0)
		return 1;
	int r = bench_run_supervised(services_section, NULL);
	bench_cgroup_remove_all();
	if (csv)
		fclose(csv);
	return r == 0 ? 0 : 1;
}
