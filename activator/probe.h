/* SPDX-License-Identifier: MIT */
#pragma once

/* Readiness probing of a waking service: internal to activator/. */

#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct prober;

/* Called once: 0 when a connect succeeded, -ETIMEDOUT at the deadline. May free the prober. */
typedef void (*prober_done_fn)(void *arg, int result);

/*
 * Connects to dst (with SO_MARK = mark) at once and then every interval_us
 * until a connect succeeds or timeout_us passes. Each attempt adds one to
 * *attempts.
 */
int prober_start(struct event_base *base, const struct sockaddr_storage *dst, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out);
void prober_free(struct prober *p);
