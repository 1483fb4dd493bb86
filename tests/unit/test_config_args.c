// SPDX-License-Identifier: MIT
/* dozed's command line, DOCKER_HOST and --help: flags, unknown options and
 * arguments, where the runtime socket comes from, and the usage text. */
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

TEST(test_runtime_socket_default_comes_from_unix_docker_host)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	const char *empty = conf_file("");
	char *msg = NULL;
	setenv("DOCKER_HOST", "unix:///run/podman/podman.sock", 1);
	ASSERT_OK(from_argv(&c, &msg, "--config", empty));
	ASSERT_STREQ(c.runtime_socket, "/run/podman/podman.sock");
	ASSERT_TRUE(msg == NULL);
}

TEST(test_empty_docker_host_leaves_the_default_socket)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	const char *empty = conf_file("");
	char *msg = NULL;
	setenv("DOCKER_HOST", "", 1);
	ASSERT_OK(from_argv(&c, &msg, "--config", empty));
	ASSERT_STREQ(c.runtime_socket, "/var/run/docker.sock");
}

/* As before, the daemon runs on the default socket; it now says why. */
TEST(test_docker_host_other_than_unix_leaves_the_default_socket_and_says_why)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	const char *empty = conf_file("");
	char *msg = NULL;
	setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
	ASSERT_OK(from_argv(&c, &msg, "--config", empty));
	ASSERT_STREQ(c.runtime_socket, "/var/run/docker.sock");
	ASSERT_STREQ(c.docker_host_ignored,
		     "DOCKER_HOST=tcp://127.0.0.1:2375 is not supported: dozed reaches the "
		     "container runtime over a unix socket only (DOCKER_HOST=unix:///PATH)");

	const char *bad[] = {"ssh://host", "/run/docker.sock"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_(dozed_config_free) struct dozed_config d = {0};
		ASSERT_OK(dozed_config_defaults(&d));
		ASSERT_ERR(dozed_config_apply_docker_host(&d, bad[i], &msg), EINVAL);
		ASSERT_CONTAINS(msg, "is not supported");
		free(msg);
		ASSERT_STREQ(d.runtime_socket, "/var/run/docker.sock");
	}
}

TEST(test_unix_docker_host_leaves_nothing_to_say)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	const char *empty = conf_file("");
	char *msg = NULL;
	setenv("DOCKER_HOST", "unix:///run/podman/podman.sock", 1);
	ASSERT_OK(from_argv(&c, &msg, "--config", empty));
	ASSERT_TRUE(c.docker_host_ignored == NULL);
}

TEST(test_docker_host_with_a_bad_path_is_refused_naming_it)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg = NULL;
	ASSERT_OK(dozed_config_defaults(&c));
	ASSERT_ERR(dozed_config_apply_docker_host(&c, "unix://run/docker.sock", &msg), EINVAL);
	ASSERT_STREQ(msg, "DOCKER_HOST=unix://run/docker.sock: expected the absolute path of a "
			  "unix socket (at most 107 bytes), or unix://PATH");
	free(msg);
	ASSERT_STREQ(c.runtime_socket, "/var/run/docker.sock");
}

TEST(test_runtime_socket_of_the_command_line_or_file_wins_over_docker_host)
{
	setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	const char *empty = conf_file("");
	const char *named = conf_file("runtime-socket = /run/file.sock\n");
	char *msg = NULL;
	ASSERT_OK(from_argv(&c, &msg, "--config", empty, "--runtime-socket", "/run/args.sock"));
	ASSERT_STREQ(c.runtime_socket, "/run/args.sock");
	ASSERT_OK(from_argv(&d, &msg, "--config", named));
	ASSERT_STREQ(d.runtime_socket, "/run/file.sock");
}

TEST(test_flags_set_and_refuse_a_value)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_OK(from_argv(&c, &msg, "--help"));
	ASSERT_TRUE(c.help);
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	ASSERT_OK(from_argv(&d, &msg, "--version"));
	ASSERT_TRUE(d.version);
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	ASSERT_OK(from_argv(&e, &msg, "--check", "--config", conf_file("")));
	ASSERT_TRUE(e.check);
	_cleanup_(dozed_config_free) struct dozed_config f = {0};
	ASSERT_OK(from_argv(&f, &msg, "-h"));
	ASSERT_TRUE(f.help);
	_cleanup_(dozed_config_free) struct dozed_config g = {0};
	ASSERT_ERR(from_argv(&g, &msg, "--check=yes"), EINVAL);
	ASSERT_STREQ(msg, "--check: takes no value");
	free(msg);
}

