/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's metrics: every series of README's "Metrics" section, rendered
 * from the services, the activator's counters and the daemon's own. Called
 * by the metrics listener (metrics_http.h) and the control command
 * "metrics"; internal to daemon/.
 *
 * What a service's series need beyond the machine's own counters (struct
 * service) lives in its svc_extra (struct svc_metrics), so that a removed
 * service's series go with it. Every label value comes from a fixed set in
 * the code, and a tally keeps at most METRICS_TALLY_SLOTS of them, the last
 * slot "other": the set of series stays bounded.
 */

#include <stdint.h>

#include "dozed/daemon_metrics_stats.h"

struct dozed;
struct flow_map_stats;
struct flow_totals;
struct json_object;
struct metrics_blob;
struct metrics_text;
struct service;

/* The whole exposition, a reference in *out (the caller drops it); 0 or
 * -errno (-ENOMEM). A scrape soon after another with no event between gets
 * the same text: the same blob. */
int dozed_metrics_render(struct dozed *d, struct metrics_blob **out);
/* Drops the last exposition kept for reuse. */
void dozed_metrics_forget(struct dozed *d);

/* The activator's and the daemon's own series (daemon_metrics_daemon.c). */
void dozed_metrics_render_daemon(struct dozed *d, struct metrics_text *out);

/* The activator saw the first byte of a woken service's answer reach a
 * client that was held through the wake, us after that client connected. */
void dozed_metrics_note_first_response(struct dozed *d, uint64_t service_id, uint64_t us);

/* Every event of a service (feed.h's), before the feed has it: facts may be
 * NULL, and are borrowed. */
void dozed_metrics_note_event(struct dozed *d, struct service *s, const char *event,
			      const struct json_object *facts);

/* A read of s's flow counter (any reader's): its counted and ignored bytes
 * go into the totals that outlive its container's runs. */
void dozed_metrics_note_flows(struct dozed *d, struct service *s, const struct flow_totals *t);

/* A walk of the flow map counted its evictions (flow_snapshot.c). */
void dozed_metrics_note_map_stats(struct dozed *d, const struct flow_map_stats *st);
