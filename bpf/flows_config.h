/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The value of the flows_config cgroup storage, as bpf/flows.bpf.c and
 * bpf/flows.c share it: the rules (include/dozed/flows.h) and the attached
 * cgroup's id. A program attached to a cgroup has no helper that names that
 * cgroup (bpf_skb_cgroup_id() names the socket's, maybe a descendant), and
 * flows are keyed by the attached one, so userspace writes it here.
 */

#include "dozed/flows.h"

struct flows_cgroup_config {
	struct flows_config config;
	__u64 cgroup_id; /* 0 until userspace wrote it: flows are not recorded yet */
};
