// SPDX-License-Identifier: MIT
/*
 * The metrics' pure parts: tallies stay bounded and seeded, histograms
 * bucket as Prometheus reads "le", byte totals outlive a container's runs,
 * and each service event adds what it should.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "dozed/daemon_metrics_stats.h"
#include "harness.h"

TEST(test_a_tally_shows_its_seeds_at_zero_and_counts_new_keys)
{
	static const char *const seed[] = {"idle", "command", NULL};
	struct metrics_tally t;
	metrics_tally_init(&t, seed);
	ASSERT_EQ_U(t.used, 2);
	ASSERT_STREQ(t.slot[0].key, "idle");
	ASSERT_EQ_U(t.slot[0].n, 0);
	metrics_tally_add(&t, "idle");
	metrics_tally_add(&t, "thaw failed");
	metrics_tally_add(&t, "thaw failed");
	metrics_tally_add(&t, NULL);
	ASSERT_EQ_U(metrics_tally_get(&t, "idle"), 1);
	ASSERT_EQ_U(metrics_tally_get(&t, "command"), 0);
	ASSERT_EQ_U(metrics_tally_get(&t, "thaw failed"), 2);
	ASSERT_EQ_U(metrics_tally_get(&t, "none"), 1);
	ASSERT_EQ_U(t.used, 4);
}

TEST(test_a_tally_never_holds_more_than_its_slots)
{
	struct metrics_tally t;
	metrics_tally_init(&t, NULL);
	char key[32];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		metrics_tally_add(&t, key);
	}
	ASSERT_EQ_U(t.used, METRICS_TALLY_SLOTS);
	ASSERT_STREQ(t.slot[METRICS_TALLY_SLOTS - 1].key, "other");
	ASSERT_EQ_U(metrics_tally_get(&t, "other"), 100 - (METRICS_TALLY_SLOTS - 1));
	uint64_t sum = 0;
	for (size_t i = 0; i < t.used; i++)
		sum += t.slot[i].n;
	ASSERT_EQ_U(sum, 100);
	/* A key seen before "other" was taken still counts as itself. */
	metrics_tally_add(&t, "k0");
	ASSERT_EQ_U(metrics_tally_get(&t, "k0"), 2);
}

