/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The thaw rows of the cold-wake table (bench_wake wake ... THAW_RUNS): light
 * sleep, measured on the same container right after its cold wakes. dozed
 * manages it with freeze_after 1s and a long idle (1h: never stopped during
 * the bench); each run asks it once awake (the reference: the same client,
 * the same answer), waits until dozed says "frozen" and the runtime says
 * paused, then one client connects and is timed to its first real answer
 * (bench_proto.h), as a cold wake is. The first frozen spell is also watched
 * for CPU: the container's cgroup must use none while frozen. Before each
 * thaw, every process of the container must be frozen as the kernel says it
 * (its freezer cgroup's freezer.state, or cgroup2's cgroup.events): an idle
 * busybox uses no CPU even when it runs, so its CPU alone proves nothing.
 *
 * Between runs the runtime's own view must catch up (it says running, not
 * paused), as docker/podman ps would show a user; a thaw it never sees is a
 * failed run, not a fast one.
 *
 * The row "thaw, memory reclaimed" is the same measurement with the service
 * enabled with reclaim_frozen true: at each freeze dozed asks the kernel to
 * reclaim the container's memory, and the thaw pays for what the container
 * then faults back in (its code, its files' pages). The freeze event's
 * memory_before and memory_after say what the reclaim took; a freeze event
 * without them (reclaim_error) fails the row, as a reclaim that did not
 * happen costs nothing and would be no figure of its cost.
 */

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_wake_common.h"
#include "dozed/runtime.h"

/* The targets of issue 15, in ms over the awake reference (p50). */
#define THAW_TARGET_MS 5.0
#define THAW_FLOOR_MS  15.0
/* dozed's setting for the bench's service, and how long to wait for its effect. */
#define THAW_FREEZE_AFTER     "1s"
#define THAW_FROZEN_WITHIN_MS 15000.0
/* The runtime's view of a pause or an unpause dozed has done. */
#define THAW_RUNTIME_WITHIN_MS 5000.0

struct thaw_run {
	int runs;
	double awake[MAX_RUNS], thaw[MAX_RUNS], diff[MAX_RUNS];
	/* From dozed, where it says it: the thaw's packet to running (status
	 * last_thaw_us), the freeze's runtime pause (the freeze event's pause_ms). */
	double running[MAX_RUNS], pause[MAX_RUNS];
	int n_running, n_pause, not_ready;
	/* Thaws dozed counted (its status "thaws" one up: not a restart), and
	 * of those its thaw event says were through the freezer. */
	int counted, by_freezer;
	char how_other[64]; /* a "how" other than freezer, the last one seen */
	/* CPU the frozen container's cgroup used over cpu_window_s, and its file. */
	double cpu_window_s;
	uint64_t cpu_ns;
	char cpu_src[PATH_MAX];
	/* Runs where the kernel had every process of the container frozen just
	 * before the client came (not only dozed's word and the runtime's), and
	 * how many processes the last look found. */
	int all_frozen, procs, procs_frozen;
	/* reclaim_frozen true for the service; each freeze event's memory in
	 * bytes: memory_before and memory_after with a reclaim, memory_bytes
	 * (both) without; and the reclaim's own time (reclaim_ms). */
	bool reclaim;
	double mem_before[MAX_RUNS], mem_after[MAX_RUNS], reclaim_ms[MAX_RUNS];
	int n_mem, n_reclaim_ms;
	/* What the first reclaim left, by kind (the container's memory.stat). */
	struct mem_kinds left;
	bool have_left;
	double took_s; /* the whole of thaw_measure: what the rows cost the bench */
	char why[768]; /* a failed run: what failed */
};

struct thaw_inspect {
	bool done, paused;
	int err;
	pid_t pid;
};

static void thaw_inspected(int err, const struct runtime_error *error,
			   const struct runtime_container *c, void *ud)
{
	struct thaw_inspect *in = ud;
	in->done = true;
	in->err = err;
	if (err < 0) {
		fprintf(stderr, "bench_wake: inspect: %s\n", error->message);
		return;
	}
	in->paused = c->paused || (c->state && strcmp(c->state, "paused") == 0);
	in->pid = c->pid;
}

/* Until the runtime says name is paused (want) or not: its pid, or -1 (why). */
static pid_t thaw_wait_runtime(struct event_base *base, struct runtime *rt, const char *name,
			       bool want, char *why, size_t len)
{
	for (double t0 = now_ms();;) {
		struct thaw_inspect in = {0};
		if (runtime_inspect(rt, name, thaw_inspected, &in) < 0) {
			snprintf(why, len, "cannot ask the runtime about %s", name);
			return -1;
		}
		while (!in.done)
			event_base_loop(base, EVLOOP_ONCE);
		if (in.err < 0) {
			snprintf(why, len, "the runtime's inspect of %s failed", name);
			return -1;
		}
		if (in.paused == want)
			return in.pid;
		if (now_ms() - t0 > THAW_RUNTIME_WITHIN_MS) {
			snprintf(why, len, "the runtime still says %s is %s %.0f s later", name,
				 in.paused ? "paused" : "not paused",
				 THAW_RUNTIME_WITHIN_MS / 1000);
			return -1;
		}
		usleep(5000);
	}
}

/*
 * The file that counts the CPU of pid's cgroup: v1 cpuacct.usage (ns) where
 * it has a cpuacct cgroup (a hybrid host like this one, where the runtimes
 * put containers in v1 hierarchies), else cgroup2's cpu.stat (usage_usec).
 */
static int thaw_cpu_file(pid_t pid, char *path, size_t len)
{
	_cleanup_free_ char *v1 = NULL, *v2 = NULL;
	int r = bench_pid_cgroup(pid, "cpuacct", &v1);
	if (r < 0 && r != -ENOENT)
		return r;
	/* The hierarchy's mount is named by its controllers. */
	const char *mounts[] = {"cpu,cpuacct", "cpuacct", "cpuacct,cpu"};
	for (size_t i = 0; v1 && i < ARRAY_SIZE(mounts); i++) {
		snprintf(path, len, "/sys/fs/cgroup/%s%s/cpuacct.usage", mounts[i], v1);
		if (access(path, R_OK) == 0)
			return 0;
	}
	r = bench_pid_cgroup(pid, NULL, &v2);
	if (r < 0)
		return r;
	const char *roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(path, len, "%s%s/cpu.stat", roots[i], v2);
		if (access(path, R_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int thaw_cpu_read(const char *path, uint64_t *ns)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = strlen(path);
	if (n > 13 && strcmp(path + n - 13, "cpuacct.usage") == 0)
		return fscanf(f, "%" SCNu64, ns) == 1 ? 0 : -EBADMSG;
	char key[64];
	uint64_t v;
	while (fscanf(f, "%63s %" SCNu64, key, &v) == 2)
		if (strcmp(key, "usage_usec") == 0) {
			*ns = v * 1000;
			return 0;
		}
	return -EBADMSG;
}

/* Whether the kernel has pid frozen: its v1 freezer cgroup's freezer.state
 * says FROZEN, or its cgroup2 cgroup.events says frozen 1 (dozed parks a
 * frozen container's processes frozen that way). 1, 0 or -errno. */
static int thaw_pid_frozen(pid_t pid)
{
	char path[PATH_MAX + 64], word[64];
	_cleanup_free_ char *v1 = NULL, *v2 = NULL;
	int r = bench_pid_cgroup(pid, "freezer", &v1);
	if (r < 0 && r != -ENOENT)
		return r;
	if (v1) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/freezer%s/freezer.state", v1);
		_cleanup_fclose_ FILE *st = fopen(path, "re");
		if (!st || fscanf(st, "%63s", word) != 1)
			return -ENOENT;
		if (strcmp(word, "FROZEN") == 0)
			return 1;
	}
	if (bench_pid_cgroup(pid, NULL, &v2) < 0)
		return -ENOENT;
	const char *roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		snprintf(path, sizeof(path), "%s%s/cgroup.events", roots[i], v2);
		_cleanup_fclose_ FILE *ev = fopen(path, "re");
		int v;
		while (ev && fscanf(ev, "%63s %d", word, &v) == 2)
			if (strcmp(word, "frozen") == 0)
				return v == 1;
	}
	return -ENOENT;
}

/* The processes of the container's CPU cgroup (beside r->cpu_src), and how
 * many of them the kernel has frozen; true when every one. */
static bool thaw_all_frozen(struct thaw_run *r)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s", r->cpu_src);
	char *slash = strrchr(path, '/');
	if (!slash)
		return false;
	snprintf(slash, sizeof(path) - (size_t)(slash - path), "/cgroup.procs");
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	int pid;
	r->procs = r->procs_frozen = 0;
	while (f && fscanf(f, "%d", &pid) == 1) {
		int k = thaw_pid_frozen(pid);
		if (k < 0)
			continue; /* gone meanwhile */
		r->procs++;
		r->procs_frozen += k;
	}
	return r->procs > 0 && r->procs_frozen == r->procs;
}

