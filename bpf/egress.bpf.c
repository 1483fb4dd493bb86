// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Counts the egress of each managed container: the idle signal of dozed.
 *
 * Attached to a container's cgroup v2 directory. Cgroup storage belongs to the
 * cgroup the program is attached to, so sockets of processes in descendant
 * cgroups count for the container without any lookup on the packet path.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dozed/egress.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, struct egress_stats);
} egress_stats SEC(".maps");

SEC("cgroup_skb/egress")
int egress_count(struct __sk_buff *skb)
{
	struct egress_stats *s = bpf_get_local_storage(&egress_stats, 0);

	/* Per-CPU, but a softirq (an ACK, a retransmit) can interrupt a process
	 * context run on the same CPU: atomic adds keep the totals exact. */
	__sync_fetch_and_add(&s->bytes, skb->len);
	__sync_fetch_and_add(&s->packets, 1);
	/* The coarse clock (a tick, a few ms) is plenty for an idle time of
	 * seconds, and cheaper on every packet than reading the TSC. */
	s->last_ns = bpf_ktime_get_coarse_ns();

	/* 1 = let the packet through, untouched: counting must never drop. */
	return 1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
