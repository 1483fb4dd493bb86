/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The flow counter: one loaded pair of eBPF programs (cgroup_skb ingress and
 * egress) and their maps, attached to the cgroup v2 directory of each managed
 * container (docs/design.md, "Flows"). It never drops or alters a packet.
 * It decides in the kernel which traffic counts as activity, so the idle
 * decision is one read (flow_counter_read); the flows themselves are the
 * detail for the explainer (flow_counter_list).
 *
 * The cgroup changes on every container start, so a service is attached
 * again on every start, and its rules set again.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dozed/flow_rule.h"
#include "dozed/flows.h"

struct flow_counter;	/* the loaded programs and their maps */
struct flow_attachment; /* one attached cgroup */

/* One flow, as userspace reads it. */
struct flow_info {
	uint64_t cgroup_id;	      /* whose: flow_attachment_cgroup_id() */
	uint8_t proto;		      /* IPPROTO_TCP, IPPROTO_UDP, else the IP protocol */
	struct sockaddr_storage peer; /* AF_INET (unmapped) or AF_INET6, with its port */
	uint16_t local_port;
	enum flows_opener opener;
	enum flows_class class; /* COUNTED, or why its traffic is ignored */
	int rule;		/* FLOWS_IGN_RULE: the index of the rule, else -1 */
	uint64_t bytes[2], packets[2], payload[2]; /* by enum flows_dir */
	/* ns, CLOCK_MONOTONIC_COARSE; 0: never */
	uint64_t last_payload_ns[2];
	uint64_t first_ns, last_ns, last_counted_ns;
	uint8_t tcp_flags[2]; /* FLOWS_TCP_* by direction */
	/* enum flows_dir of its last packet with payload; -1: none yet. */
	int last_payload_dir;
};

struct flow_ignored_totals {
	uint64_t bytes, packets, packets_out;
};

/* One read of a cgroup's totals, summed over CPUs. */
struct flow_totals {
	uint64_t egress_bytes, egress_packets, egress_last_ns;
	uint64_t ingress_bytes, ingress_packets, ingress_last_ns;
	uint64_t counted_bytes, counted_packets;
	uint64_t counted_last_ns; /* CLOCK_MONOTONIC_COARSE ns; 0: nothing counted yet */
	/* The flow of the last counted packet (when counted_last_ns): its key
	 * as the CPU that counted it last recorded it; last_counted.bytes etc.
	 * from the flow map when the flow is still there, else 0. */
	struct flow_info last_counted;
	enum flows_dir last_counted_dir;
	struct flow_ignored_totals ignored[FLOWS_CLASS_MAX]; /* [FLOWS_COUNTED] unused */
	uint64_t flows_created;
};

/* The flow map as a whole (one iteration). */
struct flow_map_stats {
	uint64_t capacity; /* max entries */
	uint64_t live;	   /* entries now */
	uint64_t created;  /* inserted since load */
	uint64_t deleted;  /* removed by flow_counter_detach */
	uint64_t evicted;  /* created - live - deleted: pushed out by the LRU */
};

/* Passes libbpf's warnings to the debug log (flow_counter_new calls it). */
void flow_counter_log_libbpf(void);

/* Loads the programs with room for max_flows flows (0: FLOWS_MAP_MAX_ENTRIES).
 * Needs root (CAP_BPF + CAP_NET_ADMIN) and a kernel with BTF; the message
 * says what is missing. */
int flow_counter_new(uint32_t max_flows, struct flow_counter **out);
/* Accepts NULL; every attachment must have been detached first. */
void flow_counter_free(struct flow_counter *c);

/* Starts accounting the traffic of every process in cgroup_dir and its
 * descendants, both directions, with no ignore rules. -EEXIST if that cgroup
 * is already attached, -EINVAL if it is not cgroup v2, -ENOENT if absent. */
int flow_counter_attach(struct flow_counter *c, const char *cgroup_dir,
			struct flow_attachment **out);
/* Stops accounting and frees the handle; accepts NULL. The cgroup's flows
 * leave the map with the next flow_counter_purge. */
void flow_counter_detach(struct flow_attachment *a);
/* Deletes the flows of every cgroup detached since the last purge, in one
 * walk of the map, counting them as deleted. 0; -errno (logged): they stay,
 * for the next purge. */
int flow_counter_purge(struct flow_counter *c);

