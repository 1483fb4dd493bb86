// SPDX-License-Identifier: MIT
/* The runtime's kill and wait: the pieces of a stop that dozed times itself
 * (signal, wait, SIGKILL when it decides), instead of POST .../stop, which
 * holds its answer for the whole grace period. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/proc_signal.h"
#include "dozed/runtime.h"
#include "runtime_internal.h"

/* Docker answers 409 to a kill of a container that is not running; Podman
 * 4.3 answers 500 with "container state improper" (also to an exec). */
static int not_running_errno(int err, int status, const char *message)
{
	if (status == 409 || (status >= 500 && message && strstr(message, "state improper")))
		return -ESRCH;
	return err;
}

static bool kill_status_ok(int status)
{
	return status == 204 || status == 200;
}

static void deliver_done(void (*cb)(void), int err, const struct runtime_error *error,
			 const struct runtime_answer *a, void *userdata)
{
	(void)a;
	((runtime_done_cb)cb)(err, error, userdata);
}

static const struct runtime_call_kind kill_kind = {
    .id = RUNTIME_CALL_KILL,
    .status_ok = kill_status_ok,
    .failure_errno = not_running_errno,
    .deliver = deliver_done,
};

int runtime_kill(struct runtime *rt, const char *id, const char *signal, runtime_done_cb cb,
		 void *userdata)
{
	if (!id || !*id || !cb || proc_signal_parse(signal) < 0)
		return -EINVAL;
	_cleanup_free_ char *esig = runtime_url_escape(signal);
	char *suffix = NULL;
	if (!esig || asprintf(&suffix, "kill?signal=%s", esig) < 0)
		return -ENOMEM;
	char *target = runtime_container_target(id, suffix);
	free(suffix);
	return runtime_call_begin(rt, &kill_kind, "POST", target, NULL, rt->cfg.timeout_us,
				  (void (*)(void))cb, userdata, NULL);
}

static int parse_wait(const char *body, size_t len, struct runtime_answer *a)
{
	return runtime_parse_wait(body, len, &a->exit_code);
}

static void deliver_wait(void (*cb)(void), int err, const struct runtime_error *error,
			 const struct runtime_answer *a, void *userdata)
{
	((runtime_wait_cb)cb)(err, error, err < 0 ? -1 : a->exit_code, userdata);
}

static const struct runtime_call_kind wait_kind = {
    .id = RUNTIME_CALL_WAIT,
    .parse = parse_wait,
    .deliver = deliver_wait,
};

int runtime_wait(struct runtime *rt, const char *id, uint64_t timeout_us, runtime_wait_cb cb,
		 void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	/* Both runtimes answer 200 with the exit code once the container is not
	 * running, at once for one that is not (checked on Docker 20.10 and
	 * Podman 4.3's compat endpoint). */
	return runtime_call_begin(
	    rt, &wait_kind, "POST", runtime_container_target(id, "wait?condition=not-running"),
	    NULL, timeout_us ? timeout_us : rt->cfg.timeout_us, (void (*)(void))cb, userdata, NULL);
}

static bool pause_status_ok(int status)
{
	return status == 204 || status == 200;
}

/* Docker: "container ... is not paused" (409, or 500 through containerd);
 * Podman: runc's "container not paused". Either way it runs, as asked. */
static int unpause_failure_errno(int err, int status, const char *message)
{
	if (status >= 400 && message && strstr(message, "not paused"))
		return 0;
	return err;
}

/* Paused by hand already: paused, as asked. */
static int pause_failure_errno(int err, int status, const char *message)
{
	if (status >= 400 && message && strstr(message, "already paused"))
		return 0;
	return err;
}

static const struct runtime_call_kind pause_kind = {
    .id = RUNTIME_CALL_PAUSE,
    .status_ok = pause_status_ok,
    .failure_errno = pause_failure_errno,
    .deliver = deliver_done,
};

static const struct runtime_call_kind unpause_kind = {
    .id = RUNTIME_CALL_UNPAUSE,
    .status_ok = pause_status_ok,
    .failure_errno = unpause_failure_errno,
    .deliver = deliver_done,
};

int runtime_pause(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	return runtime_call_begin(rt, &pause_kind, "POST", runtime_container_target(id, "pause"),
				  NULL, rt->cfg.timeout_us, (void (*)(void))cb, userdata, NULL);
}

int runtime_unpause(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	return runtime_call_begin(rt, &unpause_kind, "POST",
				  runtime_container_target(id, "unpause"), NULL, rt->cfg.timeout_us,
				  (void (*)(void))cb, userdata, NULL);
}
