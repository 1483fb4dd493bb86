// SPDX-License-Identifier: MIT
/*
 * Flow counter cost: throughput and round-trip rate of a process in a test
 * cgroup (the "container") with dozed's flow counter attached to that cgroup
 * vs detached. Attached means as the daemon attaches it: both programs,
 * cgroup_skb/egress and cgroup_skb/ingress (flow_counter_attach).
 *
 * The container talks to a peer in another network namespace over a veth
 * pair, as a container talks to the host through its veth: 10.213.0.1 (the
 * container's private namespace) to 10.213.0.2 (the peer's). With 2 CPUs or
 * more the container is pinned to CPU 0 and the peer to CPU 1. The tests:
 *   - bulk send: every data packet passes the egress program, the peer's
 *     ACKs the ingress one;
 *   - bulk receive: the data passes ingress, the container's ACKs egress;
 *   - 1-byte ping-pong: each round trip is one packet each way, the cost
 *     per packet matters most there; again with 16 ignore rules set, and
 *     with the peer on the container's CPU (each CPU otherwise idles between
 *     the packets, and the flow's entry moves between the two CPUs' caches:
 *     the container's ingress runs where the peer sent from);
 *   - the worst case: UDP, 1 byte to one of 16 256 peer addresses in turn
 *     (10.214.0-63.1-254, all the peer's), each datagram a new flow, with a
 *     flow map of SPRAY_MAP entries: every datagram inserts a flow and, once
 *     the map is full, evicts one; and the same with the 16 ignore rules
 *     (each new flow classifies through all of them).
 * The ignore rules are 198.51.100.1:5201 .. 198.51.100.16:5201: every
 * packet's protocol and peer port match each rule's, its address none, so
 * every rule is checked to its end (the address is compared last).
 *
 * Each test is one stream kept busy while the counter is attached and
 * detached in turn: a run is a window of it in one state (the switch itself
 * falls between windows), and runs alternate in ABBA pairs. Short alternating
 * windows put the load of anything else on the machine on both sides alike,
 * where long runs would let it land on one. TCP rates are counted by the
 * peer, UDP ones by the sender (the cost is the sender's CPU; what the peer
 * received is shown beside).
 *
 * The cost per packet comes from the kernel's BPF run-time statistics in one
 * more attached run per test: the run time of both programs over their runs
 * (one run per skb; a GSO skb is one run). It is checked against the
 * ping-pong's round-trip times: the extra time per round trip attached, over
 * the packets of a round trip.
 *
 * Prints a table (medians and p95 over the runs, ratio attached/detached),
 * the targets beside the figures (<= 2 % throughput loss, <= 200 ns per
 * packet), writes tests/bench/results/egress.csv, and every run to
 * egress_runs.csv. Slow figures are figures: nothing fails on timing.
 *
 * Usage: bench_egress [SECONDS_PER_RUN [PAIRS]]   (defaults 0.25 and 48)
 * BENCH_QUICK=1: 2 pairs of 0.02 s, short warm-up and statistics runs, no
 * target judged (see bench.h). A test whose attached runs counted no packet
 * fails, in either mode: the counter is broken, not slow.
 */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdint.h>

#include "bench.h"
#include "bench_egress_io.h"
#include "bench_egress_report.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"

#define LOCAL_CIDR "10.213.0.1/24"
#define PEER_CIDR  "10.213.0.2/24"
#define WARMUP_S   (bench_quick() ? 0.05 : 0.3) /* before the first run: slow start, caches */

/* --- the measurement ------------------------------------------------------------- */

struct bench {
	struct flow_counter *counter; /* the daemon's: FLOWS_MAP_MAX_ENTRIES flows */
	struct flow_counter *small;   /* SPRAY_MAP flows */
	struct flow_rules rules;
	char cgroup[PATH_MAX];
	int req_fd, res_fd;
	pid_t container;
	struct flow_counter *attached_to;
	struct flow_attachment *attachment; /* NULL: detached */
};

static void totals_add_delta(struct flow_totals *sum, const struct flow_totals *a,
			     const struct flow_totals *b)
{
	sum->egress_bytes += b->egress_bytes - a->egress_bytes;
	sum->egress_packets += b->egress_packets - a->egress_packets;
	sum->ingress_bytes += b->ingress_bytes - a->ingress_bytes;
	sum->ingress_packets += b->ingress_packets - a->ingress_packets;
	sum->counted_bytes += b->counted_bytes - a->counted_bytes;
	sum->counted_packets += b->counted_packets - a->counted_packets;
	sum->flows_created += b->flows_created - a->flows_created;
	for (int i = 0; i < FLOWS_CLASS_MAX; i++) {
		sum->ignored[i].bytes += b->ignored[i].bytes - a->ignored[i].bytes;
		sum->ignored[i].packets += b->ignored[i].packets - a->ignored[i].packets;
		sum->ignored[i].packets_out +=
		    b->ignored[i].packets_out - a->ignored[i].packets_out;
	}
}