/* Replaces the cgroup's ignore rules; its flows classify again with their
 * next packet. -ENOENT once the cgroup is gone. */
int flow_counter_set_rules(struct flow_counter *c, struct flow_attachment *a,
			   const struct flow_rules *rules);

/* -ENOENT once the cgroup is gone (its container stopped): detach then. */
int flow_counter_read(const struct flow_counter *c, const struct flow_attachment *a,
		      struct flow_totals *out);

/* The cgroup's flows whose last packet is at or after since_ns (0: all),
 * in a malloc()ed array the caller frees; *n = 0 and *out = NULL when none. */
int flow_counter_list(const struct flow_counter *c, const struct flow_attachment *a,
		      uint64_t since_ns, struct flow_info **out, size_t *n);

/* The flow of a's cgroup with that protocol, peer (AF_INET, AF_INET6 or
 * v4-mapped, with its port) and container port: one lookup, no walk.
 * -ENOENT when the map has none (never seen, or evicted). */
int flow_counter_lookup(const struct flow_counter *c, const struct flow_attachment *a,
			uint8_t proto, const struct sockaddr_storage *peer, uint16_t local_port,
			struct flow_info *out);

/* The same for every cgroup, in one walk of the map (a service each is a
 * walk each): cgroup_id says whose. */
int flow_counter_list_all(const struct flow_counter *c, uint64_t since_ns, struct flow_info **out,
			  size_t *n);

int flow_counter_map_stats(const struct flow_counter *c, struct flow_map_stats *out);

const char *flow_attachment_path(const struct flow_attachment *a);
/* The attached cgroup's id: its directory's inode number. */
uint64_t flow_attachment_cgroup_id(const struct flow_attachment *a);

/* "counted", "loopback", "no payload", "dns", "ntp", "icmp", "rule". */
const char *flow_class_name(enum flows_class c);

/*
 * Light sleep's wake hook (docs/design.md, "Light sleep"). While a cgroup is
 * frozen, the ingress program reports the first packet that would wake it,
 * once, through a ring buffer: a packet the flow rules count (not loopback,
 * ICMP or an ignore rule) that is a TCP SYN, a UDP datagram or TCP payload the
 * socket takes; with wake_on_data only payload. The kernel's own packets of a
 * frozen container (ACKs, keepalive answers, retransmits) neither wake it nor
 * count as its activity: while frozen its egress is in the totals (and its
 * flow's detail) only, in no class.
 * The packet that wakes it counts, as it would awake.
 */
struct flow_wake {
	uint64_t cgroup_id;
	uint64_t at_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) when the packet came */
	uint8_t proto;
	struct sockaddr_storage peer; /* AF_INET (unmapped) or AF_INET6, with its port */
	uint16_t local_port;
	uint32_t payload; /* bytes the socket takes; 0 for a SYN */
	/* Not a wake: with wake_on_data, a SYN (a connect-only client) came,
	 * reported at most every FLOWS_SYN_REPORT_NS: if such clients fill the
	 * listener's backlog, no client gets through to send its bytes. */
	bool syn_seen;
};

/* Arms (frozen) or disarms the wake hook of a's cgroup; arming again reports
 * the next packet again. Keeps the ignore rules (and flow_counter_set_rules
 * keeps the hook as it is, a wake already sent included). An attach starts
 * disarmed. -ENOENT once the cgroup is gone. */
int flow_counter_set_frozen(struct flow_counter *c, struct flow_attachment *a, bool frozen,
			    bool wake_on_data);
/* The fd to watch for wakes: an epoll fd, readable when records wait (the
 * kernel wakes it with each record). */
int flow_counter_wake_fd(const struct flow_counter *c);
typedef void (*flow_wake_cb)(const struct flow_wake *w, void *userdata);
/* Calls cb (NULL: none) for every record waiting, without blocking; returns
 * how many, or -errno. Two CPUs may each report the same arming: the first
 * record of a cgroup while it is frozen is the wake, later ones are not new.
 * A record may still wait after a disarm: the caller checks the cgroup is
 * frozen. */
int flow_counter_wake_consume(struct flow_counter *c, flow_wake_cb cb, void *userdata);

/* For tests/bench only: flow_counter_new with the wake hook compiled out of
 * the programs (wake_hook false), to measure what the hook costs an awake
 * container. The daemon never calls it. */
int flow_counter_new_bench(uint32_t max_flows, bool wake_hook, struct flow_counter **out);