TEST(test_a_long_key_is_cut_not_overrun)
{
	struct metrics_tally t;
	metrics_tally_init(&t, NULL);
	char key[200];
	memset(key, 'x', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	metrics_tally_add(&t, key);
	metrics_tally_add(&t, key);
	ASSERT_EQ_U(t.used, 1);
	ASSERT_EQ_U(strlen(t.slot[0].key), METRICS_TALLY_KEY - 1);
	ASSERT_EQ_U(t.slot[0].n, 2);
}

TEST(test_a_histogram_buckets_by_upper_bound_included)
{
	struct metrics_hist h = {0};
	metrics_hist_observe(&h, 0.005); /* on the bound: that bucket */
	metrics_hist_observe(&h, 0.0051);
	metrics_hist_observe(&h, 30);
	metrics_hist_observe(&h, 31);
	metrics_hist_observe(&h, -1); /* a clock that went back: 0 */
	ASSERT_EQ_U(h.counts[0], 2);
	ASSERT_EQ_U(h.counts[1], 1);
	ASSERT_EQ_U(h.counts[METRICS_BUCKETS - 1], 1);
	ASSERT_EQ_U(h.counts[METRICS_BUCKETS], 1);
	ASSERT_EQ_U(metrics_hist_count(&h), 5);
	ASSERT_TRUE(h.sum > 61.01 && h.sum < 61.0102);
	for (size_t i = 1; i < METRICS_BUCKETS; i++)
		ASSERT_TRUE(metrics_bucket_s[i] > metrics_bucket_s[i - 1]);
}

TEST(test_a_run_total_counts_each_container_run_from_zero)
{
	struct metrics_run_total r = {0};
	metrics_run_total_note(&r, 7, 100);
	metrics_run_total_note(&r, 7, 250);
	ASSERT_EQ_U(r.total, 250);
	/* A new cgroup: its first reading is all new, even above the last. */
	metrics_run_total_note(&r, 9, 400);
	ASSERT_EQ_U(r.total, 650);
	/* The same cgroup read lower: a counter that started again. */
	metrics_run_total_note(&r, 9, 50);
	ASSERT_EQ_U(r.total, 700);
	metrics_run_total_note(&r, 9, 50);
	ASSERT_EQ_U(r.total, 700);
}

/* Feeds m the event with its facts, JSON text (NULL: none). */
static void note(struct svc_metrics *m, const char *event, const char *json)
{
	struct json_object *f = NULL;
	if (json && !(f = json_tokener_parse(json)))
		FAIL("bad JSON %s", json);
	svc_metrics_note_event(m, event, f);
	json_object_put(f);
}

TEST(test_events_feed_the_service_counts)
{
	struct svc_metrics m;
	svc_metrics_init(&m);
	ASSERT_EQ_U(metrics_tally_get(&m.wakes, "connection"), 0);
	ASSERT_EQ_U(m.wakes.used, 2); /* connection, command: shown from the start */
	note(&m, "wake", "{\"trigger\":\"connection\",\"client\":\"10.0.0.9:1\"}");
	note(&m, "ready", "{\"start_ms\":120,\"probe_ms\":300,\"total_ms\":420}");
	note(&m, "wake_failed", NULL);
	note(&m, "sleep", "{\"trigger\":\"idle\",\"egress_bytes\":5}");
	note(&m, "thaw", "{\"trigger\":\"packet\",\"thaw_us\":1500,\"how\":\"freezer\"}");
	/* A failed thaw is a restart (a sleep and a wake), not a thaw. */
	note(&m, "thaw", "{\"trigger\":\"connection\",\"result\":\"failed\"}");
	/* Events with no counts of their own change nothing. */
	note(&m, "kept_awake", NULL);
	note(&m, "freeze", NULL);

	ASSERT_EQ_U(metrics_tally_get(&m.wakes, "connection"), 1);
	ASSERT_EQ_U(m.wakes_ready, 1);
	ASSERT_EQ_U(m.wakes_failed, 1);
	ASSERT_EQ_U(metrics_tally_get(&m.sleeps, "idle"), 1);
	ASSERT_EQ_U(metrics_tally_get(&m.thaws, "packet"), 1);
	ASSERT_EQ_U(metrics_tally_get(&m.thaws, "connection"), 0);
	ASSERT_EQ_U(metrics_hist_count(&m.thaw), 1);
	ASSERT_EQ_U(m.thaw.counts[0], 1); /* 1.5 ms */
	ASSERT_EQ_U(metrics_hist_count(&m.phase[METRICS_PHASE_START]), 1);
	ASSERT_EQ_U(m.phase[METRICS_PHASE_START].counts[5], 1); /* 0.12 s <= .25 */
	ASSERT_EQ_U(m.phase[METRICS_PHASE_PROBE].counts[6], 1); /* 0.3 s <= .5 */
	ASSERT_EQ_U(m.phase[METRICS_PHASE_READY].counts[6], 1); /* 0.42 s <= .5 */
	ASSERT_EQ_U(metrics_hist_count(&m.wake), 0);		/* first_response's own */
}

TEST(test_facts_of_the_wrong_type_are_ignored)
{
	struct svc_metrics m;
	svc_metrics_init(&m);
	note(&m, "wake", "{\"trigger\":7,\"total_ms\":\"soon\",\"probe_ms\":-4}");
	note(&m, "ready", "{\"trigger\":7,\"total_ms\":\"soon\",\"probe_ms\":-4}");
	ASSERT_EQ_U(metrics_tally_get(&m.wakes, "none"), 1);
	ASSERT_EQ_U(m.wakes_ready, 1);
	ASSERT_EQ_U(metrics_hist_count(&m.phase[METRICS_PHASE_READY]), 0);
	ASSERT_EQ_U(metrics_hist_count(&m.phase[METRICS_PHASE_PROBE]), 0);
}
