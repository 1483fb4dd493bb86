// SPDX-License-Identifier: MIT
/* The one parser of each setting: good values, bad ones and the exact messages. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "harness.h"

static void assert_idle_refused(const char *v, const char *want)
{
	uint64_t us = 42;
	const char *expected = NULL;
	ASSERT_ERR(settings_parse_idle(v, &us, &expected), EINVAL);
	ASSERT_STREQ(expected, want);
	ASSERT_EQ_U(us, 42);
}

TEST(test_idle_reads_whole_durations_from_1s_to_a_year)
{
	const struct {
		const char *text;
		uint64_t us;
	} good[] = {
	    {"1s", DURATION_US_PER_SEC},       {"1000ms", DURATION_US_PER_SEC},
	    {"10m", 10 * DURATION_US_PER_MIN}, {"2h", 2 * DURATION_US_PER_HOUR},
	    {"8760h", DURATION_MAX_US},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		uint64_t us = 0;
		const char *expected = NULL;
		ASSERT_OK(settings_parse_idle(good[i].text, &us, &expected));
		ASSERT_EQ_U(us, good[i].us);
		ASSERT_TRUE(expected == NULL);
	}
}

TEST(test_idle_refuses_with_what_is_expected)
{
	assert_idle_refused("999ms", "expected a duration of 1s or more, like 30s, 10m or 2h");
	assert_idle_refused("0s", "expected a duration of 1s or more, like 30s, 10m or 2h");
	assert_idle_refused("8761h", "expected a duration of at most 8760h (a year)");
	assert_idle_refused("18446744073709s", "expected a duration of at most 8760h (a year)");
	const char *not_duration[] = {"", "10", "2x", "1.5s", "-1s", "s", "2 s", "1s5ms", "010s"};
	for (size_t i = 0; i < ARRAY_SIZE(not_duration); i++)
		assert_idle_refused(not_duration[i],
				    "expected a duration like 30ms, 10s, 10m or 2h");
}

TEST(test_duration_names_the_year_only_when_it_is_the_limit)
{
	uint64_t us = 0;
	const char *expected = NULL;
	ASSERT_ERR(settings_parse_duration("9000h", 0, DURATION_US_PER_HOUR, "expected 0 to 1h",
					   &us, &expected),
		   EINVAL);
	ASSERT_STREQ(expected, "expected 0 to 1h");
	ASSERT_ERR(settings_parse_duration("2h", 0, DURATION_US_PER_HOUR, "expected 0 to 1h", &us,
					   &expected),
		   EINVAL);
	ASSERT_STREQ(expected, "expected 0 to 1h");
	ASSERT_OK(settings_parse_duration("1h", 0, DURATION_US_PER_HOUR, "expected 0 to 1h", &us,
					  &expected));
	ASSERT_EQ_U(us, DURATION_US_PER_HOUR);
}

TEST(test_wake_on_is_connect_or_data_exactly)
{
	bool data = true;
	const char *expected = NULL;
	ASSERT_OK(settings_parse_wake_on("connect", &data, &expected));
	ASSERT_TRUE(!data);
	ASSERT_OK(settings_parse_wake_on("data", &data, &expected));
	ASSERT_TRUE(data);
	const char *bad[] = {"", "Data", "data ", "sometimes", "connectdata"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		expected = NULL;
		data = true;
		ASSERT_ERR(settings_parse_wake_on(bad[i], &data, &expected), EINVAL);
		ASSERT_STREQ(expected, "expected connect or data");
		ASSERT_TRUE(data);
	}
	ASSERT_STREQ(settings_wake_on_to_string(true), "data");
	ASSERT_STREQ(settings_wake_on_to_string(false), "connect");
}

TEST(test_runtime_socket_is_an_absolute_path_or_a_unix_url)
{
	const char *path = NULL, *expected = NULL;
	ASSERT_OK(settings_parse_runtime_socket("/run/podman/podman.sock", &path, &expected));
	ASSERT_STREQ(path, "/run/podman/podman.sock");
	ASSERT_OK(settings_parse_runtime_socket("unix:///run/docker.sock", &path, &expected));
	ASSERT_STREQ(path, "/run/docker.sock");

	char longest[DOZED_UNIX_PATH_MAX], too_long[DOZED_UNIX_PATH_MAX + 1];
	memset(longest, 'a', sizeof(longest));
	longest[0] = '/';
	longest[sizeof(longest) - 1] = '\0';
	memcpy(too_long, longest, sizeof(longest));
	too_long[sizeof(too_long) - 2] = 'a';
	too_long[sizeof(too_long) - 1] = '\0';
	ASSERT_OK(settings_parse_runtime_socket(longest, &path, &expected));

	const char *bad[] = {
	    "", "run/docker.sock", "unix://", "unix://run.sock", "tcp://h:2375", too_long};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		path = expected = NULL;
		ASSERT_ERR(settings_parse_runtime_socket(bad[i], &path, &expected), EINVAL);
		ASSERT_STREQ(expected, "expected the absolute path of a unix socket (at most 107 "
				       "bytes), or unix://PATH");
		ASSERT_TRUE(path == NULL);
	}
}

TEST(test_docker_host_takes_only_a_unix_url)
{
	const char *path = NULL, *expected = NULL;
	ASSERT_OK(settings_parse_docker_host("unix:///run/podman/podman.sock", &path, &expected));
	ASSERT_STREQ(path, "/run/podman/podman.sock");
	const char *other[] = {"tcp://127.0.0.1:2375", "ssh://host", "/run/docker.sock", "unix:"};
	for (size_t i = 0; i < ARRAY_SIZE(other); i++)
		ASSERT_ERR(settings_parse_docker_host(other[i], &path, &expected), EPROTONOSUPPORT);
	ASSERT_ERR(settings_parse_docker_host("unix://", &path, &expected), EINVAL);
	ASSERT_STREQ(expected,
		     "expected the absolute path of a unix socket (at most 107 bytes), or "
		     "unix://PATH");
}

TEST(test_settings_set_takes_each_key_in_both_spellings)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	ASSERT_OK(settings_set(&s, "idle", "5m", &expected));
	ASSERT_TRUE(s.idle_set);
	ASSERT_EQ_U(s.idle_us, 5 * DURATION_US_PER_MIN);
	ASSERT_OK(settings_set(&s, "wake_on", "data", &expected));
	ASSERT_TRUE(s.wake_on_data);
	ASSERT_OK(settings_set(&s, "wake-on", "connect", &expected));
	ASSERT_TRUE(!s.wake_on_data);
	ASSERT_TRUE(settings_key_known("idle"));
	ASSERT_TRUE(settings_key_known("wake-on"));
	ASSERT_TRUE(!settings_key_known("idel"));
}

TEST(test_settings_set_leaves_the_settings_on_a_bad_value_or_key)
{
	struct service_settings s = {.idle_us = 7, .wake_on_data = true};
	const char *expected = NULL;
	ASSERT_ERR(settings_set(&s, "idle", "999ms", &expected), EINVAL);
	ASSERT_STREQ(expected, "expected a duration of 1s or more, like 30s, 10m or 2h, or never");
	ASSERT_ERR(settings_set(&s, "wake-on", "sometimes", &expected), EINVAL);
	ASSERT_STREQ(expected, "expected connect or data");
	ASSERT_ERR(settings_set(&s, "idel", "5m", &expected), ENOENT);
	ASSERT_STREQ(expected, "expected idle, wake_on, probe, ignore, keep_awake, freeze_after or "
			       "reclaim_frozen");
	ASSERT_EQ_U(s.idle_us, 7);
	ASSERT_TRUE(!s.idle_set);
	ASSERT_TRUE(s.wake_on_data);
}

TEST(test_settings_parse_probe_reads_every_kind_and_prints_it_back)
{
	static const char *const kinds[] = {"auto",	"tcp",	 "http",  "http:/health?x=1",
					    "postgres", "redis", "mysql", "healthcheck"};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct probe_spec p;
		const char *expected = NULL;
		char back[256];
		ASSERT_OK(settings_parse_probe(kinds[i], &p, &expected));
		ASSERT_STREQ(settings_probe_to_string(&p, back, sizeof(back)), kinds[i]);
	}
	struct probe_spec p;
	const char *expected = NULL;
	ASSERT_OK(settings_parse_probe("http", &p, &expected));
	ASSERT_EQ_U(p.kind, PROBE_HTTP);
	ASSERT_STREQ(p.http_path, "/");
	ASSERT_OK(settings_parse_probe("http:/", &p, &expected));
	ASSERT_STREQ(p.http_path, "/");
	ASSERT_STREQ(settings_probe_kind_name(PROBE_POSTGRES), "postgres");
}

TEST(test_settings_parse_probe_refuses_unknown_kinds_and_bad_paths)
{
	static const char *const bad[] = {"",	     "TCP",    "postgresql", "tcp:",
					  "http:",   "http:x", "http:/a b",  "http:/a\r\nX: y",
					  "redis:/", "auto ",  "mysql:3306"};
	struct probe_spec p = {.kind = PROBE_REDIS};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *expected = NULL;
		ASSERT_ERR(settings_parse_probe(bad[i], &p, &expected), EINVAL);
		ASSERT_TRUE(expected != NULL);
	}
	ASSERT_EQ_U(p.kind, PROBE_REDIS);
	const char *expected = NULL;
	ASSERT_ERR(settings_parse_probe("pg", &p, &expected), EINVAL);
	ASSERT_STREQ(expected,
		     "expected auto, tcp, http, http:/PATH, postgres, redis, mysql or healthcheck");
	char long_path[PROBE_HTTP_PATH_MAX + 8] = "http:/";
	memset(long_path + 6, 'a', PROBE_HTTP_PATH_MAX);
	long_path[6 + PROBE_HTTP_PATH_MAX] = '\0';
	ASSERT_ERR(settings_parse_probe(long_path, &p, &expected), EINVAL);
	long_path[6 + PROBE_HTTP_PATH_MAX - 1] = '\0';
	ASSERT_OK(settings_parse_probe(long_path, &p, &expected));
}

TEST(test_settings_set_takes_a_probe)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	ASSERT_EQ_U(s.probe.kind, PROBE_AUTO);
	ASSERT_OK(settings_set(&s, "probe", "postgres", &expected));
	ASSERT_EQ_U(s.probe.kind, PROBE_POSTGRES);
	ASSERT_ERR(settings_set(&s, "probe", "nope", &expected), EINVAL);
	ASSERT_EQ_U(s.probe.kind, PROBE_POSTGRES);
	ASSERT_TRUE(settings_key_known("probe"));
}

TEST(test_settings_probe_resolve_picks_auto_by_healthcheck_then_port)
{
	struct probe_spec set = {.kind = PROBE_AUTO}, out;
	char used[128];
	settings_probe_resolve(&set, true, 5432, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_HEALTHCHECK);
	ASSERT_STREQ(used, "healthcheck (auto: the container has one)");
	settings_probe_resolve(&set, false, 5432, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_POSTGRES);
	ASSERT_STREQ(used, "postgres (auto: port 5432)");
	settings_probe_resolve(&set, false, 6379, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_REDIS);
	settings_probe_resolve(&set, false, 3306, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_MYSQL);
	settings_probe_resolve(&set, false, 80, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_TCP);
	ASSERT_STREQ(used, "tcp (auto)");
}

TEST(test_settings_probe_resolve_keeps_a_kind_asked_for)
{
	struct probe_spec out;
	char used[128];
	struct probe_spec http = {.kind = PROBE_HTTP};
	snprintf(http.http_path, sizeof(http.http_path), "/health");
	settings_probe_resolve(&http, true, 5432, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_HTTP);
	ASSERT_STREQ(out.http_path, "/health");
	ASSERT_STREQ(used, "http:/health");
	struct probe_spec hc = {.kind = PROBE_HEALTHCHECK};
	settings_probe_resolve(&hc, false, 5432, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_TCP);
	ASSERT_STREQ(used, "tcp (healthcheck asked, the container has none)");
	settings_probe_resolve(&hc, true, 80, &out, used, sizeof(used));
	ASSERT_EQ_U(out.kind, PROBE_HEALTHCHECK);
}

TEST(test_settings_set_takes_ignore_rules_and_none_sets_them_too)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	char buf[256];
	ASSERT_OK(settings_set(&s, "ignore", "10.0.0.0/8, tcp/9090", &expected));
	ASSERT_TRUE(s.ignore_set);
	ASSERT_STREQ(flow_rules_to_string(&s.ignore, buf, sizeof(buf)), "10.0.0.0/8,tcp/9090");
	/* none is a setting of its own: no rules, whatever the default. */
	ASSERT_OK(settings_set(&s, "ignore", "none", &expected));
	ASSERT_TRUE(s.ignore_set);
	ASSERT_EQ_U(s.ignore.n, 0);
	ASSERT_TRUE(settings_key_known("ignore"));
}

