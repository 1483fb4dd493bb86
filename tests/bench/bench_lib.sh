# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Shared by the benchmark scripts that run dozed against the real runtimes of
# tests/runtime-env.sh. The script sets BENCH (its name, for messages),
# BUILD, ENV, WORK and RTDIR, then sources this file. dozed runs in a
# runtime's network namespace; for runtime RT its control socket is
# $WORK/RT.ctl, its state $WORK/RT.state and its log $WORK/RT.dozed.log. On
# exit dozed is stopped by its recorded PID and the runtimes are taken down.
: "${BENCH:?}" "${BUILD:?}" "${ENV:?}" "${WORK:?}" "${RTDIR:?}"
DOZED_PID=""

# start_dozed RT [OPTION...]: waits for its control socket; 1 if it died.
start_dozed() {
	local rt=$1
	shift
	nsenter --net="$RTDIR/ns/$rt.net" -- "$BUILD/dozed" --runtime-socket "$RTDIR/$rt.sock" \
		--control "$WORK/$rt.ctl" --state-dir "$WORK/$rt.state" --log-level warning \
		"$@" 2>>"$WORK/$rt.dozed.log" &
	DOZED_PID=$!
	for _ in $(seq 1000); do
		"$BUILD/dozectl" --control "$WORK/$rt.ctl" list >/dev/null 2>&1 && return 0
		kill -0 "$DOZED_PID" 2>/dev/null || break
		sleep 0.01
	done
	echo "$BENCH: dozed did not start on $rt; its log:" >&2
	tail -n 5 "$WORK/$rt.dozed.log" >&2
	return 1
}

stop_dozed() {
	[ -n "$DOZED_PID" ] || return 0
	kill "$DOZED_PID" 2>/dev/null || true
	wait "$DOZED_PID" 2>/dev/null || true
	DOZED_PID=""
}

bench_cleanup() {
	stop_dozed
	"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "$BENCH: runtime-env down failed; see $RTDIR" >&2
	rm -rf "$WORK"
}
trap bench_cleanup EXIT
