/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * bench_egress's tests, what each measures, and its report: the tables, the
 * targets beside the figures, and the checks that make a figure meaningless
 * when they fail (a broken counter, not a slow one). Only bench_egress.c
 * includes it.
 */

#include <stdint.h>

#include "bench.h"
#include "bench_egress_io.h"
#include "dozed/flow_counter.h"

#define MAX_PAIRS 512
#define SPRAY_MAP 4096 /* flow map entries in the UDP tests */
/* The counter's runs with the kernel's BPF statistics on, in STATS_PAIRS
 * windows, each beside one with the empty program. */
#define STATS_RUN_S (bench_quick() ? 0.05 : 1.0)
#define STATS_PAIRS 8
#define LOSS_TARGET 0.98  /* pairwise ratio: <= 2 % throughput loss */
#define NS_TARGET   200.0 /* ns per packet */

static double seconds_per_run = 0.25;
static int pairs = 48;

enum test {
	TEST_SEND,
	TEST_RECV,
	TEST_RR,
	TEST_RR_RULES,
	TEST_RR1,
	TEST_SPRAY,
	TEST_SPRAY_RULES,
	N_TESTS
};

struct test_def {
	const char *name, *unit;
	enum traffic traffic;
	bool rules;	/* the 16 ignore rules */
	bool small_map; /* the counter with a SPRAY_MAP-entry flow map */
};

static const struct test_def defs[N_TESTS] = {
    [TEST_SEND] = {"bulk send (container -> peer)", "MB/s", TRAFFIC_SEND, false, false},
    [TEST_RECV] = {"bulk receive (peer -> container)", "MB/s", TRAFFIC_RECV, false, false},
    [TEST_RR] = {"1-byte ping-pong", "round trips/s", TRAFFIC_RR, false, false},
    [TEST_RR_RULES] = {"1-byte ping-pong, 16 ignore rules", "round trips/s", TRAFFIC_RR, true,
		       false},
    [TEST_RR1] = {"1-byte ping-pong, peer on the same CPU", "round trips/s", TRAFFIC_RR1, false,
		  false},
    [TEST_SPRAY] = {"UDP, a new flow per datagram, map full", "datagrams/s", TRAFFIC_SPRAY, false,
		    true},
    [TEST_SPRAY_RULES] = {"UDP, as above, with 16 ignore rules", "datagrams/s", TRAFFIC_SPRAY, true,
			  true},
};

/* The cost of one program, from the kernel's statistics. */
struct prog_cost {
	double runs_per_s, ns_per_run;
};

struct test_result {
	double detached[MAX_PAIRS], attached[MAX_PAIRS], pair_ratio[MAX_PAIRS];
	uint64_t moved_attached; /* by the peer (UDP: the sender), in attached runs */
	uint64_t moved_max;	 /* in one attached run */
	uint64_t peer_received;	 /* UDP: datagrams the peer received in attached runs */
	struct flow_totals seen; /* what the counter saw in attached runs (deltas) */
	/* Of the test's counter, while the test ran: detached before and after,
	 * so exact (evicted = created - live - deleted). */
	uint64_t created, evicted;
	unsigned progs_detached_max; /* on the cgroup's ingress or egress, in detached runs */
	unsigned progs_attached_min; /* on each of them, in attached ones */
	uint64_t retrans_attached, retrans_detached; /* TCP segments */
	/* More attached runs, with the kernel's BPF run-time statistics on. */
	struct prog_cost cost[2]; /* by enum flows_dir */
	double ns_per_packet, packets_per_s, core_share;
	/* And with a program that does nothing on both hooks instead: what the
	 * statistics and a program's call cost by themselves; net: the median
	 * of the differences, window by window. */
	double empty_ns_per_packet, net_ns_per_packet;
	struct bench_stat det, att, pair;
	double pair_lo, pair_hi; /* 95 % confidence interval of the pairwise median */
};

/* --- the report ------------------------------------------------------------------ */

/* The throughput target, judged on the pairwise ratio and its interval. */
static const char *ratio_verdict(const struct test_result *t)
{
	if (bench_quick())
		return "not judged";
	if (t->pair_lo >= LOSS_TARGET)
		return "met";
	if (t->pair_hi < LOSS_TARGET)
		return "MISSED";
	return t->pair.p50 >= LOSS_TARGET ? "met, noisy" : "MISSED, noisy";
}

