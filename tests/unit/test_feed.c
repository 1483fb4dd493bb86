// SPDX-License-Identifier: MIT
/* The activity feed: event layout, the bounded history, the sink, the log line. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>

#include "capture.h"
#include "dozed/feed.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "harness.h"

/* 2026-11-24T22:58:00.123Z */
#define FAKE_NOW_MS 1795561080123ull

static uint64_t fake_clock(void *userdata)
{
	return *(uint64_t *)userdata;
}

static void feed_freep(struct feed **f)
{
	feed_free(*f);
}

static void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

#define _cleanup_feed_ _cleanup_(feed_freep)
#define _cleanup_json_ _cleanup_(json_putp)

static struct json_object *facts_of(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	if (!o)
		FAIL("bad JSON in the test: %s", text);
	return o;
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

struct sink_log {
	size_t calls;
	char last[512];
};

static void record_sink(void *userdata, const struct json_object *event)
{
	struct sink_log *s = userdata;
	s->calls++;
	snprintf(
	    s->last, sizeof(s->last), "%s",
	    json_object_to_json_string_ext((struct json_object *)event, JSON_C_TO_STRING_PLAIN));
}

static struct json_object *history_of(const struct feed *f)
{
	struct json_object *a = NULL;
	if (feed_history_json(f, &a) < 0)
		FAIL("feed_history_json failed");
	return a;
}

TEST(test_event_is_stamped_with_iso_utc_time_in_milliseconds)
{
	_cleanup_feed_ struct feed *f = NULL;
	uint64_t now = FAKE_NOW_MS;
	ASSERT_OK(feed_new(8, &f));
	feed_set_clock(f, fake_clock, &now);
	ASSERT_OK(feed_emit(f, "disabled", "web", "abc", NULL));

	_cleanup_json_ struct json_object *h = history_of(f);
	struct json_object *ts = NULL;
	ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(h, 0), "ts", &ts));
	ASSERT_STREQ(json_object_get_string(ts), "2026-11-24T22:58:00.123Z");
}

TEST(test_real_clock_stamps_a_plausible_utc_time)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(8, &f));
	ASSERT_OK(feed_emit(f, "removed", "web", NULL, NULL));
	_cleanup_json_ struct json_object *h = history_of(f);
	struct json_object *ts = NULL;
	ASSERT_TRUE(json_object_object_get_ex(json_object_array_get_idx(h, 0), "ts", &ts));
	const char *s = json_object_get_string(ts);
	ASSERT_EQ_U(strlen(s), strlen("2026-11-24T22:58:00.123Z"));
	ASSERT_TRUE(s[10] == 'T' && s[19] == '.' && s[23] == 'Z');
}

TEST(test_event_has_common_fields_then_facts)
{
	_cleanup_feed_ struct feed *f = NULL;
	uint64_t now = FAKE_NOW_MS;
	ASSERT_OK(feed_new(8, &f));
	feed_set_clock(f, fake_clock, &now);
	ASSERT_OK(feed_emit(f, "sleep", "web", "c0ffee",
			    facts_of("{\"idle_ms\":2000,\"egress_bytes\":1234,"
				     "\"egress_packets\":7}")));

	_cleanup_json_ struct json_object *h = history_of(f);
	ASSERT_STREQ(plain(json_object_array_get_idx(h, 0)),
		     "{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"sleep\",\"service\":\"web\","
		     "\"container\":\"c0ffee\",\"idle_ms\":2000,\"egress_bytes\":1234,"
		     "\"egress_packets\":7}");
}

TEST(test_event_without_container_has_no_container_key)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(8, &f));
	ASSERT_OK(feed_emit(f, "wake", "web", NULL, facts_of("{\"trigger\":\"command\"}")));
	_cleanup_json_ struct json_object *h = history_of(f);
	struct json_object *e = json_object_array_get_idx(h, 0);
	ASSERT_TRUE(!json_object_object_get_ex(e, "container", NULL));
	ASSERT_TRUE(json_object_object_get_ex(e, "trigger", NULL));
}