/* CPU of the frozen container (pid) over r->cpu_window_s; still frozen after. */
static int thaw_watch_cpu(struct event_base *base, struct runtime *rt, const char *name,
			  const char *control, pid_t pid, struct thaw_run *r)
{
	uint64_t before, after;
	int e = thaw_cpu_file(pid, r->cpu_src, sizeof(r->cpu_src));
	if (e < 0 || (e = thaw_cpu_read(r->cpu_src, &before)) < 0) {
		snprintf(r->why, sizeof(r->why), "no CPU count for %s's cgroup (pid %d): %s", name,
			 (int)pid, strerror(-e));
		return -1;
	}
	usleep((useconds_t)(r->cpu_window_s * 1e6));
	if ((e = thaw_cpu_read(r->cpu_src, &after)) < 0) {
		snprintf(r->why, sizeof(r->why), "%.400s: %s", r->cpu_src, strerror(-e));
		return -1;
	}
	r->cpu_ns = after - before;
	char st[32];
	if (strcmp(service_field(control, name, "state", st, sizeof(st)), "frozen") != 0) {
		snprintf(r->why, sizeof(r->why),
			 "%s thawed by itself while watched (dozed says %s)", name, st);
		return -1;
	}
	return thaw_wait_runtime(base, rt, name, true, r->why, sizeof(r->why)) < 0 ? -1 : 0;
}

