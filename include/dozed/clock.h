/* SPDX-License-Identifier: MIT */
#pragma once

/* Time as the daemon keeps it: CLOCK_MONOTONIC in microseconds. */

#include <event2/event.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline uint64_t clock_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The same, as struct service_ops.now_us takes it (ud unused). */
static inline uint64_t clock_monotonic_us_of(void *ud)
{
	(void)ud;
	return clock_monotonic_us();
}

/* A libevent timeout of us microseconds. */
static inline struct timeval timeval_from_us(uint64_t us)
{
	return (struct timeval){.tv_sec = (time_t)(us / 1000000),
				.tv_usec = (suseconds_t)(us % 1000000)};
}

/* Arms ev for the CLOCK_MONOTONIC time at_us (at once if it has passed);
 * at_us 0 disarms it. As struct service_ops.timer_set asks. */
static inline void timer_arm_at(struct event *ev, uint64_t at_us)
{
	if (at_us == 0) {
		evtimer_del(ev);
		return;
	}
	uint64_t t = clock_monotonic_us();
	struct timeval tv = timeval_from_us(at_us > t ? at_us - t : 0);
	evtimer_add(ev, &tv);
}
