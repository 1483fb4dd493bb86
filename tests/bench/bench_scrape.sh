#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: a wake during a storm of scrapes of dozed's /metrics, against
# the same wake alone (tests/bench/bench_scrape.c): one busybox httpd on
# Podman and on Docker (tests/runtime-env.sh, removed at the end), dozed with
# --metrics-listen in the runtime's network namespace, SCRAPE_RUNS wakes each
# way (default 20) in ABBA order, SCRAPE_CONNS scrapes in flight (default
# 100). Results appended to tests/bench/results/scrape.csv.
# BENCH_QUICK=1 (make check, tests/bench/quick.sh): Podman only, 2 wakes each
# way, nothing written to tests/bench/results.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "${BENCH_QUICK:-0}" != 0 ]; then
	QUICK=1 RUNS=2 CONNS=${SCRAPE_CONNS:-100} RUNTIMES=podman
else
	QUICK="" RUNS=${SCRAPE_RUNS:-20} CONNS=${SCRAPE_CONNS:-100} RUNTIMES=${SCRAPE_RUNTIMES:-podman docker}
fi
ENV=tests/runtime-env.sh
for bin in "$BUILD/dozed" "$BUILD/dozectl" "$BUILD/tests/bench/bench_scrape"; do
	[ -x "$bin" ] || { echo "bench_scrape: $bin is not built" >&2; exit 1; }
done
"$BUILD/dozed" --help 2>&1 | grep -q -- --metrics-listen ||
	{ echo "bench_scrape: $BUILD/dozed has no --metrics-listen" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dozed-bench-scrape.XXXXXX)
RTDIR=$WORK/rt
BENCH=bench_scrape
# shellcheck source=tests/bench/bench_lib.sh
source tests/bench/bench_lib.sh
# In each runtime's own namespace: nothing else listens there.
PORT=18350 METRICS_PORT=19350

ctl() { "$BUILD/dozectl" --control "$WORK/$rt.ctl" "$@"; }

"$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1 || { tail -n 20 "$WORK/env.log" >&2; exit 1; }
[ -n "$QUICK" ] || { mkdir -p tests/bench/results && rm -f tests/bench/results/scrape.csv; }
for rt in $RUNTIMES; do
	name=bench-scrape-$rt
	"$ENV" create "$RTDIR" "$rt" "$name" "$PORT" >/dev/null
	start_dozed "$rt" --nft-table dozedbenchscrape --activator-port 15350 \
		--metrics-listen "127.0.0.1:$METRICS_PORT" || exit 1
	ctl enable "$name" --idle 1h >/dev/null || { echo "bench_scrape: cannot enable $name on $rt" >&2; exit 1; }
	nsenter --net="$RTDIR/ns/$rt.net" -- "$BUILD/tests/bench/bench_scrape" "$name" "$PORT" \
		"$WORK/$rt.ctl" "$METRICS_PORT" "$RUNS" "$CONNS" "$rt"
	stop_dozed
	nsenter --net="$RTDIR/ns/$rt.net" -- nft delete table inet dozedbenchscrape 2>/dev/null || true
done
