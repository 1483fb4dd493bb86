/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What bench_wake's cold wakes and thaws (bench_thaw.h) share: the clock,
 * percentiles, the runtime's API waited for, dozed's control socket (a
 * request, a service's status field, its last event of a kind, a state
 * waited for), and a client asking until the first real answer.
 */

#include <event2/event.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_proto.h"
#include "dozed/runtime.h"

/* Wakes (or thaws) of one benchmark, at most. */
#define MAX_RUNS 200

static inline double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline double pct(const double *v, int n, int p)
{
	double *s = malloc((size_t)n * sizeof(*s));
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), bench_cmp_double);
	double r = s[(n - 1) * p / 100];
	free(s);
	return r;
}

/* --- the runtime API, waited for ---------------------------------------------- */

struct call {
	bool done;
	int err;
};

static inline void call_done(int err, const struct runtime_error *error, void *ud)
{
	struct call *c = ud;
	c->done = true;
	c->err = err;
	if (err < 0)
		fprintf(stderr, "bench_wake: %s\n", error->message);
}

static inline int call_wait(struct event_base *base, struct call *c)
{
	while (!c->done)
		event_base_loop(base, EVLOOP_ONCE);
	return c->err;
}

/* --- dozed's control socket ------------------------------------------------------ */

static inline struct json_object *control_call(const char *path, const char *request)
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

/* A request that must succeed: false (said why, with dozed's own error) when
 * it did not. */
static inline bool control_ok(const char *path, const char *request)
{
	struct json_object *reply = control_call(path, request), *ok, *err;
	bool good =
	    reply && json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok);
	if (!good)
		fprintf(stderr, "bench_wake: dozed refused %s: %s\n", request,
			reply && json_object_object_get_ex(reply, "error", &err)
			    ? json_object_get_string(err)
			    : "no answer");
	json_object_put(reply);
	return good;
}

/* A string field of the service's status ("state", "probe_used"), or "?". */
static inline const char *service_field(const char *control, const char *name, const char *field,
					char *out, size_t len)
{
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\":\"status\",\"service\":\"%s\"}", name);
	struct json_object *reply = control_call(control, req), *svc, *v;
	snprintf(out, len, "?");
	if (reply && json_object_object_get_ex(reply, "service", &svc) &&
	    json_object_object_get_ex(svc, field, &v))
		snprintf(out, len, "%s", json_object_get_string(v));
	json_object_put(reply);
	return out;
}

/* A number of the service's status ("thaws", "last_thaw_us"), or NAN when
 * it has none (or null). */
static inline double service_number(const char *control, const char *name, const char *field)
{
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\":\"status\",\"service\":\"%s\"}", name);
	struct json_object *reply = control_call(control, req), *svc, *v;
	double n = NAN;
	if (reply && json_object_object_get_ex(reply, "service", &svc) &&
	    json_object_object_get_ex(svc, field, &v) && v)
		n = json_object_get_double(v);
	json_object_put(reply);
	return n;
}

/* dozed's last event of kind for name (a reference of the caller's), or NULL. */
static inline struct json_object *last_event(const char *control, const char *name,
					     const char *kind)
{
	struct json_object *reply = control_call(control, "{\"cmd\":\"events\",\"follow\":false}");
	struct json_object *events, *found = NULL;
	if (reply && json_object_object_get_ex(reply, "events", &events)) {
		for (size_t i = 0; i < json_object_array_length(events); i++) {
			struct json_object *e = json_object_array_get_idx(events, i), *v, *s;
			if (json_object_object_get_ex(e, "event", &v) &&
			    strcmp(json_object_get_string(v), kind) == 0 &&
			    json_object_object_get_ex(e, "service", &s) &&
			    strcmp(json_object_get_string(s), name) == 0)
				found = e;
		}
	}
	if (found)
		json_object_get(found);
	json_object_put(reply);
	return found;
}

/* A number of an event, or NAN when it has none. */
static inline double event_number(struct json_object *e, const char *key)
{
	struct json_object *v;
	if (!e || !json_object_object_get_ex(e, key, &v))
		return NAN;
	return json_object_get_double(v);
}

/* Within timeout_ms: a Redis with its data set saves it on the way down. */
static inline bool wait_state_within(const char *control, const char *name, const char *want,
				     double timeout_ms)
{
	char st[32] = "?";
	for (double t0 = now_ms(); now_ms() - t0 < timeout_ms;) {
		if (strcmp(service_field(control, name, "state", st, sizeof(st)), want) == 0)
			return true;
		usleep(10000);
	}
	fprintf(stderr, "bench_wake: %s never became %s in %.0f s (is %s)\n", name, want,
		timeout_ms / 1000, st);
	return false;
}

