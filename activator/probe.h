/* SPDX-License-Identifier: MIT */
#pragma once

/* Readiness probing of a waking service: internal to activator/. */

#include <stdint.h>
#include <sys/socket.h>

#include "dozed/probe_spec.h"

struct event_base;
struct prober;

/*
 * Called once: result 0 when the service answered ready (for tcp: a
 * connect succeeded), -ETIMEDOUT at the deadline. last_answer: what the
 * last attempt saw, in words ("postgres: the database system is starting
 * up", "connection refused"), "" when no attempt ended; valid during the
 * call only. May free the prober.
 */
typedef void (*prober_done_fn)(void *arg, int result, const char *last_answer);

/*
 * Probing starts fast, then settles: every PROBE_FAST_INTERVAL_US for the
 * first PROBE_FAST_WINDOW_US, when most services start listening, so a wake
 * pays about half a millisecond for the polling instead of half an interval;
 * then every interval_us. A refused connect costs a few microseconds.
 */
#define PROBE_FAST_INTERVAL_US 1000
#define PROBE_FAST_WINDOW_US   (2 * 1000000)
/*
 * After a connected attempt that was not ready (the server answered "not
 * yet", or closed), the next one comes no sooner than this. Each such
 * attempt costs the server more than a refused SYN does: PostgreSQL's
 * postmaster forks a backend for every connection, which reads the startup
 * message, logs a FATAL line and exits (about 1 ms of CPU each, measured),
 * on the cores the starting server itself needs; 1 ms apart that is up to
 * 1000 forks and log lines a second. 4 ms makes it at most 250, while a
 * wake pays 2 ms on average (at most 4) after the server turned ready.
 */
#define PROBE_ANSWER_BACKOFF_US 4000
/* A connected attempt without a verdict is given up after
 * max(interval_us, this): a server that accepts and never answers (a
 * placeholder listener holding the port before the real server) must not
 * stall the probe, while a slow answer is not cut every millisecond. */
#define PROBE_ANSWER_TIMEOUT_MIN_US 1000000

struct prober_target {
	struct sockaddr_storage dst;
	/* -1: dst is in our network namespace (the SO_MARK bypasses the
	 * redirect). Else a network namespace (the container's) in which the
	 * probe sockets are made, so that readiness is the service's own and not
	 * that of a proxy in front of it; the prober keeps its own copy. */
	int netns_fd;
	/* NULL: tcp. auto and healthcheck are not run here (-EINVAL). */
	const struct probe_spec *spec;
};

/*
 * Connects to target at once and then on the schedule above until an
 * attempt is ready or timeout_us passes. With a protocol (http, postgres,
 * redis, mysql) each connected attempt sends its request and reads the
 * answer (probe_answer.h) without blocking; an answer that is not ready,
 * garbage, too long or never ends closes that attempt only. Each attempt
 * adds one to *attempts.
 */
int prober_start(struct event_base *base, const struct prober_target *target, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out);
void prober_free(struct prober *p);
