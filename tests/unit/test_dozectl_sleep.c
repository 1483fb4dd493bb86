// SPDX-License-Identifier: MIT
/* dozectl's light sleep output on fixed JSON: the status line, a refused
 * pause, idle never, the frozen state in the list, thaw timings in events. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/dozectl_format.h"
#include "dozed/macro.h"
#include "harness.h"
#include "json_fixture.h"

/* The light sleep text of a SERVICE, or "(none)". */
static const char *light_sleep(const char *json, char *buf, size_t len)
{
	struct json_object *o = json_fixture_parse(json);
	const char *r = dozectl_format_light_sleep(o, buf, len);
	json_object_put(o);
	return r ? r : "(none)";
}

TEST(test_thaw_timings_keep_their_microseconds)
{
	char buf[32];
	ASSERT_STREQ(dozectl_format_timing_us(0, buf, sizeof(buf)), "0us");
	ASSERT_STREQ(dozectl_format_timing_us(850, buf, sizeof(buf)), "850us");
	ASSERT_STREQ(dozectl_format_timing_us(1000, buf, sizeof(buf)), "1.0ms");
	ASSERT_STREQ(dozectl_format_timing_us(1234, buf, sizeof(buf)), "1.2ms");
	ASSERT_STREQ(dozectl_format_timing_us(9999, buf, sizeof(buf)), "9.9ms");
	ASSERT_STREQ(dozectl_format_timing_us(25400, buf, sizeof(buf)), "25ms");
	ASSERT_STREQ(dozectl_format_timing_us(12000000, buf, sizeof(buf)), "12s");
}

TEST(test_light_sleep_says_both_tiers_and_the_counts)
{
	char buf[384];
	ASSERT_STREQ(
	    light_sleep("{\"freeze_after_ms\":30000,\"idle_timeout_ms\":600000,"
			"\"reclaim_frozen\":false,\"freezes\":3,\"thaws\":3,"
			"\"last_thaw_us\":1234}",
			buf, sizeof(buf)),
	    "frozen after 30s idle, stopped after 10m; 3 freezes, 3 thaws, last thaw 1.2ms");
	ASSERT_STREQ(
	    light_sleep("{\"freeze_after_ms\":30000,\"idle_timeout_ms\":null,"
			"\"reclaim_frozen\":true,\"freezes\":1,\"thaws\":0,"
			"\"last_thaw_us\":null}",
			buf, sizeof(buf)),
	    "frozen after 30s idle, never stopped, memory reclaimed once frozen; 1 freeze, "
	    "0 thaws");
	/* Not frozen yet: no counts. */
	ASSERT_STREQ(light_sleep("{\"freeze_after_ms\":120000,\"idle_timeout_ms\":3600000,"
				 "\"freezes\":0,\"thaws\":0}",
				 buf, sizeof(buf)),
		     "frozen after 2m idle, stopped after 1h");
}

TEST(test_light_sleep_off_or_refused_or_not_sent)
{
	char buf[384];
	ASSERT_STREQ(
	    light_sleep("{\"freeze_after_ms\":0,\"idle_timeout_ms\":600000}", buf, sizeof(buf)),
	    "off");
	/* As dozed says none: null. */
	ASSERT_STREQ(light_sleep("{\"freeze_after_ms\":null,\"freezes\":0}", buf, sizeof(buf)),
		     "off");
	ASSERT_STREQ(light_sleep("{\"idle_timeout_ms\":600000}", buf, sizeof(buf)), "(none)");
	ASSERT_STREQ(
	    light_sleep("{\"freeze_after_ms\":30000,\"freeze_refused\":\"the runtime "
			"refused to pause it: cgroup v1 without freezer\\u001b[2J\",\"freezes\":0}",
			buf, sizeof(buf)),
	    "off (the runtime refused to pause it: cgroup v1 without freezer?[2J)");
	/* "" is none refused. */
	ASSERT_STREQ(light_sleep("{\"freeze_after_ms\":30000,\"freeze_refused\":\"\","
				 "\"idle_timeout_ms\":60000}",
				 buf, sizeof(buf)),
		     "frozen after 30s idle, stopped after 1m");
}

