#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Stops that never make a client wait: a client that arrives while a service
# is being stopped is answered by the container if it still serves (the stop
# is cancelled, the container never killed), else once the stop ends and it
# starts again. And a stop uses the container's own stop signal. Podman and
# Docker, both real (tests/runtime-env.sh), busybox containers.
#
# Usage: [BUILD=build] tests/e2e/test_probe_stop.sh [TEST_NAME...]
set -uo pipefail
SUITE=probe-stop TABLE=dozedpstop ACT_PORT=15471
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

IGN_PORT=18471 QUIT_PORT=18472 SIG_PORT=18473 DRAIN_PORT=18474 WAKE_PORT=18475 LATE_PORT=18476 SLOW_PORT=18477
# The containers' grace period (StopTimeout): far from the bounds asserted.
GRACE_S=10
# A request during the stop is answered well before the grace period.
ANSWER_BOUND_MS=3000

page_ms() { # port: prints the ms the request took, fails without the page
	local t0 out
	t0=$(now_ms)
	out=$(in_ns curl -sS --max-time 30 "http://127.0.0.1:$1/" 2>&1)
	echo $(($(now_ms) - t0))
	[[ $out == *"dozed test"* ]]
}

exit_code() { rt inspect -f '{{.State.ExitCode}}' "$1" 2>/dev/null; }
sleeps_cancelled() { ctl status "$1" --json 2>/dev/null | jq -r '.service.sleeps_cancelled // 0'; }
logs_say() { rt logs "$1" 2>&1 | grep -q "$2"; }

# busybox httpd as PID 1 ignores SIGTERM (no handler, and PID 1 of a
# namespace gets no default action): the runtime's stop would wait GRACE_S.
test_request_during_the_stop_of_a_sigterm_ignoring_container_cancels_it() {
	local name=ignore-$RT started ms t_sleep cancelled
	container_run "$name" dozed-test/busybox:latest "$IGN_PORT" 80 --stop-timeout "$GRACE_S" \
		-- /bin/httpd -f -p 80 -h /www || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	page_ok "$IGN_PORT" || { fail "no page before the stop"; return; }
	started=$(started_at "$name")
	cancelled=$(event_count sleep_cancelled "$name")

	t_sleep=$(now_ms)
	ctl sleep "$name" >/dev/null 2>&1
	wait_for 3000 "$name sleeping" state_is "$name" sleeping || return
	ms=$(page_ms "$IGN_PORT") || { fail "no page for the request during the stop ($ms ms)"; return; }
	echo "   answered during the stop in $ms ms"
	[ "$ms" -lt "$ANSWER_BOUND_MS" ] ||
		fail "the request during the stop took $ms ms (grace period ${GRACE_S}s)"
	wait_for 5000 "sleep_cancelled event" events_at_least sleep_cancelled "$name" $((cancelled + 1)) || return
	echo "   $(last_event sleep_cancelled "$name" | jq -c 'del(.ts, .container)')"
	wait_for 2000 "$name awake after the cancel" state_is "$name" awake
	wait_for 2000 "port $IGN_PORT out of the set" not_redirected "$IGN_PORT"
	[ "$(sleeps_cancelled "$name")" -ge 1 ] ||
		fail "status --json gives sleeps_cancelled $(sleeps_cancelled "$name"), expected 1"
	ctl status "$name" 2>&1 | grep -q 'sleeps cancelled: *1' ||
		fail "dozectl status does not count the cancelled stop: $(ctl status "$name" 2>&1 | tr '\n' ' ')"

	# Never killed: still the same run once the grace period (when a SIGKILL
	# would have come) is over, measured from the sleep request.
	local until_ms=$((t_sleep + GRACE_S * 1000 + 2000))
	while [ "$(now_ms)" -lt $until_ms ]; do
		running "$name" || break
		sleep 0.2
	done
	running "$name" || fail "$name stopped after the cancelled stop (exit code $(exit_code "$name"))"
	[ "$(started_at "$name")" = "$started" ] ||
		fail "$name was restarted: started at $started, now $(started_at "$name")"
	state_is "$name" awake || fail "$name is $(state_of "$name") after the grace period, expected awake"
	page_ok "$IGN_PORT" 5 || fail "no page after the grace period"
}

# It stops serving at SIGTERM and exits 3 s later: the held client is served
# by the next start, not by the container that is going away.
readonly SLOW_QUIT='httpd -f -p 80 -h /www & h=$!; trap "echo stopping; kill $h; sleep 3; exit 0" TERM; wait'

