/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The healthcheck probe: a container's own health command, run by dozed
 * through the runtime's exec API until it passes or the deadline.
 */

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct runtime;
struct health_check;

/* result: 0 passed; -ETIMEDOUT at the deadline; another -errno. last_answer:
 * in words ("healthcheck: exited 1"), valid during the call. */
typedef void (*health_done_fn)(void *userdata, int result, const char *last_answer);

int health_check_start(struct event_base *base, struct runtime *rt, const char *container_id,
		       char *const *argv, size_t argc, uint64_t cmd_timeout_us,
		       uint64_t interval_us, uint64_t deadline_us, health_done_fn done,
		       void *userdata, struct health_check **out);
/* Accepts NULL; no callback after it; safe from inside done. */
void health_check_free(struct health_check *h);