static inline bool wait_state(const char *control, const char *name, const char *want)
{
	return wait_state_within(control, name, want, 30000);
}

/* --- a client, until the first real answer ------------------------------------- */

/* From the start request (or the client's connect) to the first real answer. */
#define ANSWER_DEADLINE_MS 30000.0

struct wake_target {
	enum bench_proto proto;
	uint16_t port;
	char key[512]; /* redis: the key GET asks for */
};

/*
 * A server is asked again on dozed's probe's schedule: 1 ms after no answer,
 * 4 ms (PROBE_ANSWER_BACKOFF_US) after a live "not yet", as each question
 * costs it (a fork for PostgreSQL, a pause in Redis's load), so both sides
 * ask alike. busybox httpd: 100 µs, as ever (its figures stay comparable
 * with earlier runs).
 */
static inline useconds_t retry_gap_us(enum bench_proto p, int answer)
{
	if (p == BENCH_PROTO_HTTP)
		return 100;
	return answer == BENCH_ANSWER_BUSY ? 4000 : 1000;
}

/*
 * Asks until the first real answer, retrying a not-ready answer after
 * retry_gap_us(), until ANSWER_DEADLINE_MS after t0: ms from t0, or < 0 (said
 * why). The first attempt gets first_timeout_ms (a client held through a
 * wake waits long), the others 1 s. *not_ready counts the not-ready answers.
 */
static inline double ask_until_answered(const struct wake_target *t, double t0,
					double first_timeout_ms, int *not_ready, char *why,
					size_t len)
{
	for (double timeout = first_timeout_ms;; timeout = 1000) {
		int r = bench_proto_ask(t->proto, t->port, t->key, NULL, 0, timeout, why, len);
		if (r == BENCH_ANSWER_REAL)
			return now_ms() - t0;
		if (r < 0)
			return -1;
		(*not_ready)++;
		if (now_ms() - t0 > ANSWER_DEADLINE_MS) {
			size_t n = strlen(why);
			snprintf(why + n, len - n, " (still after %.0f s)",
				 ANSWER_DEADLINE_MS / 1000);
			return -1;
		}
		usleep(retry_gap_us(t->proto, r));
	}
}

/* --- a container's memory, by kind ----------------------------------------------- */

/* What pid's memory cgroup holds (its memory.stat, bytes): anonymous memory,
 * shared memory (shmem: PostgreSQL's shared buffers; without swap it can go
 * nowhere) and the rest of the file cache (what a reclaim can drop). */
struct mem_kinds {
	double anon, shmem, file;
	double swap_total; /* the host's, /proc/meminfo */
};

/* pid's cgroup from /proc/PID/cgroup, by the daemon's parsers: in the v1
 * hierarchy of controller, or (controller NULL) its cgroup2 path; malloc'd. */
static inline int bench_pid_cgroup(pid_t pid, const char *controller, char **path)
{
	char f[64];
	snprintf(f, sizeof(f), "/proc/%d/cgroup", (int)pid);
	_cleanup_fclose_ FILE *fp = fopen(f, "re");
	if (!fp)
		return -errno;
	_cleanup_free_ char *text = NULL;
	size_t cap = 0;
	if (getdelim(&text, &cap, '\0', fp) < 0)
		return -EIO;
	return controller ? cgroup1_path_parse(text, controller, path)
			  : cgroup2_path_parse(text, path);
}

/* v1 "memory" hierarchy (rss, shmem, cache) or cgroup2 (anon, shmem, file). */
static inline int mem_kinds_of(pid_t pid, struct mem_kinds *m)
{
	char path[4200], key[64];
	_cleanup_free_ char *v1 = NULL, *v2 = NULL;
	if (bench_pid_cgroup(pid, "memory", &v1) < 0 && bench_pid_cgroup(pid, NULL, &v2) < 0)
		return -1;
	if (v1)
		snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.stat", v1);
	else
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.stat", v2);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -1;
	double v, cache = 0;
	*m = (struct mem_kinds){0};
	while (fscanf(fp, "%63s %lf", key, &v) == 2) {
		if (strcmp(key, v1 ? "rss" : "anon") == 0)
			m->anon = v;
		else if (strcmp(key, "shmem") == 0)
			m->shmem = v;
		else if (strcmp(key, v1 ? "cache" : "file") == 0)
			cache = v;
	}
	fclose(fp);
	m->file = cache - m->shmem; /* both count shmem in the file cache */
	fp = fopen("/proc/meminfo", "re");
	while (fp && fscanf(fp, "%63s %lf %*s", key, &v) == 2)
		if (strcmp(key, "SwapTotal:") == 0)
			m->swap_total = v * 1024;
	if (fp)
		fclose(fp);
	return 0;
}