test_request_during_the_stop_of_an_exiting_container_is_served_by_its_restart() {
	local name=quit-$RT started ms wakes cancelled
	container_run "$name" dozed-test/busybox:latest "$QUIT_PORT" 80 --stop-timeout "$GRACE_S" \
		-- /bin/sh -c "$SLOW_QUIT" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	page_ok "$QUIT_PORT" || { fail "no page before the stop"; return; }
	started=$(started_at "$name")
	wakes=$(event_count ready "$name")
	cancelled=$(event_count sleep_cancelled "$name")

	ctl sleep "$name" >/dev/null 2>&1
	# The request comes once the container has taken the signal and its
	# httpd is gone, while it still runs.
	wait_for 5000 "$name taking its stop signal" logs_say "$name" stopping || return
	running "$name" || { fail "$name already exited: the request would not come during the stop"; return; }
	ms=$(page_ms "$QUIT_PORT") || { fail "no page for the request during the stop ($ms ms)"; return; }
	echo "   answered by the restart in $ms ms"
	wait_for 5000 "ready event of the restart" events_at_least ready "$name" $((wakes + 1)) || return
	[ "$(event_count sleep_cancelled "$name")" -eq "$cancelled" ] ||
		fail "the stop of a container that no longer served was cancelled"
	[ "$(sleeps_cancelled "$name")" -eq 0 ] || fail "status counts a cancelled stop: $(sleeps_cancelled "$name")"
	[ "$(started_at "$name")" != "$started" ] || fail "$name was not restarted (started at $started still)"
	[ "$(exit_code "$name")" = 0 ] || fail "$name's last run ended with $(exit_code "$name"), expected its own exit 0"
	wait_for 2000 "$name awake" state_is "$name" awake
}

# It catches SIGTERM and drains: it still serves for 4 s, then exits. A
# request during the drain must not be relayed to it (it would be cut at the
# exit): the stop goes on and the restart serves it.
readonly DRAIN='httpd -f -p 80 -h /www & h=$!; trap "echo draining; sleep 4; kill $h; exit 0" TERM; wait'

test_request_while_a_container_drains_after_sigterm_is_served_by_its_restart() {
	local name=drain-$RT started ms wakes cancelled
	container_run "$name" dozed-test/busybox:latest "$DRAIN_PORT" 80 --stop-timeout "$GRACE_S" \
		-- /bin/sh -c "$DRAIN" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	page_ok "$DRAIN_PORT" || { fail "no page before the stop"; return; }
	started=$(started_at "$name")
	wakes=$(event_count ready "$name")
	cancelled=$(event_count sleep_cancelled "$name")

	ctl sleep "$name" >/dev/null 2>&1
	wait_for 5000 "$name taking its stop signal" logs_say "$name" draining || return
	# Its httpd still answers now: a probe would call it serving.
	ms=$(page_ms "$DRAIN_PORT") || { fail "the request during the drain got no page ($ms ms)"; return; }
	echo "   answered by the restart in $ms ms"
	wait_for 5000 "ready event of the restart" events_at_least ready "$name" $((wakes + 1)) || return
	[ "$(event_count sleep_cancelled "$name")" -eq "$cancelled" ] ||
		fail "the stop of a draining container was cancelled: its clients would be cut"
	[ "$(started_at "$name")" != "$started" ] || fail "$name was not restarted (started at $started still)"
	wait_for 2000 "$name awake" state_is "$name" awake
	page_ok "$DRAIN_PORT" 5 || fail "no page after the restart"
}

# dozectl wake during the stop of a container that still serves: cancelled
# like a client's, not a SIGKILL and a restart.
test_wake_command_during_the_stop_cancels_it() {
	local name=wakecmd-$RT started t0 ms
	container_run "$name" dozed-test/busybox:latest "$WAKE_PORT" 80 --stop-timeout "$GRACE_S" \
		-- /bin/httpd -f -p 80 -h /www || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	started=$(started_at "$name")
	ctl sleep "$name" >/dev/null 2>&1
	wait_for 3000 "$name sleeping" state_is "$name" sleeping || return
	t0=$(now_ms)
	ctl wake "$name" >/dev/null 2>&1 || { fail "dozectl wake during the stop failed"; return; }
	wait_for $((GRACE_S * 1000 + 5000)) "$name awake" state_is "$name" awake || return
	ms=$(($(now_ms) - t0))
	echo "   awake again in $ms ms"
	[ "$ms" -lt "$ANSWER_BOUND_MS" ] || fail "the wake during the stop took $ms ms (grace ${GRACE_S}s)"
	ctl status "$name" 2>&1 | grep -q 'last stop: *cancelled' ||
		fail "status does not say the stop was cancelled: $(ctl status "$name" 2>&1 | tr '\n' ' ')"
	[ "$(started_at "$name")" = "$started" ] || fail "$name was restarted"
	page_ok "$WAKE_PORT" 5 || fail "no page after the cancelled stop"
}

