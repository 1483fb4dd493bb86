// SPDX-License-Identifier: MIT
/* dozectl flows on fixed replies: the table, missing fields, IPv6 peers, huge numbers,
 * names that would drive a terminal; and the sanitizer itself. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "dozed/dozectl_format.h"
#include "dozed/macro.h"
#include "harness.h"
#include "json_fixture.h"

/* What dozectl_print_flows printed for the JSON text (malloc'd). */
static char *printed(const char *json)
{
	return json_fixture_print(dozectl_print_flows, json);
}

TEST(test_flows_are_a_table_per_service_with_the_flow_table_at_the_end)
{
	_cleanup_free_ char *text = printed(
	    "{\"ok\":true,\"services\":[{\"service\":\"web\",\"state\":\"awake\",\"window_ms\":"
	    "12000,"
	    "\"flows\":["
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:41234\",\"local_port\":80,\"opened_by\":"
	    "\"peer\","
	    "\"bytes_in\":612,\"bytes_out\":1434,\"packets_in\":5,\"packets_out\":4,\"payload_in\":"
	    "412,"
	    "\"payload_out\":1234,\"first_seen_ago_ms\":5000,\"last_seen_ago_ms\":3200,"
	    "\"counted\":true,\"tcp_flags_in\":\"SYN,ACK,FIN\",\"tcp_flags_out\":\"SYN,ACK,FIN\"},"
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.7:5432\",\"peer_service\":\"db\",\"local_port\":"
	    "41000,\"opened_by\":\"container\",\"payload_in\":100,\"payload_out\":90,\"packets_"
	    "in\":2,"
	    "\"packets_out\":2,\"last_seen_ago_ms\":400,\"counted\":true},"
	    "{\"proto\":\"udp\",\"peer\":\"[2001:db8::53]:53\",\"local_port\":39000,\"opened_by\":"
	    "\"container\",\"payload_in\":120,\"payload_out\":60,\"packets_in\":1,\"packets_out\":"
	    "1,"
	    "\"last_seen_ago_ms\":9000,\"counted\":false,\"ignored\":\"dns\"},"
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:50000\",\"local_port\":9090,\"opened_by\":"
	    "\"peer\",\"payload_in\":300,\"payload_out\":200,\"packets_in\":3,\"packets_out\":2,"
	    "\"last_seen_ago_ms\":1000,\"counted\":false,\"ignored\":\"rule tcp/9090\"},"
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:50002\",\"local_port\":80,\"opened_by\":"
	    "\"peer\",\"payload_in\":120,\"payload_out\":60,\"packets_in\":2,\"packets_out\":1,"
	    "\"last_seen_ago_ms\":800,\"counted\":false,\"ignored\":\"no payload\"},"
	    "{\"proto\":\"icmp\",\"peer\":\"10.88.0.1\",\"opened_by\":\"peer\",\"payload_in\":84,"
	    "\"payload_out\":84,\"packets_in\":1,\"packets_out\":1,\"last_seen_ago_ms\":7000,"
	    "\"counted\":false,\"ignored\":\"icmp\"}]},"
	    "{\"service\":\"db\",\"state\":\"asleep\",\"window_ms\":60000,\"flows\":[]}],"
	    "\"flow_table\":{\"capacity\":32768,\"live\":123,\"evicted\":0}}");
	ASSERT_STREQ(text, "web (awake), flows of the last 12s:\n"
			   "PEER                 LOCAL      OPENED     IN     OUT     PKTS IN/OUT  "
			   "LAST SEEN  COUNTS\n"
			   "10.88.0.1:41234      tcp/80     peer       412 B  1.2 kB  5/4          "
			   "3s ago     counted\n"
			   "db (10.88.0.7:5432)  tcp/41000  container  100 B  90 B    2/2          "
			   "400ms ago  counted\n"
			   "[2001:db8::53]:53    udp/39000  container  120 B  60 B    1/1          "
			   "9s ago     ignored: DNS\n"
			   "10.88.0.1:50000      tcp/9090   peer       300 B  200 B   3/2          "
			   "1s ago     ignored: rule tcp/9090\n"
			   "10.88.0.1:50002      tcp/80     peer       120 B  60 B    2/1          "
			   "800ms ago  ignored: no payload\n"
			   "10.88.0.1            icmp       peer       84 B   84 B    1/1          "
			   "7s ago     ignored: ICMP\n"
			   "\n"
			   "db (asleep), flows of the last 1m:\n"
			   "no flows\n"
			   "\n"
			   "flow table: 123 of 32768 entries, 0 evicted\n");
}

