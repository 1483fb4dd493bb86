/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one layout shared by bpf/flows.bpf.c and bpf/flows.c: the flow
 * accounting of each managed container (docs/design.md, "Flows").
 * Fixed-width types only; every field is written by the kernel unless it
 * says otherwise.
 *
 *   flows_stats  per-CPU cgroup storage, shared by the ingress and egress
 *                programs (key: the cgroup id): totals, the counted activity
 *                (the idle decision is one read of it) and what was ignored.
 *   flows_config cgroup storage, shared, written by userspace: the ignore
 *                rules, and a generation that makes flows classify again.
 *   flows        an LRU hash of flows_key -> flows_value: the detail behind
 *                the totals, for the explainer. Losing an entry loses
 *                detail, never activity.
 *   flows_global a per-CPU array of one flows_global: entries inserted, so
 *                that userspace can count evictions.
 *   flows_wake   a ring buffer of flows_wake records: the first packet that
 *                would wake a frozen cgroup (light sleep), one per arming.
 */

#ifndef __bpf__
#include <linux/types.h>
#endif

/*
 * Room for 32 768 flows: 1 000 services with 32 live flows each, in about
 * 6 MiB of kernel memory (an LRU map is allocated whole when it is created).
 * Closed flows are the least recently used and go first.
 */
#define FLOWS_MAP_MAX_ENTRIES 32768
/* Wakes are one record per frozen cgroup and arming, read at once: 64 KiB
 * holds 1 300 of them (a record takes 48 bytes and an 8-byte header). */
#define FLOWS_WAKE_RING_BYTES (64 * 1024)
#define FLOWS_RULES_MAX	      16

/* The loopback device has this index in every network namespace. */
#define FLOWS_LOOPBACK_IFINDEX 1

/* Why traffic does not count as activity; FLOWS_COUNTED when it does. */
enum flows_class {
	FLOWS_COUNTED = 0,
	FLOWS_IGN_LOOPBACK, /* never left the container's namespace: totals only, no flow */
	/* A TCP segment without payload, or with payload the socket will not
	 * take (in a SYN, to a listener, not after rcv_nxt): per packet. */
	FLOWS_IGN_NO_PAYLOAD,
	FLOWS_IGN_DNS,	/* peer port 53, tcp or udp, on a flow the container opened (or unknown) */
	FLOWS_IGN_NTP,	/* udp, peer port 123, the same */
	FLOWS_IGN_ICMP, /* ICMP or ICMPv6: the kernel answers it; other protocols count */
	FLOWS_IGN_RULE, /* one of the user's ignore rules */
	FLOWS_CLASS_MAX,
};

/* Directions, as array indices. */
enum flows_dir {
	FLOWS_DIR_OUT = 0, /* egress: the container sent it */
	FLOWS_DIR_IN = 1,  /* ingress: the container received it */
};

/* Who opened a flow: TCP by its first SYN, UDP by its first packet. */
enum flows_opener {
	FLOWS_OPENER_UNKNOWN = 0, /* first seen mid-connection (attached after it opened) */
	FLOWS_OPENER_CONTAINER = 1,
	FLOWS_OPENER_PEER = 2,
};

/* TCP flags seen, ORed per direction. */
#define FLOWS_TCP_SYN 0x01
#define FLOWS_TCP_FIN 0x02
#define FLOWS_TCP_RST 0x04
#define FLOWS_TCP_ACK 0x08

struct flows_key {
	__u64 cgroup_id;
	__u8 peer_addr[16]; /* IPv6, or IPv4 mapped: ::ffff:a.b.c.d */
	__u16 local_port;   /* host order; 0 for other protocols */
	__u16 peer_port;    /* host order */
	__u8 proto;	    /* IPPROTO_TCP, IPPROTO_UDP, else the IP protocol */
	__u8 pad[3];
};

struct flows_dir_stats {
	__u64 bytes;   /* skb->len: IP headers included */
	__u64 packets; /* segments: a GSO packet counts as its gso_segs */
	__u64 payload; /* bytes past the TCP or UDP header */
	__u64 last_payload_ns;
};

