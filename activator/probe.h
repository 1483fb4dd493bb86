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
 * Probing starts fast, then settles: every PROBE_FAST_INTERVAL_US for the
 * first PROBE_FAST_WINDOW_US, when most services start listening, so a wake
 * pays about half a millisecond for the polling instead of half an interval;
 * then every interval_us. A refused connect costs a few microseconds.
 */
#define PROBE_FAST_INTERVAL_US 1000
#define PROBE_FAST_WINDOW_US   (2 * 1000000)

struct prober_target {
	struct sockaddr_storage dst;
	/* -1: dst is in our network namespace (the SO_MARK bypasses the
	 * redirect). Else a network namespace (the container's) in which the
	 * probe sockets are made, so that readiness is the service's own and not
	 * that of a proxy in front of it; the prober keeps its own copy. */
	int netns_fd;
};

/*
 * Connects to target at once and then on the schedule above until a connect
 * succeeds or timeout_us passes. Each attempt adds one to *attempts.
 */
int prober_start(struct event_base *base, const struct prober_target *target, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out);
void prober_free(struct prober *p);
