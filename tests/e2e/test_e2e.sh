#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# dozed end to end, against real Podman and Docker (tests/runtime-env.sh):
# a busybox httpd container goes to sleep, wakes on a request, and survives
# dozed's restarts and the user's own starts and stops. dozed runs in each
# runtime's network namespace with its own nft table; nothing reaches the host.
#
# dozed runs as daemon/systemd/dozed.service would run it: holding only the
# capabilities of its CapabilityBoundingSet= (read from the unit), with
# NoNewPrivileges, and in a mount namespace where /, /sys, /proc/sys, the
# cgroup tree and the runtime's socket directory are read-only and only its
# own directory is writable (ProtectSystem=strict, ProtectKernelTunables=,
# ProtectControlGroups=). Each runtime's loop ends by starting dozed without
# each of those capabilities in turn: it must say which one it misses.
#
# Usage: [BUILD=build] tests/e2e/test_e2e.sh [TEST_NAME...]
# Prints "PASS name (N ms)" / "FAIL name: why" lines, like the C tests.
set -uo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ONLY=("$@")
ENV=tests/runtime-env.sh
DOZED=$BUILD/dozed
DOZECTL=$BUILD/dozectl
TABLE=dozede2e
# The host's "LAN" address, on a veth link in each runtime's namespace.
LAN_ADDR=10.203.0.1

for tool in curl jq nft nsenter setpriv capsh unshare; do
	command -v $tool >/dev/null || { echo "FAIL e2e: missing $tool ('make deps' installs it)"; exit 1; }
done
for bin in "$DOZED" "$DOZECTL"; do
	[ -x "$bin" ] || { echo "FAIL e2e: $bin is not built (make all)"; exit 1; }
done

UNIT=daemon/systemd/dozed.service
# "CAP_NET_ADMIN CAP_BPF" -> net_admin bpf
mapfile -t UNIT_CAPS < <(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr ' ' '\n' | grep . |
	tr '[:upper:]' '[:lower:]' | sed 's/^cap_//')
