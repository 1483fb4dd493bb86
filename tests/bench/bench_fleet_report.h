/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * bench_fleet's sizes, what it measures and its report: the table (b) of the
 * scale benchmarks, the targets beside the figures, and its rows in
 * tests/bench/results/fleet.csv. Only bench_fleet.c includes it.
 */

#include <stdint.h>
#include <stdio.h>

#include "bench.h"
#include "dozed/config.h"
#include "dozed/flow_counter.h"

#define N_SERVICES_MAX	  1000
#define N_SERVICES	  (bench_quick() ? 10 : N_SERVICES_MAX)
#define PORTS_PER_SERVICE 10
/* 30 000 flows in a map of FLOWS_MAP_MAX_ENTRIES: as full as the map is
 * sized for (32 live flows per service). */
#define FLOWS_PER_SERVICE 30
#define DETACH_SAMPLES	  (bench_quick() ? 2 : 20)

/* Opened before the section's child is forked: it adds its rows. */
static FILE *csv;

struct fleet_results {
	long rss_base_kib, rss_awake_kib, rss_asleep_kib, hwm_kib, hwm_base_kib;
	double cgroups_ms, enable_ms, sleep_all_ms;
	double idle_cpu_pct, idle_wall_s;
	uint64_t idle_timer_fires;
	struct bench_stat scan_ms, reads_ms;
	struct bench_stat nft_add_us, nft_remove_us, svc_redirect_us, svc_unredirect_us;
	size_t ports_in_set;
	long rss_flows_kib;
	double flows_ms, list_all_ms;
	struct flow_map_stats map;
	size_t flows_listed;
	struct bench_stat list_ms, detach_ms;
};

