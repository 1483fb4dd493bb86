/* SPDX-License-Identifier: MIT */
#pragma once

/* Time as the daemon keeps it: CLOCK_MONOTONIC in microseconds. */

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline uint64_t clock_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A libevent timeout of us microseconds. */
static inline struct timeval timeval_from_us(uint64_t us)
{
	return (struct timeval){.tv_sec = (time_t)(us / 1000000),
				.tv_usec = (suseconds_t)(us % 1000000)};
}