/* What dozed says of the thaw just done: its status's thaw count went one
 * up from thaws_before, its time; the thaw event's how (prev: the last seen). */
static void thaw_read_dozed(const char *control, const char *name, double thaws_before,
			    struct thaw_run *r, char *prev, size_t prev_len)
{
	if (service_number(control, name, "thaws") != thaws_before + 1)
		return;
	r->counted++;
	double us = service_number(control, name, "last_thaw_us");
	if (!isnan(us))
		r->running[r->n_running++] = us / 1000;
	struct json_object *e = last_event(control, name, "thaw"), *how;
	const char *text = e ? json_object_to_json_string(e) : "";
	if (e && strcmp(text, prev) != 0 && json_object_object_get_ex(e, "how", &how)) {
		if (strcmp(json_object_get_string(how), "freezer") == 0)
			r->by_freezer++;
		else
			snprintf(r->how_other, sizeof(r->how_other), "%s",
				 json_object_get_string(how));
		snprintf(prev, prev_len, "%s", text);
	}
	json_object_put(e);
}

/* The memory facts of the freeze event e into r; -1 (r->why) when a reclaim
 * was asked for and the event does not say it happened. */
static int thaw_read_memory(struct json_object *e, const char *name, struct thaw_run *r)
{
	double before = event_number(e, r->reclaim ? "memory_before" : "memory_bytes");
	double after = event_number(e, r->reclaim ? "memory_after" : "memory_bytes");
	if (r->reclaim && (isnan(before) || isnan(after))) {
		struct json_object *err;
		snprintf(r->why, sizeof(r->why),
			 "%s frozen with reclaim_frozen true, but its freeze event has no "
			 "memory_before/memory_after (reclaim_error: %s)",
			 name,
			 e && json_object_object_get_ex(e, "reclaim_error", &err)
			     ? json_object_get_string(err)
			     : "none");
		return -1;
	}
	if (!isnan(before) && !isnan(after)) {
		r->mem_before[r->n_mem] = before;
		r->mem_after[r->n_mem++] = after;
	}
	double ms = event_number(e, "reclaim_ms");
	if (r->reclaim && !isnan(ms))
		r->reclaim_ms[r->n_reclaim_ms++] = ms;
	return 0;
}

