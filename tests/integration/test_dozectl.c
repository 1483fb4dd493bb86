// SPDX-License-Identifier: MIT
/*
 * The built dozectl binary against a fake daemon: the real control server in
 * this process with a handler that records each request and answers from
 * canned JSON. dozectl runs as a child; its output goes to files.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "child_run.h"
#include "control_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "dozectl_fixture.h"
#include "json_fixture.h"
#include "lineclient.h"

TEST(test_list_prints_an_aligned_table)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "list");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"list\"}");
	ASSERT_STREQ(r->out, "NAME           STATE   PORTS      IDLE-FOR  LAST-WAKE\n"
			     "web            awake   8080,8443  3m04s     412ms\n"
			     "postgres-main  asleep  5432       -         -\n");
	ASSERT_STREQ(r->err, "");
}

TEST(test_list_json_prints_the_daemons_reply)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "list", "--json");
	dozectl_assert_exit(r, 0);
	struct json_object *want =
	    json_fixture_parse("{\"ok\":true,\"services\":[" WEB "," DB "]}");
	char expected[2048];
	snprintf(expected, sizeof(expected), "%s\n", dozectl_fixture_plain(want));
	json_object_put(want);
	ASSERT_STREQ(r->out, expected);
}

TEST(test_status_prints_key_value_lines_with_the_reason)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "--control", f->cf->path, "status", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"status\",\"service\":\"web\"}");
	ASSERT_STREQ(r->out,
		     "name:         web\n"
		     "container:    " WEB_ID "\n"
		     "state:        awake\n"
		     "ports:        8080, 8443\n"
		     "idle timeout: 10m\n"
		     "wake on:      connect\n"
		     "idle for:     3m04s\n"
		     "sleeps in:    6m56s\n"
		     "last wake:    412ms\n"
		     "wakes:        3\n"
		     "held:         0\n"
		     "waiting:      2\n"
		     "egress:       1.2 kB in 7 packets\n"
		     "reason:       sent 1.2 kB 3 min ago; sleeps after 10 min of silence\n");
}

TEST(test_status_json_prints_the_daemons_reply)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "status", "--json", "web");
	dozectl_assert_exit(r, 0);
	struct json_object *got = json_fixture_parse(r->out);
	struct json_object *service = NULL;
	ASSERT_TRUE(json_object_object_get_ex(got, "service", &service));
	ASSERT_STREQ(dozectl_fixture_arg(service, "container"), WEB_ID);
	json_object_put(got);
}

TEST(test_enable_sends_the_container_and_only_the_options_given)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r =
	    DOZECTL_RUN(f, "enable", "web", "--idle", "2s", "--wake-on", "data");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(
	    f->last_request,
	    "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"2s\",\"wake_on\":\"data\"}");
	ASSERT_CONTAINS(r->out, "web: awake (sent 1.2 kB");

	r = DOZECTL_RUN(f, "enable", "--idle=1500ms", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"1500ms\"}");
	r = DOZECTL_RUN(f, "enable", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"enable\",\"container\":\"web\"}");
}

TEST(test_enable_sends_ignore_rules_and_keep_awake_as_given)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(
	    f, "enable", "web", "--ignore", "10.0.0.0/8, tcp/9090", "--keep-awake-while-connected");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"10.0.0.0/8, "
		     "tcp/9090\",\"keep_awake\":\"connections\"}");
	/* none is sent as is: the daemon keeps it, over its default. */
	r = DOZECTL_RUN(f, "enable", "--ignore=none", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"none\"}");
}

TEST(test_enable_sends_light_sleep_as_given)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "enable", "cache", "--idle", "never",
					       "--freeze-after", "30s", "--reclaim-frozen");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"idle\":\"never\","
		     "\"freeze_after\":\"30s\",\"reclaim_frozen\":true}");
	/* Without --idle: the daemon checks against its own idle. */
	r = DOZECTL_RUN(f, "enable", "--freeze-after=2h", "cache");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"freeze_after\":\"2h\"}");
	r = DOZECTL_RUN(f, "enable", "cache", "--freeze-after", "none");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"freeze_after\":\"none\"}");
}

