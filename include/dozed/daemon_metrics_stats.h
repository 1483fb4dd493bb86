/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure parts of the daemon's metrics (daemon/daemon_metrics_stats.c):
 * tallies by label value, histograms, byte totals over a container's runs,
 * and what each service event adds to them. No I/O, no clock; the daemon's
 * renderer (daemon/daemon_metrics.c) writes them out.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define METRICS_TALLY_SLOTS 12
#define METRICS_TALLY_KEY   48

/* Counts by a label value: its first slots seeded (shown at 0 from the
 * start, so a rate sees the first one), others taken as they come; once
 * full, the rest counts as "other". */
struct metrics_tally {
	struct {
		char key[METRICS_TALLY_KEY];
		uint64_t n;
	} slot[METRICS_TALLY_SLOTS];
	size_t used;
};

/* seed: NULL-terminated, at most METRICS_TALLY_SLOTS - 1. */
void metrics_tally_init(struct metrics_tally *t, const char *const *seed);
/* key NULL or "": "none". Cut at METRICS_TALLY_KEY - 1 bytes. */
void metrics_tally_add(struct metrics_tally *t, const char *key);
/* Its count for key (0 when absent), for tests. */
uint64_t metrics_tally_get(const struct metrics_tally *t, const char *key);

/* The services' histograms' upper bounds, in seconds (SPEC's catalogue). */
#define METRICS_BUCKETS 12
extern const double metrics_bucket_s[METRICS_BUCKETS];

struct metrics_hist {
	uint64_t counts[METRICS_BUCKETS + 1]; /* per bucket, the last above them all */
	double sum;			      /* seconds */
};

void metrics_hist_observe(struct metrics_hist *h, double seconds);
uint64_t metrics_hist_count(const struct metrics_hist *h);

/* A byte counter that starts from zero again with each container run (a
 * new cgroup), summed over the runs. */
struct metrics_run_total {
	uint64_t cgroup_id; /* of the last reading; 0: none yet */
	uint64_t last;	    /* that reading */
	uint64_t total;
};

/* reading of cgroup_id's counter: a new cgroup counts from zero, and so
 * does a reading below the last (a counter that started again). */
void metrics_run_total_note(struct metrics_run_total *r, uint64_t cgroup_id, uint64_t reading);

enum metrics_phase {
	METRICS_PHASE_START, /* the runtime's start call */
	METRICS_PHASE_PROBE, /* the probe, to ready */
	METRICS_PHASE_READY, /* the wake to ready, in all */
	METRICS_PHASES,
};

/* What a service's series need beyond struct service: in its svc_extra. */
struct svc_metrics {
	struct metrics_tally sleeps, wakes, thaws; /* by trigger */
	uint64_t wakes_ready, wakes_failed;
	struct metrics_hist wake; /* a held client's connect to its first answer byte */
	struct metrics_hist phase[METRICS_PHASES];
	struct metrics_hist thaw;
	struct metrics_run_total counted, ignored; /* flow bytes */
};

/* Seeds its tallies (svc_extra_create). */
void svc_metrics_init(struct svc_metrics *m);
/* An event of the service and its facts (may be NULL) into m. */
void svc_metrics_note_event(struct svc_metrics *m, const char *event,
			    const struct json_object *facts);
