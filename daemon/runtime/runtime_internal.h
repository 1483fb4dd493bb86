/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by runtime.c (calls) and runtime_events.c (the event stream) only. */

#include <stddef.h>
#include <stdint.h>

#include "dozed/runtime.h"

struct runtime_call;

struct runtime {
	struct event_base *base;
	char *socket_path;
	struct runtime_config cfg;
	struct runtime_call *calls;	/* pending, doubly linked */
	struct runtime_events *streams; /* open, doubly linked */
};

/* Links an event stream in (so runtime_free frees it) and out. */
void runtime_streams_link(struct runtime *rt, struct runtime_events *ev);
void runtime_streams_unlink(struct runtime *rt, struct runtime_events *ev);
/* Frees a stream that runtime_free found still open. */
void runtime_events_free_orphan(struct runtime_events *ev);

/*
 * The error of an exchange with the runtime, for err and error.message:
 * transport failures (status 0) in our words, HTTP errors in the runtime's
 * (from the JSON body, else the body's text, else "HTTP N"). Returns the
 * -errno and sets *message (malloc'd; NULL only when out of memory).
 */
int runtime_describe_failure(const struct runtime *rt, const char *method, const char *target,
			     uint64_t timeout_us, int err, int status, const char *body,
			     size_t body_len, char **message);