static const char *ns_verdict(double ns)
{
	return bench_quick() ? "not judged" : ns <= NS_TARGET ? "met" : "MISSED";
}

static void print_throughput(const struct test_result *res)
{
	printf("\nFlow counter cost (both programs, ingress and egress, as the daemon attaches "
	       "them; container -> veth -> peer\nnamespace; %d ABBA pairs of %.2f s runs per "
	       "test, alternating on one busy stream; ratio = attached /\ndetached medians; "
	       "pairwise = median of the per-pair ratios, with its 95 %% confidence interval; "
	       "p95 =\nthe slow end; target: <= 2 %% loss, the pairwise ratio >= %.2f)\n",
	       pairs, seconds_per_run, LOSS_TARGET);
	printf("%-40s %-13s %10s %10s %10s %10s %7s %8s %12s  %s\n", "test", "unit", "detached",
	       "p95", "attached", "p95", "ratio", "pairwise", "95% CI", "<= 2 % loss");
	FILE *csv = bench_csv_open("egress.csv");
	if (csv)
		fprintf(csv, "test,unit,detached_p50,detached_p95,attached_p50,attached_p95,ratio,"
			     "pairwise_ratio,pairwise_ci_low,pairwise_ci_high,moved_attached,"
			     "egress_packets,ingress_packets,counted_bytes,counted_packets,"
			     "flows_created,evicted,prog_ns_per_packet,prog_ns_egress,"
			     "prog_ns_ingress,empty_prog_ns_per_packet,prog_core_share\n");
	for (int i = 0; i < N_TESTS; i++) {
		const struct test_result *t = &res[i];
		double ratio = t->att.p50 / t->det.p50;
		bool mb = defs[i].traffic == TRAFFIC_SEND || defs[i].traffic == TRAFFIC_RECV;
		const char *fmt =
		    mb ? "%-40s %-13s %10.1f %10.1f %10.1f %10.1f %6.3fx %7.3fx  %.3f-%.3f  %s\n"
		       : "%-40s %-13s %10.0f %10.0f %10.0f %10.0f %6.3fx %7.3fx  %.3f-%.3f  %s\n";
		printf(fmt, defs[i].name, defs[i].unit, t->det.p50, t->det.p95, t->att.p50,
		       t->att.p95, ratio, t->pair.p50, t->pair_lo, t->pair_hi, ratio_verdict(t));
		if (csv)
			fprintf(csv,
				"%s,%s,%.1f,%.1f,%.1f,%.1f,%.4f,%.4f,%.4f,%.4f,%llu,%llu,%llu,%llu,"
				"%llu,%llu,%llu,%.1f,%.1f,%.1f,%.1f,%.5f\n",
				defs[i].name, defs[i].unit, t->det.p50, t->det.p95, t->att.p50,
				t->att.p95, ratio, t->pair.p50, t->pair_lo, t->pair_hi,
				(unsigned long long)t->moved_attached,
				(unsigned long long)t->seen.egress_packets,
				(unsigned long long)t->seen.ingress_packets,
				(unsigned long long)t->seen.counted_bytes,
				(unsigned long long)t->seen.counted_packets,
				(unsigned long long)t->seen.flows_created,
				(unsigned long long)t->evicted, t->ns_per_packet,
				t->cost[FLOWS_DIR_OUT].ns_per_run, t->cost[FLOWS_DIR_IN].ns_per_run,
				t->empty_ns_per_packet, t->core_share);
	}
	if (csv)
		fclose(csv);
}

