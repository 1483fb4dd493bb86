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
	/* Pending calls: linked and unlinked by runtime.c alone. */
	struct runtime_call *calls;
	/* Open event streams: linked and unlinked by runtime_events.c alone. */
	struct runtime_events *streams;
};

/* Ends every event stream of rt still open, as runtime_events_free does
 * (for runtime_free). */
void runtime_events_free_all(struct runtime *rt);

/*
 * The error of an exchange with the runtime, for err and error.message:
 * transport failures (status 0) in our words, HTTP errors in the runtime's
 * (from the JSON body, else the body's text, else "HTTP N"). Returns the
 * -errno and sets *message (malloc'd; NULL only when out of memory).
 */
int runtime_describe_failure(const struct runtime *rt, const char *method, const char *target,
			     uint64_t timeout_us, int err, int status, const char *body,
			     size_t body_len, char **message);
