/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's metrics: every series of README's "Metrics" section, rendered
 * from the services, the activator's counters and the daemon's own. Called
 * by the metrics listener (metrics_http.h) and the control command
 * "metrics"; internal to daemon/.
 */

#include <stdint.h>

struct dozed;
struct json_object;
struct metrics_text;
struct service;

/* The whole exposition; 0 or -errno (-ENOMEM). */
int dozed_metrics_render(struct dozed *d, struct metrics_text *out);

/* The activator saw the first byte of a woken service's answer reach a
 * client that was held through the wake, us after that client connected. */
void dozed_metrics_note_first_response(struct dozed *d, uint64_t service_id, uint64_t us);

/* Every event of a service (feed.h's), before the feed has it: facts may be
 * NULL, and are borrowed. */
void dozed_metrics_note_event(struct dozed *d, struct service *s, const char *event,
			      const struct json_object *facts);
