// SPDX-License-Identifier: MIT
/* dozectl's human output on fixed JSON: durations, sizes, the table, event lines. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "dozed/dozectl_format.h"
#include "dozed/macro.h"
#include "harness.h"
#include "json_fixture.h"

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
	_cleanup_free_ char *text = json_fixture_print(dozectl_print_list, "[]");
	ASSERT_STREQ(text, "NAME  STATE  PORTS  IDLE-FOR  LAST-WAKE\n");
}

TEST(test_list_columns_fit_the_widest_cell_and_missing_values_are_dashes)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_list, "[{\"name\":\"a-very-long-service-name\",\"state\":\"waking\","
				"\"ports\":[80],\"idle_for_ms\":850,\"last_wake_ms\":null},"
				"{\"name\":\"x\",\"state\":\"failed\",\"ports\":[]}]");
	ASSERT_STREQ(text, "NAME                      STATE   PORTS  IDLE-FOR  LAST-WAKE\n"
			   "a-very-long-service-name  waking  80     850ms     -\n"
			   "x                         failed  -      -         -\n");
}

TEST(test_list_says_why_a_service_is_unknown_or_failed_under_the_table)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_list,
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
	_cleanup_free_ char *text = json_fixture_print(
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
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_summary,
	    "{\"name\":\"web\",\"state\":\"sleeping\",\"reason\":\"by command\"}");
	ASSERT_STREQ(text, "web: sleeping (by command)\n");
	_cleanup_free_ char *bare =
	    json_fixture_print(dozectl_print_summary, "{\"name\":\"web\",\"state\":\"awake\"}");
	ASSERT_STREQ(bare, "web: awake\n");
}

TEST(test_event_line_is_time_service_event_and_facts)
{
	_cleanup_free_ char *wake = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"wake\",\"service\":\"web\","
	    "\"container\":\"abc\",\"client\":\"[2001:db8::1]:40000\",\"trigger\":\"connection\"}");
	ASSERT_STREQ(wake, "2026-11-24T22:58:00.123Z web wake client=[2001:db8::1]:40000 "
			   "trigger=connection\n");
	_cleanup_free_ char *failed = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"2026-11-24T22:58:10.000Z\",\"event\":\"wake_failed\",\"service\":"
	    "\"web\",\"reason\":\"no answer within 10s\",\"client\":null}");
	ASSERT_STREQ(failed, "2026-11-24T22:58:10.000Z web wake_failed reason=\"no answer within "
			     "10s\"\n");
}

TEST(test_status_explains_what_counted_what_was_ignored_and_what_a_sleep_would_cut)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_status,
	    "{\"name\":\"web\",\"state\":\"awake\",\"ports\":[8080],\"keep_awake\":\"none\","
	    "\"ignore\":\"10.0.0.0/8,tcp/9090\",\"ignore_from\":\"default\",\"idle_for_ms\":3200,"
	    "\"sleeps_in_ms\":416800,\"last_wake_ms\":161,\"activity\":{\"counted_bytes\":1646,"
	    "\"counted_packets\":9,\"last_counted_ago_ms\":3200,\"direction\":\"in\","
	    "\"last_counted\":{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:41234\",\"local_port\":80,"
	    "\"opened_by\":\"peer\",\"payload_in\":412,\"payload_out\":1234,\"counted\":true},"
	    "\"ignored\":{\"loopback\":{\"bytes\":12000,\"packets\":40},\"no_payload\":{\"bytes\":"
	    "2460,\"packets\":41,\"checks\":41,\"checks_from\":\"10.88.0.1\"},\"dns\":{\"bytes\":"
	    "300,"
	    "\"packets\":6,\"queries\":3},\"ntp\":{\"bytes\":90,\"packets\":1},\"icmp\":{\"bytes\":"
	    "0,"
	    "\"packets\":0},\"rule\":{\"bytes\":4100,\"packets\":10}},"
	    "\"open_connections\":[{\"local\":\"10.88.0.7:80\",\"peer\":\"10.88.0.1:41234\","
	    "\"inbound\":true,\"unanswered\":true,\"last_recv_ms\":4000,\"last_sent_ms\":9000,"
	    "\"bytes_received\":1300,\"bytes_sent\":200},{\"local\":\"[fd00::7]:41000\",\"peer\":"
	    "\"[fd00::8]:5432\",\"peer_service\":\"db\",\"inbound\":false,\"unanswered\":false,"
	    "\"last_recv_ms\":100,\"last_sent_ms\":100,\"bytes_received\":90,\"bytes_sent\":100}]},"
	    "\"flow_table\":{\"capacity\":32768,\"live\":123,\"evicted\":0},\"reason\":\"awake: "
	    "last "
	    "counted traffic 3.2s ago, tcp from 10.88.0.1:41234 to port 80 (412 B in, 1.2 kB out); "
	    "sleeps in 6m56s\"}");
	ASSERT_STREQ(
	    text,
	    "name:         web\n"
	    "state:        awake\n"
	    "ports:        8080\n"
	    "keep awake:   no\n"
	    "ignore:       10.0.0.0/8,tcp/9090 (default)\n"
	    "idle for:     3s\n"
	    "sleeps in:    6m56s\n"
	    "last wake:    161ms\n"
	    "counted:      1.6 kB in 9 packets\n"
	    "last counted: 3s ago, tcp from 10.88.0.1:41234 to port 80, 412 B in, 1.2 kB out\n"
	    "ignored:      loopback 12.0 kB, 41 connect-only checks from 10.88.0.1, DNS 3 "
	    "queries, NTP 90 B, rule 4.1 kB\n"
	    "connections:  2 open (a sleep would cut them)\n"
	    "  from 10.88.0.1:41234 to port 80, 1.3 kB in, 200 B out, unanswered for 4s\n"
	    "  to db ([fd00::8]:5432) from port 41000, 90 B in, 100 B out\n"
	    "flow table:   123 of 32768 entries, 0 evicted\n"
	    "reason:       awake: last counted traffic 3.2s ago, tcp from 10.88.0.1:41234 to "
	    "port 80 (412 B in, 1.2 kB out); sleeps in 6m56s\n");
}

TEST(test_status_of_a_service_kept_awake_by_its_connections)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_status,
	    "{\"name\":\"ws\",\"state\":\"awake\",\"keep_awake\":\"connections\",\"ignore\":"
	    "\"none\","
	    "\"ignore_from\":\"service\",\"activity\":{\"counted_bytes\":0,\"last_counted\":null,"
	    "\"ignored\":{},\"open_connections\":[{\"local\":\"10.88.0.7:80\",\"peer\":"
	    "\"10.88.0.1:41234\",\"peer_service\":\"lb\",\"inbound\":true,\"unanswered\":true},"
	    "{\"inbound\":false}],\"kept_awake_by\":\"an open connection from lb "
	    "(10.88.0.1:41234)\"}}");
	ASSERT_STREQ(text, "name:         ws\n"
			   "state:        awake\n"
			   "ports:        -\n"
			   "keep awake:   while connected\n"
			   "ignore:       none\n"
			   "last wake:    never\n"
			   "counted:      0 B\n"
			   "last counted: nothing since it woke\n"
			   "ignored:      nothing\n"
			   "connections:  2 open, 1 inbound (it stays awake while connected)\n"
			   "  from lb (10.88.0.1:41234) to port 80, - in, - out, unanswered\n"
			   "  to - from port -, - in, - out\n"
			   "kept awake by: an open connection from lb (10.88.0.1:41234)\n");
}

TEST(test_status_of_an_asleep_service_has_no_last_counted_line_and_none_open)
{
	_cleanup_free_ char *text = json_fixture_print(
	    dozectl_print_status,
	    "{\"name\":\"db\",\"state\":\"asleep\",\"ports\":[5432],\"last_wake_ms\":null,"
	    "\"activity\":{\"open_connections\":[]},\"flow_table\":{\"capacity\":32768,\"live\":"
	    "18446744073709551615,\"evicted\":-1}}");
	ASSERT_STREQ(text, "name:         db\n"
			   "state:        asleep\n"
			   "ports:        5432\n"
			   "last wake:    never\n"
			   "connections:  none open\n"
			   "flow table:   18446744073709551615 of 32768 entries, - evicted\n");
}

TEST(test_sleep_event_digests_its_top_flows_and_kept_awake_is_one_line)
{
	_cleanup_free_ char *sleep = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"2026-12-01T19:00:00.000Z\",\"event\":\"sleep\",\"service\":\"web\","
	    "\"container\":\"3f2a\",\"idle_ms\":600012,\"trigger\":\"idle\",\"last_counted\":\"tcp "
	    "from 10.88.0.1:41234 to port 80\",\"top_flows\":[{\"proto\":\"tcp\",\"peer\":"
	    "\"10.88.0.1:41234\",\"local_port\":80,\"bytes_in\":2460,\"bytes_out\":1640,"
	    "\"payload_in\":0,\"payload_out\":0,\"packets_in\":41,\"packets_out\":41,"
	    "\"counted\":false,\"ignored\":\"no payload\"},{\"proto\":\"udp\",\"peer\":"
	    "\"[2001:db8::53]:53\",\"peer_service\":\"dns\\\"x\",\"payload_in\":200,"
	    "\"payload_out\":100,\"packets_in\":1,\"packets_out\":1,\"counted\":true}]}");
	ASSERT_STREQ(sleep, "2026-12-01T19:00:00.000Z web sleep idle=10m trigger=idle "
			    "last_counted=\"tcp from 10.88.0.1:41234 to port 80\" "
			    "top=\"10.88.0.1:41234 0 B 82 pkts (ignored: no payload), dns\\\"x "
			    "([2001:db8::53]:53) 300 B 2 pkts\"\n");
	_cleanup_free_ char *empty = json_fixture_print(
	    dozectl_print_event, "{\"ts\":\"t\",\"event\":\"sleep\",\"service\":\"web\","
				 "\"trigger\":\"idle\",\"top_flows\":[]}");
	ASSERT_STREQ(empty, "t web sleep trigger=idle\n");
	_cleanup_free_ char *kept = json_fixture_print(
	    dozectl_print_event,
	    "{\"ts\":\"t\",\"event\":\"kept_awake\",\"service\":\"web\",\"by\":\"unanswered\","
	    "\"what\":\"an unanswered request from 10.88.0.1:41234 (1.3 kB in, 4.0s ago)\","
	    "\"peer\":\"10.88.0.1:41234\",\"peer_service\":\"lb\\u001b]0;x\\u0007\"}");
	ASSERT_STREQ(kept, "t web kept_awake by=unanswered what=\"an unanswered request from "
			   "10.88.0.1:41234 (1.3 kB in, 4.0s ago)\" peer=10.88.0.1:41234 "
			   "peer_service=\"lb\\u001b]0;x\\u0007\"\n");
}

TEST(test_list_summary_and_events_never_print_a_control_character)
{
	_cleanup_free_ char *list = json_fixture_print(
	    dozectl_print_list,
	    "[{\"name\":\"caf\\u00e9\\u001b[2J\",\"state\":\"failed\",\"ports\":[80],\"reason\":"
	    "\"3 wakes failed\\r\\u009b\"},{\"name\":\"x\",\"state\":\"awake\",\"ports\":[81]}]");
	ASSERT_STREQ(list, "NAME      STATE   PORTS  IDLE-FOR  LAST-WAKE\n"
			   "caf\xc3\xa9?[2J  failed  80     -         -\n"
			   "x         awake   81     -         -\n"
			   "caf\xc3\xa9?[2J: 3 wakes failed??\n");
	_cleanup_free_ char *summary =
	    json_fixture_print(dozectl_print_summary,
			       "{\"name\":\"w\\u0007\",\"state\":\"awake\",\"reason\":\"a\\nb\"}");
	ASSERT_STREQ(summary, "w?: awake (a?b)\n");
	_cleanup_free_ char *event = json_fixture_print(
	    dozectl_print_event, "{\"ts\":\"t\",\"service\":\"w\\u202e\",\"event\":\"wake\","
				 "\"client\":\"\\u009b1m\"}");
	ASSERT_STREQ(event, "t w? wake client=?1m\n");
}
