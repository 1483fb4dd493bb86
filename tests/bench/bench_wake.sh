#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench, sections 1 and 2: cold wakes on Podman and Docker against a
# direct start through the same API, and the warm path with and without
# dozed. Real runtimes from tests/runtime-env.sh, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
RUNS=${WAKE_RUNS:-20}
ENV=tests/runtime-env.sh
WORK=$(mktemp -d /tmp/dozed-bench.XXXXXX)
RTDIR=$WORK/rt
DOZED_PID=""

stop_dozed() {
	[ -n "$DOZED_PID" ] || return 0
	kill "$DOZED_PID" 2>/dev/null || true
	wait "$DOZED_PID" 2>/dev/null || true
	DOZED_PID=""
}
cleanup() {
	stop_dozed
	"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "bench: runtime-env down failed; see $RTDIR" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT

start_dozed() { # runtime
	nsenter --net="$RTDIR/ns/$1.net" -- "$BUILD/dozed" --runtime-socket "$RTDIR/$1.sock" \
		--control "$WORK/$1.ctl" --state-dir "$WORK/$1.state" --nft-table dozedbench \
		--log-level warning 2>>"$WORK/$1.dozed.log" &
	DOZED_PID=$!
	for _ in $(seq 200); do
		"$BUILD/dozectl" --control "$WORK/$1.ctl" list >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "bench: dozed did not start; see $WORK/$1.dozed.log" >&2
	return 1
}

"$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1 || { tail -n 20 "$WORK/env.log"; exit 1; }
rm -f tests/bench/results/wake.csv
port=18300
warm=$WORK/warm.csv
for rt in podman docker; do
	name=bench-$rt
	"$ENV" create "$RTDIR" "$rt" "$name" $port >/dev/null
	start_dozed $rt
	in_ns() { nsenter --net="$RTDIR/ns/$rt.net" -- "$@"; }
	in_ns "$BUILD/tests/bench/bench_wake" wake "$RTDIR/$rt.sock" "$name" $port "$WORK/$rt.ctl" \
		"$RUNS" "$rt"

	# Warm: awake and managed (its port out of the set, the table in place)
	# against no dozed at all (table gone), alternated.
	"$BUILD/dozectl" --control "$WORK/$rt.ctl" enable "$name" >/dev/null
	for round in 1 2 3 4 5; do
		in_ns "$BUILD/tests/bench/bench_wake" warm $port 2 "$rt,with dozed" >>"$warm"
		stop_dozed
		in_ns nft delete table inet dozedbench
		in_ns "$BUILD/tests/bench/bench_wake" warm $port 2 "$rt,without dozed" >>"$warm"
		[ $round -lt 5 ] && start_dozed $rt
	done
	port=$((port + 1))
done

echo
echo "Warm path: GET / on a new connection each, closed loop, 5 x 2 s alternated (medians of rounds)"
printf '%-8s %-15s %10s %8s %12s %12s\n' runtime dozed req/s ratio "p50 µs" "p95 µs"
for rt in podman docker; do
	base=""
	for mode in "without dozed" "with dozed"; do
		line=$(grep "^$rt,$mode," "$warm" | sort -t, -k3 -n | sed -n 3p)
		IFS=, read -r _ _ rps p50 p95 <<<"$line"
		[ -n "$base" ] || base=$rps
		printf '%-8s %-15s %10s %7.3fx %12s %12s\n' "$rt" "$mode" "$rps" \
			"$(echo "$rps / $base" | bc -l)" "$p50" "$p95"
	done
done
cp "$warm" tests/bench/results/warm.csv