TEST(test_status_of_a_frozen_service_says_its_light_sleep)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "status", "cache");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(r->out, "name:         cache\n"
			     "container:    abcdef\n"
			     "state:        frozen\n"
			     "ports:        6379\n"
			     "idle timeout: never\n"
			     "light sleep:  frozen after 30s idle, never stopped, memory reclaimed "
			     "once frozen; 4 freezes, 3 thaws, last thaw 1.8ms\n"
			     "idle for:     1m35s\n"
			     "last wake:    never\n"
			     "wakes:        0\n"
			     "reason:       frozen after 30s idle\n");
}

TEST(test_a_bad_ignore_rule_exits_2_naming_the_rule_and_the_forms)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r =
	    DOZECTL_RUN(f, "enable", "web", "--ignore", "tcp/9090,10.0.0.1/8");
	dozectl_assert_exit(r, 2);
	ASSERT_STREQ(r->err, "dozectl: invalid --ignore value 'tcp/9090,10.0.0.1/8': rule "
			     "\"10.0.0.1/8\": host bits are set after the prefix length (write the "
			     "network address, or the address alone for one host); expected rules "
			     "like 10.0.0.0/8, tcp/9090, udp/8125, 9100, 192.0.2.7:443, "
			     "tcp/10.0.0.0/8:5432 or [2001:db8::/32]:443, separated by commas (at "
			     "most 16), or none\n");
	ASSERT_STREQ(r->out, "");
	r = DOZECTL_RUN(f, "enable", "web", "--ignore", "tcp/0");
	dozectl_assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, "rule \"tcp/0\": the port is out of range (1 to 65535)");
	r = DOZECTL_RUN(f, "enable", "web", "--ignore", "tcp/80,");
	dozectl_assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, "an empty rule (a leading, trailing or doubled comma)");
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_flows_sends_the_service_and_the_window_and_json_prints_the_reply)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "flows", "--json");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\"}");
	struct json_object *got = json_fixture_parse(r->out), *want = json_fixture_parse(FLOWS);
	ASSERT_STREQ(dozectl_fixture_plain(got), dozectl_fixture_plain(want));
	json_object_put(got);
	json_object_put(want);

	r = DOZECTL_RUN(f, "flows", "web", "--since", "30s");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\",\"service\":\"web\",\"since_ms\":30000}");
	r = DOZECTL_RUN(f, "flows", "--since=250ms", "web", "--json");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\",\"service\":\"web\",\"since_ms\":250}");

	r = DOZECTL_RUN(f, "flows", "nope");
	dozectl_assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: no such service: nope\n");
}

TEST(test_disable_sleep_and_wake_send_the_service)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "disable", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"disable\",\"service\":\"web\"}");
	ASSERT_STREQ(r->out, "web: disabled\n");

	r = DOZECTL_RUN(f, "sleep", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"sleep\",\"service\":\"web\"}");
	ASSERT_CONTAINS(r->out, "web: awake");

	r = DOZECTL_RUN(f, "wake", "web");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"wake\",\"service\":\"web\"}");
}

TEST(test_refusal_by_the_daemon_exits_1_with_its_message)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "sleep", "postgres-main");
	dozectl_assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: postgres-main is asleep already\n");
	ASSERT_STREQ(r->out, "");

	r = DOZECTL_RUN(f, "status", "nope");
	dozectl_assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: no such service: nope\n");
}