TEST(test_flows_without_services_say_so_and_still_give_the_flow_table)
{
	_cleanup_free_ char *text =
	    printed("{\"ok\":true,\"services\":[],\"flow_table\":{\"capacity\":32768,\"live\":0,"
		    "\"evicted\":17}}");
	ASSERT_STREQ(text, "no services\nflow table: 0 of 32768 entries, 17 evicted\n");
	_cleanup_free_ char *bare = printed("{\"ok\":true}");
	ASSERT_STREQ(bare, "no services\n");
}

TEST(test_flows_missing_or_mistyped_fields_print_as_dashes)
{
	_cleanup_free_ char *text =
	    printed("{\"services\":[{\"flows\":[{},{\"proto\":\"udp\",\"payload_in\":-5,"
		    "\"payload_out\":\"7\",\"packets_in\":null,\"packets_out\":3,\"counted\":false,"
		    "\"local_port\":0}]}],\"flow_table\":{\"capacity\":32768}}");
	ASSERT_STREQ(text, "-, flows:\n"
			   "PEER  LOCAL  OPENED  IN  OUT  PKTS IN/OUT  LAST SEEN  COUNTS\n"
			   "-     -      -       -   -    -/-          -          -\n"
			   "-     udp    -       -   -    -/3          -          ignored\n"
			   "\n"
			   "flow table: - of 32768 entries, - evicted\n");
}

TEST(test_flows_huge_numbers_print_whole_and_an_ipv6_peer_keeps_its_brackets)
{
	_cleanup_free_ char *text = printed(
	    "{\"services\":[{\"service\":\"web\",\"state\":\"awake\",\"window_ms\":1000,\"flows\":["
	    "{\"proto\":\"tcp\",\"peer\":\"[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535\","
	    "\"local_port\":65535,\"opened_by\":\"unknown\",\"payload_in\":18446744073709551615,"
	    "\"payload_out\":999999999999999,\"packets_in\":18446744073709551615,\"packets_out\":0,"
	    "\"last_seen_ago_ms\":18446744073709551615,\"counted\":true}]}]}");
	ASSERT_STREQ(text,
		     "web (awake), flows of the last 1s:\n"
		     "PEER                                            LOCAL      OPENED   IN    "
		     "      OUT     PKTS IN/OUT             LAST SEEN           COUNTS\n"
		     "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535  tcp/65535  unknown  "
		     "18446.7 PB  1.0 PB  18446744073709551615/0  5124095576h01m ago  "
		     "counted\n");
}

TEST(test_flows_a_peer_service_name_cannot_drive_the_terminal_and_aligns_by_characters)
{
	/* ESC, BEL, C1 CSI (U+009B) and a right-to-left override (U+202E) become '?';
	 * "über" is 4 columns wide, not 5 bytes. */
	_cleanup_free_ char *text = printed(
	    "{\"services\":[{\"service\":\"w\\u001b[31meb\",\"state\":\"awake\",\"flows\":["
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.9:5432\",\"peer_service\":"
	    "\"\\u00fcber\\u0007\\u009b\\u202e\",\"local_port\":41000,\"counted\":true},"
	    "{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:1\",\"local_port\":80,\"counted\":true}]}]}");
	ASSERT_STREQ(text,
		     "w?[31meb (awake), flows:\n"
		     "PEER                      LOCAL      OPENED  IN  OUT  PKTS IN/OUT  "
		     "LAST SEEN  COUNTS\n"
		     "\xc3\xbc"
		     "ber??? (10.88.0.9:5432)  tcp/41000  -       -   -    -/-          -     "
		     "     counted\n"
		     "10.88.0.1:1               tcp/80     -       -   -    -/-          -  "
		     "        counted\n");
}

