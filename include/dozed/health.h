/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The healthcheck probe: the container's own health command, run by dozed
 * through the runtime's exec API on both runtimes. Docker runs a HEALTHCHECK
 * only after its interval (30 s unless set) and Podman without systemd
 * timers never runs it, so waiting for their "healthy" would make every wake
 * wait that long, or for ever.
 *
 * The command runs at once, then again interval_us after each run that did
 * not pass, until one exits 0 or the deadline comes; one run at a time. Like
 * the runtime's calls it logs nothing: done says what the last run saw.
 */

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct runtime;
struct health_check;

/*
 * result: 0 the command exited 0; -ETIMEDOUT the deadline came first;
 * -ESRCH the container is not running; another -errno the runtime refused
 * the exec (no such container...), so no later run could pass either.
 * last_answer: what the last run saw, for wake_failed: "healthcheck: passed",
 * "healthcheck: exited 1", "healthcheck: the runtime refused the exec: ...";
 * valid during the call only.
 */
typedef void (*health_done_fn)(void *userdata, int result, const char *last_answer);

/*
 * Starts the check in container_id (argv: argc >= 1 words, copied, as
 * runtime.h's health_cmd gives them). cmd_timeout_us bounds each run (0:
 * 30 s, Docker's default); deadline_us, from now, bounds the whole. Returns
 * < 0 (-EINVAL, -ENOMEM) without calling done, else 0 and done is called
 * once, from the loop, unless health_check_free comes first. Free it before
 * the runtime.
 */
int health_check_start(struct event_base *base, struct runtime *rt, const char *container_id,
		       char *const *argv, size_t argc, uint64_t cmd_timeout_us,
		       uint64_t interval_us, uint64_t deadline_us, health_done_fn done,
		       void *userdata, struct health_check **out);
/* Ends it: no callback after this. Accepts NULL; safe from inside done. */
void health_check_free(struct health_check *h);
