// SPDX-License-Identifier: MIT
/*
 * Inspect's stop signal, stop timeout and healthcheck, and the answers of
 * wait and exec, parsed from real captures of dockerd 20.10 and podman
 * system service 4.3 (tests/unit/fixtures/runtime/, made with
 * tests/runtime-env.sh and curl: `run --stop-signal SIGINT --stop-timeout 3
 * --health-cmd 'test -e /www/ok' --health-timeout 2s`, and containers created
 * through the API with Healthcheck.Test ["CMD", ...] and ["NONE"]).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "fixture.h"
#include "harness.h"

static void free_container(void *c)
{
	runtime_container_free(c);
}

static struct runtime_container *inspect_fixture(const char *name)
{
	size_t len;
	_cleanup_free_ char *json = fixture_read(name, &len);
	struct runtime_container *c = NULL;
	ASSERT_OK(runtime_parse_inspect(json, len, &c));
	test_defer(free_container, c);
	return c;
}

static struct runtime_container *inspect_text(const char *json)
{
	struct runtime_container *c = NULL;
	ASSERT_OK(runtime_parse_inspect(json, strlen(json), &c));
	test_defer(free_container, c);
	return c;
}

static void assert_shell_check(const struct runtime_container *c, const char *line)
{
	ASSERT_EQ_U(c->n_health_cmd, 3);
	ASSERT_STREQ(c->health_cmd[0], "/bin/sh");
	ASSERT_STREQ(c->health_cmd[1], "-c");
	ASSERT_STREQ(c->health_cmd[2], line);
}

static void assert_cmd_check(const struct runtime_container *c)
{
	ASSERT_EQ_U(c->n_health_cmd, 3);
	ASSERT_STREQ(c->health_cmd[0], "test");
	ASSERT_STREQ(c->health_cmd[1], "-e");
	ASSERT_STREQ(c->health_cmd[2], "/www/ok");
}

static void assert_no_check(const struct runtime_container *c)
{
	ASSERT_TRUE(c->health_cmd == NULL);
	ASSERT_EQ_U(c->n_health_cmd, 0);
}

TEST(test_docker_inspect_gives_the_stop_signal_by_name_and_the_shell_healthcheck)
{
	const struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-healthcheck.json");
	ASSERT_STREQ(c->name, "web-hc");
	ASSERT_STREQ(c->stop_signal, "SIGINT");
	ASSERT_EQ_U(c->stop_timeout_s, 3);
	assert_shell_check(c, "test -e /www/ok");
	ASSERT_EQ_U(c->health_timeout_us, 2000000);
	ASSERT_STREQ(c->health_status, "starting");
}

TEST(test_podman_inspect_gives_the_stop_signal_as_a_number_and_the_shell_healthcheck)
{
	const struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-healthcheck.json");
	ASSERT_STREQ(c->name, "web-hc");
	ASSERT_STREQ(c->stop_signal, "2");
	ASSERT_EQ_U(c->stop_timeout_s, 3);
	assert_shell_check(c, "test -e /www/ok");
	ASSERT_EQ_U(c->health_timeout_us, 2000000);
	ASSERT_STREQ(c->health_status, "starting");
}

TEST(test_healthcheck_in_exec_form_is_the_argv_on_both_runtimes)
{
	const struct runtime_container *d =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-health-cmd.json");
	assert_cmd_check(d);
	ASSERT_EQ_U(d->health_timeout_us, 5000000);
	/* Created through the API without them: Docker has none... */
	ASSERT_TRUE(d->stop_signal == NULL);
	ASSERT_TRUE(d->stop_timeout_s == -1);

	const struct runtime_container *p =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-health-cmd.json");
	assert_cmd_check(p);
	ASSERT_EQ_U(p->health_timeout_us, 5000000);
	/* ...Podman says 15 and a timeout of 0 (its own stop kills at once then). */
	ASSERT_STREQ(p->stop_signal, "15");
	ASSERT_EQ_U(p->stop_timeout_s, 0);
}