TEST(test_settings_set_refuses_a_bad_rule_with_the_parsers_message_and_keeps_the_old)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	ASSERT_OK(settings_set(&s, "ignore", "udp/8125", &expected));
	ASSERT_ERR(settings_set(&s, "ignore", "udp/8125,10.0.0.0/33", &expected), EINVAL);
	ASSERT_STREQ(expected,
		     "rule \"10.0.0.0/33\": the prefix length is over 32; " FLOW_RULE_FORMS);
	ASSERT_EQ_U(s.ignore.n, 1);
	ASSERT_EQ_U(s.ignore.rule[0].port, 8125);

	struct service_settings fresh = {0};
	ASSERT_ERR(settings_set(&fresh, "ignore", "tcp/80,", &expected), EINVAL);
	ASSERT_TRUE(!fresh.ignore_set);
}

TEST(test_settings_keep_awake_reads_connections_or_none_in_both_spellings)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	ASSERT_OK(settings_set(&s, "keep-awake", "connections", &expected));
	ASSERT_TRUE(s.keep_awake_connections);
	ASSERT_OK(settings_set(&s, "keep_awake", "none", &expected));
	ASSERT_TRUE(!s.keep_awake_connections);
	ASSERT_OK(settings_set(&s, "keep_awake", "connections", &expected));
	const char *bad[] = {"", "connection", "yes", "Connections", "none "};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_ERR(settings_set(&s, "keep_awake", bad[i], &expected), EINVAL);
		ASSERT_STREQ(expected, "expected connections or none");
		ASSERT_TRUE(s.keep_awake_connections);
	}
	ASSERT_STREQ(settings_keep_awake_to_string(true), "connections");
	ASSERT_STREQ(settings_keep_awake_to_string(false), "none");
	ASSERT_TRUE(settings_key_known("keep-awake") && settings_key_known("keep_awake"));
}
