// SPDX-License-Identifier: MIT
/* dozed's options, one by one: defaults, the values each takes and the
 * messages of bad ones. The config file is in test_config_file.c, the command
 * line, DOCKER_HOST and --help in test_config_args.c. */
#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "dozed/config.h"
#include "dozed/macro.h"
#include "config_fixture.h"
#include "harness.h"

/* The tests' own environment must not choose the runtime socket. */
__attribute__((constructor)) static void docker_host_clear(void)
{
	unsetenv("DOCKER_HOST");
}

/* Parses one option given as "--key value" (and as "--key=value", which must agree). */
static int parse_option(struct dozed_config *c, const char *key, const char *value, char **msg)
{
	char opt[128];
	snprintf(opt, sizeof(opt), "--%s", key);
	char *argv[] = {"dozed", opt, (char *)value};
	ASSERT_OK(dozed_config_defaults(c));
	int r = dozed_config_parse_args(c, 3, argv, msg);

	_cleanup_(dozed_config_free) struct dozed_config other = {0};
	_cleanup_free_ char *other_msg = NULL;
	char joined[512];
	snprintf(joined, sizeof(joined), "--%s=%s", key, value);
	char *argv2[] = {"dozed", joined};
	ASSERT_OK(dozed_config_defaults(&other));
	int r2 = dozed_config_parse_args(&other, 2, argv2, &other_msg);
	if (r != r2 || (*msg && (!other_msg || strcmp(*msg, other_msg) != 0)))
		FAIL("--%s %s and --%s=%s disagree", key, value, key, value);
	return r;
}

static void assert_option_ok(struct dozed_config *c, const char *key, const char *value)
{
	_cleanup_free_ char *msg = NULL;
	int r = parse_option(c, key, value, &msg);
	if (r < 0)
		FAIL("--%s %s rejected: %s", key, value, msg ? msg : "(no message)");
}

static void assert_option_rejected(const char *key, const char *value, const char *want)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_free_ char *msg = NULL;
	ASSERT_ERR(parse_option(&c, key, value, &msg), EINVAL);
	ASSERT_STREQ(msg, want);
}

TEST(test_defaults_are_documented_values)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	unsetenv("DOCKER_HOST");
	ASSERT_OK(dozed_config_defaults(&c));
	ASSERT_STREQ(c.runtime_socket, "/var/run/docker.sock");
	ASSERT_STREQ(c.control_path, "/run/dozed/control.sock");
	ASSERT_TRUE(c.control_group == NULL);
	ASSERT_EQ_U(c.activator_port, 15001);
	ASSERT_STREQ(c.nft_table, "dozed");
	ASSERT_EQ_U(c.mark, 0x1d0);
	ASSERT_STREQ(c.state_dir, "/var/lib/dozed");
	ASSERT_EQ_U(c.idle_us, 600000000);
	ASSERT_EQ_U(c.probe_interval_us, 30000);
	ASSERT_EQ_U(c.wake_timeout_us, 10000000);
	ASSERT_EQ_U(c.stop_timeout_s, 10);
	ASSERT_EQ_U(c.max_held, 4096);
	ASSERT_EQ_U(c.held_silent_timeout_us, 10000000);
	ASSERT_EQ_U(c.max_held_per_client, 256);
	ASSERT_EQ_U(c.control_idle_timeout_us, 30000000);
	ASSERT_EQ_U(c.log_level, LOG_INFO);
	ASSERT_STREQ(c.config_path, "/etc/dozed/dozed.conf");
	ASSERT_TRUE(!c.check && !c.version && !c.help);
	ASSERT_EQ_U(c.ignore.n, 0);
}

TEST(test_runtime_socket_takes_a_path_or_a_unix_url)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "runtime-socket", "/run/podman/podman.sock");
	ASSERT_STREQ(c.runtime_socket, "/run/podman/podman.sock");
	assert_option_ok(&d, "runtime-socket", "unix:///run/docker.sock");
	ASSERT_STREQ(d.runtime_socket, "/run/docker.sock");
	assert_option_rejected("runtime-socket", "docker.sock",
			       "--runtime-socket docker.sock: expected the absolute path of a unix "
			       "socket (at most 107 bytes), or unix://PATH");
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	_cleanup_free_ char *msg = NULL;
	ASSERT_ERR(parse_option(&e, "runtime-socket", longpath, &msg), EINVAL);
}

TEST(test_control_takes_an_absolute_socket_path)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "control", "/tmp/dozed.sock");
	ASSERT_STREQ(c.control_path, "/tmp/dozed.sock");
	assert_option_rejected(
	    "control", "",
	    "--control '': expected the absolute path of a unix socket (at most 107 bytes)");
}

