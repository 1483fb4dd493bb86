/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one layout shared by bpf/egress.bpf.c and bpf/egress.c:
 * per-CPU counters of one container's egress, kept in the per-CPU cgroup
 * storage of the cgroup the counter is attached to. Fixed-width types only.
 */

#ifndef __bpf__
#include <linux/types.h>
#endif

struct egress_stats {
	__u64 bytes;   /* skb->len of every egress packet (IP header included) */
	__u64 packets; /* egress packets */
	__u64 last_ns; /* bpf_ktime_get_coarse_ns() of the last packet: CLOCK_MONOTONIC_COARSE */
};
