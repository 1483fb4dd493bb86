// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * The flow counter of each managed container: its totals, its flows, and
 * which of its packets count as activity (docs/design.md, "Flows"; the
 * layout is include/dozed/flows.h).
 *
 * Attached to a container's cgroup v2 directory, once per direction. Cgroup
 * storage belongs to the cgroup the programs are attached to, so sockets of
 * processes in descendant cgroups count for the container without any lookup
 * on the packet path. In both directions the packet's data starts at its
 * network header.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "dozed/flows.h"
#include "flows_config.h"

/* Keyed by the cgroup id alone (not the attach type): both programs share it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, struct flows_stats);
} flows_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, struct flows_cgroup_config);
} flows_config SEC(".maps");

/* max_entries is set by the loader before load (flow_counter_new). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOWS_MAP_MAX_ENTRIES);
	__type(key, struct flows_key);
	__type(value, struct flows_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flows_global);
} flows_global SEC(".maps");

/* Light sleep's wakes (flows_wake_check): one record per frozen cgroup and
 * arming, so a small ring. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOWS_WAKE_RING_BYTES);
} flows_wake SEC(".maps");

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

static __always_inline __u16 be16(const __u8 *p)
{
	return (__u16)((__u16)p[0] << 8 | p[1]);
}

/*
 * Headers are in the linear part of the skb on both hooks (the stack wrote
 * them, or pulled them to read them): read them in place, a helper call
 * only when they are not.
 */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (off <= 60 && data + off + len <= end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* What one packet is, from its headers. */
struct packet {
	struct flows_key key;
	__u32 payload;
	__u32 seq;	/* TCP: the segment's sequence number */
	__u8 tcp_flags; /* FLOWS_TCP_* */
	__u8 parsed;	/* 0: not an IP packet we could read */
};

#define IPV6_EXT_MAX 6

static __always_inline int ipv6_is_ext(__u8 nh)
{
	/* Hop-by-hop, routing, fragment, AH, destination options. */
	return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60;
}

/*
 * Walks the IPv6 extension headers after the fixed header, at most
 * IPV6_EXT_MAX of them. Returns what follows them: its offset << 16, 1 << 8
 * for a non-first fragment (no L4 header), and its protocol. A global
 * function: the verifier checks it once, not once per path into it (which
 * made the load ten times slower).
 */
__noinline int ipv6_ext_walk(struct __sk_buff *skb, __u32 nexthdr)
{
	__u32 off = 40, no_l4 = 0;
	__u8 proto = nexthdr & 0xff;
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		__u8 h[4];
		__u8 nh = proto;
		if (!ipv6_is_ext(nh) || bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
			break;
		proto = h[0];
		if (nh == 44) {
			/* Fragment: 8 bytes; a non-first one has no L4 header. */
			if (be16(&h[2]) & 0xfff8)
				no_l4 = 1;
			off += 8;
		} else if (nh == 51) {
			off += ((__u32)h[1] + 2) * 4;
		} else {
			off += ((__u32)h[1] + 1) * 8;
		}
	}
	return (int)(off << 16 | no_l4 << 8 | proto);
}

/*
 * Reads the IP header and the TCP or UDP one. The peer is the destination of
 * what the container sends, the source of what it receives.
 */
static __always_inline void packet_parse(struct __sk_buff *skb, int dir, struct packet *p)
{
	__u8 ip[40];
	__u32 l3len, l4off, len = skb->len;
	__u8 proto;
	int peer_off, no_l4 = 0;

	if (load(skb, 0, ip, 20) < 0)
		return;
	if ((ip[0] >> 4) == 4) {
		l3len = (ip[0] & 0x0f) * 4;
		if (l3len < 20)
			return;
		proto = ip[9];
		p->key.peer_addr[10] = 0xff;
		p->key.peer_addr[11] = 0xff;
		peer_off = dir == FLOWS_DIR_OUT ? 16 : 12;
		__builtin_memcpy(&p->key.peer_addr[12], &ip[peer_off], 4);
		/* A later fragment has no L4 header (the hooks see whole
		 * datagrams; this is for safety). */
		if (be16(&ip[6]) & 0x1fff)
			no_l4 = 1;
	} else if ((ip[0] >> 4) == 6) {
		if (load(skb, 0, ip, 40) < 0)
			return;
		proto = ip[6];
		if (dir == FLOWS_DIR_OUT)
			__builtin_memcpy(p->key.peer_addr, &ip[24], 16);
		else
			__builtin_memcpy(p->key.peer_addr, &ip[8], 16);
		l3len = 40;
		/* Extension headers are rare: their walk only when there are. */
		if (ipv6_is_ext(proto)) {
			__u32 w = (__u32)ipv6_ext_walk(skb, proto);
			proto = w & 0xff;
			no_l4 = (w >> 8) & 1;
			l3len = w >> 16;
		}
	} else {
		return;
	}
	p->parsed = 1;
	p->key.proto = proto;
	l4off = l3len;
	p->payload = len > l3len ? len - l3len : 0;
	if (no_l4)
		return;

	if (proto == IPPROTO_TCP) {
		__u8 th[14];
		if (load(skb, l4off, th, sizeof(th)) < 0)
			return;
		__u16 src = be16(&th[0]), dst = be16(&th[2]);
		__u32 hl = (th[12] >> 4) * 4;
		__u8 f = th[13];
		p->key.local_port = dir == FLOWS_DIR_OUT ? src : dst;
		p->key.peer_port = dir == FLOWS_DIR_OUT ? dst : src;
		p->seq = (__u32)th[4] << 24 | (__u32)th[5] << 16 | (__u32)th[6] << 8 | th[7];
		p->payload = p->payload > hl ? p->payload - hl : 0;
		p->tcp_flags = (f & TCP_FLAG_SYN ? FLOWS_TCP_SYN : 0) |
			       (f & TCP_FLAG_FIN ? FLOWS_TCP_FIN : 0) |
			       (f & TCP_FLAG_RST ? FLOWS_TCP_RST : 0) |
			       (f & TCP_FLAG_ACK ? FLOWS_TCP_ACK : 0);
	} else if (proto == IPPROTO_UDP) {
		__u8 uh[4];
		if (load(skb, l4off, uh, sizeof(uh)) < 0)
			return;
		__u16 src = be16(&uh[0]), dst = be16(&uh[2]);
		p->key.local_port = dir == FLOWS_DIR_OUT ? src : dst;
		p->key.peer_port = dir == FLOWS_DIR_OUT ? dst : src;
		p->payload = p->payload > 8 ? p->payload - 8 : 0;
	}
}

/*
 * Set to 0 by the loader when the kernel refuses the socket checks below
 * (then the program loads without them): the verifier drops dead code.
 */
const volatile __u8 tcp_sock_check = 1;

/*
 * The payload of a TCP segment the container receives that its socket will
 * take: none for a listener (a SYN's data, a stray segment), none for what
 * is not after rcv_nxt (the program runs before TCP: a duplicate, an old
 * segment, a 1-byte keepalive or window probe).
 */
static __always_inline __u32 tcp_payload_taken(struct __sk_buff *skb, const struct packet *p)
{
	if (!tcp_sock_check)
		return p->payload;
	if (p->tcp_flags & FLOWS_TCP_SYN)
		return 0;
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return p->payload;
	if (sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_NEW_SYN_RECV)
		return 0;
	/* NULL unless a full TCP socket (not a time-wait one): one helper
	 * call, bpf_sk_fullsock's test included. */
	struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
	if (!tp)
		return p->payload;
	if ((__s32)(p->seq + p->payload - tp->rcv_nxt) <= 0)
		return 0;
	return p->payload;
}

/*
 * 0 compiles the wake hook out (the verifier drops dead code): set only by
 * the benchmark that measures what the hook costs an awake container.
 */
const volatile __u8 wake_hook = 1;

/*
 * An ingress packet of a frozen cgroup whose class counts: does it wake the
 * container (1)? Payload the socket takes (a retransmit, a keepalive, a
 * window probe does not), a UDP or other datagram with payload; unless
 * wake_on_data, also a TCP SYN (a connect) or any UDP datagram. The first
 * one of an arming is reported; the later ones find wake_sent set. With
 * wake_on_data a SYN is reported too, as FLOWS_WAKE_SYN_SEEN, at most once
 * per FLOWS_SYN_REPORT_NS.
 */
static __always_inline int flows_wake_check(struct flows_cgroup_config *cc, const struct packet *p,
					    __u64 now)
{
	if (!p->parsed)
		return 0;
	int syn = p->key.proto == IPPROTO_TCP &&
		  (p->tcp_flags & (FLOWS_TCP_SYN | FLOWS_TCP_ACK)) == FLOWS_TCP_SYN;
	int wakes = p->payload > 0;
	if (!wakes && !cc->wake_on_data)
		wakes = p->key.proto == IPPROTO_UDP || syn;
	__u8 kind = FLOWS_WAKE_THAW;
	if (!wakes) {
		/* A connect-only client, with wake_on_data: reported now and
		 * then, for userspace to look at the listener's backlog. */
		if (!syn || now - cc->syn_report_ns < FLOWS_SYN_REPORT_NS)
			return 0;
		cc->syn_report_ns = now;
		kind = FLOWS_WAKE_SYN_SEEN;
	} else if (cc->wake_sent) {
		return 1;
	}
	struct flows_wake w = {
	    .cgroup_id = cc->cgroup_id,
	    .at_ns = bpf_ktime_get_ns(),
	    .local_port = p->key.local_port,
	    .peer_port = p->key.peer_port,
	    .payload = p->payload,
	    .proto = p->key.proto,
	    .tcp_flags = p->tcp_flags,
	    .kind = kind,
	};
	__builtin_memcpy(w.peer_addr, p->key.peer_addr, 16);
	/* Wake the reader now, not at the next record: there is none. A full
	 * ring (a thousand wakes the daemon did not read yet) leaves the hook
	 * armed: the next waking packet tries again. Not atomic: two CPUs may
	 * both send; userspace keeps the first. */
	if (bpf_ringbuf_output(&flows_wake, &w, sizeof(w), BPF_RB_FORCE_WAKEUP) == 0 &&
	    kind == FLOWS_WAKE_THAW)
		cc->wake_sent = 1;
	return wakes;
}

/*
 * A port alone is the port of the side that was opened: the container's for
 * a flow the peer opened, the peer's for one the container opened, either
 * when the opener is unknown.
 */
static __always_inline int rule_matches(const struct flows_rule *r, const struct flows_key *k,
					__u8 opener)
{
	if (r->proto ? r->proto != k->proto : k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP)
		return 0;
	if (r->port) {
		int peer = k->peer_port == r->port, local = k->local_port == r->port;
		if (r->peer_port_only || opener == FLOWS_OPENER_CONTAINER)
			local = 0;
		else if (opener == FLOWS_OPENER_PEER)
			peer = 0;
		if (!peer && !local)
			return 0;
	}
	__u64 a[2], m[2], peer[2];
	__builtin_memcpy(a, r->addr, 16);
	__builtin_memcpy(m, r->mask, 16);
	__builtin_memcpy(peer, k->peer_addr, 16);
	return (peer[0] & m[0]) == a[0] && (peer[1] & m[1]) == a[1];
}

/*
 * The class of a flow, decided when it is created and when the rules or its
 * opener change: its class | the rule's index << 8. A global function: the
 * verifier checks it once, not once per path into it.
 */
__noinline int flow_class_of(const struct flows_config *cfg, const struct flows_key *k,
			     __u32 opener)
{
	if (!cfg || !k)
		return FLOWS_COUNTED;
	/* Only what the kernel answers: another protocol (SCTP, GRE, an
	 * extension header past the walk) counts, erring towards awake. */
	if (k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6)
		return FLOWS_IGN_ICMP;
	/* The container's own lookups and clock; a DNS or NTP server's
	 * clients are its use. */
	if (opener != FLOWS_OPENER_PEER && k->peer_port == 53 &&
	    (k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP))
		return FLOWS_IGN_DNS;
	if (opener != FLOWS_OPENER_PEER && k->proto == IPPROTO_UDP && k->peer_port == 123)
		return FLOWS_IGN_NTP;
	__u32 n = cfg->n_rules;
	for (__u32 i = 0; i < FLOWS_RULES_MAX; i++) {
		if (i >= n)
			break;
		if (rule_matches(&cfg->rule[i], k, opener))
			return FLOWS_IGN_RULE | i << 8;
	}
	return FLOWS_COUNTED;
}

static __always_inline void flow_classify(const struct flows_config *cfg, const struct flows_key *k,
					  __u8 opener, __u8 *class, __u8 *rule)
{
	__u32 r = (__u32)flow_class_of(cfg, k, opener);
	*class = r & 0xff;
	*rule = (r >> 8) & 0xff;
}

static __always_inline void ignored_add(struct flows_stats *s, int class, __u32 len, __u64 segs,
					int dir)
{
	__u32 i = class;
	/* Bound the register that indexes: clang 14 checks a copy of it. */
	asm volatile("" : "+r"(i));
	if (i == 0 || i >= FLOWS_CLASS_MAX)
		return;
	asm volatile("" : "+r"(i));
	if (i >= FLOWS_CLASS_MAX)
		return;
	struct flows_ignored *ig = &s->ignored[i];
	__sync_fetch_and_add(&ig->bytes, len);
	__sync_fetch_and_add(&ig->packets, segs);
	if (dir == FLOWS_DIR_OUT)
		__sync_fetch_and_add(&ig->packets_out, segs);
}

/* Who opened a flow, from a packet: a SYN's sender, else a UDP or other
 * flow's first packet's. */
static __always_inline __u8 opener_of(const struct packet *p, int dir, int first)
{
	__u8 us = dir == FLOWS_DIR_OUT ? FLOWS_OPENER_CONTAINER : FLOWS_OPENER_PEER;
	__u8 them = dir == FLOWS_DIR_OUT ? FLOWS_OPENER_PEER : FLOWS_OPENER_CONTAINER;
	if (p->key.proto != IPPROTO_TCP)
		return first ? us : FLOWS_OPENER_UNKNOWN;
	if (!(p->tcp_flags & FLOWS_TCP_SYN))
		return FLOWS_OPENER_UNKNOWN;
	return p->tcp_flags & FLOWS_TCP_ACK ? them : us;
}

static __always_inline struct flows_value *flow_get(const struct flows_cgroup_config *cc,
						    struct flows_stats *s, struct packet *p,
						    int dir, __u64 now)
{
	struct flows_value *v = bpf_map_lookup_elem(&flows, &p->key);
	if (v) {
		/* A new connection on the same ports (a SYN), or the SYN-ACK
		 * of a flow first seen by it. */
		__u8 opener = v->opener;
		if (p->tcp_flags & FLOWS_TCP_SYN &&
		    (!(p->tcp_flags & FLOWS_TCP_ACK) || opener == FLOWS_OPENER_UNKNOWN))
			opener = opener_of(p, dir, 0);
		/* Ports mean what the opener says: a new opener, a new class. */
		if (v->rules_gen != cc->config.gen || opener != v->opener) {
			__u8 class, rule;
			v->opener = opener;
			flow_classify(&cc->config, &p->key, opener, &class, &rule);
			v->class = class;
			v->rule = rule;
			v->rules_gen = cc->config.gen;
		}
		return v;
	}

	struct flows_value init = {};
	init.first_ns = now;
	init.rules_gen = cc->config.gen;
	init.opener = opener_of(p, dir, 1);
	flow_classify(&cc->config, &p->key, init.opener, &init.class, &init.rule);
	if (bpf_map_update_elem(&flows, &p->key, &init, BPF_NOEXIST) == 0) {
		__u32 zero = 0;
		struct flows_global *g = bpf_map_lookup_elem(&flows_global, &zero);
		if (g)
			__sync_fetch_and_add(&g->created, 1);
		__sync_fetch_and_add(&s->flows_created, 1);
	}
	/* Ours, or another CPU's inserted first. */
	return bpf_map_lookup_elem(&flows, &p->key);
}

static __always_inline int flows_count(struct __sk_buff *skb, int dir)
{
	struct flows_stats *s = bpf_get_local_storage(&flows_stats, 0);
	struct flows_cgroup_config *cc = bpf_get_local_storage(&flows_config, 0);
	/* The coarse clock (a tick, a few ms) is plenty for an idle time of
	 * seconds, and cheaper on every packet than reading the TSC. */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 len = skb->len;
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;

	/* Per-CPU, but a softirq (an ACK, a retransmit) can interrupt a process
	 * context run on the same CPU: atomic adds keep the totals exact. */
	if (dir == FLOWS_DIR_OUT) {
		__sync_fetch_and_add(&s->egress_bytes, len);
		__sync_fetch_and_add(&s->egress_packets, segs);
		s->egress_last_ns = now;
	} else {
		__sync_fetch_and_add(&s->ingress_bytes, len);
		__sync_fetch_and_add(&s->ingress_packets, segs);
		s->ingress_last_ns = now;
	}

	if (skb->ifindex == FLOWS_LOOPBACK_IFINDEX) {
		ignored_add(s, FLOWS_IGN_LOOPBACK, len, segs, dir);
		return 1;
	}

	struct packet p = {};
	packet_parse(skb, dir, &p);
	__u8 class = FLOWS_COUNTED, rule = 0;
	struct flows_value *v = NULL;
	if (p.parsed) {
		p.key.cgroup_id = cc->cgroup_id;
		if (cc->cgroup_id)
			v = flow_get(cc, s, &p, dir, now);
		if (v)
			class = v->class;
		else
			flow_classify(&cc->config, &p.key, opener_of(&p, dir, 0), &class, &rule);
	}

	if (dir == FLOWS_DIR_IN && p.payload && p.key.proto == IPPROTO_TCP)
		p.payload = tcp_payload_taken(skb, &p);

	if (v) {
		struct flows_dir_stats *d = &v->dir[dir & 1];
		__sync_fetch_and_add(&d->bytes, len);
		__sync_fetch_and_add(&d->packets, segs);
		if (p.payload) {
			__sync_fetch_and_add(&d->payload, p.payload);
			if (d->last_payload_ns != now)
				d->last_payload_ns = now;
			/* Who spoke last, which times of one tick cannot tell. */
			if (v->last_payload_dir != dir + 1)
				v->last_payload_dir = dir + 1;
		}
		/* The coarse clock moves once a tick: a write only then keeps the
		 * entry's cache line from bouncing between the CPUs of the two
		 * directions on every packet. */
		if (v->last_ns != now)
			v->last_ns = now;
		/* Racy ORs of two CPUs could lose a bit: only write what is new. */
		if ((v->tcp_flags[dir & 1] & p.tcp_flags) != p.tcp_flags)
			v->tcp_flags[dir & 1] |= p.tcp_flags;
	}

	if (class != FLOWS_COUNTED) {
		ignored_add(s, class, len, segs, dir);
		return 1;
	}
	/* Light sleep. An awake cgroup pays this one branch, on the line
	 * cgroup_id was read from. A frozen container's own packets (its
	 * kernel's ACKs, keepalive answers, retransmits) are in the totals
	 * and the flow's detail only: never its activity, nor ignored. */
	if (wake_hook && cc->frozen) {
		if (dir == FLOWS_DIR_OUT)
			return 1;
		/* What does not wake it is not its use either (an empty
		 * datagram with wake_on_data): it would keep it from the stop. */
		if (!flows_wake_check(cc, &p, now))
			return 1;
	}
	if (p.key.proto == IPPROTO_TCP && !p.payload) {
		ignored_add(s, FLOWS_IGN_NO_PAYLOAD, len, segs, dir);
		return 1;
	}
	__sync_fetch_and_add(&s->counted_bytes, len);
	__sync_fetch_and_add(&s->counted_packets, segs);
	s->counted_last_ns = now;
	s->last_counted = p.key;
	s->last_counted_dir = dir;
	if (v && v->last_counted_ns != now)
		v->last_counted_ns = now;

	/* 1 = let the packet through, untouched: counting must never drop. */
	return 1;
}

SEC("cgroup_skb/egress")
int flows_egress(struct __sk_buff *skb)
{
	return flows_count(skb, FLOWS_DIR_OUT);
}

SEC("cgroup_skb/ingress")
int flows_ingress(struct __sk_buff *skb)
{
	return flows_count(skb, FLOWS_DIR_IN);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