TEST(test_control_group_is_resolved_to_its_gid)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "control-group", "root");
	ASSERT_STREQ(c.control_group, "root");
	ASSERT_EQ_U(c.control_gid, 0);
	assert_option_rejected("control-group", "no-such-group-dozed",
			       "--control-group no-such-group-dozed: expected the name of an "
			       "existing group");
}

TEST(test_activator_port_is_1_to_65535)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "activator-port", "1");
	ASSERT_EQ_U(c.activator_port, 1);
	assert_option_ok(&d, "activator-port", "65535");
	ASSERT_EQ_U(d.activator_port, 65535);
	assert_option_rejected("activator-port", "70000",
			       "--activator-port 70000: expected a port 1-65535");
	assert_option_rejected("activator-port", "0",
			       "--activator-port 0: expected a port 1-65535");
	assert_option_rejected("activator-port", "-1",
			       "--activator-port -1: expected a port 1-65535");
	assert_option_rejected("activator-port", "80a",
			       "--activator-port 80a: expected a port 1-65535");
}

TEST(test_nft_table_is_1_to_64_name_characters)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "nft-table", "dozed_test-2");
	ASSERT_STREQ(c.nft_table, "dozed_test-2");
	char name[66];
	memset(name, 'x', 64);
	name[64] = '\0';
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&d, "nft-table", name);
	name[64] = 'x';
	name[65] = '\0';
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(
	    asprintf(&want, "--nft-table %s: expected 1-64 letters, digits, '_' or '-'", name) > 0);
	assert_option_rejected("nft-table", name, want);
	assert_option_rejected("nft-table", "my table",
			       "--nft-table my table: expected 1-64 letters, digits, '_' or '-'");
	assert_option_rejected("nft-table", "",
			       "--nft-table '': expected 1-64 letters, digits, '_' or '-'");
}

TEST(test_mark_is_decimal_or_hex_non_zero_u32)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	assert_option_ok(&c, "mark", "0x1D0");
	ASSERT_EQ_U(c.mark, 0x1d0);
	assert_option_ok(&d, "mark", "42");
	ASSERT_EQ_U(d.mark, 42);
	assert_option_ok(&e, "mark", "0xffffffff");
	ASSERT_EQ_U(e.mark, 0xffffffffu);
	const char *bad[] = {"0", "0x0", "0x100000000", "4294967296", "0x", "x1", "-5", "1e3"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *want = NULL;
		ASSERT_TRUE(asprintf(&want,
				     "--mark %s: expected a non-zero 32-bit number, decimal or "
				     "0x hex",
				     bad[i]) > 0);
		assert_option_rejected("mark", bad[i], want);
	}
}

TEST(test_state_dir_is_an_absolute_path)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "state-dir", "/tmp/dozed-state");
	ASSERT_STREQ(c.state_dir, "/tmp/dozed-state");
	assert_option_rejected("state-dir", "state",
			       "--state-dir state: expected an absolute path");
}

TEST(test_idle_is_a_duration_of_at_least_a_second)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "idle", "2h");
	ASSERT_EQ_U(c.idle_us, UINT64_C(7200000000));
	assert_option_ok(&d, "idle", "1s");
	ASSERT_EQ_U(d.idle_us, 1000000);
	assert_option_rejected(
	    "idle", "999ms",
	    "--idle 999ms: expected a duration of 1s or more, like 30s, 10m or 2h");
	assert_option_rejected("idle", "10x",
			       "--idle 10x: expected a duration like 30ms, 10s, 10m or 2h");
	assert_option_rejected("idle", "10",
			       "--idle 10: expected a duration like 30ms, 10s, 10m or 2h");
}

TEST(test_probe_interval_is_1ms_to_10s)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "probe-interval", "1ms");
	ASSERT_EQ_U(c.probe_interval_us, 1000);
	assert_option_ok(&d, "probe-interval", "10s");
	ASSERT_EQ_U(d.probe_interval_us, 10000000);
	assert_option_rejected("probe-interval", "0ms",
			       "--probe-interval 0ms: expected a duration from 1ms to 10s");
	assert_option_rejected("probe-interval", "11s",
			       "--probe-interval 11s: expected a duration from 1ms to 10s");
	assert_option_rejected("probe-interval", "1.5s",
			       "--probe-interval 1.5s: expected a duration like 30ms, 10s, 10m "
			       "or 2h");
}

TEST(test_wake_timeout_is_at_most_10m)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "wake-timeout", "10m");
	ASSERT_EQ_U(c.wake_timeout_us, 600000000);
	assert_option_rejected("wake-timeout", "11m",
			       "--wake-timeout 11m: expected a duration from the probe interval "
			       "to 10m");
}