[ ${#UNIT_CAPS[@]} -gt 0 ] || { echo "FAIL e2e: no CapabilityBoundingSet= in $UNIT"; exit 1; }
# What start_dozed gives dozed; the tests of a missing capability change it.
DOZED_CAPS=("${UNIT_CAPS[@]}")
DOZED_ARGS=()

WORK=$(mktemp -d /tmp/dozed-e2e.XXXXXX)
RTDIR=$WORK/rt
DOZED_PID=""

cleanup() {
	stop_dozed
	"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "e2e: runtime-env down failed; see $RTDIR" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# --- dozed ------------------------------------------------------------------

netns() { echo "$RTDIR/ns/$RT.net"; }
in_ns() { nsenter --net="$(netns)" -- "$@"; }
ctl() { "$DOZECTL" --control "$WORK/$RT/control.sock" "$@"; }

# The sandbox of dozed.service, in a private mount namespace (nothing leaks
# to the host's): $1 the writable directory, $2 the runtime's (read-only, as
# /run is), $3 the capabilities for setpriv; then dozed and its arguments.
# shellcheck disable=SC2016
SANDBOX='
	set -e
	w=$1 rt=$2 caps=$3
	shift 3
	mount --bind "$w" "$w"
	mount --bind "$rt" "$rt"
	mount -o remount,bind,ro "$rt"
	mount -o remount,bind,ro /
	mount --bind /proc/sys /proc/sys
	mount -o remount,bind,ro /proc/sys
	mount -o remount,bind,ro /sys
	for m in $(awk '"'"'$5 ~ "^/sys/fs/cgroup" { print $5 }'"'"' /proc/self/mountinfo); do
		mount -o remount,bind,ro "$m"
	done
	exec setpriv --bounding-set="$caps" --inh-caps=-all --ambient-caps=-all --no-new-privs -- "$@"
'

launch_dozed() {
	mkdir -p "$WORK/$RT"
	local caps=-all c
	for c in "${DOZED_CAPS[@]}"; do caps+=",+$c"; done
	# nsenter, unshare, sh and setpriv exec in turn: $! is dozed itself, to
	# be signalled by that PID.
	nsenter --net="$(netns)" -- unshare --mount --propagation private -- \
		sh -c "$SANDBOX" sandbox "$WORK/$RT" "$RTDIR" "$caps" \
		"$DOZED" --runtime-socket "$RTDIR/$RT.sock" --control "$WORK/$RT/control.sock" \
		--state-dir "$WORK/$RT/state" --nft-table "$TABLE" --activator-port 15001 \
		--log-level debug "${DOZED_ARGS[@]}" >>"$WORK/$RT/dozed.log" 2>&1 &
	DOZED_PID=$!
}

start_dozed() {
	launch_dozed
	wait_for 10000 "dozed to answer on its control socket" ctl list || return 1
	kill -0 "$DOZED_PID" 2>/dev/null || { fail "dozed exited at start-up"; return 1; }
}

stop_dozed() { # signal
	[ -n "$DOZED_PID" ] || return 0
	kill "-${1:-TERM}" "$DOZED_PID" 2>/dev/null
	wait "$DOZED_PID" 2>/dev/null
	DOZED_PID=""
}

# --- assertions ---------------------------------------------------------------

FAILED=""
fail() { FAILED=${FAILED:-$*}; }

# wait_for MS WHAT COMMAND...: polls every 50 ms until COMMAND succeeds.
wait_for() {
	local ms=$1 what=$2 deadline
	shift 2
	deadline=$(($(now_ms) + ms))
	until "$@" >/dev/null 2>&1; do
		if [ "$(now_ms)" -ge $deadline ]; then
			fail "no $what within ${ms} ms"
			return 1
		fi
		sleep 0.05
	done
}

running() { [ "$("$ENV" cli "$RTDIR" "$RT" inspect -f '{{.State.Running}}' "$NAME")" = true ]; }
stopped() { [ "$("$ENV" cli "$RTDIR" "$RT" inspect -f '{{.State.Running}}' "$NAME")" = false ]; }
redirected() {
	in_ns nft -j list set inet "$TABLE" sleeping |
		jq -e --argjson p "$PORT" '[.nftables[].set.elem // [] | .[]] | index($p) != null' >/dev/null
}
not_redirected() { ! redirected; }
state_is() { [ "$(ctl status "$NAME" --json | jq -r .service.state)" = "$1" ]; }
event_count() { ctl events --json | jq -s --arg e "$1" --arg s "$NAME" '[.[] | select(.event == $e and .service == $s)] | length'; }
events_at_least() { [ "$(event_count "$1")" -ge "$2" ]; }
page_ok() { in_ns curl -sS --max-time 20 "http://127.0.0.1:$PORT/" | grep -q 'dozed test'; }

# Puts it to sleep (or lets a sleep under way finish); fails the test if it cannot.
asleep() {
	ctl sleep "$NAME" >/dev/null 2>&1
	wait_for 15000 "asleep state" state_is asleep && wait_for 5000 "stopped container" stopped
}

# --- the tests -----------------------------------------------------------------

test_enable_refusals_say_why() {
	local out rc
	out=$(ctl enable "nosuch-$RT" 2>&1)
	rc=$?
	[ $rc -eq 1 ] || fail "enable of a missing container: exit $rc, expected 1"
	[[ $out == *"nosuch-$RT"* ]] || fail "the message does not name the container: $out"
	"$ENV" create "$RTDIR" "$RT" "noports-$RT" - >/dev/null || { fail "cannot create noports-$RT"; return; }
	out=$(ctl enable "noports-$RT" 2>&1)
	rc=$?
	[ $rc -eq 1 ] || fail "enable of a container without ports: exit $rc, expected 1"
	[[ $out == *"publishes no TCP port"* ]] || fail "unclear refusal: $out"
	out=$(ctl enable "$NAME" --idle 10x 2>&1)
	[ $? -eq 2 ] || fail "a bad --idle is not a usage error: $out"
	ctl list --json | jq -e '.services | length == 0' >/dev/null || fail "a refused enable left a service"
}

test_dozed_holds_only_the_units_capabilities_in_a_read_only_system() {
	local st=/proc/$DOZED_PID/status want got eff bnd
	want=$(printf 'cap_%s\n' "${UNIT_CAPS[@]}" | sort | tr '\n' ' ')
	eff=$(awk '/^CapEff:/ { print $2 }' "$st")
	bnd=$(awk '/^CapBnd:/ { print $2 }' "$st")
	got=$(capsh --decode="$eff" | sed 's/^.*=//' | tr ',' '\n' | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || fail "dozed's effective capabilities are '$got', the unit's '$want'"
	[ "$bnd" = "$eff" ] || fail "bounding set $bnd is not the effective set $eff"
	grep -q '^NoNewPrivs:[[:space:]]*1' "$st" || fail "dozed runs without no_new_privs"
	local m
	for m in / /sys/fs/cgroup /proc/sys; do
		awk -v m="$m" '$5 == m { print $6 }' "/proc/$DOZED_PID/mountinfo" | grep -qw ro ||
			fail "$m is writable for dozed"
	done
}

test_enabled_idle_service_sleeps_within_4s() {
	ctl enable "$NAME" --idle 2s >/dev/null || { fail "dozectl enable failed"; return; }
	wait_for 4000 "stopped container" stopped || return
	redirected || fail "port $PORT not in the set"
	events_at_least sleep 1 || fail "no sleep event"
}

test_request_wakes_it_and_gets_the_page() {
	local before ready
	before=$(event_count ready)
	local out
	out=$(in_ns curl -sS --max-time 20 "http://127.0.0.1:$PORT/")
	[[ $out == *"dozed test"* ]] || { fail "curl got: $out"; return; }
	running || fail "container not running after the wake"
	wait_for 2000 "port out of the set" not_redirected
	events_at_least wake 1 || fail "no wake event"
	ready=$(ctl events --json | jq -s --arg s "$NAME" '[.[] | select(.event == "ready" and .service == $s)] | last')
	[ "$(jq -r .total_ms <<<"$ready")" != null ] || fail "ready event without timings: $ready"
	[ "$(event_count ready)" -gt "$before" ] || fail "no ready event"
	echo "   ready: $(jq -c '{start_ms, probe_ms, total_ms}' <<<"$ready")"
}

test_woken_service_with_traffic_stays_awake_then_sleeps_when_it_stops() {
	# Its egress counts after the restart (a new cgroup at the same path):
	# requests every 0.5 s for 4 s keep an idle-2s service awake.
	local sleeps i
	page_ok || { fail "not awake to begin with"; return; }
	sleeps=$(event_count sleep)
	for i in $(seq 8); do
		page_ok || fail "request $i failed"
		sleep 0.5
	done
	[ "$(event_count sleep)" -eq "$sleeps" ] || fail "it slept while serving every 0.5 s"
	running || fail "container stopped while serving"
	wait_for 4000 "sleep once the traffic stopped" events_at_least sleep $((sleeps + 1))
}

# 200 clients connect while it sleeps, all held by the activator at once, then
# each sends its request: the woken httpd (accept backlog 9) gets them in one
# burst. They connect to the host's LAN address, as remote clients would: on
# 127.0.0.1 Docker puts docker-proxy in between, which sends a SYN dropped by
# the full backlog again only after 1, 3, 7, 15 s, awake or not (make bench).
test_200_concurrent_clients_during_one_wake_all_get_the_page() {
	asleep || return
	local results got t0
	in_ns ip -j addr show dev dozed-lan >/dev/null 2>&1 || {
		in_ns ip link add dozed-lan type veth peer name dozed-lan-peer &&
			in_ns ip addr add "$LAN_ADDR/32" dev dozed-lan &&
			in_ns ip link set dozed-lan up && in_ns ip link set dozed-lan-peer up
	} || { fail "cannot give the runtime's namespace the address $LAN_ADDR"; return; }
	t0=$(now_ms)
	results=$(in_ns tests/burst.sh "$LAN_ADDR" "$PORT" 200 60)
	got=$(grep -c '^ok$' <<<"$results")
	echo "   burst: $got of 200 answered in $(($(now_ms) - t0)) ms"
	[ "$got" -eq 200 ] ||
		fail "$got of 200 clients got the page; the others: $(grep -v '^ok$' <<<"$results" | sort | uniq -c | tr -s ' \n' ' ')"
}

cycle_ends() { echo $(($(event_count ready) + $(event_count sleep_cancelled))); }
cycle_ended_after() { [ "$(cycle_ends)" -gt "$1" ]; }

test_hammering_client_sees_no_failure_across_10_sleep_wake_cycles() {
	local stopfile=$WORK/$RT/hammer.stop counts=$WORK/$RT/hammer.counts
	local failures=$WORK/$RT/hammer.failures
	rm -f "$stopfile" "$failures"
	(
		ok=0 bad=0
		while [ ! -e "$stopfile" ]; do
			# What a failed request saw (curl's code and error, the bytes
			# it got), with the time to put it beside dozed's events.
			out=$(in_ns curl -sS --max-time 20 "http://127.0.0.1:$PORT/" 2>&1)
			rc=$?
			if [ "$rc" -eq 0 ] && grep -q 'dozed test' <<<"$out"; then
				ok=$((ok + 1))
			else
				bad=$((bad + 1))
				echo "$(date -u +%T.%3N) curl rc=$rc: $(head -c 300 <<<"$out" | tr '\n' ' ')" >>"$failures"
			fi
		done
		echo "$ok $bad" >"$counts"
	) &
	local hammer=$! cycle ended
	for cycle in $(seq 10); do
		ended=$(cycle_ends)
		wait_for 15000 "awake state" state_is awake || break
		# The hammer's next request arrives during the stop, or just after:
		# the stop is cancelled while the container still serves (before
		# its signal, or its init ignores it), else it wakes once stopped.
		ctl sleep "$NAME" >/dev/null 2>&1
		wait_for 20000 "ready or sleep_cancelled event of cycle $cycle" \
			cycle_ended_after "$ended" || break
	done
	touch "$stopfile"
	wait $hammer
	read -r ok bad <"$counts"
	echo "   hammer: $ok answered, $bad failed"
	if [ "$bad" -ne 0 ]; then
		echo "   failed requests:"
		sed 's/^/     /' "$failures"
		echo "   dozed's events:"
		ctl events 2>/dev/null | tail -n 40 | sed 's/^/     /'
		fail "$bad of $((ok + bad)) requests failed"
	fi
	[ "$ok" -gt 10 ] || fail "only $ok requests went through"
}

test_dozed_killed_while_asleep_still_wakes_it_after_restart() {
	asleep || return
	stop_dozed KILL
	redirected || fail "port left the set when dozed died"
	start_dozed
	wait_for 5000 "asleep state after restart" state_is asleep || return
	page_ok || fail "no page after the restart"
	running || fail "container not running"
}

test_dozed_killed_while_awake_leaves_no_redirect_after_restart() {
	page_ok || { fail "not awake to begin with"; return; }
	wait_for 5000 "awake state" state_is awake || return
	stop_dozed KILL
	start_dozed
	wait_for 5000 "awake state after restart" state_is awake || return
	not_redirected || fail "port $PORT still redirected"
	page_ok || fail "no page"
}

test_started_by_hand_while_asleep_is_awake_and_not_redirected() {
	asleep || return
	"$ENV" cli "$RTDIR" "$RT" start "$NAME" >/dev/null
	wait_for 5000 "awake state" state_is awake || return
	wait_for 2000 "port out of the set" not_redirected
	page_ok || fail "no page"
}

test_stopped_by_hand_while_awake_becomes_asleep_and_wakes_on_request() {
	page_ok || { fail "not awake to begin with"; return; }
	wait_for 5000 "awake state" state_is awake || return
	"$ENV" cli "$RTDIR" "$RT" stop -t 1 "$NAME" >/dev/null
	wait_for 5000 "asleep state" state_is asleep || return
	redirected || fail "port not redirected"
	page_ok || fail "no page from the woken container"
}

test_disabling_a_sleeping_service_wakes_it_and_lets_it_go() {
	asleep || return
	ctl disable "$NAME" >/dev/null || { fail "dozectl disable failed"; return; }
	wait_for 5000 "disabled event" events_at_least disabled 1 || return
	running || fail "a disabled service was left stopped"
	not_redirected || fail "port $PORT still redirected after disable"
	ctl status "$NAME" >/dev/null 2>&1 && fail "status still knows $NAME"
	page_ok || fail "no page from the disabled service"
	ctl enable "$NAME" --idle 2s >/dev/null || fail "enable again failed"
}

# dozed without each capability of the unit, in turn: it must say which one
# it misses (an error, a warning or a notice naming it), at start-up or when
# it first needs it.
dozed_log_since() { tail -n +$(($1 + 1)) "$WORK/$RT/dozed.log"; }
dozed_gone() { ! kill -0 "$DOZED_PID" 2>/dev/null; }

without_capability() { # capability, what must name it: start | wake
	local cap=$1 when=$2 mark c
	stop_dozed TERM
	DOZED_CAPS=()
	for c in "${UNIT_CAPS[@]}"; do [ "$c" = "$cap" ] || DOZED_CAPS+=("$c"); done
	DOZED_ARGS=(--wake-timeout 3s)
	mark=$(wc -l <"$WORK/$RT/dozed.log")
	if [ "$when" = start ]; then
		launch_dozed
		if wait_for 10000 "exit of dozed without CAP_${cap^^}" dozed_gone; then
			wait "$DOZED_PID"
			[ $? -ne 0 ] || fail "dozed without CAP_${cap^^} exited with status 0"
			DOZED_PID=""
		fi
	else
		# The probe falls back to the published port: the client is served.
		start_dozed && asleep && { page_ok || fail "no page from dozed without CAP_${cap^^}"; }
	fi
	dozed_log_since "$mark" | grep -E ' (err|warning|notice): ' | grep -q "CAP_${cap^^}" ||
		fail "dozed without CAP_${cap^^} does not say so: $(dozed_log_since "$mark" |
			grep -E ' (err|warning): ' | tail -n 3 | tr '\n' ' ')"
	stop_dozed TERM
	DOZED_CAPS=("${UNIT_CAPS[@]}") DOZED_ARGS=()
	start_dozed
}

test_without_cap_net_admin_dozed_stops_at_start_naming_it() { without_capability net_admin start; }
# CAP_SYS_ADMIN also stands for CAP_BPF, which the unit leaves out.
test_without_cap_sys_admin_dozed_stops_at_start_naming_it() { without_capability sys_admin start; }
test_without_cap_sys_ptrace_a_wake_names_it() { without_capability sys_ptrace wake; }

test_removed_container_is_dropped_with_an_event() {
	"$ENV" cli "$RTDIR" "$RT" rm -f "$NAME" >/dev/null
	wait_for 5000 "removed event" events_at_least removed 1 || return
	ctl status "$NAME" >/dev/null 2>&1 && fail "status still knows $NAME"
	not_redirected || fail "port of a removed service still redirected"
}

TESTS=(
	test_dozed_holds_only_the_units_capabilities_in_a_read_only_system
	test_enable_refusals_say_why
	test_enabled_idle_service_sleeps_within_4s
	test_request_wakes_it_and_gets_the_page
	test_woken_service_with_traffic_stays_awake_then_sleeps_when_it_stops
	test_200_concurrent_clients_during_one_wake_all_get_the_page
	test_hammering_client_sees_no_failure_across_10_sleep_wake_cycles
	test_dozed_killed_while_asleep_still_wakes_it_after_restart
	test_dozed_killed_while_awake_leaves_no_redirect_after_restart
	test_started_by_hand_while_asleep_is_awake_and_not_redirected
	test_stopped_by_hand_while_awake_becomes_asleep_and_wakes_on_request
	test_disabling_a_sleeping_service_wakes_it_and_lets_it_go
	test_without_cap_net_admin_dozed_stops_at_start_naming_it
	test_without_cap_sys_admin_dozed_stops_at_start_naming_it
	test_without_cap_sys_ptrace_a_wake_names_it
	test_removed_container_is_dropped_with_an_event
)

selected() {
	[ ${#ONLY[@]} -eq 0 ] && return 0
	local t
	for t in "${ONLY[@]}"; do [[ $1 == *"$t"* ]] && return 0; done
	return 1
}

if ! "$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1; then
	echo "FAIL e2e: the test runtimes did not start:"
	tail -n 20 "$WORK/env.log"
	exit 1
fi

port=18100
any_failed=0
for RT in podman docker; do
	NAME=web-$RT PORT=$port
	port=$((port + 1))
	# On every address: the burst test comes from the host's LAN address.
	if ! PUBLISH_IP=0.0.0.0 "$ENV" create "$RTDIR" "$RT" "$NAME" "$PORT" >/dev/null 2>"$WORK/create.log"; then
		echo "FAIL ${RT}_create_container: $(tail -n 3 "$WORK/create.log")"
		any_failed=1
		continue
	fi
	start_dozed || { echo "FAIL ${RT}_start_dozed: $FAILED"; tail -n 20 "$WORK/$RT/dozed.log"; any_failed=1; continue; }
	for t in "${TESTS[@]}"; do
		selected "$t" || continue
		FAILED=""
		t0=$(now_ms)
		log_lines=$(wc -l <"$WORK/$RT/dozed.log")
		$t
		if [ -z "$FAILED" ]; then
			echo "PASS ${RT}_${t#test_} ($(($(now_ms) - t0)) ms)"
		else
			echo "FAIL ${RT}_${t#test_}: $FAILED"
			echo "--- what dozed logged during it"
			tail -n +$((log_lines + 1)) "$WORK/$RT/dozed.log" | tail -n 60
			any_failed=1
		fi
	done
	stop_dozed TERM
	if [ $any_failed -ne 0 ]; then
		echo "--- last lines of dozed's log ($RT)"
		tail -n 40 "$WORK/$RT/dozed.log"
	fi
done
exit $any_failed
