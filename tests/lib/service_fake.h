/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service state machine's fake effects and clock, for its unit tests:
 * every effect is recorded as a line of text ("redirect+ web", "stop web",
 * ...) in F.log, in order, so a test asserts what the daemon would do.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/service.h"

#define SEC		1000000ull
#define FAKE_THAW_ASYNC 2

struct json_object;

struct fake {
	uint64_t now;
	char log[8192];
	size_t held;
	size_t waiting; /* relayed clients waiting for an answer */
	int redirect_err;
	bool stop_uncancellable; /* runtime_stop_cancel answers too late */
	uint64_t activity;	 /* last counted traffic, fed to egress_read */
	const char *counted;	 /* what it was, fed to egress_read; NULL: "" */
	enum service_kept kept;	 /* what sleep_blocker answers */
	const char *kept_what;	 /* and says */
	unsigned blocker_asked;	 /* sleep_blocker calls */
	/* Non-zero: counted traffic that comes while sleep_blocker looks (an
	 * answer sent between the two reads). */
	uint64_t activity_during_blocker;
	/* What runtime_thaw answers: 1 running now (the default 0 is
	 * taken as 1), FAKE_THAW_ASYNC under way, < 0 cannot. */
	int thaw_answer;
	unsigned freezes_asked, thaws_asked;
	uint64_t timer_at;
	struct json_object *last_facts;
	char last_event[32];
	char transitions[1024]; /* "asleep->waking;" per change, apart from log */
	struct service_registry *reg;
};

extern struct fake F;
/* The fake effects, for a test that builds a registry of its own. */
extern const struct service_ops fake_ops;

/* A registry holding "web" (port 8080 -> 80, idle 10 s) at 100 s, freed when the test ends. */
struct service *setup(bool running);
/* The same, asleep, with the log cleared. */
struct service *asleep_service(void);
void clear_log(void);
/* A fact of the last event; fails the test when absent. */
int64_t fact(const char *key);
const char *fact_str(const char *key);
/* A client from 10.0.0.9:40000 is held and asks for a wake. */
void connect_client(struct service *s);
