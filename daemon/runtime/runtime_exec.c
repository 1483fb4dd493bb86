// SPDX-License-Identifier: MIT
/*
 * runtime_exec: a command run in a container, to its exit code, in three
 * steps: POST /containers/{id}/exec, POST /exec/{eid}/start, then GET
 * /exec/{eid}/json until it is no longer running.
 *
 * The start is attached (Detach false, stdout and stderr attached, read and
 * dropped), so its answer ends when the command does. A detached start would
 * be simpler, but Podman 4.3 never marks a detached exec session as ended
 * (GET /exec/{eid}/json says Running with ExitCode 0 for ever after a
 * `false`), and it refuses an attached start with no stream attached ("must
 * provide at least one stream"). Docker may answer the inspect a moment
 * before it notes the exit: the inspect is then repeated on a timer, 5 ms
 * at first, backing off to 100 ms.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/clock.h"
#include "dozed/list.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "runtime_internal.h"

#define POLL_FIRST_US 5000
#define POLL_MAX_US   100000

struct runtime_exec {
	struct runtime *rt;
	LIST_FIELDS(struct runtime_exec, execs);
	runtime_exec_cb cb;
	void *userdata;
	char *container;
	char *command; /* argv[0], for messages */
	char *create_body;
	char *exec_id;
	uint64_t timeout_us;
	uint64_t deadline_us;
	uint64_t poll_us;
	struct runtime_call *call; /* the step pending, or NULL */
	struct event *timer;	   /* the next inspect */
};

typedef void (*step_fn)(struct runtime_exec *e, int err, const struct runtime_error *error,
			const struct runtime_answer *a);

static void exec_free(struct runtime_exec *e)
{
	LIST_REMOVE(execs, e->rt->execs, e);
	if (e->call)
		runtime_call_abort(e->call);
	if (e->timer)
		event_free(e->timer);
	free(e->container);
	free(e->command);
	free(e->create_body);
	free(e->exec_id);
	free(e);
}

size_t runtime_exec_cancel(struct runtime *rt, const void *userdata)
{
	size_t n = 0;
	struct runtime_exec *e, *next;
	LIST_FOREACH_SAFE (execs, e, next, rt->execs) {
		if (e->userdata == userdata) {
			exec_free(e);
			n++;
		}
	}
	return n;
}

void runtime_exec_free_all(struct runtime *rt)
{
	while (rt->execs)
		exec_free(rt->execs);
}

/* The end: e is gone before the callback, which may cancel, free the
 * runtime or exec again. */
static void exec_finish(struct runtime_exec *e, int err, const struct runtime_error *error,
			int exit_code)
{
	runtime_exec_cb cb = e->cb;
	void *userdata = e->userdata;
	exec_free(e);
	cb(err, error, err < 0 ? -1 : exit_code, userdata);
}

static void exec_timed_out(struct runtime_exec *e)
{
	_cleanup_free_ char *msg = NULL;
	if (asprintf(&msg, "The command %s in container %s did not end within %.1f s", e->command,
		     e->container, (double)e->timeout_us / 1e6) < 0)
		msg = NULL;
	struct runtime_error error = {
	    .http_status = 0,
	    .message = msg ? msg : "The command did not end within its timeout",
	};
	exec_finish(e, -ETIMEDOUT, &error, -1);
}

/* What is left of the timeout for a step; 0: none. */
static uint64_t exec_remaining(const struct runtime_exec *e)
{
	uint64_t now = clock_monotonic_us();
	return now < e->deadline_us ? e->deadline_us - now : 0;
}

/* The steps' calls carry the step as their callback and e as userdata: only
 * runtime_exec_cancel, by the caller's userdata, ends them. */
static void deliver_step(void (*cb)(void), int err, const struct runtime_error *error,
			 const struct runtime_answer *a, void *userdata)
{
	struct runtime_exec *e = userdata;
	e->call = NULL; /* answered: no longer pending */
	/* Every step is bounded by what was left of the exec's timeout, so a
	 * step's timeout is the exec's, said as such. Not judged from the clock:
	 * libevent arms timers from its cached time, so one may fire a few ms
	 * before the deadline on a busy host. */
	if (err == -ETIMEDOUT) {
		exec_timed_out(e);
		return;
	}
	((step_fn)cb)(e, err, error, a);
}

static void exec_step(struct runtime_exec *e, const struct runtime_call_kind *kind,
		      const char *method, char *target, const char *body, step_fn next)
{
	uint64_t left = exec_remaining(e);
	if (left == 0) {
		free(target);
		exec_timed_out(e);
		return;
	}
	int r = runtime_call_begin(e->rt, kind, method, target, body, left, (void (*)(void))next, e,
				   &e->call);
	if (r < 0) {
		e->call = NULL;
		struct runtime_error error = {.http_status = 0,
					      .message = "Out of memory starting an exec step"};
		exec_finish(e, r, &error, -1);
	}
}

static char *exec_target(const struct runtime_exec *e, const char *suffix)
{
	_cleanup_free_ char *eid = runtime_url_escape(e->exec_id);
	char *t = NULL;
	if (!eid || asprintf(&t, "/" RUNTIME_API_VERSION "/exec/%s/%s", eid, suffix) < 0)
		return NULL;
	return t;
}

static int parse_inspect(const char *body, size_t len, struct runtime_answer *a)
{
	return runtime_parse_exec_inspect(body, len, &a->running, &a->exit_code);
}

static const struct runtime_call_kind inspect_kind = {
    .id = RUNTIME_CALL_EXEC,
    .parse = parse_inspect,
    .deliver = deliver_step,
};

