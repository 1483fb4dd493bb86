#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Faults, against a real Podman: the runtime absent when dozed starts, the
# runtime killed or hung during a wake, and a services.json with one bad
# entry, truncated, empty or not JSON. dozed must keep running, keep what it
# could read, never take a port out of the set for a service whose state it
# could not read, and recover once the runtime answers again.
#
# Usage: [BUILD=build] tests/e2e/test_faults.sh [TEST_NAME...]
set -uo pipefail
SUITE=faults TABLE=dozedfault ACT_PORT=15401
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

RT=podman
WAKE_TIMEOUT_S=3
A=fault-a PORT_A=18400 # idle 1s: asleep in most tests
B=fault-b PORT_B=18401 # idle 1h: awake
C=fault-c PORT_C=18402 # idle 1s: asleep; the bad entry
STATE=$WORK/$RT/state
RUNTIME_PID=""

# A runtime stopped by SIGSTOP must not stay stopped when the test fails.
continue_runtime() { [ -z "$RUNTIME_PID" ] || kill -CONT "$RUNTIME_PID" 2>/dev/null; }
LIB_EXTRA_CLEANUP=continue_runtime

saved_names() { jq -c '[.[].name] | sort' "$STATE/services.json" 2>/dev/null; }
all_saved() { [ "$(saved_names)" = "[\"$A\",\"$B\",\"$C\"]" ]; }
log_since() { tail -n +$(($1 + 1)) "$(dozed_log)"; }
log_lines() { wc -l <"$(dozed_log)"; }
logged_since() { log_since "$1" | grep -q -- "$2"; }
corrupt_copies() { find "$STATE" -maxdepth 1 -name 'services.json.corrupt-*' | wc -l; }

# A, C asleep (redirected), B awake: the starting point of each test.
baseline() {
	asleep "$A" && asleep "$C" || return 1
	if ! state_is "$B" awake; then
		page_ok "$PORT_B" || { fail "$B does not serve"; return 1; }
	fi
	wait_for 10000 "awake $B" state_is "$B" awake
}

recovered() { # the runtime answers again and every service is reconciled
	wait_for 30000 "$A asleep or awake" state_in "$A" asleep awake &&
		wait_for 10000 "$B awake" state_is "$B" awake &&
		wait_for 10000 "$C asleep or awake" state_in "$C" asleep awake
}
state_in() {
	local s
	s=$(state_of "$1")
	shift
	[[ " $* " == *" $s "* ]]
}

test_runtime_absent_at_start_keeps_saved_services_unknown_and_redirected() {
	baseline || return
	all_saved || { fail "services.json does not hold all three: $(saved_names)"; return; }
	stop_dozed TERM
	"$ENV" stop "$RTDIR" "$RT" || { fail "cannot stop $RT"; return; }
	rm -f "$RTDIR/$RT.sock"
	start_dozed || return
	local list
	list=$(ctl list --json)
	jq -e --arg a "$A" --arg b "$B" --arg c "$C" \
		'[.services[] | select(.name == $a or .name == $b or .name == $c)] | length == 3' <<<"$list" >/dev/null ||
		fail "dozectl list, runtime absent, lost saved services: $(jq -c '[.services[] | {name, state}]' <<<"$list")"
	jq -e '[.services[] | select(.state != "unknown" or (.reason // "") == "")] | length == 0' <<<"$list" >/dev/null ||
		fail "not every service is unknown with a reason: $(jq -c '[.services[] | {name, state, reason}]' <<<"$list")"
	echo "   unknown: $(jq -c '[.services[] | {name, state, reason}] | first' <<<"$list")"
	redirected "$PORT_A" && redirected "$PORT_C" ||
		fail "a sleeping service's port left the set while the runtime was absent: set $(set_ports)"
	all_saved || fail "services.json lost services while the runtime was absent: $(saved_names)"
	"$ENV" start "$RTDIR" "$RT" >"$WORK/start.log" 2>&1 || { fail "cannot start $RT again: $(tail -n 3 "$WORK/start.log")"; return; }
	recovered || { echo "   list: $(ctl list --json | jq -c '[.services[] | {name, state}]')"; return; }
	page_ok "$PORT_A" || fail "a request to $A after the runtime came back got no page"
	running "$A" || fail "$A not running after the request"
	all_saved || fail "services.json lost services: $(saved_names)"
}