static void fleet_print(const struct fleet_results *res, uint64_t egress_reads, uint64_t events)
{
	const double mib = 1024.0;
	double per_service_kib =
	    (double)(res->rss_awake_kib - res->rss_base_kib) / (double)N_SERVICES;
	long rss_max_kib = res->rss_awake_kib;
	if (res->rss_flows_kib > rss_max_kib)
		rss_max_kib = res->rss_flows_kib;
	if (res->rss_asleep_kib > rss_max_kib)
		rss_max_kib = res->rss_asleep_kib;
	double rss_mib = (double)rss_max_kib / mib;
	double scan_per_service_us = res->scan_ms.p50 * 1000 / N_SERVICES;
	printf(
	    "\n(b) %d enabled services (%d ports each; real flow counter, ingress and egress, on "
	    "%d test cgroups,\n    %d flows each; real nft table, libevent timers, activator; "
	    "runtime start/stop are no-ops\n    completed at once)\n",
	    N_SERVICES, PORTS_PER_SERVICE, N_SERVICES, FLOWS_PER_SERVICE);
	printf("%-58s %12s %12s\n", "measure", "p50", "p95");
	printf("%-58s %9.1f MiB\n", "RSS before any service (counter loaded, nft, activator)",
	       (double)res->rss_base_kib / mib);
	printf("%-58s %9.1f MiB   (%.1f KiB per service)\n",
	       "RSS, 1000 services awake, counters attached, timers armed",
	       (double)res->rss_awake_kib / mib, per_service_kib);
	printf("%-58s %9.1f MiB   (%zu flows listed, %.1f MiB more)\n",
	       "RSS, + their flows in the map, every service's listed",
	       (double)res->rss_flows_kib / mib, res->flows_listed,
	       (double)(res->rss_flows_kib - res->rss_awake_kib) / mib);
	printf("%-58s %9.1f MiB\n", "RSS, 1000 services asleep, 10000 ports in the set",
	       (double)res->rss_asleep_kib / mib);
	printf("%-58s %9.1f MiB   (%.1f MiB before any service: libbpf reads the kernel's BTF)\n",
	       "peak RSS (VmHWM)", (double)res->hwm_kib / mib, (double)res->hwm_base_kib / mib);
	printf("%-58s %11.3f%%   (%llu timer fires in %.1f s)\n",
	       "idle CPU, loop with 1000 idle timers armed (% of a core)", res->idle_cpu_pct,
	       (unsigned long long)res->idle_timer_fires, res->idle_wall_s);
	printf("%-58s %12.2f %12.2f\n", "idle-scan pass, 1000 services (ms)", res->scan_ms.p50,
	       res->scan_ms.p95);
	printf("%-58s %12.2f %12.2f\n", "  of which 1000 counter reads alone (ms)",
	       res->reads_ms.p50, res->reads_ms.p95);
	printf("%-58s %12.2f %12.2f   (all: %.0f ms)\n",
	       "list one service's flows, map as above (ms)", res->list_ms.p50, res->list_ms.p95,
	       res->list_all_ms);
	printf("%-58s %12.2f %12.2f   (%d samples)\n",
	       "detach one service, its flows deleted, map as above (ms)", res->detach_ms.p50,
	       res->detach_ms.p95, DETACH_SAMPLES);
	printf("%-58s %12.0f %12.0f\n", "nft: add 1 port, 10000 present (µs)", res->nft_add_us.p50,
	       res->nft_add_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: remove 1 port, 10000 present (µs)",
	       res->nft_remove_us.p50, res->nft_remove_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: redirect one service's 10 ports, via its ops (µs)",
	       res->svc_redirect_us.p50, res->svc_redirect_us.p95);
	printf("%-58s %12.0f %12.0f\n", "nft: unredirect one service's 10 ports, via its ops (µs)",
	       res->svc_unredirect_us.p50, res->svc_unredirect_us.p95);
	printf("Flow map: %llu of %llu entries live, %llu created, %llu evicted; %d flows per "
	       "service made in %.0f ms\n",
	       (unsigned long long)res->map.live, (unsigned long long)res->map.capacity,
	       (unsigned long long)res->map.created, (unsigned long long)res->map.evicted,
	       FLOWS_PER_SERVICE, res->flows_ms);
	printf(
	    "Set-up, once: %d cgroups made in %.0f ms; %d services enabled and counters attached "
	    "in %.0f ms;\n  all put to sleep (10 ports each into the set) in %.0f ms; %zu ports "
	    "in the set; %llu egress reads, %llu events\n",
	    N_SERVICES, res->cgroups_ms, N_SERVICES, res->enable_ms, res->sleep_all_ms,
	    res->ports_in_set, (unsigned long long)egress_reads, (unsigned long long)events);
	printf("Steady state: each awake service's timer fires at most once per idle time; at "
	       "%.1f µs per fire that is\n  %.4f %% of a core with the default idle of 10 min, "
	       "%.3f %% with an idle of 1 min.\n",
	       scan_per_service_us,
	       scan_per_service_us * N_SERVICES / (DOZED_IDLE_DEFAULT_US / 1e6) / 1e4,
	       scan_per_service_us * N_SERVICES / 60.0 / 1e4);
	if (bench_quick())
		printf("Targets: not judged (quick run)\n");
	else
		printf("Targets: RSS <= 16 MiB with 1000 services and their flows: %s (%.1f MiB, "
		       "the largest above);\n  idle CPU <= 0.5 %% of one core: %s (%.3f %%)\n",
		       rss_mib <= 16.0 ? "met" : "MISSED", rss_mib,
		       res->idle_cpu_pct <= 0.5 ? "met" : "MISSED", res->idle_cpu_pct);
	if (csv) {
		fprintf(csv, "services,rss_base_mib,%.2f,\n", (double)res->rss_base_kib / mib);
		fprintf(csv, "services,rss_awake_mib,%.2f,\n", (double)res->rss_awake_kib / mib);
		fprintf(csv, "services,rss_flows_mib,%.2f,\n", (double)res->rss_flows_kib / mib);
		fprintf(csv, "services,rss_asleep_mib,%.2f,\n", (double)res->rss_asleep_kib / mib);
		fprintf(csv, "services,flows_live,%llu,\n", (unsigned long long)res->map.live);
		fprintf(csv, "services,flows_evicted,%llu,\n",
			(unsigned long long)res->map.evicted);
		fprintf(csv, "services,list_flows_ms,%.3f,%.3f\n", res->list_ms.p50,
			res->list_ms.p95);
		fprintf(csv, "services,detach_ms,%.3f,%.3f\n", res->detach_ms.p50,
			res->detach_ms.p95);
		fprintf(csv, "services,rss_peak_mib,%.2f,\n", (double)res->hwm_kib / mib);
		fprintf(csv, "services,idle_cpu_pct,%.4f,\n", res->idle_cpu_pct);
		fprintf(csv, "services,idle_scan_ms,%.3f,%.3f\n", res->scan_ms.p50,
			res->scan_ms.p95);
		fprintf(csv, "services,counter_reads_ms,%.3f,%.3f\n", res->reads_ms.p50,
			res->reads_ms.p95);
		fprintf(csv, "services,nft_add_1_of_10000_us,%.0f,%.0f\n", res->nft_add_us.p50,
			res->nft_add_us.p95);
		fprintf(csv, "services,nft_remove_1_of_10000_us,%.0f,%.0f\n",
			res->nft_remove_us.p50, res->nft_remove_us.p95);
		fprintf(csv, "services,nft_redirect_service_us,%.0f,%.0f\n",
			res->svc_redirect_us.p50, res->svc_redirect_us.p95);
		fprintf(csv, "services,nft_unredirect_service_us,%.0f,%.0f\n",
			res->svc_unredirect_us.p50, res->svc_unredirect_us.p95);
	}
}