TEST(test_a_per_service_option_says_where_it_is_set)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--freeze-after", "30s"), EINVAL);
	ASSERT_STREQ(msg, "--freeze-after: unknown option (a setting of each service: dozectl "
			  "enable, or the label dozed.freeze-after)");
	free(msg);
	ASSERT_ERR(from_argv(&d, &msg, "--wake-on=data"), EINVAL);
	ASSERT_STREQ(msg, "--wake-on: unknown option (a setting of each service: dozectl enable, "
			  "or the label dozed.wake-on)");
	free(msg);
}

TEST(test_unknown_options_and_arguments_are_rejected)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	_cleanup_(dozed_config_free) struct dozed_config d = {0};
	_cleanup_(dozed_config_free) struct dozed_config e = {0};
	_cleanup_(dozed_config_free) struct dozed_config f = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--idle-time", "5s"), EINVAL);
	ASSERT_STREQ(msg, "--idle-time: unknown option");
	free(msg);
	ASSERT_ERR(from_argv(&d, &msg, "--nope=1"), EINVAL);
	ASSERT_STREQ(msg, "--nope: unknown option");
	free(msg);
	ASSERT_ERR(from_argv(&e, &msg, "-x"), EINVAL);
	ASSERT_STREQ(msg, "-x: unknown option");
	free(msg);
	ASSERT_ERR(from_argv(&f, &msg, "serve"), EINVAL);
	ASSERT_STREQ(msg, "serve: unexpected argument (dozed takes options only)");
	free(msg);
}

TEST(test_option_without_its_value_is_rejected)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_ERR(from_argv(&c, &msg, "--idle"), EINVAL);
	ASSERT_STREQ(msg, "--idle: expected a value after it");
	free(msg);
}

TEST(test_help_does_not_read_the_config_file)
{
	_cleanup_(dozed_config_free) struct dozed_config c = {0};
	char *msg;
	ASSERT_OK(from_argv(&c, &msg, "--config", "/nonexistent/dozed.conf", "--help"));
	ASSERT_TRUE(c.help);
}

TEST(test_usage_lists_every_option)
{
	const char *u = dozed_config_usage();
	const char *opts[] = {"--runtime-socket",
			      "--control ",
			      "--control-group",
			      "--activator-port",
			      "--nft-table",
			      "--mark",
			      "--state-dir",
			      "--idle",
			      "--probe-interval",
			      "--wake-timeout",
			      "--stop-timeout",
			      "--log-level",
			      "--config",
			      "--check",
			      "--version",
			      "--help",
			      "--max-held ",
			      "--held-silent-timeout",
			      "--max-held-per-client",
			      "--control-idle-timeout",
			      "--ignore RULES",
			      "--unanswered-timeout",
			      "--metrics-listen ADDR:PORT"};
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		ASSERT_CONTAINS(u, opts[i]);
}

/* The text is printed from settings.h's values: it reads as the defaults are. */
TEST(test_usage_shows_the_defaults_as_a_user_writes_them)
{
	const char *u = dozed_config_usage();
	const char *want[] = {
	    "else /var/run/docker.sock)",
	    "(default /run/dozed/control.sock)",
	    "(default 15001)",
	    "(default dozed)",
	    "(default 0x1d0)",
	    "(default /var/lib/dozed)",
	    "(default 10m, at least 1s)",
	    "(default 30ms,",
	    "(default 10s, from",
	    "stop timeout, else 10)",
	    "(default 4096, 1-1000000)",
	    "256 or max-held if smaller",
	    "(default 30s, 1s to",
	    "(default /etc/dozed/dozed.conf, which may",
	    "at most 8760h (a year). Numbers",
	    "is closed after this (default 10s,",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ASSERT_CONTAINS(u, want[i]);
	ASSERT_TRUE(u == dozed_config_usage());
}
