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
burst=$WORK/burst.csv
state_of() { # runtime name
	"$BUILD/dozectl" --control "$WORK/$1.ctl" status "$2" --json | jq -r .service.state
}
wait_state() { # runtime name state
	for _ in $(seq 400); do
		[ "$(state_of "$1" "$2")" = "$3" ] && return 0
		sleep 0.05
	done
	echo "bench: $2 never became $3" >&2
	return 1
}
# One burst of 200 clients at once (tests/burst.sh): "ms,answered".
burst_once() { # port
	local t0 ok
	t0=$(date +%s%3N)
	ok=$(in_ns tests/burst.sh 127.0.0.1 "$1" 200 120 | grep -c '^ok$')
	echo "$(($(date +%s%3N) - t0)),$ok"
}
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

	# Burst: 200 clients at once to the awake service, and the same 200 held
	# through one wake (the httpd's accept backlog is 9), alternated.
	for _ in 1 2 3 4 5; do
		wait_state $rt "$name" awake
		echo "$rt,awake,$(burst_once $port)" >>"$burst"
		"$BUILD/dozectl" --control "$WORK/$rt.ctl" sleep "$name" >/dev/null
		wait_state $rt "$name" asleep
		echo "$rt,cold wake,$(burst_once $port)" >>"$burst"
	done
	for round in 1 2 3 4 5; do
		in_ns "$BUILD/tests/bench/bench_wake" warm $port 2 "$rt,with dozed" >>"$warm"
		stop_dozed
		in_ns nft delete table inet dozedbench
		in_ns "$BUILD/tests/bench/bench_wake" warm $port 2 "$rt,without dozed" >>"$warm"
		[ $round -lt 5 ] && start_dozed $rt
	done
	port=$((port + 1))
done

# The real daemon, idle, with real containers: Podman, N_IDLE services.
N_IDLE=${IDLE_SERVICES:-20}
idle=$WORK/idle.txt
start_dozed podman
for i in $(seq "$N_IDLE"); do
	"$ENV" create "$RTDIR" podman "idle-$i" $((18400 + i)) dozed.enable=true >/dev/null
done
for _ in $(seq 200); do
	n=$("$BUILD/dozectl" --control "$WORK/podman.ctl" list --json | jq '.services | length')
	[ "$n" -ge "$N_IDLE" ] && break
	sleep 0.1
done
pid_ticks() { awk '{print $14 + $15}' "/proc/$DOZED_PID/stat"; }
t0=$(pid_ticks)
sleep 10
t1=$(pid_ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DOZED_PID/status")
{
	echo
	echo "The dozed daemon itself, idle for 10 s with $n services on Podman (awake, counters attached)"
	printf '%-40s %10s\n' "RSS" "$(echo "scale=1; $rss / 1024" | bc) MiB"
	printf '%-40s %10s   (%d ticks of 1/%d s in 10 s)\n' "CPU (% of one core)" \
		"$(echo "scale=3; ($t1 - $t0) * 100 / $hz / 10" | bc) %" $((t1 - t0)) "$hz"
} | tee "$idle"
cp "$idle" tests/bench/results/daemon_idle.txt

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

echo
echo "Burst: 200 clients connecting at once, until every page has come (5 rounds)"
printf '%-8s %-10s %10s %10s %8s %10s\n' runtime service "median ms" "max ms" ratio answered
for rt in podman docker; do
	base=""
	for mode in awake "cold wake"; do
		ms=$(grep "^$rt,$mode," "$burst" | cut -d, -f3 | sort -n)
		med=$(sed -n 3p <<<"$ms")
		[ -n "$base" ] || base=$med
		printf '%-8s %-10s %10s %10s %7.2fx %10s\n' "$rt" "$mode" "$med" "$(tail -n 1 <<<"$ms")" \
			"$(echo "$med / $base" | bc -l)" "$(grep "^$rt,$mode," "$burst" | cut -d, -f4 | sort -n | head -n 1)/200"
	done
done
cp "$burst" tests/bench/results/burst.csv
