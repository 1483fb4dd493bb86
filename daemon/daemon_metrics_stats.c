// SPDX-License-Identifier: MIT
/*
 * The metrics' pure parts (dozed/daemon_metrics_stats.h): tallies by label value,
 * histograms, totals over a container's runs, and what each service event
 * adds to them. No I/O, no clock.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "dozed/daemon_metrics_stats.h"

const double metrics_bucket_s[METRICS_BUCKETS] = {
    .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30,
};

void metrics_tally_init(struct metrics_tally *t, const char *const *seed)
{
	memset(t, 0, sizeof(*t));
	for (; seed && *seed && t->used < METRICS_TALLY_SLOTS - 1; seed++)
		snprintf(t->slot[t->used++].key, METRICS_TALLY_KEY, "%s", *seed);
}

void metrics_tally_add(struct metrics_tally *t, const char *key)
{
	char k[METRICS_TALLY_KEY];
	snprintf(k, sizeof(k), "%s", key && *key ? key : "none");
	for (size_t i = 0; i < t->used; i++) {
		if (strcmp(t->slot[i].key, k) == 0) {
			t->slot[i].n++;
			return;
		}
	}
	/* The last slot is "other" once it is reached: never more series. */
	if (t->used < METRICS_TALLY_SLOTS - 1) {
		snprintf(t->slot[t->used].key, METRICS_TALLY_KEY, "%s", k);
		t->slot[t->used++].n = 1;
		return;
	}
	if (t->used == METRICS_TALLY_SLOTS - 1)
		snprintf(t->slot[t->used++].key, METRICS_TALLY_KEY, "other");
	t->slot[METRICS_TALLY_SLOTS - 1].n++;
}

uint64_t metrics_tally_get(const struct metrics_tally *t, const char *key)
{
	for (size_t i = 0; i < t->used; i++)
		if (strcmp(t->slot[i].key, key) == 0)
			return t->slot[i].n;
	return 0;
}

void metrics_hist_observe(struct metrics_hist *h, double seconds)
{
	if (!(seconds >= 0)) /* NaN too */
		seconds = 0;
	size_t i = 0;
	while (i < METRICS_BUCKETS && seconds > metrics_bucket_s[i])
		i++;
	h->counts[i]++;
	h->sum += seconds;
}

uint64_t metrics_hist_count(const struct metrics_hist *h)
{
	uint64_t n = 0;
	for (size_t i = 0; i <= METRICS_BUCKETS; i++)
		n += h->counts[i];
	return n;
}

void metrics_run_total_note(struct metrics_run_total *r, uint64_t cgroup_id, uint64_t reading)
{
	if (cgroup_id != r->cgroup_id) {
		r->cgroup_id = cgroup_id;
		r->last = 0;
	}
	r->total += reading >= r->last ? reading - r->last : reading;
	r->last = reading;
}

void svc_metrics_init(struct svc_metrics *m)
{
	/* The triggers every service may see, at 0 from the start. */
	static const char *const sleeps[] = {"idle", "command", NULL};
	static const char *const wakes[] = {"connection", "command", NULL};
	static const char *const thaws[] = {"packet", "connection", "command", NULL};
	memset(m, 0, sizeof(*m));
	metrics_tally_init(&m->sleeps, sleeps);
	metrics_tally_init(&m->wakes, wakes);
	metrics_tally_init(&m->thaws, thaws);
}

static bool fact_int(const struct json_object *facts, const char *key, int64_t *v)
{
	struct json_object *o;
	/* json-c's getters take no const; they change nothing. */
	if (!facts || !json_object_object_get_ex((struct json_object *)facts, key, &o) ||
	    !json_object_is_type(o, json_type_int))
		return false;
	*v = json_object_get_int64(o);
	return true;
}

static const char *fact_str(const struct json_object *facts, const char *key)
{
	struct json_object *o;
	if (!facts || !json_object_object_get_ex((struct json_object *)facts, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

static void observe_ms(struct metrics_hist *h, const struct json_object *facts, const char *key)
{
	int64_t ms;
	if (fact_int(facts, key, &ms) && ms >= 0)
		metrics_hist_observe(h, (double)ms / 1e3);
}

void svc_metrics_note_event(struct svc_metrics *m, const char *event,
			    const struct json_object *facts)
{
	if (strcmp(event, "sleep") == 0) {
		metrics_tally_add(&m->sleeps, fact_str(facts, "trigger"));
	} else if (strcmp(event, "wake") == 0) {
		metrics_tally_add(&m->wakes, fact_str(facts, "trigger"));
	} else if (strcmp(event, "ready") == 0) {
		m->wakes_ready++;
		observe_ms(&m->phase[METRICS_PHASE_START], facts, "start_ms");
		observe_ms(&m->phase[METRICS_PHASE_PROBE], facts, "probe_ms");
		observe_ms(&m->phase[METRICS_PHASE_READY], facts, "total_ms");
	} else if (strcmp(event, "wake_failed") == 0) {
		m->wakes_failed++;
	} else if (strcmp(event, "thaw") == 0) {
		/* A failed thaw falls back to a restart: a sleep ("thaw failed")
		 * and a wake, not a thaw. */
		const char *result = fact_str(facts, "result");
		if (result && strcmp(result, "failed") == 0)
			return;
		metrics_tally_add(&m->thaws, fact_str(facts, "trigger"));
		int64_t us;
		if (fact_int(facts, "thaw_us", &us) && us >= 0)
			metrics_hist_observe(&m->thaw, (double)us / 1e6);
	}
}