TEST(test_sanitize_replaces_invalid_utf8_and_controls_and_cuts_between_characters)
{
	char buf[64];
	ASSERT_STREQ(dozectl_sanitize("ok\xff\xfe-\x7f|\r\n", buf, sizeof(buf)), "ok?"
										 "?-?|??");
	ASSERT_STREQ(dozectl_sanitize("caf\xc3\xa9", buf, sizeof(buf)), "caf\xc3\xa9");
	/* A cut never splits a character: room for "caf" and the NUL, not for é. */
	ASSERT_STREQ(dozectl_sanitize("caf\xc3\xa9", buf, 5), "caf");
	ASSERT_STREQ(dozectl_sanitize("\xe2\x80\xae\xe2\x81\xa6x", buf, sizeof(buf)), "??x");
	ASSERT_STREQ(dozectl_sanitize("", buf, sizeof(buf)), "");
	ASSERT_EQ_U(dozectl_text_width("\xc3\xbc"
				       "ber"),
		    4);
}

TEST(test_top_flows_digest_fits_any_buffer)
{
	struct json_object *flows = json_tokener_parse(
	    "[{\"peer\":\"10.88.0.1:41234\",\"payload_in\":412,\"payload_out\":1234,"
	    "\"packets_in\":5,\"packets_out\":4,\"counted\":true},"
	    "{\"peer\":\"10.88.0.53:53\",\"peer_service\":\"dns\",\"payload_in\":200,"
	    "\"payload_out\":100,\"packets_in\":1,\"packets_out\":1,\"counted\":false,"
	    "\"ignored\":\"dns\"},"
	    "{\"peer\":\"10.0.0.1:9\",\"payload_in\":18446744073709551615,\"payload_out\":"
	    "18446744073709551615,\"packets_in\":18446744073709551615,\"packets_out\":1}]");
	if (!flows)
		FAIL("bad JSON in the test");
	char buf[256], small[12];
	/* Sums saturate; a flow that does not say whether it counted says nothing. */
	ASSERT_STREQ(dozectl_format_top_flows(flows, buf, sizeof(buf)),
		     "10.88.0.1:41234 1.6 kB 9 pkts, dns (10.88.0.53:53) 300 B 2 pkts (ignored: "
		     "DNS), 10.0.0.1:9 18446.7 PB 18446744073709551615 pkts");
	ASSERT_STREQ(dozectl_format_top_flows(flows, small, sizeof(small)), "10.88.0.1:4");
	json_object_put(flows);
}

TEST(test_flows_of_the_wrong_shape_print_dashes)
{
	_cleanup_free_ char *text =
	    printed("{\"services\":[5,{\"service\":\"v\",\"flows\":[5,null,{\"peer\":5,\"proto\":6,"
		    "\"local_port\":\"80\",\"counted\":\"yes\",\"ignored\":3}]},{\"service\":\"w\","
		    "\"flows\":\"a\"}],\"flow_table\":[1]}");
	ASSERT_STREQ(text, "-, flows:\n"
			   "no flows\n"
			   "\n"
			   "v, flows:\n"
			   "PEER  LOCAL  OPENED  IN  OUT  PKTS IN/OUT  LAST SEEN  COUNTS\n"
			   "-     -      -       -   -    -/-          -          -\n"
			   "-     -      -       -   -    -/-          -          -\n"
			   "-     -      -       -   -    -/-          -          -\n"
			   "\n"
			   "w, flows:\n"
			   "no flows\n");
	_cleanup_free_ char *none = printed("{\"services\":{\"a\":1}}");
	ASSERT_STREQ(none, "no services\n");
}
