#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench, sections 1 and 2: cold wakes on Podman and Docker against a
# direct start through the same API (busybox httpd, then PostgreSQL and Redis
# with its data set, images from tests/runtime-env.sh image), and the warm
# path with and without dozed, in alternated windows (ABBA pairs). Real
# runtimes from tests/runtime-env.sh, removed at the end.
# Each cold-wake table of busybox and PostgreSQL ends with its thaw rows:
# light sleep of the same container (bench_thaw.h), as many thaws as cold
# wakes (WAKE_THAW_RUNS, WAKE_THAW_PROTO_RUNS; 0: none), about 1.5 s each
# (the freeze after 1 s idle is waited for). Then the row "thaw, memory
# reclaimed": as many thaws again with the service's reclaim_frozen true
# (WAKE_RECLAIM_RUNS for busybox, 10; WAKE_RECLAIM_PROTO_RUNS for
# PostgreSQL, as many as its cold wakes; 0: none), about 25 s in all.
# BENCH_QUICK=1 (make check, tests/bench/quick.sh): every step once, tiny —
# 2 busybox wakes and thaws and 1 of each server, 1 thaw each with memory
# reclaimed, one burst of 20, one warm
# pair of 0.3 s windows, 2 idle services for 1 s — and nothing written to
# tests/bench/results.
# WAKE_COLD_ONLY=1: the cold-wake tables (and their thaw rows) only, no
# burst, warm path or idle daemon; WAKE_KINDS: the servers after busybox
# ("postgres redis", "" for none). For working on one table without the
# whole bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "${BENCH_QUICK:-0}" != 0 ]; then
	QUICK=1 RUNS=2 PROTO_RUNS=1 ROUNDS=1 BURST=20 N_IDLE=2 IDLE_S=1
	THAW_RUNS=2 THAW_PROTO_RUNS=1 RECLAIM_RUNS=1 RECLAIM_PROTO_RUNS=1
	WARM_S=0.3 WARM_MIN_PAIRS=1 WARM_MAX_PAIRS=1
else
	QUICK="" RUNS=${WAKE_RUNS:-20} PROTO_RUNS=${WAKE_PROTO_RUNS:-10}
	ROUNDS=${BURST_ROUNDS:-5} BURST=${BURST_CLIENTS:-200} N_IDLE=${IDLE_SERVICES:-20} IDLE_S=10
	THAW_RUNS=${WAKE_THAW_RUNS:-$RUNS} THAW_PROTO_RUNS=${WAKE_THAW_PROTO_RUNS:-$PROTO_RUNS}
	RECLAIM_RUNS=${WAKE_RECLAIM_RUNS:-10}
	RECLAIM_PROTO_RUNS=${WAKE_RECLAIM_PROTO_RUNS:-$PROTO_RUNS}
	# Warm: pairs of WARM_S windows until the pairwise ratio's 95 % interval
	# is narrower than ±WARM_HALF_CI (looked at every 10 pairs), from
	# WARM_MIN_PAIRS to WARM_MAX_PAIRS of them.
	# Short windows keep a pair's two halves close in time (a switch takes
	# about 40 ms), so the load of the rest of the machine falls on both.
	WARM_S=${WARM_S:-0.1} WARM_MIN_PAIRS=${WARM_MIN_PAIRS:-60}
	WARM_MAX_PAIRS=${WARM_MAX_PAIRS:-300} WARM_HALF_CI=${WARM_HALF_CI:-0.02}
fi
ENV=tests/runtime-env.sh
# The server images' tars (tests/images/mkimage.sh, named by its hash) are
# built once and kept beside the build, not once per run.
DOZED_IMAGE_CACHE=${DOZED_IMAGE_CACHE:-$(realpath -m "$BUILD")/image-cache}
export DOZED_IMAGE_CACHE
WORK=$(mktemp -d /tmp/dozed-bench.XXXXXX)
RTDIR=$WORK/rt
BENCH=bench_wake
# shellcheck source=tests/bench/bench_lib.sh
source tests/bench/bench_lib.sh
# Every section's dozed, in the bench's own nft table.
start_bench_dozed() { start_dozed "$1" --nft-table dozedbench; }

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
[ -n "$QUICK" ] || rm -f tests/bench/results/wake.csv tests/bench/results/thaw.csv \
	tests/bench/results/thaw_reclaim.csv