TEST(test_unanswered_timeout_is_an_hour_unless_set)
{
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	unsetenv("DOCKER_HOST");
	ASSERT_OK(dozed_config_defaults(&d));
	ASSERT_EQ_U(d.unanswered_timeout_us, 3600000000ull);
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "unanswered-timeout", "6h");
	ASSERT_EQ_U(c.unanswered_timeout_us, 6 * 3600000000ull);
	assert_option_rejected(
	    "unanswered-timeout", "500ms",
	    "--unanswered-timeout 500ms: expected a duration of 1s or more, like "
	    "10m or 2h");
	assert_option_rejected("unanswered-timeout", "forever",
			       "--unanswered-timeout forever: expected a duration like 30ms, 10s, "
			       "10m or 2h");
}

TEST(test_wake_timeout_shorter_than_probe_interval_is_rejected)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	const char *conf = conf_file("");
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf, "--probe-interval", "100ms",
			     "--wake-timeout", "50ms"),
		   EINVAL);
	ASSERT_STREQ(msg, "--wake-timeout 50ms: expected a duration from the probe interval "
			  "(100ms) to 10m");
	free(msg);

	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	ASSERT_OK(from_argv(&d, &msg, "--config", conf, "--probe-interval", "100ms",
			    "--wake-timeout", "100ms"));
}

TEST(test_stop_timeout_is_0_to_3600_seconds)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "stop-timeout", "0");
	ASSERT_EQ_U(c.stop_timeout_s, 0);
	assert_option_ok(&d, "stop-timeout", "3600");
	ASSERT_EQ_U(d.stop_timeout_s, 3600);
	assert_option_rejected("stop-timeout", "3601",
			       "--stop-timeout 3601: expected a number of seconds 0-3600");
	assert_option_rejected("stop-timeout", "10s",
			       "--stop-timeout 10s: expected a number of seconds 0-3600");
}

TEST(test_log_level_takes_the_syslog_names)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "log-level", "debug");
	ASSERT_EQ_U(c.log_level, LOG_DEBUG);
	assert_option_ok(&d, "log-level", "err");
	ASSERT_EQ_U(d.log_level, LOG_ERR);
	assert_option_rejected("log-level", "verbose",
			       "--log-level verbose: expected err, warning, notice, info or debug");
}

TEST(test_max_held_is_1_to_1000000_connections)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "max-held", "8192");
	ASSERT_EQ_U(c.max_held, 8192);
	assert_option_rejected("max-held", "0",
			       "--max-held 0: expected a number of connections 1-1000000");
	assert_option_rejected("max-held", "lots",
			       "--max-held lots: expected a number of connections 1-1000000");
}

TEST(test_numbers_are_decimal_without_leading_zeros_or_signs)
{
	/* 080 is not 80: it could be meant as octal, and 010 would be 8 to C. */
	assert_option_rejected("activator-port", "080",
			       "--activator-port 080: expected a port 1-65535");
	assert_option_rejected("activator-port", "+80",
			       "--activator-port +80: expected a port 1-65535");
	assert_option_rejected("activator-port", " 80",
			       "--activator-port  80: expected a port 1-65535");
	assert_option_rejected("activator-port", "0x50",
			       "--activator-port 0x50: expected a port 1-65535");
	assert_option_rejected("activator-port", "00",
			       "--activator-port 00: expected a port 1-65535");
	assert_option_rejected("stop-timeout", "010",
			       "--stop-timeout 010: expected a number of seconds 0-3600");
	assert_option_rejected("max-held", "0100",
			       "--max-held 0100: expected a number of connections 1-1000000");
	assert_option_rejected("max-held-per-client", "08",
			       "--max-held-per-client 08: expected a number of connections from 1 "
			       "to max-held");
	assert_option_rejected("mark", "0464",
			       "--mark 0464: expected a non-zero 32-bit number, decimal or 0x hex");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "stop-timeout", "0");
	ASSERT_EQ_U(c.stop_timeout_s, 0);
	/* Hex, where documented, keeps its zeros: 0x000001d0 is a common way to write a mark. */
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&d, "mark", "0x000001d0");
	ASSERT_EQ_U(d.mark, 0x1d0);

	const char *conf = conf_file("activator-port = 080\n");
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	char *msg;
	ASSERT_ERR(from_argv(&e, &msg, "--config", conf), EINVAL);
	ASSERT_CONTAINS(msg, ":1: activator-port = 080: expected a port 1-65535");
	free(msg);
}