# A wake whose start request the runtime never answers: the runtime is stopped
# (SIGSTOP) before the request and killed (SIGKILL) during the wake.
test_runtime_killed_during_a_wake_fails_it_and_dozed_recovers() {
	baseline || return
	RUNTIME_PID=$(cat "$RTDIR/$RT.pid")
	local wakes failed out=$WORK/client.out t_kill t_end
	wakes=$(event_count wake "$A")
	failed=$(event_count wake_failed "$A")
	kill -STOP "$RUNTIME_PID"
	rm -f "$out"
	lib_bg sh -c "nsenter --net='$(netns)' -- curl -s --max-time 30 'http://127.0.0.1:$PORT_A/' >/dev/null; echo \"rc=\$? \$(date +%s%3N)\" >'$out'"
	wait_for 5000 "wake event" events_at_least wake "$A" $((wakes + 1)) || { continue_runtime; return; }
	t_kill=$(now_ms)
	kill -KILL "$RUNTIME_PID"
	local dead=$RUNTIME_PID
	RUNTIME_PID=""
	wait_for $(((WAKE_TIMEOUT_S + 3) * 1000)) "end of the held client (reset at once or at --wake-timeout ${WAKE_TIMEOUT_S}s)" \
		test -s "$out" || return
	t_end=$(awk '{print $2}' "$out")
	grep -q 'rc=0' "$out" && fail "the held client got an answer with the runtime dead"
	wait_for 5000 "wake_failed event" events_at_least wake_failed "$A" $((failed + 1)) || return
	local reason
	reason=$(last_event wake_failed "$A" | jq -r '.reason // ""')
	[ -n "$reason" ] || fail "wake_failed says no reason"
	echo "   held client reset $((t_end - t_kill)) ms after the kill; wake_failed: $reason"
	dozed_alive || { fail "dozed died with the runtime"; return; }
	ctl list >/dev/null || fail "dozectl list fails with the runtime dead"
	# Its PID is reaped by init, not by us: runtime-env start needs it gone.
	wait_for 10000 "the killed runtime's exit" sh -c "! kill -0 $dead" || return
	"$ENV" start "$RTDIR" "$RT" >"$WORK/start.log" 2>&1 || { fail "cannot start $RT again: $(tail -n 3 "$WORK/start.log")"; return; }
	recovered || return
	page_ok "$PORT_A" || fail "a request to $A after the runtime came back got no page"
	page_ok "$PORT_B" || fail "$B does not serve after the runtime came back"
}

# The runtime stops answering (SIGSTOP) during a wake: the held client is reset
# at --wake-timeout; when the runtime goes on, dozed follows what it did.
test_runtime_hung_during_a_wake_resets_clients_at_the_wake_timeout() {
	baseline || return
	RUNTIME_PID=$(cat "$RTDIR/$RT.pid")
	local wakes failed out=$WORK/client.out t0 t_end
	wakes=$(event_count wake "$A")
	failed=$(event_count wake_failed "$A")
	kill -STOP "$RUNTIME_PID"
	rm -f "$out"
	t0=$(now_ms)
	lib_bg sh -c "nsenter --net='$(netns)' -- curl -s --max-time 30 'http://127.0.0.1:$PORT_A/' >/dev/null; echo \"rc=\$? \$(date +%s%3N)\" >'$out'"
	wait_for 5000 "wake event" events_at_least wake "$A" $((wakes + 1)) || { continue_runtime; return; }
	wait_for $(((WAKE_TIMEOUT_S + 3) * 1000)) "end of the held client (at --wake-timeout ${WAKE_TIMEOUT_S}s)" \
		test -s "$out" || { continue_runtime; return; }
	t_end=$(awk '{print $2}' "$out")
	grep -q 'rc=0' "$out" && fail "the held client got an answer from a hung runtime"
	wait_for 5000 "wake_failed event" events_at_least wake_failed "$A" $((failed + 1))
	echo "   held client reset $((t_end - t0)) ms after it connected; wake_failed: $(last_event wake_failed "$A" | jq -r '.reason // ""')"
	continue_runtime
	RUNTIME_PID=""
	dozed_alive || { fail "dozed died"; return; }
	# The start it had queued now runs: dozed must follow it, or have stopped it.
	wait_for 15000 "consistent $A once the runtime goes on" a_consistent || {
		echo "   $A: $(state_of "$A"), running: $(running "$A" && echo yes || echo no), set $(set_ports)"
		return
	}
	page_ok "$PORT_A" || fail "no page from $A once the runtime went on"
}
a_consistent() {
	case $(state_of "$A") in
	awake) running "$A" && not_redirected "$PORT_A" ;;
	asleep) stopped "$A" && redirected "$PORT_A" ;;
	*) return 1 ;;
	esac
}

# Replaces services.json while dozed is down, starts it, and waits for "ready".
restart_with_file() { # writer command...
	stop_dozed TERM
	"$@" >"$STATE/services.json"
	START_LINE=$(log_lines)
	start_dozed || return 1
	wait_for 10000 "dozed's ready line" logged_since "$START_LINE" 'ready:'
}