TEST(test_healthcheck_none_or_absent_gives_no_command)
{
	assert_no_check(inspect_fixture("unit/fixtures/runtime/docker-inspect-health-none.json"));
	assert_no_check(inspect_fixture("unit/fixtures/runtime/podman-inspect-health-none.json"));
	const struct runtime_container *d =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-running.json");
	assert_no_check(d);
	ASSERT_EQ_U(d->health_timeout_us, 0);
	ASSERT_STREQ(d->health_status, "");
	ASSERT_TRUE(d->stop_signal == NULL);
	ASSERT_TRUE(d->stop_timeout_s == -1);
	/* Podman: a status of "" with no check, and its defaults always given. */
	const struct runtime_container *p =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-running.json");
	assert_no_check(p);
	ASSERT_STREQ(p->health_status, "");
	ASSERT_STREQ(p->stop_signal, "15");
	ASSERT_EQ_U(p->stop_timeout_s, 10);
}

TEST(test_health_status_once_the_check_ran)
{
	/* Docker ran it (interval 0.3 s) once the file was there; Podman after
	 * three `podman healthcheck run` without it. */
	ASSERT_STREQ(
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-healthy.json")->health_status,
	    "healthy");
	ASSERT_STREQ(
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-unhealthy.json")->health_status,
	    "unhealthy");
}

#define INSPECT_WITH(config, state)                                                                \
	"{\"Id\":\"abc\",\"Name\":\"/x\",\"State\":{\"Running\":false" state                       \
	"},\"Config\":{" config "}}"