/* The runs of r->runs thaws of name (awake when called); 0, or -1 with r->why. */
static int thaw_measure(struct event_base *base, struct runtime *rt, const struct wake_target *t,
			const char *name, const char *control, struct thaw_run *r)
{
	char req[512], why[512], prev_thaw[4096] = "";
	double t_begin = now_ms();
	snprintf(req, sizeof(req),
		 "{\"cmd\":\"enable\",\"container\":\"%s\",\"freeze_after\":\"" THAW_FREEZE_AFTER
		 "\",\"idle\":\"1h\"%s}",
		 name, r->reclaim ? ",\"reclaim_frozen\":true" : "");
	if (!control_ok(control, req)) {
		snprintf(r->why, sizeof(r->why),
			 "dozed would not manage %s with freeze_after " THAW_FREEZE_AFTER "%s",
			 name, r->reclaim ? " and reclaim_frozen" : "");
		return -1;
	}
	if (!wait_state(control, name, "awake")) {
		snprintf(r->why, sizeof(r->why), "%s never awake once enabled", name);
		return -1;
	}
	for (int i = 0; i < r->runs; i++) {
		int awake_not_ready = 0, not_ready = 0;
		if (thaw_wait_runtime(base, rt, name, false, r->why, sizeof(r->why)) < 0)
			return -1;
		r->awake[i] =
		    ask_until_answered(t, now_ms(), 1000, &awake_not_ready, why, sizeof(why));
		if (r->awake[i] < 0) {
			snprintf(r->why, sizeof(r->why), "%s, awake: %s", name, why);
			return -1;
		}
		if (!wait_state_within(control, name, "frozen", THAW_FROZEN_WITHIN_MS)) {
			char refused[256];
			service_field(control, name, "freeze_refused", refused, sizeof(refused));
			snprintf(r->why, sizeof(r->why),
				 "%s never frozen (freeze_after %s; its freeze_refused: %s)", name,
				 THAW_FREEZE_AFTER, refused);
			return -1;
		}
		pid_t pid = thaw_wait_runtime(base, rt, name, true, r->why, sizeof(r->why));
		if (pid < 0)
			return -1;
		struct json_object *freeze = last_event(control, name, "freeze");
		double pause_ms = event_number(freeze, "pause_ms");
		int mem = thaw_read_memory(freeze, name, r);
		json_object_put(freeze);
		if (mem < 0)
			return -1;
		if (i == 0 && r->reclaim)
			r->have_left = mem_kinds_of(pid, &r->left) == 0;
		if (!isnan(pause_ms))
			r->pause[r->n_pause++] = pause_ms;
		/* The frozen CPU is watched once per container, in the plain rows
		 * (cpu_window_s 0: not again). */
		bool watch = i == 0 && r->cpu_window_s > 0;
		if (watch && thaw_watch_cpu(base, rt, name, control, pid, r) < 0)
			return -1;
		if (!watch && thaw_cpu_file(pid, r->cpu_src, sizeof(r->cpu_src)) < 0) {
			snprintf(r->why, sizeof(r->why), "%s: no cgroup found (pid %d)", name,
				 (int)pid);
			return -1;
		}
		r->all_frozen += thaw_all_frozen(r);

		double thaws_before = service_number(control, name, "thaws");
		r->thaw[i] = ask_until_answered(t, now_ms(), 20000, &not_ready, why, sizeof(why));
		if (r->thaw[i] < 0) {
			snprintf(r->why, sizeof(r->why), "%s, frozen: %s", name, why);
			return -1;
		}
		r->not_ready += not_ready;
		r->diff[i] = r->thaw[i] - r->awake[i];
		/* The runtime's view catches up (its unpause), then the event is read. */
		if (thaw_wait_runtime(base, rt, name, false, r->why, sizeof(r->why)) < 0)
			return -1;
		thaw_read_dozed(control, name, thaws_before, r, prev_thaw, sizeof(prev_thaw));
	}
	snprintf(req, sizeof(req), "{\"cmd\":\"disable\",\"service\":\"%s\"}", name);
	json_object_put(control_call(control, req));
	r->took_s = (now_ms() - t_begin) / 1000;
	return 0;
}

