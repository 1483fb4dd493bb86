/* SPDX-License-Identifier: MIT */
#pragma once

/* The flow counter's state, shared by bpf/flows.c (load, attach, rules,
 * totals), bpf/flows_list.c (walks of the flow map) and bpf/flows_wake.c
 * (light sleep's wake hook). */

#include <stdint.h>

#include "dozed/flow_counter.h"
#include "dozed/list.h"
#include "flows_config.h"

struct flows_bpf;
struct ring_buffer;

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
	/* Light sleep's wakes; cb and userdata of the consume under way. */
	struct ring_buffer *wake_ring;
	flow_wake_cb wake_cb;
	void *wake_userdata;
	int wake_n;
};

struct flow_attachment {
	struct flow_counter *counter;
	LIST_FIELDS(struct flow_attachment, attachments);
	struct bpf_link *egress, *ingress;
	uint64_t cgroup_id;
	char *path;
	/* What was last written to the cgroup's flows_config: the rules and
	 * the freeze fields are written together, so neither undoes the other. */
	struct flows_cgroup_config config;
};

/* Writes a->config to the kernel, with a new generation when rules_changed
 * (the cgroup's flows classify again). While frozen, the kernel's wake_sent
 * is kept unless rearm. 0; -ENOENT once the cgroup is gone; -errno (logged). */
int flows_config_write(struct flow_counter *c, struct flow_attachment *a, bool rules_changed,
		       bool rearm);

/* The wake ring of a loaded counter (flow_counter_new); freed by
 * flows_wake_free. */
int flows_wake_new(struct flow_counter *c);
void flows_wake_free(struct flow_counter *c);

/* Calls fn for every flow in the map, in batches; stops at fn's first
 * nonzero return and returns it; 0 or -errno (logged). */
typedef int (*flows_map_fn)(const struct flows_key *k, const struct flows_value *v, void *data);
int flows_map_foreach(const struct flow_counter *c, flows_map_fn fn, void *data);

/* Deletes the flows of the cgroups in ids (n of them, sorted), counting
 * them in c->deleted. */
int flows_map_delete_cgroups(struct flow_counter *c, const uint64_t *ids, size_t n);

/* A flow as userspace reads it. */
/* A kernel address (IPv6, or IPv4 mapped) and port as a socket address:
 * AF_INET for a mapped one. */
void flows_peer_to_sockaddr(const uint8_t addr[16], uint16_t port, struct sockaddr_storage *out);
void flow_info_from(const struct flows_key *k, const struct flows_value *v, struct flow_info *out);