static void on_inspected(struct runtime_exec *e, int err, const struct runtime_error *error,
			 const struct runtime_answer *a);

static void exec_inspect(struct runtime_exec *e)
{
	exec_step(e, &inspect_kind, "GET", exec_target(e, "json"), NULL, on_inspected);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	exec_inspect(arg);
}

static void on_inspected(struct runtime_exec *e, int err, const struct runtime_error *error,
			 const struct runtime_answer *a)
{
	if (err < 0) {
		exec_finish(e, err, error, -1);
		return;
	}
	if (!a->running) {
		exec_finish(e, 0, error, a->exit_code);
		return;
	}
	uint64_t left = exec_remaining(e);
	if (left == 0) {
		exec_timed_out(e);
		return;
	}
	if (!e->timer && !(e->timer = evtimer_new(e->rt->base, on_timer, e))) {
		struct runtime_error oom = {.http_status = 0,
					    .message = "Out of memory polling an exec"};
		exec_finish(e, -ENOMEM, &oom, -1);
		return;
	}
	/* At the deadline at the latest: the next inspect then times out. */
	struct timeval tv = timeval_from_us(e->poll_us < left ? e->poll_us : left);
	evtimer_add(e->timer, &tv);
	e->poll_us = e->poll_us * 2 < POLL_MAX_US ? e->poll_us * 2 : POLL_MAX_US;
}

static bool start_status_ok(int status)
{
	return status == 200 || status == 204;
}

static const struct runtime_call_kind start_kind = {
    .id = RUNTIME_CALL_EXEC,
    .status_ok = start_status_ok,
    .discard_body = true,
    .deliver = deliver_step,
};

static void on_started(struct runtime_exec *e, int err, const struct runtime_error *error,
		       const struct runtime_answer *a)
{
	(void)a;
	if (err < 0) {
		exec_finish(e, err, error, -1);
		return;
	}
	exec_inspect(e);
}

static int parse_created(const char *body, size_t len, struct runtime_answer *a)
{
	return runtime_parse_exec_id(body, len, &a->id);
}

static bool create_status_ok(int status)
{
	return status == 201 || status == 200;
}

/* Docker: 409 for a container that is not running; Podman 4.3: 500
 * "can only create exec sessions on running containers: container state
 * improper". */
static int create_failure_errno(int err, int status, const char *message)
{
	if (status == 409 || (status >= 500 && message && strstr(message, "state improper")))
		return -ESRCH;
	return err;
}

static const struct runtime_call_kind create_kind = {
    .id = RUNTIME_CALL_EXEC,
    .status_ok = create_status_ok,
    .failure_errno = create_failure_errno,
    .parse = parse_created,
    .deliver = deliver_step,
};

static void on_created(struct runtime_exec *e, int err, const struct runtime_error *error,
		       const struct runtime_answer *a)
{
	if (err < 0) {
		exec_finish(e, err, error, -1);
		return;
	}
	e->exec_id = TAKE_PTR(((struct runtime_answer *)a)->id);
	exec_step(e, &start_kind, "POST", exec_target(e, "start"),
		  "{\"Detach\":false,\"Tty\":false}", on_started);
}

static char *create_body(const char *const *argv, size_t argc)
{
	json_object *o = json_object_new_object();
	json_object *cmd = json_object_new_array();
	if (!o || !cmd) {
		json_object_put(o);
		json_object_put(cmd);
		return NULL;
	}
	json_object_object_add(o, "Cmd", cmd);
	for (size_t i = 0; i < argc; i++) {
		json_object *s = json_object_new_string(argv[i]);
		if (!s || json_object_array_add(cmd, s) < 0) {
			json_object_put(s);
			json_object_put(o);
			return NULL;
		}
	}
	json_object_object_add(o, "AttachStdin", json_object_new_boolean(0));
	json_object_object_add(o, "AttachStdout", json_object_new_boolean(1));
	json_object_object_add(o, "AttachStderr", json_object_new_boolean(1));
	json_object_object_add(o, "Tty", json_object_new_boolean(0));
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char *s = text ? strdup(text) : NULL;
	json_object_put(o);
	return s;
}

int runtime_exec(struct runtime *rt, const char *id, const char *const *argv, size_t argc,
		 uint64_t timeout_us, runtime_exec_cb cb, void *userdata)
{
	if (!id || !*id || !cb || !argv || argc == 0)
		return -EINVAL;
	for (size_t i = 0; i < argc; i++)
		if (!argv[i])
			return -EINVAL;
	if (!*argv[0])
		return -EINVAL;
	struct runtime_exec *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->rt = rt;
	e->cb = cb;
	e->userdata = userdata;
	e->timeout_us = timeout_us ? timeout_us : rt->cfg.timeout_us;
	e->deadline_us = clock_monotonic_us() + e->timeout_us;
	e->poll_us = POLL_FIRST_US;
	e->container = strdup(id);
	e->command = strdup(argv[0]);
	e->create_body = create_body(argv, argc);
	char *target = runtime_container_target(id, "exec");
	LIST_PREPEND(execs, rt->execs, e);
	int r = -ENOMEM;
	if (e->container && e->command && e->create_body && target)
		r = runtime_call_begin(rt, &create_kind, "POST", TAKE_PTR(target), e->create_body,
				       e->timeout_us, (void (*)(void))on_created, e, &e->call);
	free(target);
	if (r < 0) {
		e->call = NULL;
		exec_free(e);
		return r;
	}
	return 0;
}
