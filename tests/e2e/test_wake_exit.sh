#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A container whose start succeeds but which exits at once (a missing config
# file, a port taken): the wake fails at once, the held client is reset, and
# wake_failed says why with the exit code and the container's last log lines
# instead of "no answer in time" after the whole --wake-timeout. Podman and
# Docker, both real (tests/runtime-env.sh).
#
# Usage: [BUILD=build] tests/e2e/test_wake_exit.sh [TEST_NAME...]
set -uo pipefail
SUITE=wake-exit TABLE=dozedexit ACT_PORT=15451
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

NAME=quits PORT=18451
WAKE_TIMEOUT_S=30
MESSAGE="config: /etc/app.conf: no such file"

# Created stopped, as a sleeping service is: its command fails at once.
make_quitter() {
	local -a args=(run -d --name "$NAME" -p "127.0.0.1:$PORT:80")
	# As runtime-env's own containers: under the test's cgroup.
	[ "$RT" = podman ] && args+=(--cgroup-parent "/$(basename "$(cat "$RTDIR/cgroup")")/podman")
	rt "${args[@]}" dozed-test/busybox sh -c "echo starting; echo '$MESSAGE' >&2; exit 3" \
		>/dev/null 2>"$WORK/create.log" || { fail "cannot create $NAME: $(tail -n 2 "$WORK/create.log")"; return 1; }
	wait_for 10000 "$NAME to exit" stopped "$NAME"
}

test_container_exiting_at_once_fails_the_wake_at_once_saying_why() {
	make_quitter || return
	ctl enable "$NAME" --idle 1h >/dev/null || { fail "dozectl enable $NAME failed"; return; }
	wait_for 5000 "$NAME asleep" state_is "$NAME" asleep || return
	redirected "$PORT" || { fail "port $PORT is not redirected"; return; }

	local t0 t1 out
	t0=$(now_ms)
	out=$(in_ns curl -sS --max-time $((WAKE_TIMEOUT_S + 10)) "http://127.0.0.1:$PORT/" 2>&1)
	t1=$(now_ms)
	[[ $out == *"dozed test"* ]] && { fail "a page came from a container that exits: $out"; return; }
	wait_for 5000 "wake_failed event" events_at_least wake_failed "$NAME" 1 || return
	# Reset at once, not at the wake timeout: half of it is a generous bound.
	[ $((t1 - t0)) -lt $((WAKE_TIMEOUT_S * 500)) ] ||
		fail "the client waited $((t1 - t0)) ms, as for the --wake-timeout of ${WAKE_TIMEOUT_S}s"
	local reason
	reason=$(last_event wake_failed "$NAME" | jq -r .reason)
	[[ $reason == *"exited with code 3"* ]] || fail "wake_failed does not give the exit code: $reason"
	[[ $reason == *"$MESSAGE"* ]] || fail "wake_failed does not give the last log line: $reason"
	[[ $reason != *"in time"* ]] || fail "wake_failed blames the timeout: $reason"
	state_is "$NAME" asleep || fail "after one failed wake $NAME is $(state_of "$NAME"), expected asleep"
	redirected "$PORT" || fail "port $PORT left the set after the failed wake"
	[[ $(reason_of "$NAME") == *"exited with code 3"* ]] || fail "status does not say why: $(reason_of "$NAME")"
	dozed_alive || fail "dozed died"
}

ONLY=("$@")
env_up
for RT in podman docker; do
	start_dozed --wake-timeout "${WAKE_TIMEOUT_S}s" || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	run_test "${RT}_" test_container_exiting_at_once_fails_the_wake_at_once_saying_why
	stop_dozed
	rt rm -f "$NAME" >/dev/null 2>&1
done
exit $ANY_FAILED
