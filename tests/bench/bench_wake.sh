#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench, sections 1 and 2: cold wakes on Podman and Docker against a
# direct start through the same API, and the warm path with and without
# dozed. Real runtimes from tests/runtime-env.sh, removed at the end.
# BENCH_QUICK=1 (make check, tests/bench/quick.sh): every step once, tiny —
# 2 wakes, one burst of 20, one warm round of 0.3 s, 2 idle services for 1 s
# — and nothing written to tests/bench/results.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "${BENCH_QUICK:-0}" != 0 ]; then
	QUICK=1 RUNS=2 ROUNDS=1 BURST=20 WARM_S=0.3 N_IDLE=2 IDLE_S=1
else
	QUICK="" RUNS=${WAKE_RUNS:-20} ROUNDS=5 BURST=200 WARM_S=2 N_IDLE=${IDLE_SERVICES:-20} IDLE_S=10
fi
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

# bc is not everywhere; awk is.
calc() { awk "BEGIN { printf \"%.${1}f\", $2 }"; }
# The middle one of the (sorted) lines on stdin: the median round.
middle() {
	local lines
	lines=$(cat)
	sed -n "$((($(wc -l <<<"$lines") + 1) / 2))p" <<<"$lines"
}
keep() { # file name: into tests/bench/results, unless a quick run
	[ -n "$QUICK" ] || cp "$1" "tests/bench/results/$2"
}

"$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1 || { tail -n 20 "$WORK/env.log"; exit 1; }
[ -n "$QUICK" ] || rm -f tests/bench/results/wake.csv
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
# One burst of BURST clients at once (tests/burst.sh): "ms,answered".
burst_once() { # port
	local t0 ok
	t0=$(date +%s%3N)
	ok=$(in_ns tests/burst.sh 127.0.0.1 "$1" "$BURST" 120 | grep -c '^ok$')
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
	for _ in $(seq "$ROUNDS"); do
		wait_state $rt "$name" awake
		echo "$rt,awake,$(burst_once $port)" >>"$burst"
		"$BUILD/dozectl" --control "$WORK/$rt.ctl" sleep "$name" >/dev/null
		wait_state $rt "$name" asleep
		echo "$rt,cold wake,$(burst_once $port)" >>"$burst"
	done
	for round in $(seq "$ROUNDS"); do
		in_ns "$BUILD/tests/bench/bench_wake" warm $port "$WARM_S" "$rt,with dozed" >>"$warm"
		stop_dozed
		in_ns nft delete table inet dozedbench
		in_ns "$BUILD/tests/bench/bench_wake" warm $port "$WARM_S" "$rt,without dozed" >>"$warm"
		[ "$round" -lt "$ROUNDS" ] && start_dozed $rt
	done
	port=$((port + 1))
done

# The real daemon, idle, with real containers: Podman, N_IDLE services.
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
sleep "$IDLE_S"
t1=$(pid_ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$DOZED_PID/status")
{
	echo
	echo "The dozed daemon itself, idle for $IDLE_S s with $n services on Podman (awake, counters attached)"
	printf '%-40s %10s\n' "RSS" "$(calc 1 "$rss / 1024") MiB"
	printf '%-40s %10s   (%d ticks of 1/%d s in %d s)\n' "CPU (% of one core)" \
		"$(calc 3 "($t1 - $t0) * 100 / $hz / $IDLE_S") %" $((t1 - t0)) "$hz" "$IDLE_S"
} | tee "$idle"
keep "$idle" daemon_idle.txt

echo
echo "Warm path: GET / on a new connection each, closed loop, $ROUNDS x $WARM_S s alternated (medians of rounds)"
printf '%-8s %-15s %10s %8s %12s %12s\n' runtime dozed req/s ratio "p50 µs" "p95 µs"
for rt in podman docker; do
	base=""
	for mode in "without dozed" "with dozed"; do
		line=$(grep "^$rt,$mode," "$warm" | sort -t, -k3 -n | middle)
		IFS=, read -r _ _ rps p50 p95 <<<"$line"
		[ -n "$base" ] || base=$rps
		printf '%-8s %-15s %10s %7.3fx %12s %12s\n' "$rt" "$mode" "$rps" \
			"$(calc 6 "$rps / $base")" "$p50" "$p95"
	done
done
keep "$warm" warm.csv

echo
echo "Burst: $BURST clients connecting at once, until every page has come ($ROUNDS rounds)"
printf '%-8s %-10s %10s %10s %8s %10s\n' runtime service "median ms" "max ms" ratio answered
for rt in podman docker; do
	base=""
	for mode in awake "cold wake"; do
		ms=$(grep "^$rt,$mode," "$burst" | cut -d, -f3 | sort -n)
		med=$(middle <<<"$ms")
		[ -n "$base" ] || base=$med
		printf '%-8s %-10s %10s %10s %7.2fx %10s\n' "$rt" "$mode" "$med" "$(tail -n 1 <<<"$ms")" \
			"$(calc 6 "$med / $base")" "$(grep "^$rt,$mode," "$burst" | cut -d, -f4 | sort -n | head -n 1)/$BURST"
	done
done
keep "$burst" burst.csv