/* The counter in the state a test wants: attached as the daemon attaches
 * it (both programs), its rules set, or nothing on the cgroup. */
static int counter_set(struct bench *b, const struct test_def *def, bool attached)
{
	struct flow_counter *want = def->small_map ? b->small : b->counter;
	if (b->attachment && (!attached || b->attached_to != want)) {
		flow_counter_detach(b->attachment);
		b->attachment = NULL;
		b->attached_to = NULL;
	}
	if (!attached || b->attachment)
		return 0;
	int r = flow_counter_attach(want, b->cgroup, &b->attachment);
	if (r < 0)
		return r;
	b->attached_to = want;
	return def->rules ? flow_counter_set_rules(want, b->attachment, &b->rules) : 0;
}

static int note_progs(const char *dir, bool attached, struct test_result *t)
{
	for (int k = 0; k < 2; k++) {
		int n =
		    cgroup_progs(dir, k ? BPF_CGROUP_INET_INGRESS : BPF_CGROUP_INET_EGRESS, NULL);
		if (n < 0)
			return n;
		if (attached && (unsigned)n < t->progs_attached_min)
			t->progs_attached_min = (unsigned)n;
		if (!attached && (unsigned)n > t->progs_detached_max)
			t->progs_detached_max = (unsigned)n;
	}
	return 0;
}

/* One run: the counter in its state first, then the window timed on its own. */
static int run_window(struct bench *b, enum test test, bool attached, double seconds,
		      struct test_result *t, double *rate)
{
	const struct test_def *def = &defs[test];
	int r = counter_set(b, def, attached);
	if (r == 0)
		r = note_progs(b->cgroup, attached, t);
	if (r < 0)
		return r;
	struct flow_totals before = {0}, after = {0};
	uint64_t retrans = tcp_retrans_segs();
	double t0 = bench_now_us();
	uint64_t m0 = traffic_moved(def->traffic), p0 = peer_moved[def->traffic];
	if (attached && flow_counter_read(b->attached_to, b->attachment, &before) < 0)
		return -EIO;
	sleep_until_us(t0 + seconds * 1e6);
	if (attached && flow_counter_read(b->attached_to, b->attachment, &after) < 0)
		return -EIO;
	uint64_t m1 = traffic_moved(def->traffic), p1 = peer_moved[def->traffic];
	double t1 = bench_now_us();
	retrans = tcp_retrans_segs() - retrans;
	*rate = (double)(m1 - m0) / ((t1 - t0) / 1e6) /
		(def->traffic == TRAFFIC_SEND || def->traffic == TRAFFIC_RECV ? 1e6 : 1.0);
	if (attached) {
		t->moved_attached += m1 - m0;
		if (m1 - m0 > t->moved_max)
			t->moved_max = m1 - m0;
		t->peer_received += p1 - p0;
		totals_add_delta(&t->seen, &before, &after);
		t->retrans_attached += retrans;
	} else {
		t->retrans_detached += retrans;
	}
	return 0;
}

static int both_prog_stats(const char *dir, uint64_t ns[2], uint64_t cnt[2])
{
	int r = prog_stats(dir, BPF_CGROUP_INET_EGRESS, &ns[FLOWS_DIR_OUT], &cnt[FLOWS_DIR_OUT]);
	if (r == 0)
		r = prog_stats(dir, BPF_CGROUP_INET_INGRESS, &ns[FLOWS_DIR_IN], &cnt[FLOWS_DIR_IN]);
	return r;
}

/* return 1: what a cgroup_skb program that does nothing is. */
static int empty_prog_load(void)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "dz_bench_empty", "Dual MIT/GPL", insns, 2,
			       NULL);
	return fd < 0 ? -errno : fd;
}

/* The empty program on both hooks of the cgroup (the counter detached):
 * the links' fds in out[2]. */
