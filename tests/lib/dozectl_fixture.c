// SPDX-License-Identifier: MIT
/* The fake daemon and the runner of tests/lib/dozectl_fixture.h. */
#include "dozectl_fixture.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "child_run.h"
#include "control_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "json_fixture.h"

const char *dozectl_fixture_plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
}

const char *dozectl_fixture_arg(struct json_object *req, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(req, key, &v) ? json_object_get_string(v) : "";
}

static void handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct dozectl_fixture *f = ud;
	const char *service = dozectl_fixture_arg(req, "service");
	f->requests++;
	snprintf(f->last_request, sizeof(f->last_request), "%s", dozectl_fixture_plain(req));

	if (strcmp(cmd, "list") == 0) {
		control_reply(f->cf->ctl, id,
			      json_fixture_parse("{\"ok\":true,\"services\":[" WEB "," DB "]}"));
	} else if (strcmp(cmd, "disable") == 0) {
		control_reply(f->cf->ctl, id, json_fixture_parse("{\"ok\":true}"));
	} else if (strcmp(cmd, "sleep") == 0 && strcmp(service, "postgres-main") == 0) {
		control_reply_error(f->cf->ctl, id, "postgres-main is asleep already");
	} else if (strcmp(cmd, "events") == 0) {
		struct json_object *follow;
		if (json_object_object_get_ex(req, "follow", &follow) &&
		    json_object_get_boolean(follow)) {
			control_subscribe(f->cf->ctl, id);
			f->subscribed = true;
		}
		control_reply(f->cf->ctl, id,
			      json_fixture_parse("{\"ok\":true,\"events\":[" SLEEP_EVENT "]}"));
	} else if (strcmp(cmd, "flows") == 0 && strcmp(service, "nope") != 0) {
		control_reply(f->cf->ctl, id, json_fixture_parse(FLOWS));
	} else if (strcmp(cmd, "status") == 0 && strcmp(service, "cache") == 0) {
		control_reply(f->cf->ctl, id,
			      json_fixture_parse("{\"ok\":true,\"service\":" CACHE "}"));
	} else if (strcmp(service, "nope") == 0) {
		control_reply_error(f->cf->ctl, id, "no such service: nope");
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "enable") == 0 ||
		   strcmp(cmd, "sleep") == 0 || strcmp(cmd, "wake") == 0) {
		control_reply(f->cf->ctl, id,
			      json_fixture_parse("{\"ok\":true,\"service\":" WEB "}"));
	} else {
		control_reply_error(f->cf->ctl, id, "unknown command: %s", cmd);
	}
}

struct dozectl_fixture *dozectl_fixture_new(void)
{
	struct dozectl_fixture *f = calloc(1, sizeof(*f));
	if (!f)
		FAIL("out of memory");
	/* Deferred first, freed last: the server's handler has it until the server goes. */
	test_defer(free, f);
	child_run_dozectl_path(f->dozectl, sizeof(f->dozectl));
	f->cf = control_fixture_bare("dozectl-test");
	control_fixture_start(f->cf, handler, f);
	return f;
}

int dozectl_fixture_output(struct dozectl_fixture *f, const char *name)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", f->cf->dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	return fd;
}

/* Starts dozectl with args (NULL-terminated); control: the DOZED_CONTROL variable, or NULL. */
pid_t dozectl_fixture_spawn(struct dozectl_fixture *f, const char *const args[],
			    const char *control, int out, int err)
{
	const char *argv[16] = {"dozectl"};
	size_t n = 1;
	for (; args[n - 1] && n < ARRAY_SIZE(argv) - 1; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(127);
		if (f->run_as &&
		    (setgroups(0, NULL) < 0 || setresgid(f->run_as, f->run_as, f->run_as) < 0 ||
		     setresuid(f->run_as, f->run_as, f->run_as) < 0))
			_exit(126);
		if (control)
			setenv("DOZED_CONTROL", control, 1);
		else
			unsetenv("DOZED_CONTROL");
		execv(f->dozectl, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void result_free(void *arg)
{
	struct dozectl_result *r = arg;
	free(r->out);
	free(r->err);
	free(r);
}

/* Runs dozectl to its end while the fake daemon serves. */
struct dozectl_result *dozectl_fixture_run(struct dozectl_fixture *f, const char *control,
					   const char *const args[])
{
	int out = dozectl_fixture_output(f, "stdout"), err = dozectl_fixture_output(f, "stderr");
	struct child_run c = {.pid = dozectl_fixture_spawn(f, args, control, out, err)};
	evloop_run_until(f->cf->base, child_run_exited, &c, DOZECTL_WAIT_MS, "dozectl to exit");
	struct dozectl_result *r = calloc(1, sizeof(*r));
	if (!r)
		FAIL("out of memory");
	test_defer(result_free, r);
	r->status = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -WTERMSIG(c.status);
	r->out = child_run_output(out);
	r->err = child_run_output(err);
	close(out);
	close(err);
	return r;
}

void dozectl_assert_exit(const struct dozectl_result *r, int want)
{
	if (r->status != want)
		FAIL("dozectl exited with %d, expected %d; stdout: %s; stderr: %s", r->status, want,
		     r->out, r->err);
}