# With --stop-signal USR1 (TERM ignored, USR1 ends it) a sleep takes well
# under the grace period and the container exits by itself, not by SIGKILL.
readonly USR1_QUIT='trap "" TERM; trap "exit 0" USR1; httpd -f -p 80 -h /www & while :; do wait; done'

test_sleep_uses_the_containers_own_stop_signal() {
	local name=usr1-$RT t0 ms
	container_run "$name" dozed-test/busybox:latest "$SIG_PORT" 80 --stop-timeout "$GRACE_S" \
		--stop-signal SIGUSR1 -- /bin/sh -c "$USR1_QUIT" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	t0=$(now_ms)
	ctl sleep "$name" >/dev/null 2>&1
	wait_for $((GRACE_S * 1000 + 5000)) "$name asleep" state_is "$name" asleep || return
	ms=$(($(now_ms) - t0))
	echo "   asleep in $ms ms"
	[ "$ms" -lt "$ANSWER_BOUND_MS" ] || fail "the sleep took $ms ms: SIGTERM and the grace period, not SIGUSR1"
	[ "$(exit_code "$name")" = 0 ] || fail "$name ended with $(exit_code "$name") (137: killed), expected 0"
	page_ok "$SIG_PORT" || fail "no page after the wake"
}

# A CGI that answers once /tmp/go exists (the test makes it); the shell as
# PID 1 exits at once on SIGTERM, and its exit ends every process of the
# container, the CGI's too.
# shellcheck disable=SC2016 # expanded by the container's shell
readonly SLOW_CGI='mkdir -p /www/cgi-bin &&
printf "#!/bin/sh\nwhile [ ! -e /tmp/go ]; do sleep 0.02; done\nprintf \"Content-Type: text/plain\\r\\n\\r\\nslow answer\\n\"\n" >/www/cgi-bin/slow &&
chmod +x /www/cgi-bin/slow && trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'

unanswered_conn() { # service: its status lists an unanswered open connection
	ctl status "$1" --json 2>/dev/null | jq -e '[.. | objects | select(.unanswered? == true)] | length > 0' >/dev/null
}
slow_request() { # out-file rc-file
	in_ns curl -sS --max-time 30 "http://127.0.0.1:$SLOW_PORT/cgi-bin/slow" >"$1" 2>&1
	echo $? >"$2"
}

drain_logged() { grep -q "$1: an unanswered request from .*: the stop signal waits for its answer" "$(dozed_log)"; }

# A request already in the container when its sleep begins (a command's
# sleep, or one that came just before the ports were redirected) is answered
# before the stop signal cuts it: the stop waits for it, then goes on.
test_a_request_in_flight_when_a_sleep_begins_is_answered_before_the_stop() {
	local name=slow-$RT out=$WORK/$RT/slow.out rc=$WORK/$RT/slow.rc sleeps
	container_run "$name" dozed-test/busybox:latest "$SLOW_PORT" 80 --stop-timeout "$GRACE_S" \
		-- /bin/sh -c "$SLOW_CGI" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	page_ok "$SLOW_PORT" || { fail "no page before the sleep"; return; }
	sleeps=$(event_count sleep "$name")
	rm -f "$out" "$rc"
	lib_bg slow_request "$out" "$rc"
	wait_for 5000 "the slow request unanswered in $name" unanswered_conn "$name" || return
	ctl sleep "$name" >/dev/null 2>&1
	wait_for 5000 "the sleep event" events_at_least sleep "$name" $((sleeps + 1)) || return
	wait_for 5000 "dozed saying the stop waits for the request" drain_logged "$name" || return
	running "$name" || fail "$name was stopped with its request unanswered"
	[ -s "$rc" ] && fail "the request ended before its answer was let go: curl exited $(cat "$rc"): $(head -c 200 "$out")"
	rt exec "$name" touch /tmp/go >/dev/null 2>&1 || { fail "cannot let $name answer"; return; }
	wait_for 15000 "the slow request's end" test -s "$rc" || return
	[ "$(cat "$rc")" = 0 ] && grep -q 'slow answer' "$out" ||
		fail "the request in flight was cut by the sleep: curl exited $(cat "$rc"): $(head -c 200 "$out")"
	wait_for 15000 "$name asleep" state_is "$name" asleep || return
	stopped "$name" || fail "$name still runs after its sleep"
	! grep -q "$name: .*stopping it anyway" "$(dozed_log)" ||
		fail "the drain ran out before the answer: $(grep "$name: .*stopping it anyway" "$(dozed_log)" | tail -n 1)"
}

