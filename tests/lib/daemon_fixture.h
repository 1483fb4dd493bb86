/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The real daemon (dozed_new) in a network namespace of its own, its control
 * socket and state in the test's directory and a runtime socket nothing
 * listens on (its services stay unknown): what a command refuses, it refuses
 * before it asks the runtime or touches a service. Freed when the test ends.
 */

#include <stdint.h>

#include "dozed/config.h"

struct dozed;

struct daemon_fixture {
	struct control_fixture *f; /* its directory and base; its own server is not started */
	struct dozed_config cfg;   /* borrowed by the daemon, so freed after it */
	struct dozed *d;
	struct lineclient *c; /* a client of the daemon's control socket */
};

/*
 * The daemon in /tmp/PREFIX.XXXXXX; saved: the text of its services.json
 * before it starts (NULL: none); idle_us: its default idle time (0: the
 * built-in default). Fails the test on error.
 */
struct daemon_fixture *daemon_fixture_new(const char *prefix, const char *saved, uint64_t idle_us);

/* Its services.json (malloc'd). */
char *daemon_fixture_state_file(struct daemon_fixture *df);
