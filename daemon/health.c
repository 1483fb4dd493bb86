// SPDX-License-Identifier: MIT
/* The healthcheck probe: the container's health command through runtime_exec,
 * again after each failed run, until it passes or the deadline. */
#include "dozed/health.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/clock.h"
#include "dozed/runtime.h"

/* Docker's default Healthcheck.Timeout. */
#define HEALTH_CMD_TIMEOUT_DEFAULT_US (30 * 1000000ull)
/* A check that fails at once must not make a busy loop of execs. */
#define HEALTH_INTERVAL_MIN_US 10000

struct health_check {
	struct runtime *rt;
	char *container_id;
	char **argv;
	size_t argc;
	uint64_t cmd_timeout_us;
	uint64_t interval_us;
	health_done_fn done;
	void *userdata;
	struct event *next_run; /* the next run, while none is under way */
	struct event *deadline;
	bool running; /* an exec under way: cancelled by runtime_cancel(rt, h) */
	bool finished;
	char last_answer[256];
};

static void argv_free(char **argv, size_t argc)
{
	if (!argv)
		return;
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

/* Stops everything under way; no callback from it after this. */
static void health_stop(struct health_check *h)
{
	if (h->running) {
		runtime_cancel(h->rt, h);
		h->running = false;
	}
	if (h->next_run)
		evtimer_del(h->next_run);
	if (h->deadline)
		evtimer_del(h->deadline);
}

void health_check_free(struct health_check *h)
{
	if (!h)
		return;
	health_stop(h);
	if (h->next_run)
		event_free(h->next_run);
	if (h->deadline)
		event_free(h->deadline);
	argv_free(h->argv, h->argc);
	free(h->container_id);
	free(h);
}

/* The end: done may free h, so it is the last thing that touches it, and
 * gets its own copy of the answer. */
static void health_finish(struct health_check *h, int result)
{
	char answer[sizeof(h->last_answer)];
	health_stop(h);
	h->finished = true;
	memcpy(answer, h->last_answer, sizeof(answer));
	h->done(h->userdata, result, answer);
}

/* Answers after which no run can pass: the container is gone or stopped, or
 * the runtime will not take the command. Not a runtime that could not be
 * reached (http_status 0: restarting?) nor a slow or broken answer: a later
 * run may pass. */
static bool error_is_final(int err, const struct runtime_error *error)
{
	if (err == -ESRCH)
		return true;
	return error && error->http_status != 0 &&
	       (err == -ENOENT || err == -EINVAL || err == -EACCES);
}

static void on_exec(int err, const struct runtime_error *error, int exit_code, void *userdata)
{
	struct health_check *h = userdata;
	h->running = false;
	if (err == 0 && exit_code == 0) {
		snprintf(h->last_answer, sizeof(h->last_answer), "healthcheck: passed");
		health_finish(h, 0);
		return;
	}
	if (err == 0) {
		/* 126 and 127: the shell's (and Podman's) "cannot run" and "not
		 * found"; Docker says 126 for both. */
		snprintf(h->last_answer, sizeof(h->last_answer), "healthcheck: exited %d%s",
			 exit_code,
			 exit_code == 127   ? " (command not found)"
			 : exit_code == 126 ? " (command not found or not executable)"
					    : "");
	} else if (err == -ETIMEDOUT) {
		snprintf(h->last_answer, sizeof(h->last_answer),
			 "healthcheck: did not end within %.1f s", (double)h->cmd_timeout_us / 1e6);
	} else if (err == -ESRCH) {
		snprintf(h->last_answer, sizeof(h->last_answer),
			 "healthcheck: the container is not running");
		health_finish(h, err);
		return;
	} else {
		bool final = error_is_final(err, error);
		snprintf(h->last_answer, sizeof(h->last_answer), "healthcheck: %s: %s",
			 final ? "the runtime refused the exec" : "the exec failed",
			 error && error->message && *error->message ? error->message
								    : strerror(-err));
		if (final) {
			health_finish(h, err);
			return;
		}
	}
	struct timeval tv = timeval_from_us(h->interval_us);
	evtimer_add(h->next_run, &tv);
}

static void health_run(struct health_check *h)
{
	int r = runtime_exec(h->rt, h->container_id, (const char *const *)h->argv, h->argc,
			     h->cmd_timeout_us, on_exec, h);
	if (r < 0) {
		snprintf(h->last_answer, sizeof(h->last_answer),
			 "healthcheck: the exec could not be started: %s", strerror(-r));
		health_finish(h, r);
		return;
	}
	h->running = true;
}

static void on_next_run(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	health_run(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct health_check *h = arg;
	if (h->last_answer[0] == '\0')
		snprintf(h->last_answer, sizeof(h->last_answer),
			 "healthcheck: the first run did not end");
	health_finish(h, -ETIMEDOUT);
}

int health_check_start(struct event_base *base, struct runtime *rt, const char *container_id,
		       char *const *argv, size_t argc, uint64_t cmd_timeout_us,
		       uint64_t interval_us, uint64_t deadline_us, health_done_fn done,
		       void *userdata, struct health_check **out)
{
	if (!base || !rt || !container_id || !*container_id || !argv || argc == 0 || !done ||
	    deadline_us == 0 || !out)
		return -EINVAL;
	for (size_t i = 0; i < argc; i++)
		if (!argv[i])
			return -EINVAL;
	struct health_check *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->rt = rt;
	h->done = done;
	h->userdata = userdata;
	h->cmd_timeout_us = cmd_timeout_us ? cmd_timeout_us : HEALTH_CMD_TIMEOUT_DEFAULT_US;
	h->interval_us =
	    interval_us > HEALTH_INTERVAL_MIN_US ? interval_us : HEALTH_INTERVAL_MIN_US;
	h->container_id = strdup(container_id);
	h->argv = calloc(argc, sizeof(*h->argv));
	h->next_run = evtimer_new(base, on_next_run, h);
	h->deadline = evtimer_new(base, on_deadline, h);
	int r = h->container_id && h->argv && h->next_run && h->deadline ? 0 : -ENOMEM;
	if (h->argv)
		h->argc = argc;
	for (size_t i = 0; r == 0 && i < argc; i++)
		if (!(h->argv[i] = strdup(argv[i])))
			r = -ENOMEM;
	if (r == 0) {
		struct timeval tv = timeval_from_us(deadline_us);
		evtimer_add(h->deadline, &tv);
		/* The first run at once; runtime_exec answers from the loop. */
		r = runtime_exec(rt, h->container_id, (const char *const *)h->argv, h->argc,
				 h->cmd_timeout_us, on_exec, h);
	}
	if (r < 0) {
		health_check_free(h);
		return r;
	}
	h->running = true;
	*out = h;
	return 0;
}