test_one_bad_entry_in_services_json_is_quarantined_alone() {
	baseline || return
	all_saved || { fail "services.json does not hold all three: $(saved_names)"; return; }
	cp "$STATE/services.json" "$WORK/good.json"
	local idx copies
	idx=$(jq --arg c "$C" 'map(.name) | index($c) + 1' "$WORK/good.json")
	copies=$(corrupt_copies)
	restart_with_file jq --arg c "$C" 'map(if .name == $c then .container_id = "not-an-id" else . end)' \
		"$WORK/good.json" || return
	wait_for 10000 "$A asleep" state_is "$A" asleep
	wait_for 10000 "$B awake" state_is "$B" awake
	[ "$(state_of "$C")" = none ] || fail "the bad entry $C is still managed: $(state_of "$C")"
	redirected "$PORT_A" || fail "the good sleeping $A lost its redirect: set $(set_ports)"
	redirected "$PORT_C" || fail "the bad entry $C lost its redirect (its state could not be read): set $(set_ports)"
	log_since "$START_LINE" | grep -E -- "$C|entry $idx" | grep -q . ||
		fail "the log does not name the bad entry ($C, entry $idx): $(log_since "$START_LINE" | grep -i -m2 'services.json')"
	[ "$(corrupt_copies)" -gt "$copies" ] || fail "no moved-aside copy of services.json in $STATE"
	grep -qs -- "$C" "$STATE"/services.json.corrupt-* || fail "no moved-aside copy holds the bad entry $C"
	page_ok "$PORT_A" || fail "$A, a good entry, does not wake"
}

truncated() { head -c "$(($(wc -c <"$WORK/good.json") / 2))" "$WORK/good.json"; }
empty() { :; }
not_json() { echo 'services: [fault-a, fault-b]'; }

test_unreadable_services_json_starts_and_keeps_every_redirect() {
	[ -s "$WORK/good.json" ] || { baseline && cp "$STATE/services.json" "$WORK/good.json"; } || return
	local variant copies
	for variant in truncated empty not_json; do
		# Back to the good file, A and C asleep, B awake.
		restart_with_file cat "$WORK/good.json" || return
		baseline || return
		copies=$(corrupt_copies)
		restart_with_file "$variant" || { fail "$variant: dozed did not start: $FAILED"; return; }
		dozed_alive || { fail "$variant: dozed exited"; return; }
		log_since "$START_LINE" | grep -q 'services.json' ||
			fail "$variant: the log does not say what is wrong with services.json"
		echo "   $variant: $(log_since "$START_LINE" | grep -m1 'services.json' | cut -c1-200)"
		[ "$(corrupt_copies)" -gt "$copies" ] || fail "$variant: no moved-aside copy of services.json"
		redirected "$PORT_A" && redirected "$PORT_C" ||
			fail "$variant: redirects removed for services whose state could not be read: set $(set_ports)"
		[ -z "$FAILED" ] || return
	done
	restart_with_file cat "$WORK/good.json"
}

ONLY=("$@")
env_up
DOZED_ARGS=(--wake-timeout "${WAKE_TIMEOUT_S}s" --stop-timeout 2)
if ! start_dozed; then
	echo "FAIL ${RT}_start_dozed: $FAILED"
	tail -n 20 "$(dozed_log)"
	exit 1
fi
make_service "$A" "$PORT_A" --idle 1s && make_service "$B" "$PORT_B" --idle 1h &&
	make_service "$C" "$PORT_C" --idle 1s || { echo "FAIL ${RT}_create_services: $FAILED"; exit 1; }
for t in \
	test_one_bad_entry_in_services_json_is_quarantined_alone \
	test_unreadable_services_json_starts_and_keeps_every_redirect \
	test_runtime_hung_during_a_wake_resets_clients_at_the_wake_timeout \
	test_runtime_killed_during_a_wake_fails_it_and_dozed_recovers \
	test_runtime_absent_at_start_keeps_saved_services_unknown_and_redirected; do
	run_test "${RT}_" "$t"
	# A test that lost the runtime, dozed or the services leaves the next one
	# nothing to test.
	continue_runtime
	RUNTIME_PID=""
	"$ENV" start "$RTDIR" "$RT" >/dev/null 2>&1
	dozed_alive || start_dozed
	for s in "$A:$PORT_A:1s" "$B:$PORT_B:1h" "$C:$PORT_C:1s"; do
		IFS=: read -r n _ i <<<"$s"
		[ "$(state_of "$n")" != none ] || ctl enable "$n" --idle "$i" >/dev/null 2>&1
	done
done
stop_dozed TERM
exit $ANY_FAILED
