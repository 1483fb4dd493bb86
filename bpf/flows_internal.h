/* SPDX-License-Identifier: MIT */
#pragma once

/* The flow counter's state, shared by bpf/flows.c (load, attach, rules,
 * totals) and bpf/flows_list.c (walks of the flow map). */

#include <stdint.h>

#include "dozed/flow_counter.h"
#include "dozed/list.h"

struct flows_bpf;

struct flow_counter {
	struct flows_bpf *skel;
	int stats_fd, config_fd, flows_fd, global_fd;
	int ncpus;
	uint32_t max_flows;
	/* Every config written gets a new one: a flow's class stays valid
	 * until its cgroup's rules change, whatever attached before. */
	uint32_t gen;
	uint64_t deleted; /* flows removed of detached cgroups */
	/* Detached cgroups whose flows are still in the map, sorted: one walk
	 * deletes them all (flow_counter_purge), not one walk each. */
	uint64_t *purge;
	size_t n_purge, cap_purge;
	/* The kernel lets one program be linked twice to a cgroup, which would
	 * count every packet twice: attachments are tracked to refuse that. */
	struct flow_attachment *attachments;
};

struct flow_attachment {
	struct flow_counter *counter;
	LIST_FIELDS(struct flow_attachment, attachments);
	struct bpf_link *egress, *ingress;
	uint64_t cgroup_id;
	char *path;
};

/* Calls fn for every flow in the map, in batches; stops at fn's first
 * nonzero return and returns it; 0 or -errno (logged). */
typedef int (*flows_map_fn)(const struct flows_key *k, const struct flows_value *v, void *data);
int flows_map_foreach(const struct flow_counter *c, flows_map_fn fn, void *data);

/* Deletes the flows of the cgroups in ids (n of them, sorted), counting
 * them in c->deleted. */
int flows_map_delete_cgroups(struct flow_counter *c, const uint64_t *ids, size_t n);

/* A flow as userspace reads it. */
void flow_info_from(const struct flows_key *k, const struct flows_value *v, struct flow_info *out);