#define MIB(bytes) ((bytes) / (1024.0 * 1024.0))

/* The rows of rc (memory reclaimed) after the plain thaw's r: the overhead
 * over its own awake reference, against r's, and the freeze events' memory. */
static void thaw_print_reclaimed(const struct thaw_run *r, const struct thaw_run *rc,
				 double cold_p50, const char *label, const char *proto)
{
	int n = rc->runs;
	double awake50 = pct(rc->awake, n, 50), thaw50 = pct(rc->thaw, n, 50);
	double over = thaw50 - awake50, over95 = pct(rc->thaw, n, 95) - pct(rc->awake, n, 95);
	double plain = pct(r->thaw, r->runs, 50) - pct(r->awake, r->runs, 50);
	double plain95 = pct(r->thaw, r->runs, 95) - pct(r->awake, r->runs, 95);
	double lo, hi, diff50 = bench_stat_of((double *)rc->diff, (size_t)n, false).p50;
	bench_median_ci95((double *)rc->diff, (size_t)n, &lo, &hi);
	printf("%-46s %+9.2f %+9.2f   (over its own awake p50 %.2f; the reclaim costs the thaw "
	       "%+.2f ms p50, %+.2f p95)\n",
	       "thaw, memory reclaimed: overhead over awake", over, over95, awake50, over - plain,
	       over95 - plain95);
	printf("%-46s %+9.2f %9s   (%s %+.2f to %+.2f)\n",
	       "thaw, memory reclaimed: overhead, pairwise", diff50, "",
	       n < 6 ? "too few for a 95 % CI; range" : "95 % CI", lo, hi);
	printf("%-46s %8.3fx\n", "thaw, memory reclaimed / cold wake (p50)", thaw50 / cold_p50);
	if (r->n_mem > 0)
		printf("%-46s %9.2f %9.2f\n", "freeze, not reclaimed: memory held (MiB)",
		       MIB(pct(r->mem_before, r->n_mem, 50)),
		       MIB(pct(r->mem_before, r->n_mem, 95)));
	int m = rc->n_mem;
	double before50 = MIB(pct(rc->mem_before, m, 50)), after50 = MIB(pct(rc->mem_after, m, 50));
	printf("%-46s %9.2f %9.2f\n", "freeze, reclaimed: memory_before (MiB)", before50,
	       MIB(pct(rc->mem_before, m, 95)));
	printf("%-46s %9.2f %9.2f   (p50 %.2f -> %.2f MiB; the first freeze %.2f -> %.2f)\n",
	       "freeze, reclaimed: memory_after (MiB)", after50, MIB(pct(rc->mem_after, m, 95)),
	       before50, after50, MIB(rc->mem_before[0]), MIB(rc->mem_after[0]));
	if (rc->n_reclaim_ms > 0)
		printf("%-46s %9.2f %9.2f\n", "freeze, reclaimed: the reclaim (reclaim_ms)",
		       pct(rc->reclaim_ms, rc->n_reclaim_ms, 50),
		       pct(rc->reclaim_ms, rc->n_reclaim_ms, 95));
	/* memory_after counts the kernel's own memory for the cgroup too (page
	 * tables, sockets, slabs), which memory.stat's kinds leave out. */
	if (rc->have_left)
		printf("  left after the first reclaim (memory.stat): anonymous %.2f MiB, shared "
		       "(shmem) %.2f MiB, other file cache %.2f MiB, the rest of memory_after "
		       "(kernel memory) %.2f MiB; swap on this host: %.0f MiB\n",
		       MIB(rc->left.anon), MIB(rc->left.shmem), MIB(rc->left.file),
		       MIB(rc->mem_after[0] - rc->left.anon - rc->left.shmem - rc->left.file),
		       MIB(rc->left.swap_total));
	printf("  memory reclaimed: %d thaws, thaws dozed counted: %d, through the freezer (its "
	       "events): %d",
	       n, rc->counted, rc->by_freezer);
	if (*rc->how_other)
		printf(" (else \"%s\")", rc->how_other);
	printf(
	    "; runs with every process frozen (kernel): %d of %d; not-ready answers retried: %d; "
	    "these rows took %.0f s\n",
	    rc->all_frozen, n, rc->not_ready, rc->took_s);

	FILE *csv = bench_csv_open_mode("thaw_reclaim.csv", "a");
	if (csv) {
		fprintf(
		    csv,
		    "%s,%s,runs,%d,awake_p50_ms,%.2f,thaw_p50_ms,%.2f,thaw_p95_ms,%.2f,"
		    "overhead_p50_ms,%.2f,overhead_p95_ms,%.2f,plain_overhead_p50_ms,%.2f,"
		    "pairwise_ms,%.2f,pairwise_ci_ms,%.2f,%.2f,memory_before_p50,%.0f,"
		    "memory_after_p50,%.0f,first_before,%.0f,first_after,%.0f,reclaim_ms_p50,%.0f,"
		    "counted,%d,by_freezer,%d,all_frozen,%d\n",
		    label, proto, n, awake50, thaw50, pct(rc->thaw, n, 95), over, over95, plain,
		    diff50, lo, hi, pct(rc->mem_before, m, 50), pct(rc->mem_after, m, 50),
		    rc->mem_before[0], rc->mem_after[0],
		    rc->n_reclaim_ms ? pct(rc->reclaim_ms, rc->n_reclaim_ms, 50) : NAN, rc->counted,
		    rc->by_freezer, rc->all_frozen);
		fclose(csv);
	}
}