TEST(test_history_is_oldest_first)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(8, &f));
	ASSERT_OK(feed_emit(f, "enabled", "a", "1", NULL));
	ASSERT_OK(feed_emit(f, "sleep", "b", "2", NULL));
	ASSERT_OK(feed_emit(f, "wake", "c", "3", NULL));

	_cleanup_json_ struct json_object *h = history_of(f);
	ASSERT_EQ_U(json_object_array_length(h), 3);
	const char *want[] = {"a", "b", "c"};
	for (size_t i = 0; i < 3; i++) {
		struct json_object *svc = NULL;
		json_object_object_get_ex(json_object_array_get_idx(h, i), "service", &svc);
		ASSERT_STREQ(json_object_get_string(svc), want[i]);
	}
}

TEST(test_full_history_drops_the_oldest_and_counts_them)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(3, &f));
	char name[8];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ASSERT_OK(feed_emit(f, "sleep", name, NULL, NULL));
	}
	ASSERT_EQ_U(feed_history_size(f), 3);
	ASSERT_EQ_U(feed_history_dropped(f), 7);

	_cleanup_json_ struct json_object *h = history_of(f);
	ASSERT_EQ_U(json_object_array_length(h), 3);
	struct json_object *first = NULL, *last = NULL;
	json_object_object_get_ex(json_object_array_get_idx(h, 0), "service", &first);
	json_object_object_get_ex(json_object_array_get_idx(h, 2), "service", &last);
	ASSERT_STREQ(json_object_get_string(first), "s7");
	ASSERT_STREQ(json_object_get_string(last), "s9");
}

TEST(test_empty_history_is_an_empty_array)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(1, &f));
	_cleanup_json_ struct json_object *h = history_of(f);
	ASSERT_STREQ(plain(h), "[]");
}

TEST(test_history_of_zero_events_is_refused)
{
	struct feed *f = NULL;
	ASSERT_ERR(feed_new(0, &f), EINVAL);
	ASSERT_TRUE(f == NULL);
}

TEST(test_sink_receives_every_event_as_recorded)
{
	_cleanup_feed_ struct feed *f = NULL;
	struct sink_log s = {0};
	uint64_t now = FAKE_NOW_MS;
	ASSERT_OK(feed_new(8, &f));
	feed_set_clock(f, fake_clock, &now);
	feed_set_sink(f, record_sink, &s);
	ASSERT_OK(feed_emit(f, "ready", "web", "c0ffee",
			    facts_of("{\"start_ms\":300,\"probe_ms\":112,\"total_ms\":412}")));
	ASSERT_OK(feed_emit(f, "wake_failed", "web", "c0ffee",
			    facts_of("{\"reason\":\"no answer within 10 s\"}")));
	ASSERT_EQ_U(s.calls, 2);
	ASSERT_STREQ(s.last, "{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"wake_failed\","
			     "\"service\":\"web\",\"container\":\"c0ffee\","
			     "\"reason\":\"no answer within 10 s\"}");
}

TEST(test_unknown_event_is_rejected_and_not_recorded)
{
	_cleanup_feed_ struct feed *f = NULL;
	struct sink_log s = {0};
	ASSERT_OK(feed_new(8, &f));
	feed_set_sink(f, record_sink, &s);
	/* The facts are taken even on error: LeakSanitizer checks it. */
	ASSERT_ERR(feed_emit(f, "napping", "web", "c", facts_of("{\"x\":1}")), EINVAL);
	ASSERT_ERR(feed_emit(f, "sleep", NULL, "c", NULL), EINVAL);
	ASSERT_ERR(feed_emit(f, "sleep", "", "c", NULL), EINVAL);
	ASSERT_EQ_U(feed_history_size(f), 0);
	ASSERT_EQ_U(s.calls, 0);
}

