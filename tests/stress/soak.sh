#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Soak, against a real Podman (make stress; minutes, not in CI): 100 clients
# request the page without pause (each connection replaced by the next as
# soon as it ends) across 100 sleep/wake cycles of an idle-1s service (see
# SOAK_MODE below). Every request must be answered; dozed's fds and RSS are
# printed at the start, in the middle and at the end, and must stay flat.
#
# Usage: [BUILD=build] [SOAK_CYCLES=100] [SOAK_CLIENTS=100] [SOAK_MODE=idle|forced]
#        tests/stress/soak.sh
set -uo pipefail
SUITE=soak TABLE=dozedsoak ACT_PORT=15601
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"

RT=${SOAK_RUNTIME:-podman}
NAME=soak-web PORT=18600
CYCLES=${SOAK_CYCLES:-100}
CLIENTS=${SOAK_CLIENTS:-100}
RSS_SLACK_KB=2048

figures() { echo "$(dozed_fds) fds, RSS $(dozed_rss_kb) KiB"; }

kv() { sed -n "s/.*\<$1=\([0-9]*\).*/\1/p" <<<"$2"; }

# SOAK_MODE=idle (the default): the clients run in bursts of BURST_S seconds,
# without pause; between bursts the service is idle for its 1 s and goes to
# sleep on its own, and the next burst's 100 connections wake it.
# SOAK_MODE=forced: the clients never pause and each cycle is forced with
# `dozectl sleep` while they run.
MODE=${SOAK_MODE:-idle}
BURST_S=${SOAK_BURST_S:-2}

OK=0 RESET=0 TIMEOUT=0
add_counts() { # flood result line
	OK=$((OK + $(kv ok "$1"))) RESET=$((RESET + $(kv reset "$1"))) TIMEOUT=$((TIMEOUT + $(kv timeout "$1")))
}

cycle_idle() { # cycle: a burst, then idle until asleep
	local out sleeps
	sleeps=$(event_count sleep "$NAME")
	out=$(in_ns "$FLOOD" tcp 127.0.0.1 "$PORT" "$CLIENTS" loop / "$BURST_S")
	add_counts "$out"
	[ "$(kv reset "$out")" = 0 ] || echo "   cycle $1, at $(date -u +%T.%3N): $out"
	wait_for 15000 "sleep of cycle $1 once the burst ended" events_at_least sleep "$NAME" $((sleeps + 1))
}

cycle_forced() { # cycle: sleep forced under traffic; the clients wake it
	local ready cancelled
	ready=$(event_count ready "$NAME")
	cancelled=$(event_count sleep_cancelled "$NAME")
	wait_for 20000 "awake state before cycle $1" state_is "$NAME" awake || return 1
	ctl sleep "$NAME" >/dev/null 2>&1
	wait_for 30000 "ready (or sleep_cancelled) event of cycle $1" woke_again "$ready" "$cancelled"
}
woke_again() { # ready-count cancelled-count
	[ "$(event_count ready "$NAME")" -gt "$1" ] || [ "$(event_count sleep_cancelled "$NAME")" -gt "$2" ]
}

test_100_clients_without_pause_across_100_sleep_wake_cycles_lose_nothing() {
	# One cycle first: what is made once (relay pipes) is there at the start.
	asleep "$NAME" && page_ok "$PORT" || { fail "no first wake"; return; }
	local fds0 rss0 fds_mid="" rss_mid="" out=$WORK/clients.out cycle t0 clients=""
	fds0=$(dozed_fds) rss0=$(dozed_rss_kb)
	echo "   start ($MODE, $CLIENTS clients, $CYCLES cycles): $(figures)"
	t0=$(now_ms)
	if [ "$MODE" = forced ]; then
		lib_bg_to "$out" nsenter --net="$(netns)" -- "$FLOOD" tcp 127.0.0.1 "$PORT" "$CLIENTS" loop / 36000
		clients=$LAST_BG
	fi
	for ((cycle = 1; cycle <= CYCLES; cycle++)); do
		"cycle_$MODE" $cycle || break
		if [ $cycle -eq $((CYCLES / 2)) ]; then
			fds_mid=$(dozed_fds) rss_mid=$(dozed_rss_kb)
			echo "   middle (cycle $cycle, $(($(now_ms) - t0)) ms): $fds_mid fds, RSS $rss_mid KiB"
		fi
	done
	if [ -n "$clients" ]; then
		lib_end "$clients"
		add_counts "$(cat "$out")"
	fi
	echo "   $((cycle - 1)) cycles in $(($(now_ms) - t0)) ms ($(event_count sleep "$NAME") sleep," \
		"$(event_count ready "$NAME") ready, $(event_count sleep_cancelled "$NAME") sleep_cancelled events);" \
		"requests: $OK answered, $RESET reset, $TIMEOUT unanswered in 30 s"
	[ $((RESET + TIMEOUT)) -eq 0 ] || fail "$((RESET + TIMEOUT)) of $((OK + RESET + TIMEOUT)) requests failed"
	[ "$OK" -gt 0 ] || fail "no request answered"
	# Flat: at rest again, back to the start's fds; RSS no higher than in the middle.
	asleep "$NAME"
	wait_for 30000 "fds back to $fds0 (now $(dozed_fds))" sh -c "[ \$(ls /proc/$DOZED_PID/fd | wc -l) -le $fds0 ]"
	echo "   end: $(figures)"
	[ -n "$rss_mid" ] || return
	[ "$(dozed_rss_kb)" -le $((rss_mid + RSS_SLACK_KB)) ] ||
		fail "RSS grew in the second half: $rss_mid KiB in the middle, $(dozed_rss_kb) KiB at the end"
	[ "$(dozed_rss_kb)" -le $((rss0 + 2 * RSS_SLACK_KB)) ] ||
		fail "RSS grew from $rss0 KiB to $(dozed_rss_kb) KiB"
}

ONLY=("$@")
flood_build
env_up
DOZED_ARGS=(--wake-timeout 15s --stop-timeout 2)
if ! start_dozed; then
	echo "FAIL ${RT}_start_dozed: $FAILED"
	tail -n 20 "$(dozed_log)"
	exit 1
fi
make_service "$NAME" "$PORT" --idle 1s || { echo "FAIL ${RT}_create_service: $FAILED"; exit 1; }
run_test "${RT}_" test_100_clients_without_pause_across_100_sleep_wake_cycles_lose_nothing
stop_dozed TERM
exit $ANY_FAILED
