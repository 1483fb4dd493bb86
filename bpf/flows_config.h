/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The value of the flows_config cgroup storage, as bpf/flows.bpf.c and
 * bpf/flows.c share it: the rules (include/dozed/flows.h) and the attached
 * cgroup's id. A program attached to a cgroup has no helper that names that
 * cgroup (bpf_skb_cgroup_id() names the socket's, maybe a descendant), and
 * flows are keyed by the attached one, so userspace writes it here.
 *
 * The freeze fields follow cgroup_id, in the cache line every packet reads
 * it from: an awake cgroup's test of frozen costs no memory access of its
 * own. Userspace writes the whole value (rules and freeze fields together:
 * bpf/flows.c keeps its copy in the attachment).
 */

#include "dozed/flows.h"

struct flows_cgroup_config {
	struct flows_config config;
	__u64 cgroup_id; /* 0 until userspace wrote it: flows are not recorded yet */
	/* Light sleep: 1 while the cgroup is frozen; its wake hook is armed. */
	__u8 frozen;
	/* 1: only payload the socket takes wakes it; 0: a TCP SYN or any UDP
	 * datagram too. */
	__u8 wake_on_data;
	/* Set by the kernel with the record it sent: one wake per arming (two
	 * CPUs may race to send one each; userspace takes the first). */
	__u8 wake_sent;
	__u8 pad[5];
	/* The last non-waking SYN reported (wake_on_data): at most one report
	 * per FLOWS_SYN_REPORT_NS, so that userspace can look whether the
	 * listener's backlog fills with connect-only clients. */
	__u64 syn_report_ns;
};