static void print_cost(const struct test_result *res)
{
	printf(
	    "\nThe programs' own CPU time (%d windows of %.2f s more attached per test, with the "
	    "kernel's BPF run-time\nstatistics on, each followed by one with a program that "
	    "only returns 1 on both hooks instead; medians\nover the windows; ns/packet = the "
	    "run time of both programs over their runs, one run per skb (a GSO\nskb is one "
	    "run); empty = the same of the empty program: the statistics' own clock reads and a "
	    "program's\ncall; net = ns/packet - empty; the target is judged on ns/packet, <= "
	    "%.0f ns)\n",
	    STATS_PAIRS, STATS_RUN_S / STATS_PAIRS, NS_TARGET);
	printf("%-40s %11s %7s %11s %7s %9s %6s %6s %7s  %s\n", "test", "egress/s", "ns/run",
	       "ingress/s", "ns/run", "ns/packet", "empty", "net", "% core", "<= 200 ns");
	for (int i = 0; i < N_TESTS; i++) {
		const struct test_result *t = &res[i];
		printf("%-40s %11.0f %7.1f %11.0f %7.1f %9.1f %6.1f %6.1f %6.2f%%  %s\n",
		       defs[i].name, t->cost[FLOWS_DIR_OUT].runs_per_s,
		       t->cost[FLOWS_DIR_OUT].ns_per_run, t->cost[FLOWS_DIR_IN].runs_per_s,
		       t->cost[FLOWS_DIR_IN].ns_per_run, t->ns_per_packet, t->empty_ns_per_packet,
		       t->net_ns_per_packet, t->core_share * 100.0, ns_verdict(t->ns_per_packet));
	}
	/* The same cost seen from outside: what a round trip takes longer
	 * attached, over the packets a round trip passes the hooks with. This
	 * includes the hook's own cost (the kernel skips it with nothing attached). */
	printf("  From the round trips (the difference of two rates: noisy; the hook's own cost "
	       "included):\n");
	for (int i = TEST_RR; i <= TEST_RR1; i += TEST_RR1 - TEST_RR) {
		const struct test_result *p = &res[i];
		double per_rt = (double)(p->seen.egress_packets + p->seen.ingress_packets) /
				(double)(p->moved_attached ? p->moved_attached : 1);
		double extra_ns = p->det.p50 > 0 && p->pair.p50 > 0
				      ? 1e9 / p->det.p50 * (1.0 / p->pair.p50 - 1.0)
				      : 0;
		printf("  %-38s %.0f ns more per round trip attached (pairwise), %.2f packets "
		       "per round trip: %.0f ns per packet\n",
		       defs[i].name, extra_ns, per_rt, extra_ns / (per_rt > 0 ? per_rt : 1));
	}
}

static void print_sanity(const struct test_result *res)
{
	const struct test_result *s = &res[TEST_SEND], *v = &res[TEST_RECV], *p = &res[TEST_RR];
	const struct test_result *q = &res[TEST_RR1];
	printf("\nCounter sanity (attached runs; bytes are skb->len, IP headers included):\n");
	printf("  bulk send:    %llu bytes reached the peer, %llu seen out (%.4fx) in %llu packets "
	       "(%.0f B/packet: GSO),\n                %llu counted as activity; %llu packets in "
	       "(the peer's ACKs), %llu of them without payload\n",
	       (unsigned long long)s->moved_attached, (unsigned long long)s->seen.egress_bytes,
	       (double)s->seen.egress_bytes / (double)(s->moved_attached ? s->moved_attached : 1),
	       (unsigned long long)s->seen.egress_packets,
	       (double)s->seen.egress_bytes /
		   (double)(s->seen.egress_packets ? s->seen.egress_packets : 1),
	       (unsigned long long)s->seen.counted_bytes,
	       (unsigned long long)s->seen.ingress_packets,
	       (unsigned long long)s->seen.ignored[FLOWS_IGN_NO_PAYLOAD].packets);
	printf("                TCP segments retransmitted: %llu in attached runs, %llu in "
	       "detached ones (veth backlog drops)\n",
	       (unsigned long long)s->retrans_attached, (unsigned long long)s->retrans_detached);
	printf("  bulk receive: %llu bytes sent by the peer, %llu seen in (%.4fx) in %llu packets; "
	       "%llu packets out (the\n                container's ACKs), %llu of them without "
	       "payload\n",
	       (unsigned long long)v->moved_attached, (unsigned long long)v->seen.ingress_bytes,
	       (double)v->seen.ingress_bytes / (double)(v->moved_attached ? v->moved_attached : 1),
	       (unsigned long long)v->seen.ingress_packets,
	       (unsigned long long)v->seen.egress_packets,
	       (unsigned long long)v->seen.ignored[FLOWS_IGN_NO_PAYLOAD].packets_out);
	for (const struct test_result *t = p; t <= q; t++)
		printf("  %s: %llu round trips, %.4f packets out and %.4f in per round trip, "
		       "%llu counted, %llu ignored by a rule\n",
		       t == p	? "ping-pong"
		       : t == q ? "same CPU"
				: "with rules",
		       (unsigned long long)t->moved_attached,
		       (double)t->seen.egress_packets /
			   (double)(t->moved_attached ? t->moved_attached : 1),
		       (double)t->seen.ingress_packets /
			   (double)(t->moved_attached ? t->moved_attached : 1),
		       (unsigned long long)t->seen.counted_packets,
		       (unsigned long long)t->seen.ignored[FLOWS_IGN_RULE].packets);
	for (int i = TEST_SPRAY; i <= TEST_SPRAY_RULES; i++) {
		const struct test_result *t = &res[i];
		printf("  UDP%s: %llu datagrams sent, %llu received by the peer, %llu seen out, "
		       "%llu counted, %llu new flows;\n          over the whole test %llu flows "
		       "created, %llu evicted (%.3f per flow; map of %d, %d peers in turn)\n",
		       i == TEST_SPRAY ? "" : " + rules", (unsigned long long)t->moved_attached,
		       (unsigned long long)t->peer_received,
		       (unsigned long long)t->seen.egress_packets,
		       (unsigned long long)t->seen.counted_packets,
		       (unsigned long long)t->seen.flows_created, (unsigned long long)t->created,
		       (unsigned long long)t->evicted,
		       (double)t->evicted / (double)(t->created ? t->created : 1), SPRAY_MAP,
		       SPRAY_PEERS);
	}
	unsigned det_max = 0, att_min = UINT32_MAX;
	for (int i = 0; i < N_TESTS; i++) {
		if (res[i].progs_detached_max > det_max)
			det_max = res[i].progs_detached_max;
		if (res[i].progs_attached_min < att_min)
			att_min = res[i].progs_attached_min;
	}
	printf("  programs on each of the cgroup's ingress and egress, checked at every run: %u "
	       "at most in detached\n  runs, %u at least in attached ones\n",
	       det_max, att_min);
}