counted_bytes() { # service: what its flow counter counted this run, or nothing
	ctl status "$1" --json 2>/dev/null | jq -r '[.. | objects | .counted_bytes? // empty] | first // empty'
}
counted_above() { local b; b=$(counted_bytes "$1"); [ -n "$b" ] && [ "$b" -gt "$2" ]; }

# A loaded Docker answers an inspect that waits for the container's lock only
# once the exit is handled, just after the wait: the probe asked for a client
# that came during the stop is answered "not running" after the stop is over,
# before the restart's start returns. That answer must probe nothing: the
# published port's docker-proxy accepts as soon as the start sets it up,
# before the container listens, and a relay there is reset. The wake is the
# restart's alone: ready after the start, its flow counter on the new cgroup.
# tests/e2e/api_reorder.c, between dozed and the runtime, makes that order.
test_a_probe_answered_after_the_stop_leaves_the_wake_to_the_restart() {
	local dir=$WORK/$RT/reorder sock=$WORK/$RT/api.sock relay
	mkdir -p "$dir" && rm -f "$dir"/*
	tool_build tests/e2e/api_reorder.c
	lib_bg "$WORK/api_reorder" "$sock" "$RTDIR/$RT.sock" "$dir"
	relay=$LAST_BG
	if wait_for 2000 "api_reorder on $sock" test -S "$sock"; then
		stop_dozed
		RUNTIME_SOCK=$sock start_dozed && probe_answered_after_the_stop "$dir"
	fi
	# Whatever failed: the next tests get dozed on the runtime itself.
	stop_dozed
	lib_end "$relay"
	start_dozed
}

probe_answered_after_the_stop() { # api_reorder's directory
	local name=late-$RT dir=$1 wakes ms ready before
	container_run "$name" dozed-test/busybox:latest "$LATE_PORT" 80 --stop-timeout "$GRACE_S" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	wait_for 5000 "$name awake" state_is "$name" awake || return
	page_ok "$LATE_PORT" || { fail "no page before the stop"; return; }
	wakes=$(event_count ready "$name")

	touch "$dir/armed"
	ctl sleep "$name" >/dev/null 2>&1
	wait_for 5000 "the stop's kill through api_reorder" test -e "$dir/killed" || return
	ms=$(page_ms "$LATE_PORT") || fail "no page for the request during the stop ($ms ms)"
	echo "   answered in $ms ms"
	wait_for 10000 "api_reorder's end of the stop" test -e "$dir/reordered" || return
	echo "   api_reorder: $(cat "$dir/reordered")"
	grep -q 'inspects held [1-9]' "$dir/reordered" ||
		fail "no inspect came during the stop: the order under test did not happen"
	wait_for 5000 "ready event of the restart" events_at_least ready "$name" $((wakes + 1)) || return
	ready=$(last_event ready "$name")
	echo "   $(jq -c '{start_ms, probe_ms, total_ms}' <<<"$ready")"
	[ "$(jq -r '.start_ms // 0' <<<"$ready")" -gt 0 ] ||
		fail "ready before the restart's start returned: $(jq -c . <<<"$ready")"
	before=$(counted_bytes "$name")
	page_ok "$LATE_PORT" || fail "no page after the wake"
	wait_for 3000 "the restart's traffic counted" counted_above "$name" "${before:-0}" ||
		fail "no flow counter on the restarted container (counted ${before:-nothing}, then $(counted_bytes "$name"))"
}

ONLY=("$@")
env_up
for RT in podman docker; do
	start_dozed || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	for t in test_request_during_the_stop_of_a_sigterm_ignoring_container_cancels_it \
		test_request_during_the_stop_of_an_exiting_container_is_served_by_its_restart \
		test_request_while_a_container_drains_after_sigterm_is_served_by_its_restart \
		test_wake_command_during_the_stop_cancels_it \
		test_sleep_uses_the_containers_own_stop_signal \
		test_a_request_in_flight_when_a_sleep_begins_is_answered_before_the_stop \
		test_a_probe_answered_after_the_stop_leaves_the_wake_to_the_restart; do
		run_test "${RT}_" "$t"
	done
	stop_dozed
done
exit $ANY_FAILED
