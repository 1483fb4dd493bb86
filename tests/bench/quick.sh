#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make check: every benchmark once in its quick mode (BENCH_QUICK=1: tiny
# sizes, no peers, no targets judged, nothing written to tests/bench/results),
# so that a benchmark which no longer runs — a crash, a failed step — fails CI
# instead of the next `make bench`. One line each, as tests/run.sh counts them:
# "PASS bench_x (N ms)" or "FAIL bench_x: why" (its output shown above it).
# A benchmark driven by a script (tests/bench/NAME.sh beside NAME.c) runs
# through the script, as tests/bench/run.sh runs it.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
export BUILD BENCH_QUICK=1
# Far above a quick run (the wake bench, with its runtimes and its servers,
# takes the longest: about a minute, two when it builds the server images
# first, on a busy 2-core machine).
TIMEOUT_S=${BENCH_QUICK_TIMEOUT_S:-300}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for src in tests/bench/*.c; do
	name=$(basename "$src" .c)
	if [ -f "tests/bench/$name.sh" ]; then
		cmd=("tests/bench/$name.sh")
	else
		cmd=("$BUILD/tests/bench/$name")
	fi
	if [ ! -x "${cmd[0]}" ]; then
		echo "FAIL $name: ${cmd[0]} is missing (make $BUILD/tests/bench/$name)"
		continue
	fi
	t0=$(date +%s%3N)
	# timeout signals its whole process group: a hung benchmark and what it
	# started; a minute more lets the wake bench take its runtimes down.
	timeout --kill-after=60 "$TIMEOUT_S" "${cmd[@]}" >"$out" 2>&1
	rc=$?
	ms=$(($(date +%s%3N) - t0))
	if [ "$rc" -eq 0 ]; then
		echo "PASS $name ($ms ms)"
		continue
	fi
	sed 's/^/    /' "$out"
	if [ "$rc" -eq 124 ]; then
		echo "FAIL $name: still running after ${TIMEOUT_S} s (BENCH_QUICK=1 ${cmd[*]})"
	elif [ "$rc" -gt 128 ]; then
		echo "FAIL $name: died of signal $((rc - 128)) (BENCH_QUICK=1 ${cmd[*]})"
	else
		echo "FAIL $name: exited with status $rc (BENCH_QUICK=1 ${cmd[*]})"
	fi
done