static void print_results(const struct test_result *res)
{
	print_throughput(res);
	print_cost(res);
	print_sanity(res);
	/* The daemon's usual traffic decides the targets; the spray is the
	 * worst case beside them. */
	const struct test_result *w = &res[TEST_SEND], *c = &res[TEST_SEND];
	for (int i = TEST_SEND; i < TEST_SPRAY; i++) {
		if (res[i].pair.p50 < w->pair.p50)
			w = &res[i];
		if (res[i].ns_per_packet > c->ns_per_packet)
			c = &res[i];
	}
	printf("\nTargets (TCP tests; the UDP spray is the worst case beside them):\n"
	       "  <= 2 %% throughput loss: %s (worst: %s, pairwise %.3f, %.3f-%.3f, loss %.1f "
	       "%%)\n  <= 200 ns per packet:    %s (worst: %s, %.1f ns; the spray with rules: "
	       "%.1f ns)\n",
	       ratio_verdict(w), defs[w - res].name, w->pair.p50, w->pair_lo, w->pair_hi,
	       (1.0 - w->pair.p50) * 100.0, ns_verdict(c->ns_per_packet), defs[c - res].name,
	       c->ns_per_packet, res[TEST_SPRAY_RULES].ns_per_packet);
}

/* What would make a figure meaningless: a broken counter, not a slow one. */
static int check_results(const struct test_result *res)
{
	int r = 0;
	for (int i = 0; i < N_TESTS; i++) {
		const struct test_result *t = &res[i];
		if (t->seen.counted_packets == 0) {
			fprintf(stderr, "bench: %s: the attached counter counted no packet\n",
				defs[i].name);
			r = -EPROTO;
		}
		if (t->progs_detached_max != 0 || t->progs_attached_min != 1) {
			fprintf(stderr,
				"bench: %s: %u programs on a hook detached, %u attached (0 and "
				"1 expected)\n",
				defs[i].name, t->progs_detached_max, t->progs_attached_min);
			r = -EPROTO;
		}
		/* One run sending twice the map's room must have pushed flows out. */
		if (defs[i].small_map && t->moved_max > 2 * SPRAY_MAP && t->evicted == 0) {
			fprintf(stderr,
				"bench: %s: %llu datagrams to new flows in one run, no "
				"eviction: the row does not measure the LRU churn\n",
				defs[i].name, (unsigned long long)t->moved_max);
			r = -EPROTO;
		}
	}
	return r;
}