TEST(test_facts_that_are_not_an_object_or_reuse_a_common_key_are_rejected)
{
	_cleanup_feed_ struct feed *f = NULL;
	ASSERT_OK(feed_new(8, &f));
	ASSERT_ERR(feed_emit(f, "sleep", "web", "c", facts_of("[1,2]")), EINVAL);
	ASSERT_ERR(feed_emit(f, "sleep", "web", "c", facts_of("{\"service\":\"other\"}")), EINVAL);
	ASSERT_EQ_U(feed_history_size(f), 0);
}

static char *log_of(const char *event, const char *container, const char *facts)
{
	struct feed *f = NULL;
	if (feed_new(4, &f) < 0)
		FAIL("feed_new failed");
	log_set_max_level(LOG_INFO);
	capture_stderr_begin();
	int r = feed_emit(f, event, "web", container, facts ? facts_of(facts) : NULL);
	char *text = capture_stderr_end();
	feed_free(f);
	if (r < 0)
		FAIL("feed_emit(%s) failed: %s", event, strerror(-r));
	return text;
}

TEST(test_sleep_is_logged_with_idle_time_and_bytes_sent)
{
	_cleanup_free_ char *text =
	    log_of("sleep", "c", "{\"idle_ms\":2000,\"egress_bytes\":1234,\"egress_packets\":3}");
	ASSERT_CONTAINS(text, "web: sleep (idle 2.0 s, 1234 bytes sent)");
}

TEST(test_wake_is_logged_with_the_client_or_the_trigger)
{
	_cleanup_free_ char *by_client =
	    log_of("wake", "c", "{\"client\":\"[2001:db8::1]:40000\",\"trigger\":\"connection\"}");
	ASSERT_CONTAINS(by_client, "web: wake (connection from [2001:db8::1]:40000)");
	_cleanup_free_ char *by_command = log_of("wake", "c", "{\"trigger\":\"command\"}");
	ASSERT_CONTAINS(by_command, "web: wake (by command)");
}

TEST(test_ready_and_failures_are_logged_with_timings_and_reason)
{
	_cleanup_free_ char *ready =
	    log_of("ready", "c", "{\"start_ms\":300,\"probe_ms\":112,\"total_ms\":412}");
	ASSERT_CONTAINS(ready, "web: ready in 412 ms (start 300 ms, probe 112 ms)");
	_cleanup_free_ char *failed = log_of("wake_failed", "c", "{\"reason\":\"start refused\"}");
	ASSERT_CONTAINS(failed, "web: wake failed: start refused");
	_cleanup_free_ char *enabled = log_of("enabled", "0123456789abcdef0123", NULL);
	ASSERT_CONTAINS(enabled, "web: enabled (container 0123456789ab)");
}

TEST(test_kept_awake_is_recorded_and_logged_with_what_kept_it)
{
	_cleanup_free_ char *text =
	    log_of("kept_awake", "c",
		   "{\"by\":\"unanswered\",\"what\":\"an unanswered request from 10.0.0.9:40000 "
		   "to port 80 (40 B in, the last 3.0s ago)\"}");
	ASSERT_CONTAINS(text, "web: kept awake by an unanswered request from 10.0.0.9:40000 to "
			      "port 80 (40 B in, the last 3.0s ago)");
}

TEST(test_freeze_and_thaw_are_recorded_and_logged_with_their_timings)
{
	_cleanup_free_ char *frozen = log_of("freeze", "c", "{\"idle_ms\":1000,\"pause_ms\":18}");
	ASSERT_CONTAINS(frozen, "web: frozen (the runtime's pause took 18 ms)");
	_cleanup_free_ char *thawed =
	    log_of("thaw", "c", "{\"trigger\":\"packet\",\"thaw_us\":412,\"how\":\"freezer\"}");
	ASSERT_CONTAINS(thawed, "web: thawed in 412 us (packet, by the freezer)");
	/* A failed thaw says why. */
	_cleanup_free_ char *failed =
	    log_of("thaw", "c", "{\"result\":\"failed\",\"reason\":\"the freezer is gone\"}");
	ASSERT_CONTAINS(failed, "web: thaw failed: the freezer is gone; restarting it");
}