struct flows_value {
	struct flows_dir_stats dir[2]; /* by enum flows_dir */
	__u64 first_ns, last_ns;       /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE */
	__u64 last_counted_ns;	       /* 0: none of its packets counted */
	__u32 rules_gen;	       /* the flows_config gen its class was decided with */
	__u8 class;		       /* enum flows_class: COUNTED, DNS, NTP, ICMP or RULE */
	__u8 rule;		       /* FLOWS_IGN_RULE: the index of the rule */
	__u8 opener;		       /* enum flows_opener */
	__u8 tcp_flags[2];	       /* FLOWS_TCP_*, by enum flows_dir */
	/* The direction of its last packet with payload, plus 1; 0: none yet.
	 * Who spoke last, in order: times of a tick cannot tell a request
	 * from the answer just before it. */
	__u8 last_payload_dir;
	__u8 pad[2];
};

/* An ignore rule as the kernel matches it: (peer & mask) == addr, the port,
 * the protocol. Written by userspace from struct flow_rule. */
struct flows_rule {
	__u8 addr[16]; /* masked; IPv4 mapped */
	__u8 mask[16]; /* all zero: any address */
	__u16 port;    /* host order; 0: any */
	__u8 proto;    /* 0: tcp and udp */
	/* 1: the port is the peer's (the rule named an address too); 0: the
	 * port of the side that was opened: the container's for a flow the
	 * peer opened, the peer's for one the container opened, either when
	 * not known. */
	__u8 peer_port_only;
	__u8 pad[4];
};

struct flows_config {
	__u32 gen; /* userspace bumps it with every change */
	__u32 n_rules;
	struct flows_rule rule[FLOWS_RULES_MAX];
};

struct flows_ignored {
	__u64 bytes, packets;
	__u64 packets_out; /* of them, sent by the container (DNS: its queries) */
};

struct flows_stats {
	/* Every packet, as the egress counter counted before flows. */
	__u64 egress_bytes, egress_packets, egress_last_ns;
	__u64 ingress_bytes, ingress_packets, ingress_last_ns;
	/* Counted activity: what resets the idle timer. */
	__u64 counted_bytes, counted_packets, counted_last_ns;
	struct flows_key last_counted; /* this CPU's last counted packet's flow */
	__u8 last_counted_dir;	       /* enum flows_dir */
	__u8 pad[7];
	struct flows_ignored ignored[FLOWS_CLASS_MAX]; /* by enum flows_class; [0] unused */
	__u64 flows_created;			       /* entries this cgroup inserted */
};

struct flows_global {
	__u64 created; /* entries inserted into flows, by every cgroup */
};

/* The first packet that would wake a frozen cgroup (flows_wake). */
struct flows_wake {
	__u64 cgroup_id;    /* the attached cgroup's */
	__u64 at_ns;	    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, not coarse */
	__u8 peer_addr[16]; /* IPv6, or IPv4 mapped: ::ffff:a.b.c.d */
	__u16 local_port;   /* host order; 0 for other protocols */
	__u16 peer_port;    /* host order */
	__u32 payload;	    /* bytes the socket takes; 0 for a SYN */
	__u8 proto;	    /* IPPROTO_TCP, IPPROTO_UDP, else the IP protocol */
	__u8 tcp_flags;	    /* FLOWS_TCP_* of the packet */
	__u8 kind;	    /* enum flows_wake_kind */
	__u8 pad[5];
};

enum flows_wake_kind {
	FLOWS_WAKE_THAW = 0, /* the packet wakes the container */
	/* With wake_on_data, a SYN that does not: connect-only clients fill a
	 * frozen listener's backlog, and then no client can reach it. */
	FLOWS_WAKE_SYN_SEEN = 1,
};

/* At most one FLOWS_WAKE_SYN_SEEN per cgroup in this time. */
#define FLOWS_SYN_REPORT_NS (100ull * 1000 * 1000)
