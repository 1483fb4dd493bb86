// SPDX-License-Identifier: MIT
/*
 * Cold wakes through dozed against the same container started directly
 * through the same runtime API, interleaved, and the warm path with and
 * without dozed. Run inside the runtime's network namespace (see run.sh):
 *
 *   bench_wake wake RUNTIME_SOCKET CONTAINER PORT CONTROL_SOCKET RUNS LABEL
 *   bench_wake warm PORT SECONDS LABEL
 *
 * "Answers" means the first byte of the response to GET / on the published
 * port, for dozed and for the reference alike: a proxy in front of a
 * container (docker-proxy) accepts connections before the service listens.
 * Prints one CSV line per measurement to stdout's end table and appends to
 * tests/bench/results/wake.csv (not with BENCH_QUICK=1, see bench.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dozed/log.h"
#include "dozed/runtime.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double pct(double *v, int n, int p)
{
	double *s = malloc((size_t)n * sizeof(*s));
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), bench_cmp_double);
	double r = s[(n - 1) * p / 100];
	free(s);
	return r;
}

/* One GET / over a new connection: ms to the first response byte, or < 0. */
static double get_first_byte(uint16_t port, double timeout_ms)
{
	double t0 = now_ms();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
			     .tv_usec = (suseconds_t)((long)timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static const char req[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";
	char b;
	double r = -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1) && read(fd, &b, 1) == 1)
		r = now_ms() - t0;
	close(fd);
	return r;
}

/* --- the runtime API, waited for ---------------------------------------------- */

struct call {
	bool done;
	int err;
};

static void call_done(int err, const struct runtime_error *error, void *ud)
{
	struct call *c = ud;
	c->done = true;
	c->err = err;
	if (err < 0)
		fprintf(stderr, "bench_wake: %s\n", error->message);
}

static int runtime_wait(struct event_base *base, struct call *c)
{
	while (!c->done)
		event_base_loop(base, EVLOOP_ONCE);
	return c->err;
}

/* --- dozed's control socket ------------------------------------------------------ */

static struct json_object *control_call(const char *path, const char *request)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	dprintf(fd, "%s\n", request);
	static char buf[1 << 20];
	size_t n = 0;
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (buf[n - 1] == '\n')
			break;
	}
	close(fd);
	buf[n] = '\0';
	return json_tokener_parse(buf);
}

static const char *service_state(const char *control, const char *name, char *out, size_t len)
{
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\":\"status\",\"service\":\"%s\"}", name);
	struct json_object *reply = control_call(control, req), *svc, *state;
	snprintf(out, len, "?");
	if (reply && json_object_object_get_ex(reply, "service", &svc) &&
	    json_object_object_get_ex(svc, "state", &state))
		snprintf(out, len, "%s", json_object_get_string(state));
	json_object_put(reply);
	return out;
}

/* The facts of dozed's last "ready" event for name. */
static bool last_ready(const char *control, const char *name, double *start, double *probe,
		       double *total)
{
	struct json_object *reply = control_call(control, "{\"cmd\":\"events\",\"follow\":false}");
	struct json_object *events, *found = NULL;
	if (reply && json_object_object_get_ex(reply, "events", &events)) {
		for (size_t i = 0; i < json_object_array_length(events); i++) {
			struct json_object *e = json_object_array_get_idx(events, i), *v, *s;
			if (json_object_object_get_ex(e, "event", &v) &&
			    strcmp(json_object_get_string(v), "ready") == 0 &&
			    json_object_object_get_ex(e, "service", &s) &&
			    strcmp(json_object_get_string(s), name) == 0)
				found = e;
		}
	}
	struct json_object *v;
	bool ok = found && json_object_object_get_ex(found, "start_ms", &v);
	if (ok) {
		*start = json_object_get_double(v);
		json_object_object_get_ex(found, "probe_ms", &v);
		*probe = json_object_get_double(v);
		json_object_object_get_ex(found, "total_ms", &v);
		*total = json_object_get_double(v);
	}
	json_object_put(reply);
	return ok;
}

static bool wait_state(const char *control, const char *name, const char *want)
{
	char st[32];
	for (int i = 0; i < 1000; i++) {
		if (strcmp(service_state(control, name, st, sizeof(st)), want) == 0)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "bench_wake: %s never became %s (is %s)\n", name, want, st);
	return false;
}

#define MAX_RUNS 200