TEST(test_durations_over_a_year_name_the_limit)
{
	assert_option_rejected("idle", "8761h",
			       "--idle 8761h: expected a duration of at most 8760h (a year)");
	assert_option_rejected("idle", "18446744073709s",
			       "--idle 18446744073709s: expected a duration of at most 8760h (a "
			       "year)");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	assert_option_ok(&c, "idle", "8760h");
	ASSERT_EQ_U(c.idle_us, UINT64_C(8760) * 3600 * 1000000);
	/* A setting with a smaller limit names its own. */
	assert_option_rejected("wake-timeout", "9000h",
			       "--wake-timeout 9000h: expected a duration from the probe interval "
			       "to 10m");
	assert_option_rejected("held-silent-timeout", "99999999999h",
			       "--held-silent-timeout 99999999999h: expected a duration from 100ms "
			       "to 1h");
	const char *conf = conf_file("idle = 9000h\n");
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	char *msg;
	ASSERT_ERR(from_argv(&d, &msg, "--config", conf), EINVAL);
	ASSERT_CONTAINS(msg, ":1: idle = 9000h: expected a duration of at most 8760h (a year)");
	free(msg);
}

TEST(test_held_silent_timeout_is_100ms_to_1h)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "held-silent-timeout", "100ms");
	ASSERT_EQ_U(c.held_silent_timeout_us, 100000);
	assert_option_ok(&d, "held-silent-timeout", "1h");
	ASSERT_EQ_U(d.held_silent_timeout_us, UINT64_C(3600000000));
	assert_option_rejected("held-silent-timeout", "99ms",
			       "--held-silent-timeout 99ms: expected a duration from 100ms to 1h");
	assert_option_rejected("held-silent-timeout", "61m",
			       "--held-silent-timeout 61m: expected a duration from 100ms to 1h");
	assert_option_rejected("held-silent-timeout", "10",
			       "--held-silent-timeout 10: expected a duration like 30ms, 10s, 10m "
			       "or 2h");
}

TEST(test_max_held_per_client_is_1_to_max_held)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	const char *empty = conf_file("");
	ASSERT_OK(from_argv(&c, &msg, "--config", empty, "--max-held-per-client", "4096"));
	ASSERT_EQ_U(c.max_held_per_client, 4096);
	assert_option_rejected("max-held-per-client", "0",
			       "--max-held-per-client 0: expected a number of connections from 1 "
			       "to max-held");

	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	ASSERT_ERR(from_argv(&d, &msg, "--config", empty, "--max-held-per-client", "4097"), EINVAL);
	ASSERT_STREQ(msg, "--max-held-per-client 4097: expected a number of connections from 1 to "
			  "max-held (4096)");
	free(msg);

	const char *conf = conf_file("max-held = 100\nmax-held-per-client = 101\n");
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	ASSERT_ERR(from_argv(&e, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want,
			     "%s:2: max-held-per-client = 101: expected a number of connections "
			     "from 1 to max-held (100)",
			     conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);

	/* Left at its default, it follows a smaller max-held instead of refusing it. */
	_cleanup_(dozed_config_free) struct dozed_config g = {0};
	ASSERT_OK(from_argv(&g, &msg, "--config", empty, "--max-held", "100"));
	ASSERT_EQ_U(g.max_held_per_client, 100);
}

TEST(test_control_idle_timeout_is_1s_to_1h)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	assert_option_ok(&c, "control-idle-timeout", "1s");
	ASSERT_EQ_U(c.control_idle_timeout_us, 1000000);
	assert_option_ok(&d, "control-idle-timeout", "1h");
	ASSERT_EQ_U(d.control_idle_timeout_us, UINT64_C(3600000000));
	assert_option_rejected("control-idle-timeout", "999ms",
			       "--control-idle-timeout 999ms: expected a duration from 1s to 1h");
	assert_option_rejected("control-idle-timeout", "2h",
			       "--control-idle-timeout 2h: expected a duration from 1s to 1h");
}

TEST(test_ignore_takes_rules_or_none_and_names_a_bad_rule_and_the_forms)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	char text[256];
	assert_option_ok(&c, "ignore", "10.0.0.0/8, tcp/9090");
	ASSERT_STREQ(flow_rules_to_string(&c.ignore, text, sizeof(text)), "10.0.0.0/8,tcp/9090");
	assert_option_ok(&d, "ignore", "none");
	ASSERT_EQ_U(d.ignore.n, 0);
	assert_option_rejected(
	    "ignore", "tcp/9090,10.0.0.0/33",
	    "--ignore tcp/9090,10.0.0.0/33: rule \"10.0.0.0/33\": the prefix length "
	    "is over 32; " FLOW_RULE_FORMS);
	assert_option_rejected("ignore", "tcp/http",
			       "--ignore tcp/http: rule \"tcp/http\": no IPv4 address, port or "
			       "proto/port; " FLOW_RULE_FORMS);
}
