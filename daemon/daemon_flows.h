/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What daemon_flows.c and daemon_explain.c share: a service's flows in the
 * control protocol's words. Private to daemon/.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dozed/flow_counter.h"

struct dozed;
struct json_object;
struct service;

/* CLOCK_MONOTONIC in ns: the flows' stamps are its coarse reading. */
uint64_t flows_now_ns(void);
/* The rules in force for s: its own, else the config file's default. */
const struct flow_rules *flows_rules_of(const struct dozed *d, const struct service *s);
/* The address of sa without its port ("10.88.0.1", "2001:db8::1"). */
const char *flows_addr_string(const struct sockaddr_storage *sa, char *buf, size_t len);
/* The managed service whose container has peer's address, or NULL. */
const char *flows_peer_service(struct dozed *d, const struct sockaddr_storage *peer);
/* "tcp from 10.88.0.1:41234 to port 80, 412 B in, 1.2 kB out". */
void flows_describe(struct dozed *d, const struct flow_info *f, char *buf, size_t len);
/* A FLOW object (README, "Control protocol"); the caller owns it. */
struct json_object *flows_flow_json(struct dozed *d, const struct service *s,
				    const struct flow_info *f, uint64_t now_ns);
/*
 * Every service's flows as one walk of the map read them, at most a second
 * ago: the sleeps, statuses and flow table of that second share the walk
 * (a walk of a full map takes some ms). Sorted by cgroup, then counted
 * first, then by bytes. Valid until the next call of either.
 */
struct flows_snapshot {
	struct flow_info *flows;
	size_t n;
	int err; /* < 0: the walk failed, flows is empty */
	struct flow_map_stats stats;
	int stats_err;
	uint64_t at_us; /* when it was read; 0: never */
};
const struct flows_snapshot *flows_snapshot_get(struct dozed *d);
/* The flows of the containers detached meanwhile leave the map within a
 * second, in one walk (flow_counter_purge). */
void flows_purge_soon(struct dozed *d);
/* Forgets it: the next get walks the map again. */
void flows_snapshot_drop(struct dozed *d);
/* s's flows in the snapshot: their count, *first the first of them. */
size_t flows_of_service(struct dozed *d, const struct service *s, const struct flow_info **first);

/* When s woke (its window's start), as a flows_now_ns() stamp. */
uint64_t flows_since_woke_ns(const struct service *s, uint64_t now_ns);
/* The sleep event's "top_flows": its last idle window's, at most 5. */
void flows_add_top_to_sleep(struct dozed *d, struct service *s, struct json_object *facts);
/* {"capacity", "live", "evicted"}, or NULL when it cannot be read. */
struct json_object *flows_table_json(struct dozed *d);
