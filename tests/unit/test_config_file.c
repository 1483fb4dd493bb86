// SPDX-License-Identifier: MIT
/* dozed's config file: every key, its lines and their messages, and how the
 * command line overrides it. */
#include <errno.h>
#include <stdio.h>
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

TEST(test_config_file_sets_every_key)
{
	const char *conf = conf_file("# dozed test config\n"
				     "\n"
				     "runtime-socket = /run/podman/podman.sock\n"
				     "control = /tmp/ctl.sock\n"
				     "control-group = root\n"
				     "activator-port = 16000\n"
				     "  nft-table=dozed_t\n"
				     "mark = 0x2a\n"
				     "state-dir = /tmp/state\n"
				     "idle = 2h\n"
				     "probe-interval = 50ms\r\n"
				     "wake-timeout = 20s\n"
				     "stop-timeout = 30\n"
				     "max-held = 1000\n"
				     "held-silent-timeout = 2s\n"
				     "max_held_per_client = 10\n"
				     "control-idle-timeout = 5m\n"
				     "ignore = udp/8125, 192.0.2.7:443\n"
				     "\t# indented comment\n"
				     "log_level = debug\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_OK(from_argv(&c, &msg, "--config", conf));
	ASSERT_STREQ(c.runtime_socket, "/run/podman/podman.sock");
	ASSERT_STREQ(c.control_path, "/tmp/ctl.sock");
	ASSERT_STREQ(c.control_group, "root");
	ASSERT_EQ_U(c.activator_port, 16000);
	ASSERT_STREQ(c.nft_table, "dozed_t");
	ASSERT_EQ_U(c.mark, 0x2a);
	ASSERT_STREQ(c.state_dir, "/tmp/state");
	ASSERT_EQ_U(c.idle_us, UINT64_C(7200000000));
	ASSERT_EQ_U(c.probe_interval_us, 50000);
	ASSERT_EQ_U(c.wake_timeout_us, 20000000);
	ASSERT_EQ_U(c.stop_timeout_s, 30);
	ASSERT_EQ_U(c.max_held, 1000);
	ASSERT_EQ_U(c.held_silent_timeout_us, 2000000);
	ASSERT_EQ_U(c.max_held_per_client, 10);
	ASSERT_EQ_U(c.control_idle_timeout_us, 300000000);
	char ignore[128];
	ASSERT_STREQ(flow_rules_to_string(&c.ignore, ignore, sizeof(ignore)),
		     "udp/8125,192.0.2.7:443");
	ASSERT_EQ_U(c.log_level, LOG_DEBUG);
	ASSERT_STREQ(c.config_path, conf);
}

TEST(test_command_line_overrides_the_file)
{
	const char *conf = conf_file("idle = 2h\nactivator-port = 16000\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	/* Before and after --config: the order on the command line does not matter. */
	ASSERT_OK(from_argv(&c, &msg, "--idle=5s", "--config", conf, "--stop-timeout", "1"));
	ASSERT_EQ_U(c.idle_us, 5000000);
	ASSERT_EQ_U(c.activator_port, 16000);
	ASSERT_EQ_U(c.stop_timeout_s, 1);
}

TEST(test_bad_value_in_file_names_file_line_key_and_value)
{
	const char *conf = conf_file("# comment\n\nidle = 10x\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want,
			     "%s:3: idle = 10x: expected a duration like 30ms, 10s, 10m or 2h",
			     conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);
}

TEST(test_bad_rule_in_file_names_file_line_key_rule_and_forms)
{
	const char *conf = conf_file("ignore = tcp/9090,\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want,
			     "%s:1: ignore = tcp/9090,: rule \"\": an empty rule (a leading, "
			     "trailing or doubled comma); %s",
			     conf, FLOW_RULE_FORMS) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);
}

TEST(test_ignore_on_the_command_line_replaces_the_files_rules)
{
	const char *conf = conf_file("ignore = tcp/9090\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_OK(from_argv(&c, &msg, "--config", conf, "--ignore", "none"));
	ASSERT_EQ_U(c.ignore.n, 0);
}

TEST(test_bad_value_in_file_is_rejected_even_when_overridden)
{
	const char *conf = conf_file("activator-port = 70000\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf, "--activator-port", "16000"), EINVAL);
	ASSERT_CONTAINS(msg, ":1: activator-port = 70000: expected a port 1-65535");
	free(msg);
}

TEST(test_unknown_key_in_file_is_rejected)
{
	const char *conf = conf_file("idle = 5s\nidle-time = 5s\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want, "%s:2: idle-time = 5s: unknown key", conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);
}

TEST(test_a_per_service_key_in_the_file_says_where_it_is_set)
{
	const char *conf = conf_file("freeze-after = 30s\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want,
			     "%s:1: freeze-after = 30s: unknown key (a setting of each service: "
			     "dozectl enable, or the label dozed.freeze-after)",
			     conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);

	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	const char *conf2 = conf_file("reclaim_frozen = true\n");
	ASSERT_ERR(from_argv(&d, &msg, "--config", conf2), EINVAL);
	ASSERT_CONTAINS(msg, ":1: reclaim_frozen = true: unknown key (a setting of each service: "
			     "dozectl enable, or the label dozed.reclaim-frozen)");
	free(msg);
}

TEST(test_line_without_equals_is_rejected)
{
	const char *conf = conf_file("idle 5s\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want, "%s:1: idle 5s: expected key = value", conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);
}

TEST(test_command_line_only_keys_are_rejected_in_file)
{
	const char *conf = conf_file("check = yes\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	ASSERT_CONTAINS(msg, ":1: check = yes: only allowed on the command line");
	free(msg);
}

TEST(test_wake_timeout_conflict_in_file_names_its_line)
{
	const char *conf = conf_file("probe-interval = 2s\nwake-timeout = 1s\n");
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", conf), EINVAL);
	_cleanup_free_ char *want = NULL;
	ASSERT_TRUE(asprintf(&want,
			     "%s:2: wake-timeout = 1s: expected a duration from the probe "
			     "interval (2s) to 10m",
			     conf) > 0);
	ASSERT_STREQ(msg, want);
	free(msg);
}

TEST(test_missing_file_named_by_config_is_an_error)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", "/nonexistent/dozed.conf"), ENOENT);
	ASSERT_STREQ(msg, "/nonexistent/dozed.conf: cannot read: No such file or directory");
	free(msg);
}

TEST(test_missing_default_file_is_fine)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	ASSERT_OK(dozed_config_defaults(&c));
	char *msg = NULL;
	ASSERT_OK(dozed_config_load_file(&c, "/nonexistent/dozed.conf", false, &msg));
	ASSERT_TRUE(msg == NULL);
	ASSERT_EQ_U(c.activator_port, 15001);
}

TEST(test_directory_as_config_file_is_an_error)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--config", "/tmp"), EISDIR);
	ASSERT_STREQ(msg, "/tmp: cannot read: Is a directory");
	free(msg);
}
