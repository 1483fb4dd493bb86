// SPDX-License-Identifier: MIT
/*
 * The healthcheck probe: the container's own health command, run by dozed
 * through the exec API. Docker runs a HEALTHCHECK only after its interval
 * (30 s unless set) and Podman without systemd timers never runs it, so
 * waiting for the runtime's "healthy" would make a wake last that long.
 */
#include "health.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/runtime.h"

/* A health command's own default timeout, as Docker's. */
#define HEALTH_CMD_TIMEOUT_DEFAULT_US (30 * 1000000ull)

struct health_check {
	struct runtime *rt;
	char *container_id;
	char **argv;
	size_t argc;
	uint64_t cmd_timeout_us, interval_us, deadline_at_us;
	health_done_fn done;
	void *userdata;
	struct event *tick;	/* the next run */
	struct event *deadline; /* the whole check's */
	bool running;		/* an exec is out */
	char last[160];
};

static void health_finish(struct health_check *h, int result)
{
	event_del(h->tick);
	event_del(h->deadline);
	if (h->running) {
		runtime_cancel(h->rt, h);
		h->running = false;
	}
	/* Last: done may free h. */
	h->done(h->userdata, result, h->last);
}

static void health_run(struct health_check *h);

static void health_exited(int err, const struct runtime_error *error, int exit_code,
			  void *userdata)
{
	struct health_check *h = userdata;
	h->running = false;
	if (err == 0 && exit_code == 0) {
		snprintf(h->last, sizeof(h->last), "healthcheck: passed");
		health_finish(h, 0);
		return;
	}
	if (err < 0)
		snprintf(h->last, sizeof(h->last), "healthcheck: %s", error->message);
	else
		snprintf(h->last, sizeof(h->last), "healthcheck: exited %d", exit_code);
	if (err == -ESRCH) {
		/* Not running: no later run can pass; the wake's own checks say why. */
		health_finish(h, err);
		return;
	}
	uint64_t now = clock_monotonic_us();
	if (now >= h->deadline_at_us)
		return; /* the deadline's event reports */
	struct timeval tv = timeval_from_us(h->interval_us);
	evtimer_add(h->tick, &tv);
}

static void health_run(struct health_check *h)
{
	uint64_t now = clock_monotonic_us();
	uint64_t left = h->deadline_at_us > now ? h->deadline_at_us - now : 1;
	uint64_t bound = h->cmd_timeout_us < left ? h->cmd_timeout_us : left;
	int r = runtime_exec(h->rt, h->container_id, (const char *const *)h->argv, h->argc, bound,
			     health_exited, h);
	if (r < 0) {
		snprintf(h->last, sizeof(h->last), "healthcheck: cannot run it: %s", strerror(-r));
		health_finish(h, r);
		return;
	}
	h->running = true;
}

static void health_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	health_run(arg);
}

static void health_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct health_check *h = arg;
	if (!h->last[0])
		snprintf(h->last, sizeof(h->last), "healthcheck: no answer yet");
	health_finish(h, -ETIMEDOUT);
}

int health_check_start(struct event_base *base, struct runtime *rt, const char *container_id,
		       char *const *argv, size_t argc, uint64_t cmd_timeout_us,
		       uint64_t interval_us, uint64_t deadline_us, health_done_fn done,
		       void *userdata, struct health_check **out)
{
	if (argc == 0)
		return -EINVAL;
	struct health_check *h = calloc(1, sizeof(*h));
	if (!h)
		return log_error_errno(ENOMEM, "Failed to allocate a health check");
	h->rt = rt;
	h->container_id = strdup(container_id);
	h->argv = calloc(argc + 1, sizeof(*h->argv));
	h->argc = argc;
	bool ok = h->container_id && h->argv;
	for (size_t i = 0; ok && i < argc; i++)
		ok = (h->argv[i] = strdup(argv[i])) != NULL;
	h->cmd_timeout_us = cmd_timeout_us ? cmd_timeout_us : HEALTH_CMD_TIMEOUT_DEFAULT_US;
	h->interval_us = interval_us;
	h->deadline_at_us = clock_monotonic_us() + deadline_us;
	h->done = done;
	h->userdata = userdata;
	h->tick = evtimer_new(base, health_on_tick, h);
	h->deadline = evtimer_new(base, health_on_deadline, h);
	struct timeval tv = timeval_from_us(deadline_us);
	if (!ok || !h->tick || !h->deadline || evtimer_add(h->deadline, &tv) < 0) {
		health_check_free(h);
		return log_error_errno(ENOMEM, "Failed to set up a health check");
	}
	/* From the loop, never from inside this call: done may free the caller's state. */
	struct timeval now = {0, 0};
	evtimer_add(h->tick, &now);
	*out = h;
	return 0;
}

void health_check_free(struct health_check *h)
{
	if (!h)
		return;
	if (h->running)
		runtime_cancel(h->rt, h);
	if (h->tick)
		event_free(h->tick);
	if (h->deadline)
		event_free(h->deadline);
	for (size_t i = 0; h->argv && i < h->argc; i++)
		free(h->argv[i]);
	free(h->argv);
	free(h->container_id);
	free(h);
}