port=18300
warm=$WORK/warm.csv
burst=$WORK/burst.csv
warm_took=""
state_of() { # runtime name
	"$BUILD/dozectl" --control "$WORK/$1.ctl" status "$2" --json | jq -r .service.state
}
wait_state() { # runtime name state
	for _ in $(seq 2000); do
		[ "$(state_of "$1" "$2")" = "$3" ] && return 0
		sleep 0.01
	done
	echo "bench: $2 never became $3" >&2
	return 1
}
# The warm path's switch: dozed running and the service awake (counter
# attached, table in place), or no dozed and no table.
warm_switch() { # runtime name mode
	if [ "$3" = "with dozed" ]; then
		start_bench_dozed "$1"
		wait_state "$1" "$2" awake
	else
		stop_dozed
		in_ns nft delete table inet dozedbench
	fi
}
# A server of tests/runtime-env.sh image KIND, published on 127.0.0.1:HOSTPORT.
create_server() { # runtime kind name hostport
	local cport=5432
	[ "$2" = redis ] && cport=6379
	local -a args=(run -d --name "$3" -p "127.0.0.1:$4:$cport")
	# As runtime-env.sh create does: Podman's containers under its cgroup.
	[ "$1" = podman ] && args+=(--cgroup-parent "/$(basename "$(cat "$RTDIR/cgroup")")/podman")
	"$ENV" cli "$RTDIR" "$1" "${args[@]}" "dozed-test/$2:latest" >/dev/null
}
# bench_wake wake with thaw rows: its status 3 is a missing thaw row only
# (the cold rows stand), 4 a missing "memory reclaimed" row only, named at
# the end; the container is unpaused in case the failed thaw left it
# paused, for the steps after it.
thaw_failed=""
reclaim_failed=""
wake_and_thaw() { # runtime kind name bench_wake-args...
	local rt=$1 kind=$2 name=$3 rc=0
	shift 3
	nsenter --net="$RTDIR/ns/$rt.net" -- "$BUILD/tests/bench/bench_wake" wake "$@" || rc=$?
	case $rc in
	3) thaw_failed="$thaw_failed $rt/$kind" ;;
	4) reclaim_failed="$reclaim_failed $rt/$kind" ;;
	*) return "$rc" ;;
	esac
	"$ENV" cli "$RTDIR" "$rt" unpause "$name" >/dev/null 2>&1 || true
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
	start_bench_dozed $rt
	in_ns() { nsenter --net="$RTDIR/ns/$rt.net" -- "$@"; }
	wake_and_thaw $rt http "$name" "$RTDIR/$rt.sock" "$name" $port "$WORK/$rt.ctl" \
		"$RUNS" "$rt" http "$THAW_RUNS" "$RECLAIM_RUNS"

	if [ -n "${WAKE_COLD_ONLY:-}" ]; then
		stop_dozed
		port=$((port + 1))
		continue
	fi
	# Managed from here on: the burst's cold wakes, the warm path's windows.
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
	# Warm: ABBA pairs of windows, so consecutive windows share a side and
	# each pair costs one switch; dozed is left stopped and its table gone.
	warm_mode="with dozed"
	wait_state $rt "$name" awake
	warm_t0=$SECONDS
	for ((pair = 0; pair < WARM_MAX_PAIRS; pair++)); do
		if ((pair >= WARM_MIN_PAIRS && pair % 10 == 0)); then
			read -r _ half < <("$BUILD/tests/bench/bench_wake" warm-ci "$warm" $rt)
			[ "$(calc 0 "$half < $WARM_HALF_CI")" = 1 ] && break
		fi
		if ((pair % 2 == 0)); then
			order=("with dozed" "without dozed")
		else
			order=("without dozed" "with dozed")
		fi
		for mode in "${order[@]}"; do
			if [ "$mode" != "$warm_mode" ]; then
				warm_switch $rt "$name" "$mode"
				warm_mode=$mode
			fi
			in_ns "$BUILD/tests/bench/bench_wake" warm $port "$WARM_S" "$rt,$mode,$pair" >>"$warm"
		done
	done
	[ "$warm_mode" = "without dozed" ] || warm_switch $rt "$name" "without dozed"
	warm_took="$warm_took $rt $((SECONDS - warm_t0)) s,"
	port=$((port + 1))
done

# PostgreSQL and Redis (with its data set), cold, against a direct start.
proto_failed=""
for rt in podman docker; do
	in_ns() { nsenter --net="$RTDIR/ns/$rt.net" -- "$@"; }
	start_bench_dozed $rt
	for kind in ${WAKE_KINDS-postgres redis}; do
		name=bench-$kind-$rt
		if ! "$ENV" image "$RTDIR" $rt "$kind" >>"$WORK/env.log" 2>&1; then
			echo "bench: tests/runtime-env.sh image $RTDIR $rt $kind failed: no $kind row" \
				"(last lines of its log:)" >&2
			tail -n 5 "$WORK/env.log" >&2
			proto_failed="$proto_failed $rt/$kind"
			continue
		fi
		create_server $rt "$kind" "$name" $port
		thaws=0 reclaims=0
		[ "$kind" != postgres ] || thaws=$THAW_PROTO_RUNS reclaims=$RECLAIM_PROTO_RUNS
		wake_and_thaw $rt "$kind" "$name" "$RTDIR/$rt.sock" "$name" $port "$WORK/$rt.ctl" \
			"$PROTO_RUNS" "$rt" "$kind" "$thaws" "$reclaims" ||
			proto_failed="$proto_failed $rt/$kind"
		"$BUILD/dozectl" --control "$WORK/$rt.ctl" disable "$name" >/dev/null 2>&1 || true
		"$ENV" rm "$RTDIR" $rt "$name"
		port=$((port + 1))
	done
	stop_dozed
	in_ns nft delete table inet dozedbench 2>/dev/null || true
done

report_failed() {
	local failed=0
	if [ -n "$proto_failed" ]; then
		echo "bench: no cold-wake row for:$proto_failed (see above)" >&2
		failed=1
	fi
	if [ -n "$thaw_failed" ]; then
		echo "bench: no thaw row for:$thaw_failed (see above)" >&2
		failed=1
	fi
	if [ -n "$reclaim_failed" ]; then
		echo "bench: no thaw row with memory reclaimed for:$reclaim_failed (see above)" >&2
		failed=1
	fi
	return $failed
}
[ -z "${WAKE_COLD_ONLY:-}" ] || { report_failed && exit 0 || exit 1; }

# The real daemon, idle, with real containers: Podman, N_IDLE services.
idle=$WORK/idle.txt
start_bench_dozed podman
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

"$BUILD/tests/bench/bench_wake" warm-table "$warm" "$WARM_S"
echo "  (windows and switches took${warm_took%,})"
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
report_failed
