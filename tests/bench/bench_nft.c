// SPDX-License-Identifier: MIT
/*
 * nft set change times: one port added and removed, 10 000 ports in one
 * batch, and one port changed while 10 000 are present (a host with many
 * sleeping services). In a private network namespace; medians and p95 over
 * repeated runs. Prints a table and writes tests/bench/results/nft.csv.
 * BENCH_QUICK=1: 100 ports, 3 and 2 runs (see bench.h).
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dozed/log.h"
#include "dozed/nft.h"

#define N_BULK_MAX   10000
#define REPS_ONE_MAX 200
#define N_BULK	     (bench_quick() ? 100 : N_BULK_MAX)
#define REPS_ONE     (bench_quick() ? 3 : REPS_ONE_MAX)
#define REPS_BULK    (bench_quick() ? 2 : 10)
#define FIRST_PORT   20000

struct row {
	const char *what;
	double p50, p95;
};

static void summarize(struct row *row, double *samples, int n)
{
	struct bench_stat st = bench_stat_of(samples, (size_t)n, false);
	row->p50 = st.p50;
	row->p95 = st.p95;
}

/* Times add(ports) and remove(ports), n_reps each. */
static int measure(struct nft_ctx *ctx, const uint16_t *ports, size_t n, int reps,
		   struct row *add_row, struct row *remove_row)
{
	double add[REPS_ONE_MAX] = {0}, rem[REPS_ONE_MAX] = {0};
	for (int i = 0; i < reps; i++) {
		double t0 = bench_now_us();
		if (nft_set_add_ports(ctx, ports, n) < 0)
			return -1;
		double t1 = bench_now_us();
		if (nft_set_remove_ports(ctx, ports, n) < 0)
			return -1;
		double t2 = bench_now_us();
		add[i] = t1 - t0;
		rem[i] = t2 - t1;
	}
	summarize(add_row, add, reps);
	summarize(remove_row, rem, reps);
	return 0;
}

int main(void)
{
	if (netns_enter_private() < 0)
		return 1;
	log_set_max_level(LOG_WARNING);
	struct nft_ctx *ctx = NULL;
	if (nft_ctx_new(&ctx, "dozedbench", 0x1d0, 21001) < 0 || nft_table_create(ctx) < 0)
		return 1;

	static uint16_t bulk[N_BULK_MAX + 1];
	for (int i = 0; i <= N_BULK; i++)
		bulk[i] = (uint16_t)(FIRST_PORT + i);
	char labels[4][64];
	snprintf(labels[0], sizeof(labels[0]), "add %d ports (one batch)", N_BULK);
	snprintf(labels[1], sizeof(labels[1]), "remove %d ports (one batch)", N_BULK);
	snprintf(labels[2], sizeof(labels[2]), "add 1 port, %d present", N_BULK);
	snprintf(labels[3], sizeof(labels[3]), "remove 1 port, %d present", N_BULK);
	struct row rows[6] = {
	    {.what = "add 1 port"}, {.what = "remove 1 port"}, {.what = labels[0]},
	    {.what = labels[1]},    {.what = labels[2]},       {.what = labels[3]},
	};
	int r = measure(ctx, &bulk[N_BULK], 1, REPS_ONE, &rows[0], &rows[1]);
	if (r >= 0)
		r = measure(ctx, bulk, (size_t)N_BULK, REPS_BULK, &rows[2], &rows[3]);
	if (r >= 0)
		r = nft_set_add_ports(ctx, bulk, (size_t)N_BULK);
	if (r >= 0)
		r = measure(ctx, &bulk[N_BULK], 1, REPS_ONE, &rows[4], &rows[5]);
	nft_table_destroy(ctx);
	nft_ctx_free(ctx);
	if (r < 0)
		return 1;

	FILE *csv = bench_csv_open("nft.csv");
	if (csv)
		fprintf(csv, "operation,p50_us,p95_us\n");
	printf("\nnft set changes (one netlink transaction each; %d runs of 1 port, %d of %d)%s\n",
	       REPS_ONE, REPS_BULK, N_BULK, bench_quick() ? " [quick run: no results]" : "");
	printf("%-34s %12s %12s\n", "operation", "p50 µs", "p95 µs");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		printf("%-34s %12.0f %12.0f\n", rows[i].what, rows[i].p50, rows[i].p95);
		if (csv)
			fprintf(csv, "%s,%.0f,%.0f\n", rows[i].what, rows[i].p50, rows[i].p95);
	}
	if (csv)
		fclose(csv);
	return 0;
}
