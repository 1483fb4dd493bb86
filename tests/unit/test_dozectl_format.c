// SPDX-License-Identifier: MIT
/* dozectl's human output on fixed JSON: durations, sizes, the table, event lines. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "dozed/dozectl_format.h"
#include "dozed/macro.h"
#include "harness.h"

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	if (!o)
		FAIL("bad JSON in the test: %s", text);
	return o;
}

/* What fn printed for the JSON text (malloc'd). */
static char *printed(void (*fn)(FILE *, struct json_object *), const char *json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		FAIL("open_memstream failed");
	struct json_object *o = parse(json);
	fn(out, o);
	fclose(out);
	json_object_put(o);
	return text;
}

TEST(test_durations_read_as_850ms_12s_3m04s_2h01m)
{
	char buf[32];
	ASSERT_STREQ(dozectl_format_ms(850, buf, sizeof(buf)), "850ms");
	ASSERT_STREQ(dozectl_format_ms(12000, buf, sizeof(buf)), "12s");
	ASSERT_STREQ(dozectl_format_ms(12999, buf, sizeof(buf)), "12s");
	ASSERT_STREQ(dozectl_format_ms(184000, buf, sizeof(buf)), "3m04s");
	ASSERT_STREQ(dozectl_format_ms(7260000, buf, sizeof(buf)), "2h01m");
	ASSERT_STREQ(dozectl_format_ms(0, buf, sizeof(buf)), "0ms");
}

TEST(test_wake_timings_keep_their_milliseconds_below_10s)
{
	char buf[32];
	ASSERT_STREQ(dozectl_format_timing_ms(412, buf, sizeof(buf)), "412ms");
	ASSERT_STREQ(dozectl_format_timing_ms(1523, buf, sizeof(buf)), "1523ms");
	ASSERT_STREQ(dozectl_format_timing_ms(2000, buf, sizeof(buf)), "2s");
	ASSERT_STREQ(dozectl_format_timing_ms(12345, buf, sizeof(buf)), "12s");
}

TEST(test_sizes_use_si_units)
{
	char buf[32];
	ASSERT_STREQ(dozectl_format_bytes(850, buf, sizeof(buf)), "850 B");
	ASSERT_STREQ(dozectl_format_bytes(1234, buf, sizeof(buf)), "1.2 kB");
	ASSERT_STREQ(dozectl_format_bytes(999999, buf, sizeof(buf)), "1.0 MB");
	ASSERT_STREQ(dozectl_format_bytes(3400000, buf, sizeof(buf)), "3.4 MB");
	ASSERT_STREQ(dozectl_format_bytes(1100000000, buf, sizeof(buf)), "1.1 GB");
}

TEST(test_empty_list_is_the_header_alone)
{
	_cleanup_free_ char *text = printed(dozectl_print_list, "[]");
	ASSERT_STREQ(text, "NAME  STATE  PORTS  IDLE-FOR  LAST-WAKE\n");
}

TEST(test_list_columns_fit_the_widest_cell_and_missing_values_are_dashes)
{
	_cleanup_free_ char *text = printed(
	    dozectl_print_list, "[{\"name\":\"a-very-long-service-name\",\"state\":\"waking\","
				"\"ports\":[80],\"idle_for_ms\":850,\"last_wake_ms\":null},"
				"{\"name\":\"x\",\"state\":\"failed\",\"ports\":[]}]");
	ASSERT_STREQ(text, "NAME                      STATE   PORTS  IDLE-FOR  LAST-WAKE\n"
			   "a-very-long-service-name  waking  80     850ms     -\n"
			   "x                         failed  -      -         -\n");
}

TEST(test_list_says_why_a_service_is_unknown_or_failed_under_the_table)
{
	_cleanup_free_ char *text =
	    printed(dozectl_print_list,
		    "[{\"name\":\"web\",\"state\":\"unknown\",\"ports\":[8080],"
		    "\"reason\":\"not reconciled yet (cannot connect)\"},"
		    "{\"name\":\"db\",\"state\":\"asleep\",\"ports\":[5432],\"reason\":\"asleep\"},"
		    "{\"name\":\"api\",\"state\":\"failed\",\"ports\":[9000],\"reason\":\"3 wakes "
		    "failed\"}]");
	ASSERT_STREQ(text, "NAME  STATE    PORTS  IDLE-FOR  LAST-WAKE\n"
			   "web   unknown  8080   -         -\n"
			   "db    asleep   5432   -         -\n"
			   "api   failed   9000   -         -\n"
			   "web: not reconciled yet (cannot connect)\n"
			   "api: 3 wakes failed\n");
}

TEST(test_status_leaves_out_what_the_daemon_did_not_send)
{
	_cleanup_free_ char *text = printed(
	    dozectl_print_status, "{\"name\":\"db\",\"state\":\"asleep\",\"ports\":[5432],"
				  "\"last_wake_ms\":null,\"reason\":\"no egress for 10m\"}");
	ASSERT_STREQ(text, "name:         db\n"
			   "state:        asleep\n"
			   "ports:        5432\n"
			   "last wake:    never\n"
			   "reason:       no egress for 10m\n");
}

TEST(test_summary_is_name_state_and_reason)
{
	_cleanup_free_ char *text =
	    printed(dozectl_print_summary,
		    "{\"name\":\"web\",\"state\":\"sleeping\",\"reason\":\"by command\"}");
	ASSERT_STREQ(text, "web: sleeping (by command)\n");
	_cleanup_free_ char *bare =
	    printed(dozectl_print_summary, "{\"name\":\"web\",\"state\":\"awake\"}");
	ASSERT_STREQ(bare, "web: awake\n");
}

TEST(test_event_line_is_time_service_event_and_facts)
{
	_cleanup_free_ char *wake = printed(
	    dozectl_print_event,
	    "{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"wake\",\"service\":\"web\","
	    "\"container\":\"abc\",\"client\":\"[2001:db8::1]:40000\",\"trigger\":\"connection\"}");
	ASSERT_STREQ(wake, "2026-11-24T22:58:00.123Z web wake client=[2001:db8::1]:40000 "
			   "trigger=connection\n");
	_cleanup_free_ char *failed =
	    printed(dozectl_print_event,
		    "{\"ts\":\"2026-11-24T22:58:10.000Z\",\"event\":\"wake_failed\",\"service\":"
		    "\"web\",\"reason\":\"no answer within 10s\",\"client\":null}");
	ASSERT_STREQ(failed, "2026-11-24T22:58:10.000Z web wake_failed reason=\"no answer within "
			     "10s\"\n");
}
