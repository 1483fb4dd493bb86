/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct event_base;

/* Runs base until pred(arg) is true, checking every 2 ms; fails the test
 * after timeout_ms, naming what was awaited. */
void evloop_run_until(struct event_base *base, bool (*pred)(void *), void *arg, unsigned timeout_ms,
		      const char *what);