TEST(test_odd_healthchecks_are_read_as_the_runtimes_would_run_them)
{
	/* CMD-SHELL with several words: one shell line, as Docker joins them. */
	assert_shell_check(inspect_text(INSPECT_WITH(
			       "\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"a\",\"b\"]}", "")),
			   "a b");
	/* Another first word: the command itself (Podman 4.3 stores a JSON
	 * --health-cmd so, and runs it as is). */
	const struct runtime_container *c = inspect_text(
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[\"[\\\"CMD\\\",\\\"true\\\"]\"]}", ""));
	ASSERT_EQ_U(c->n_health_cmd, 1);
	ASSERT_STREQ(c->health_cmd[0], "[\"CMD\",\"true\"]");
	/* Nothing to run, or not strings: no check. */
	static const char *const none[] = {
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[]}", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[\"CMD\"]}", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[\"CMD-SHELL\"]}", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[\"\"]}", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":[\"CMD\",1]}", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Test\":\"CMD-SHELL true\"}", ""),
	    INSPECT_WITH("\"Healthcheck\":null", ""),
	    INSPECT_WITH("\"Healthcheck\":{\"Timeout\":-5}", ""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		const struct runtime_container *n = inspect_text(none[i]);
		assert_no_check(n);
		ASSERT_EQ_U(n->health_timeout_us, 0);
	}
	/* Wild stop timeouts and statuses are dropped, not trusted. */
	c = inspect_text(INSPECT_WITH("\"StopTimeout\":-1,\"StopSignal\":\"\"",
				      ",\"Health\":{\"Status\":\"a-status-longer-than-sixteen\"}"));
	ASSERT_TRUE(c->stop_timeout_s == -1);
	ASSERT_TRUE(c->stop_signal == NULL);
	ASSERT_STREQ(c->health_status, "");
	c = inspect_text(INSPECT_WITH("\"StopTimeout\":99999999999,\"StopSignal\":7", ""));
	ASSERT_TRUE(c->stop_timeout_s == -1);
	ASSERT_TRUE(c->stop_signal == NULL);
}

TEST(test_copy_keeps_the_stop_and_health_fields)
{
	const struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-healthcheck.json");
	struct runtime_container *d = NULL;
	ASSERT_OK(runtime_container_dup(c, &d));
	test_defer(free_container, d);
	ASSERT_TRUE(d->stop_signal != c->stop_signal);
	ASSERT_STREQ(d->stop_signal, "SIGINT");
	ASSERT_EQ_U(d->stop_timeout_s, 3);
	assert_shell_check(d, "test -e /www/ok");
	ASSERT_TRUE(d->health_cmd != c->health_cmd);
	ASSERT_EQ_U(d->health_timeout_us, 2000000);
	ASSERT_STREQ(d->health_status, "starting");
	ASSERT_EQ_U(d->exit_code, c->exit_code);
}

TEST(test_list_entries_have_no_stop_timeout)
{
	size_t len, n = 0;
	_cleanup_free_ char *json =
	    fixture_read("unit/fixtures/runtime/docker-list-all.json", &len);
	struct runtime_container *cs = NULL;
	ASSERT_OK(runtime_parse_list(json, len, &cs, &n));
	ASSERT_GE_U(n, 1);
	for (size_t i = 0; i < n; i++) {
		ASSERT_TRUE(cs[i].stop_timeout_s == -1);
		ASSERT_TRUE(cs[i].stop_signal == NULL && cs[i].health_cmd == NULL);
	}
	runtime_containers_free(cs, n);
}

static int exec_inspect(const char *json, bool *running, int *code)
{
	return runtime_parse_exec_inspect(json, strlen(json), running, code);
}

static int exec_id(const char *json, char **id)
{
	return runtime_parse_exec_id(json, strlen(json), id);
}

static int wait_code(const char *json)
{
	int code = -99;
	int r = runtime_parse_wait(json, strlen(json), &code);
	return r < 0 ? r : code;
}

TEST(test_wait_answers_give_the_exit_code)
{
	/* As recorded: Podman's order, then Docker's. */
	ASSERT_EQ_U(wait_code("{\"StatusCode\":137,\"Error\":null}\n"), 137);
	ASSERT_EQ_U(wait_code("{\"Error\":null,\"StatusCode\":0}\n"), 0);
	/* Podman, for a container that never ran. */
	ASSERT_TRUE(wait_code("{\"StatusCode\":-1,\"Error\":null}") == -1);
	ASSERT_EQ_U(wait_code("{\"Error\":{\"Message\":\"x\"},\"StatusCode\":1}"), 1);
	ASSERT_ERR(wait_code("{\"StatusCode\":256}"), EBADMSG);
	ASSERT_ERR(wait_code("{\"StatusCode\":-2}"), EBADMSG);
	ASSERT_ERR(wait_code("{\"StatusCode\":\"0\"}"), EBADMSG);
	ASSERT_ERR(wait_code("{\"Error\":null}"), EBADMSG);
	ASSERT_ERR(wait_code("[]"), EBADMSG);
	ASSERT_ERR(wait_code("{\"StatusCode\":0"), EBADMSG);
	ASSERT_ERR(wait_code(""), EBADMSG);
}

TEST(test_exec_answers_give_the_id_then_running_and_exit_code)
{
	static const char created[] =
	    "{\"Id\":\"45f5572883ec691fb89a672092ffffb4c824dc280bc381276bf6a43388d6ba3f\"}\n";
	_cleanup_free_ char *id = NULL;
	ASSERT_OK(runtime_parse_exec_id(created, strlen(created), &id));
	ASSERT_STREQ(id, "45f5572883ec691fb89a672092ffffb4c824dc280bc381276bf6a43388d6ba3f");
	char *bad = NULL;
	ASSERT_ERR(exec_id("{\"Id\":\"\"}", &bad), EBADMSG);
	ASSERT_ERR(exec_id("{\"Id\":5}", &bad), EBADMSG);
	ASSERT_ERR(exec_id("{}", &bad), EBADMSG);
	ASSERT_TRUE(bad == NULL);

	bool running = false;
	int code = -99;
	/* Podman 4.3, once an attached exec of `false` ended. */
	static const char podman_done[] =
	    "{\"CanRemove\":false,\"ContainerID\":\"fe77cc9b\",\"DetachKeys\":\"\",\"ExitCode\":1,"
	    "\"ID\":\"4d303092\",\"OpenStderr\":true,\"OpenStdin\":false,\"OpenStdout\":true,"
	    "\"Running\":false,\"Pid\":0,\"ProcessConfig\":{\"arguments\":null,\"entrypoint\":"
	    "\"false\",\"privileged\":false,\"tty\":false,\"user\":\"\"}}\n";
	ASSERT_OK(runtime_parse_exec_inspect(podman_done, strlen(podman_done), &running, &code));
	ASSERT_TRUE(!running);
	ASSERT_EQ_U(code, 1);
	/* Docker 20.10 while it runs: ExitCode null. */
	static const char docker_running[] =
	    "{\"ID\":\"2fea2018\",\"Running\":true,\"ExitCode\":null,\"Pid\":24142}";
	ASSERT_OK(
	    runtime_parse_exec_inspect(docker_running, strlen(docker_running), &running, &code));
	ASSERT_TRUE(running);
	ASSERT_TRUE(code == -1);
	ASSERT_ERR(exec_inspect("{\"Running\":false,\"ExitCode\":null}", &running, &code), EBADMSG);
	ASSERT_ERR(exec_inspect("{\"ExitCode\":0}", &running, &code), EBADMSG);
	ASSERT_ERR(exec_inspect("{\"Running\":false,\"ExitCode\":300}", &running, &code), EBADMSG);
}