static int bench_wake(char **argv)
{
	const char *rt_sock = argv[2], *name = argv[3], *control = argv[5], *label = argv[7];
	uint16_t port = (uint16_t)atoi(argv[4]);
	int runs = atoi(argv[6]);
	if (runs < 1 || runs > MAX_RUNS)
		return fprintf(stderr, "bench_wake: RUNS must be 1..%d\n", MAX_RUNS), 2;

	struct event_base *base = event_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = rt_sock;
	struct runtime *rt;
	if (runtime_new(base, &cfg, &rt) < 0)
		return 1;

	static double ref_start[MAX_RUNS], ref_total[MAX_RUNS];
	static double dz_total[MAX_RUNS], dz_start[MAX_RUNS], dz_probe[MAX_RUNS], dz_hold[MAX_RUNS],
	    dz_relay[MAX_RUNS];
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\":\"disable\",\"service\":\"%s\"}", name);
	json_object_put(control_call(control, req));

	for (int i = 0; i < runs; i++) {
		/* Reference: start through the API, then GET until it answers. */
		struct call stop = {0}, start = {0};
		if (runtime_stop(rt, name, 10, call_done, &stop) < 0 ||
		    runtime_wait(base, &stop) < 0)
			return 1;
		double t0 = now_ms();
		if (runtime_start(rt, name, call_done, &start) < 0 ||
		    runtime_wait(base, &start) < 0)
			return 1;
		ref_start[i] = now_ms() - t0;
		while (get_first_byte(port, 1000) < 0) {
			if (now_ms() - t0 > 10000)
				return fprintf(stderr, "bench_wake: %s never answered\n", name), 1;
			usleep(100);
		}
		ref_total[i] = now_ms() - t0;

		/* dozed: put it to sleep, then one client wakes it. */
		snprintf(req, sizeof(req), "{\"cmd\":\"enable\",\"container\":\"%s\"}", name);
		json_object_put(control_call(control, req));
		snprintf(req, sizeof(req), "{\"cmd\":\"sleep\",\"service\":\"%s\"}", name);
		json_object_put(control_call(control, req));
		if (!wait_state(control, name, "asleep"))
			return 1;
		dz_total[i] = get_first_byte(port, 20000);
		if (dz_total[i] < 0)
			return fprintf(stderr, "bench_wake: no answer through dozed\n"), 1;
		double total;
		if (!last_ready(control, name, &dz_start[i], &dz_probe[i], &total))
			return fprintf(stderr, "bench_wake: no ready event\n"), 1;
		dz_hold[i] = total - dz_start[i] - dz_probe[i];
		dz_relay[i] = dz_total[i] - total;
		snprintf(req, sizeof(req), "{\"cmd\":\"disable\",\"service\":\"%s\"}", name);
		json_object_put(control_call(control, req));
	}
	runtime_free(rt);
	event_base_free(base);

	double overhead = pct(dz_total, runs, 50) - pct(ref_total, runs, 50);
	printf("\nCold wake, %s: %d wakes, interleaved with %d direct starts (ms)\n", label, runs,
	       runs);
	printf("%-46s %9s %9s\n", "", "p50", "p95");
	printf("%-46s %9.1f %9.1f\n", "reference: API start returns", pct(ref_start, runs, 50),
	       pct(ref_start, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "reference: API start -> first response byte",
	       pct(ref_total, runs, 50), pct(ref_total, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "dozed: own work (hold, inspect, bookkeeping)",
	       pct(dz_hold, runs, 50), pct(dz_hold, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "dozed: start requested -> runtime says started",
	       pct(dz_start, runs, 50), pct(dz_start, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "dozed: started -> first successful probe",
	       pct(dz_probe, runs, 50), pct(dz_probe, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "dozed: probe -> first response byte",
	       pct(dz_relay, runs, 50), pct(dz_relay, runs, 95));
	printf("%-46s %9.1f %9.1f\n", "dozed: client connect -> first response byte",
	       pct(dz_total, runs, 50), pct(dz_total, runs, 95));
	printf("%-46s %+9.1f %9s   (%s)\n", "dozed overhead (p50 total - p50 reference)", overhead,
	       "", bench_quick() ? "target not judged: quick run" : "target <= 5 ms");

	FILE *csv = bench_csv_open_mode("wake.csv", "a");
	if (csv) {
		fprintf(csv, "%s,ref_p50_ms,%.1f,dozed_p50_ms,%.1f,overhead_ms,%.1f\n", label,
			pct(ref_total, runs, 50), pct(dz_total, runs, 50), overhead);
		fclose(csv);
	}
	return 0;
}

/* Closed loop of GETs, one connection each, for seconds: requests/s and latency. */
static int bench_warm(char **argv)
{
	uint16_t port = (uint16_t)atoi(argv[2]);
	double seconds = atof(argv[3]);
	const char *label = argv[4];
	static double lat[1 << 20];
	int n = 0;
	double t0 = now_ms();
	while (now_ms() - t0 < seconds * 1000 && n < (int)(sizeof(lat) / sizeof(lat[0]))) {
		double l = get_first_byte(port, 5000);
		if (l < 0)
			return fprintf(stderr, "bench_wake: warm request failed\n"), 1;
		lat[n++] = l * 1000;
	}
	double rps = n / ((now_ms() - t0) / 1000);
	printf("%s,%.0f,%.1f,%.1f\n", label, rps, pct(lat, n, 50), pct(lat, n, 95));
	return 0;
}

int main(int argc, char **argv)
{
	log_set_max_level(LOG_WARNING);
	if (argc == 8 && strcmp(argv[1], "wake") == 0)
		return bench_wake(argv);
	if (argc == 5 && strcmp(argv[1], "warm") == 0)
		return bench_warm(argv);
	fprintf(stderr, "usage: bench_wake wake RUNTIME_SOCKET CONTAINER PORT CONTROL_SOCKET RUNS "
			"LABEL\n       bench_wake warm PORT SECONDS LABEL\n");
	return 2;
}