static void assert_usage_error(struct dozectl_fixture *f, struct dozectl_result *r,
			       const char *message)
{
	dozectl_assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, message);
	ASSERT_STREQ(r->out, "");
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_usage_errors_exit_2_and_send_nothing)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	assert_usage_error(f, dozectl_fixture_run(f, f->cf->path, (const char *const[]){NULL}),
			   "missing command");
	assert_usage_error(f, DOZECTL_RUN(f, "frobnicate"), "unknown command 'frobnicate'");
	assert_usage_error(f, DOZECTL_RUN(f, "enable"), "enable needs a CONTAINER");
	assert_usage_error(f, DOZECTL_RUN(f, "status"), "status needs a SERVICE");
	assert_usage_error(f, DOZECTL_RUN(f, "wake", "web", "db"), "unexpected argument 'db'");
	assert_usage_error(f, DOZECTL_RUN(f, "list", "--follow"), "list does not take --follow");
	assert_usage_error(f, DOZECTL_RUN(f, "sleep", "web", "--idle", "2s"),
			   "sleep does not take --idle");
	assert_usage_error(f, DOZECTL_RUN(f, "list", "--bogus"), "unknown option '--bogus'");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "web", "--idle"),
			   "option '--idle' needs a value");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "web", "--wake-on", "sometimes"),
			   "invalid --wake-on value 'sometimes': expected connect or data");
	assert_usage_error(
	    f, DOZECTL_RUN(f, "enable", "web", "--idle", "8761h"),
	    "invalid --idle value '8761h': expected a duration of at most 8760h (a year)");
	/* The daemon's own bound, checked before anything is sent. */
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "web", "--idle", "500ms"),
			   "invalid --idle value '500ms': expected a duration of 1s or more");
	assert_usage_error(f, DOZECTL_RUN(f, "flows", "web", "db"), "unexpected argument 'db'");
	assert_usage_error(f, DOZECTL_RUN(f, "flows", "--follow"), "flows does not take --follow");
	assert_usage_error(f, DOZECTL_RUN(f, "flows", "--ignore", "none"),
			   "flows does not take --ignore");
	assert_usage_error(f, DOZECTL_RUN(f, "status", "web", "--since", "1s"),
			   "status does not take --since");
	assert_usage_error(f, DOZECTL_RUN(f, "wake", "web", "--keep-awake-while-connected"),
			   "wake does not take --keep-awake-while-connected");
	assert_usage_error(f, DOZECTL_RUN(f, "flows", "--since", "0ms"),
			   "invalid --since value '0ms': expected a duration of 1ms or more");
	assert_usage_error(f, DOZECTL_RUN(f, "flows", "--since", "soon"),
			   "invalid --since value 'soon': expected a duration like");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "web", "--ignore"),
			   "option '--ignore' needs a value");
	const char *bad_idle[] = {"2x", "1.5s", "10", "-1s", "s", "2 s", ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad_idle); i++) {
		char want[64];
		snprintf(want, sizeof(want), "invalid --idle value '%s'", bad_idle[i]);
		assert_usage_error(f, DOZECTL_RUN(f, "enable", "web", "--idle", bad_idle[i]), want);
	}
}

TEST(test_bad_light_sleep_options_exit_2_and_send_nothing)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--freeze-after", "500ms"),
			   "dozectl: invalid --freeze-after value '500ms': expected a duration of "
			   "1s or more, like 30s, 10m or 2h, or none\n");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--freeze-after", "never"),
			   "invalid --freeze-after value 'never': expected a duration of 1s or "
			   "more, like 30s, 10m or 2h, or none\n");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--freeze-after", "0"),
			   "invalid --freeze-after value '0': expected a duration of 1s or more");
	assert_usage_error(
	    f, DOZECTL_RUN(f, "enable", "cache", "--idle", "5m", "--freeze-after", "10m"),
	    "dozectl: --freeze-after 10m --idle 5m: freeze_after (10m) must be "
	    "shorter than idle (5m): a service is frozen first, stopped later\n");
	assert_usage_error(
	    f, DOZECTL_RUN(f, "enable", "cache", "--idle", "1m", "--freeze-after", "1m"),
	    "must be shorter than idle (1m)");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--idle", "Never"),
			   "invalid --idle value 'Never': expected a duration of 1s or more, like "
			   "30s, 10m or 2h, or never\n");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--freeze-after"),
			   "option '--freeze-after' needs a value");
	assert_usage_error(f, DOZECTL_RUN(f, "enable", "cache", "--reclaim-frozen=yes"),
			   "unknown option '--reclaim-frozen=yes'");
	assert_usage_error(f, DOZECTL_RUN(f, "wake", "cache", "--freeze-after", "30s"),
			   "wake does not take --freeze-after");
	assert_usage_error(f, DOZECTL_RUN(f, "status", "cache", "--reclaim-frozen"),
			   "status does not take --reclaim-frozen");
}

TEST(test_help_prints_usage_and_exits_0)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "--help");
	dozectl_assert_exit(r, 0);
	ASSERT_CONTAINS(r->out, "Usage: dozectl");
	ASSERT_EQ_U(f->requests, 0);
}
