/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/*
 * The egress counter: one loaded eBPF program, attached to the cgroup v2
 * directory of each managed container. The cgroup changes on every container
 * start, so a service is attached again on every start.
 */

struct egress_counter;	  /* the loaded program and its map */
struct egress_attachment; /* one attached cgroup */

/*
 * Counted while attached, summed over CPUs. The kernel keeps a cgroup's totals
 * across detach and attach of the same cgroup; a container's new cgroup (every
 * start makes one) starts from zero.
 */
struct egress_totals {
	uint64_t bytes;	  /* skb->len of egress packets: IP headers included */
	uint64_t packets; /* egress packets */
	/* ns of the last packet, 0 if none: CLOCK_MONOTONIC_COARSE, which is
	 * CLOCK_MONOTONIC up to a kernel tick behind. */
	uint64_t last_ns;
};

/* Passes libbpf's warnings to the debug log, each line of a message (the
 * verifier's log after a failed load) whole. egress_counter_new calls it. */
void egress_counter_log_libbpf(void);

/* Loads the program. Needs root (CAP_BPF + CAP_NET_ADMIN) and a kernel with BTF. */
int egress_counter_new(struct egress_counter **out);
/* Accepts NULL; every attachment must have been detached first. */
void egress_counter_free(struct egress_counter *c);

/* Starts counting the egress of every process in cgroup_dir and its descendants.
 * -EEXIST if that cgroup is already attached, -EINVAL if it is not cgroup v2. */
int egress_counter_attach(struct egress_counter *c, const char *cgroup_dir,
			  struct egress_attachment **out);
/* Stops counting and frees the handle; accepts NULL. */
void egress_counter_detach(struct egress_attachment *a);

/* -ENOENT once the cgroup is gone (its container stopped): detach then. */
int egress_counter_read(const struct egress_counter *c, const struct egress_attachment *a,
			struct egress_totals *out);
const char *egress_attachment_path(const struct egress_attachment *a);
/* The attached cgroup's id: its directory's inode number. A container's
 * cgroup comes back at the same path with a new id after a restart. */
uint64_t egress_attachment_cgroup_id(const struct egress_attachment *a);
