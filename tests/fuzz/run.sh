#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs every libFuzzer target (tests/fuzz/fuzz_*.c, built as $BUILD/fuzz/*)
# for FUZZ_SECONDS each, starting from the seeds in tests/fuzz/corpus/TARGET
# and what earlier runs found ($BUILD/fuzz/corpus/TARGET; the seeds are never
# written). Prints "PASS fuzz_TARGET (N execs)" or "FAIL fuzz_TARGET: ..."
# with the input that crashed it, kept in $BUILD/fuzz/artifacts.
#
# Usage: [BUILD=build] [FUZZ_SECONDS=120] tests/fuzz/run.sh [TARGET...]
# Reproduce a crash: $BUILD/fuzz/fuzz_TARGET ARTIFACT
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-120}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		t=${src##*/fuzz_}
		targets+=("${t%.c}")
	done
fi

# Inputs larger than a line or a header block make no new paths, only slow runs;
# the HTTP parser needs room past its 8 KiB line and 64 KiB header bounds.
max_len() {
	case $1 in
	http_parse | control_request) echo 70000 ;;
	duration) echo 64 ;;
	probe_answer) echo 2048 ;;
	*) echo 16384 ;;
	esac
}

any_failed=0
for t in "${targets[@]}"; do
	bin=$BUILD/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz_$t: $bin is not built (make BUILD=$BUILD fuzz-build)"
		any_failed=1
		continue
	fi
	work=$BUILD/fuzz/corpus/$t
	artifacts=$BUILD/fuzz/artifacts
	mkdir -p "$work" "$artifacts"
	log=$BUILD/fuzz/fuzz_$t.log
	# The target's own files (tmpfs), gone after it even if it crashed.
	tmp=$(mktemp -d /dev/shm/dozed-fuzz.XXXXXX)
	FUZZ_TMPDIR=$tmp ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 \
		-max_len="$(max_len "$t")" -print_final_stats=1 \
		-artifact_prefix="$artifacts/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ $rc -eq 0 ] && [ -n "$execs" ]; then
		echo "PASS fuzz_$t ($execs execs)"
	elif [ -n "$artifact" ]; then
		echo "FAIL fuzz_$t: crash, see $artifact (log: $log)"
		grep -m 1 -A 12 -E '^==[0-9]+==ERROR|runtime error|property failed' "$log" | sed 's/^/   /'
		any_failed=1
	else
		echo "FAIL fuzz_$t: exited with status $rc, no input saved; see $log"
		tail -n 5 "$log" | sed 's/^/   /'
		any_failed=1
	fi
done
exit $any_failed