TEST(test_status_of_a_frozen_service)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_status,
	    "{\"name\":\"db\",\"state\":\"frozen\",\"ports\":[5432],\"idle_timeout_ms\":600000,"
	    "\"freeze_after_ms\":30000,\"reclaim_frozen\":false,\"freezes\":3,\"thaws\":2,"
	    "\"last_thaw_us\":1200,\"idle_for_ms\":45000,\"sleeps_in_ms\":555000,"
	    "\"last_wake_ms\":null,\"reason\":\"frozen 15s ago\"}");
	ASSERT_STREQ(text, "name:         db\n"
			   "state:        frozen\n"
			   "ports:        5432\n"
			   "idle timeout: 10m\n"
			   "light sleep:  frozen after 30s idle, stopped after 10m; 3 freezes, 2 "
			   "thaws, last thaw 1.2ms\n"
			   "idle for:     45s\n"
			   "sleeps in:    9m15s\n"
			   "last wake:    never\n"
			   "reason:       frozen 15s ago\n");
}

TEST(test_status_of_a_service_never_stopped_and_one_refused)
{
	_cleanup_free_ char *never = json_fixture_print(
	    dozectl_print_status, "{\"name\":\"db\",\"state\":\"awake\",\"idle_timeout_ms\":null,"
				  "\"freeze_after_ms\":60000,\"freezes_in_ms\":20000}");
	ASSERT_STREQ(never, "name:         db\n"
			    "state:        awake\n"
			    "ports:        -\n"
			    "idle timeout: never\n"
			    "light sleep:  frozen after 1m idle, never stopped\n"
			    "freezes in:   20s\n"
			    "last wake:    never\n");
	/* A daemon that printed never as a number of milliseconds. */
	_cleanup_free_ char *big = json_fixture_print(
	    dozectl_print_status, "{\"name\":\"db\",\"idle_timeout_ms\":18446744073709551}");
	ASSERT_TRUE(strstr(big, "idle timeout: never\n") != NULL);
	_cleanup_free_ char *refused =
	    json_fixture_print(dozectl_print_status,
			       "{\"name\":\"web\",\"state\":\"awake\",\"idle_timeout_ms\":600000,"
			       "\"freeze_after_ms\":30000,\"freeze_refused\":\"the runtime refused "
			       "to pause it: pause: "
			       "container is privileged\"}");
	ASSERT_TRUE(strstr(refused, "light sleep:  off (the runtime refused to pause it: pause: "
				    "container is privileged)\n") != NULL);
}

TEST(test_list_shows_frozen_and_says_when_light_sleep_was_refused)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_list,
	    "[{\"name\":\"db\",\"state\":\"frozen\",\"ports\":[5432],\"idle_for_ms\":45000,"
	    "\"last_wake_ms\":null},"
	    "{\"name\":\"web\",\"state\":\"awake\",\"ports\":[8080],\"idle_for_ms\":850,"
	    "\"freeze_refused\":\"the runtime refused to pause it: cgroup v1\"}]");
	ASSERT_STREQ(text, "NAME  STATE   PORTS  IDLE-FOR  LAST-WAKE\n"
			   "db    frozen  5432   45s       -\n"
			   "web   awake   8080   850ms     -\n"
			   "web: light sleep off: the runtime refused to pause it: cgroup v1\n");
}

TEST(test_freeze_and_thaw_events_read_their_timings)
{
	_cleanup_free_ char *thaw = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"2026-12-01T22:00:00.000Z\",\"event\":\"thaw\",\"service\":\"db\","
	    "\"trigger\":\"packet\",\"client\":\"10.88.0.5:41000\",\"thaw_us\":1234,"
	    "\"how\":\"freezer\"}");
	ASSERT_STREQ(thaw, "2026-12-01T22:00:00.000Z db thaw trigger=packet client=10.88.0.5:41000 "
			   "thaw=1.2ms how=freezer\n");
	_cleanup_free_ char *freeze = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"2026-12-01T22:00:00.000Z\",\"event\":\"freeze\",\"service\":\"db\","
	    "\"idle_ms\":30000,\"pause_ms\":21,\"memory_bytes\":52428800}");
	ASSERT_STREQ(freeze, "2026-12-01T22:00:00.000Z db freeze idle=30s pause=21ms "
			     "memory_bytes=52428800\n");
}