/* The thaw rows of r; with rc (not NULL), its rows too: memory reclaimed. */
static void thaw_print(const struct thaw_run *r, const struct thaw_run *rc, double cold_p50,
		       const char *label, const char *proto)
{
	int n = r->runs;
	double awake50 = pct(r->awake, n, 50), thaw50 = pct(r->thaw, n, 50);
	double over = thaw50 - awake50, over95 = pct(r->thaw, n, 95) - pct(r->awake, n, 95);
	double lo, hi, diff50 = bench_stat_of((double *)r->diff, (size_t)n, false).p50;
	bench_median_ci95((double *)r->diff, (size_t)n, &lo, &hi);
	char verdict[96];
	if (bench_quick())
		snprintf(verdict, sizeof(verdict), "not judged: quick run");
	else if (over <= THAW_TARGET_MS)
		snprintf(verdict, sizeof(verdict), "met");
	else if (over <= THAW_FLOOR_MS)
		snprintf(verdict, sizeof(verdict), "MISSED by %.1f ms, within the floor",
			 over - THAW_TARGET_MS);
	else
		snprintf(verdict, sizeof(verdict), "MISSED, above the floor");

	printf("Thaw (light sleep: frozen after %s idle) of the same container, %d thaws, each "
	       "after one answer awake (ms)\n",
	       THAW_FREEZE_AFTER, n);
	printf("%-46s %9.2f %9.2f\n", "awake: client connect -> first real answer", awake50,
	       pct(r->awake, n, 95));
	printf("%-46s %9.2f %9.2f\n", "thaw: client connect -> first real answer", thaw50,
	       pct(r->thaw, n, 95));
	if (rc)
		printf("%-46s %9.2f %9.2f   (%d thaws, reclaim_frozen true)\n",
		       "thaw, memory reclaimed: connect -> answer", pct(rc->thaw, rc->runs, 50),
		       pct(rc->thaw, rc->runs, 95), rc->runs);
	if (r->n_running > 0)
		printf("%-46s %9.2f %9.2f\n", "dozed: packet -> running (last_thaw_us)",
		       pct(r->running, r->n_running, 50), pct(r->running, r->n_running, 95));
	if (r->n_pause > 0)
		printf("%-46s %9.2f %9.2f\n", "freeze: runtime pause (freeze event)",
		       pct(r->pause, r->n_pause, 50), pct(r->pause, r->n_pause, 95));
	printf("%-46s %+9.2f %+9.2f   (target p50 <= %.0f ms, floor %.0f ms: %s)\n",
	       "thaw overhead (thaw - awake)", over, over95, THAW_TARGET_MS, THAW_FLOOR_MS,
	       verdict);
	printf("%-46s %+9.2f %9s   (%s %+.2f to %+.2f)\n",
	       "thaw overhead, pairwise (median of differences)", diff50, "",
	       n < 6 ? "too few for a 95 % CI; range" : "95 % CI", lo, hi);
	printf("%-46s %8.3fx %9s   (cold wake p50 %.1f ms)\n", "thaw / cold wake (p50)",
	       thaw50 / cold_p50, "", cold_p50);
	printf("%-46s %9" PRIu64 " %9s   (target 0: %s)\n", "frozen: CPU used (ns of CPU time)",
	       r->cpu_ns, "", r->cpu_ns == 0 ? "met" : "MISSED");
	printf("%-46s %9d %9s   (of %d; the last look: %d of %d processes frozen%s)\n",
	       "frozen: runs with every process frozen (kernel)", r->all_frozen, "", n,
	       r->procs_frozen, r->procs, r->all_frozen == n ? "" : ": MISSED");
	/* The file's kind and the container's cgroup, cut: the full path is long. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", r->cpu_src);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(dir, '/');
	bool v1 = strstr(r->cpu_src, "cpuacct.usage") != NULL;
	printf("  frozen CPU over %.1f s: %s of cgroup %.24s; thaws dozed counted: %d of %d, "
	       "through the freezer (its events): %d",
	       r->cpu_window_s, v1 ? "v1 cpuacct.usage" : "cgroup2 cpu.stat usage_usec",
	       slash ? slash + 1 : dir, r->counted, n, r->by_freezer);
	if (*r->how_other)
		printf(" (else \"%s\")", r->how_other);
	printf("; not-ready answers retried after a thaw: %d; the thaw rows took %.0f s\n",
	       r->not_ready, r->took_s);

	FILE *csv = bench_csv_open_mode("thaw.csv", "a");
	if (csv) {
		fprintf(csv,
			"%s,%s,runs,%d,awake_p50_ms,%.2f,thaw_p50_ms,%.2f,thaw_p95_ms,%.2f,"
			"overhead_p50_ms,%.2f,pairwise_ms,%.2f,pairwise_ci_ms,%.2f,%.2f,"
			"cold_p50_ms,%.1f,thaw_per_cold,%.4f,frozen_cpu_ns,%" PRIu64
			",cpu_window_s,%.1f,counted,%d,by_freezer,%d,all_frozen,%d\n",
			label, proto, n, awake50, thaw50, pct(r->thaw, n, 95), over, diff50, lo, hi,
			cold_p50, thaw50 / cold_p50, r->cpu_ns, r->cpu_window_s, r->counted,
			r->by_freezer, r->all_frozen);
		fclose(csv);
	}
	if (rc)
		thaw_print_reclaimed(r, rc, cold_p50, label, proto);
}