static int empty_prog_attach(struct bench *b, enum test test, int prog, int out[2])
{
	int r = counter_set(b, &defs[test], false);
	if (r < 0)
		return r;
	_cleanup_close_ int cg = open(b->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return -errno;
	out[0] = bpf_link_create(prog, cg, BPF_CGROUP_INET_EGRESS, NULL);
	out[1] = out[0] < 0 ? -1 : bpf_link_create(prog, cg, BPF_CGROUP_INET_INGRESS, NULL);
	if (out[1] < 0) {
		r = -errno;
		if (out[0] >= 0)
			close(out[0]);
		return r;
	}
	return 0;
}

/* One window of the kernel's statistics of what is on the cgroup's hooks:
 * run time and runs per direction (one program on both: all in [OUT]). */
static int stats_window(const char *dir, bool both, double seconds, uint64_t ns[2], uint64_t cnt[2],
			double *elapsed_s)
{
	uint64_t ns0[2] = {0}, cnt0[2] = {0}, ns1[2] = {0}, cnt1[2] = {0};
	double t0 = bench_now_us();
	int r = both ? both_prog_stats(dir, ns0, cnt0)
		     : prog_stats(dir, BPF_CGROUP_INET_EGRESS, &ns0[0], &cnt0[0]);
	sleep_until_us(t0 + seconds * 1e6);
	if (r == 0)
		r = both ? both_prog_stats(dir, ns1, cnt1)
			 : prog_stats(dir, BPF_CGROUP_INET_EGRESS, &ns1[0], &cnt1[0]);
	*elapsed_s = (bench_now_us() - t0) / 1e6;
	for (int d = 0; d < 2; d++) {
		ns[d] = ns1[d] - ns0[d];
		cnt[d] = cnt1[d] - cnt0[d];
	}
	return r;
}

/*
 * The programs' own CPU time, apart from the timed runs (the statistics cost
 * a little themselves: two clock reads around each run): STATS_PAIRS
 * windows with the counter attached, each followed by one with the empty
 * program instead, as the runs alternate; medians over the windows.
 */
static int run_with_prog_stats(struct bench *b, enum test test, struct test_result *t)
{
	_cleanup_close_ int prog = empty_prog_load();
	_cleanup_close_ int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (prog < 0 || stats < 0)
		return prog < 0 ? prog : -errno;
	double win_s = STATS_RUN_S / STATS_PAIRS, flow_ns[STATS_PAIRS], empty_ns[STATS_PAIRS],
	       net_ns[STATS_PAIRS], elapsed_sum = 0;
	uint64_t ns_sum[2] = {0}, cnt_sum[2] = {0};
	int n = 0, r = 0;
	for (int i = 0; r == 0 && i < STATS_PAIRS; i++) {
		uint64_t ns[2] = {0}, cnt[2] = {0}, ens[2] = {0}, ecnt[2] = {0};
		double elapsed = 0, e_elapsed = 0;
		r = counter_set(b, &defs[test], true);
		if (r == 0)
			r = stats_window(b->cgroup, true, win_s, ns, cnt, &elapsed);
		int links[2] = {-1, -1};
		if (r == 0)
			r = empty_prog_attach(b, test, prog, links);
		if (r == 0)
			r = stats_window(b->cgroup, false, win_s, ens, ecnt, &e_elapsed);
		for (int k = 0; k < 2; k++)
			if (links[k] >= 0)
				close(links[k]);
		if (r < 0 || cnt[0] + cnt[1] == 0 || ecnt[0] == 0)
			continue;
		for (int d = 0; d < 2; d++) {
			ns_sum[d] += ns[d];
			cnt_sum[d] += cnt[d];
		}
		elapsed_sum += elapsed;
		flow_ns[n] = (double)(ns[0] + ns[1]) / (double)(cnt[0] + cnt[1]);
		empty_ns[n] = (double)ens[0] / (double)ecnt[0];
		net_ns[n] = flow_ns[n] - empty_ns[n];
		n++;
	}
	if (r < 0 || n == 0)
		return r;
	for (int d = 0; d < 2; d++) {
		t->cost[d].runs_per_s = (double)cnt_sum[d] / elapsed_sum;
		t->cost[d].ns_per_run = cnt_sum[d] ? (double)ns_sum[d] / (double)cnt_sum[d] : 0;
	}
	t->ns_per_packet = bench_stat_of(flow_ns, (size_t)n, false).p50;
	t->empty_ns_per_packet = bench_stat_of(empty_ns, (size_t)n, false).p50;
	t->net_ns_per_packet = bench_stat_of(net_ns, (size_t)n, false).p50;
	t->packets_per_s = (double)(cnt_sum[0] + cnt_sum[1]) / elapsed_sum;
	t->core_share = (double)(ns_sum[0] + ns_sum[1]) / (elapsed_sum * 1e9);
	return 0;
}

static int run_test(struct bench *b, enum test test, struct test_result *t, FILE *runs_csv)
{
	const struct test_def *def = &defs[test];
	struct request req = {.traffic = def->traffic};
	atomic_store(&shared->stop, 0);
	int r = write_full(b->req_fd, &req, sizeof(req));
	if (r < 0)
		return r;
	t->progs_attached_min = UINT32_MAX;
	struct flow_counter *c = def->small_map ? b->small : b->counter;
	struct flow_map_stats m0, m1;
	if (flow_counter_map_stats(c, &m0) < 0)
		return -EIO;
	double start = bench_now_us();
	sleep_until_us(start + WARMUP_S * 1e6);
	if (traffic_moved(def->traffic) == 0) {
		fprintf(stderr, "bench: %s: nothing moved during the warm-up\n", def->name);
		r = -EIO;
	}
	for (int i = 0; r == 0 && i < pairs; i++) {
		/* ABBA: which goes first alternates, so a trend cancels out. */
		bool attached_first = i % 2 == 0;
		for (int k = 0; r == 0 && k < 2; k++) {
			bool attached = (k == 0) == attached_first;
			r = run_window(b, test, attached, seconds_per_run, t,
				       attached ? &t->attached[i] : &t->detached[i]);
		}
		if (r == 0) {
			t->pair_ratio[i] = t->attached[i] / t->detached[i];
			if (runs_csv)
				fprintf(runs_csv, "%s,%d,%s,%.1f,%.1f\n", def->name, i,
					attached_first ? "attached" : "detached", t->detached[i],
					t->attached[i]);
		}
	}
	if (r == 0)
		r = run_with_prog_stats(b, test, t);
	atomic_store(&shared->stop, 1);
	int rd = counter_set(b, def, false);
	if (rd == 0 && flow_counter_map_stats(c, &m1) == 0) {
		t->created = m1.created - m0.created;
		t->evicted = m1.evicted - m0.evicted;
	}
	struct result res;
	int rr = read_full(b->res_fd, &res, sizeof(res));
	if (rr < 0) {
		fprintf(stderr, "bench: the container process is gone: %s\n", strerror(-rr));
		return rr;
	}
	if (res.err < 0) {
		fprintf(stderr, "bench: %s: the container's stream failed: %s\n", def->name,
			strerror(-res.err));
		return res.err;
	}
	if (r < 0 || rd < 0) {
		fprintf(stderr, "bench: %s: %s\n", def->name, strerror(r < 0 ? -r : -rd));
		return r < 0 ? r : rd;
	}
	t->det = bench_stat_of(t->detached, (size_t)pairs, true);
	t->att = bench_stat_of(t->attached, (size_t)pairs, true);
	t->pair = bench_stat_of(t->pair_ratio, (size_t)pairs, true);
	bench_median_ci95(t->pair_ratio, (size_t)pairs, &t->pair_lo, &t->pair_hi);
	return 0;
}

/* 198.51.100.1:PEER_PORT .. .16: each matches every packet's protocol and
 * peer port, none its peer address. */
static int rules_make(struct flow_rules *out)
{
	char text[512] = "";
	size_t len = 0;
	for (int i = 1; i <= FLOW_RULES_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s198.51.100.%d:%d",
					i > 1 ? "," : "", i, PEER_PORT);
	const char *why = NULL;
	int r = flow_rules_parse(text, out, &why);
	if (r < 0)
		fprintf(stderr, "bench: the ignore rules: %s\n", why);
	return r;
}

static int bench_body(void *arg)
{
	(void)arg;
	signal(SIGPIPE, SIG_IGN);
	log_set_max_level(LOG_WARNING);
	int r = netns_enter_private();
	int peer_fd = -1;
	if (r == 0)
		r = netns_add_peer(LOCAL_CIDR, PEER_CIDR, &peer_fd);
	if (r == 0)
		r = spray_routes_add(peer_fd);
	if (r < 0)
		return 1;
	r = peers_start(peer_fd);
	if (r < 0) {
		fprintf(stderr, "bench: the peer: %s\n", strerror(-r));
		return 1;
	}

	struct bench b = {.req_fd = -1, .res_fd = -1};
	if (bench_cgroup_create("container", b.cgroup, sizeof(b.cgroup)) < 0 ||
	    rules_make(&b.rules) < 0 || flow_counter_new(0, &b.counter) < 0 ||
	    flow_counter_new(SPRAY_MAP, &b.small) < 0)
		return 1;

	if (container_start(b.cgroup, &b.container, &b.req_fd, &b.res_fd) < 0)
		return 1;

	static struct test_result results[N_TESTS];
	FILE *runs_csv = bench_csv_open("egress_runs.csv");
	if (runs_csv)
		fprintf(runs_csv, "test,pair,first,detached,attached\n");
	for (int i = 0; r == 0 && i < N_TESTS; i++)
		r = run_test(&b, (enum test)i, &results[i], runs_csv);
	if (runs_csv)
		fclose(runs_csv);
	flow_counter_detach(b.attachment);
	close(b.req_fd);
	close(b.res_fd);
	waitpid(b.container, NULL, 0);
	flow_counter_free(b.counter);
	flow_counter_free(b.small);
	if (r < 0)
		return 1;
	print_results(results);
	return check_results(results) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	return egress_main(argc, argv, "bench_egress", &seconds_per_run, &pairs, MAX_PAIRS,
			   bench_body);
}
