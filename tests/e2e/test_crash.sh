#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Crash safety, against real Podman and Docker: dozed is killed (SIGKILL) at
# random moments while two idle-1s services go through sleep/wake cycles and
# a client loop keeps requesting their pages. After each restart every service
# must be consistent — awake, running and not redirected, or asleep, stopped and
# redirected — and the next request to each must get the page.
#
# Usage: [BUILD=build] [CRASH_MOMENTS=5] [CRASH_SEED=N] [CRASH_RUNTIMES="podman docker"]
#        tests/e2e/test_crash.sh
# The schedule (which moment, how long after what) comes from a seeded RNG;
# the seed is printed, and CRASH_SEED=N replays the same schedule.
set -uo pipefail
SUITE=crash TABLE=dozedcrash ACT_PORT=15301
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

MOMENTS=${CRASH_MOMENTS:-5}
SEED=${CRASH_SEED:-$(($(date +%s%N) % 100000))}
RUNTIMES=${CRASH_RUNTIMES:-podman docker}
RANDOM=$SEED

rnd() { echo $((RANDOM % ($1 + 1))); } # 0..N

# One snapshot: the service's state, the runtime's and the set agree.
consistent() { # name port
	case $(state_of "$1") in
	awake) running "$1" && not_redirected "$2" ;;
	asleep) stopped "$1" && redirected "$2" ;;
	*) return 1 ;;
	esac
}

describe() { # name port: what each side says, for a failure message
	local r=stopped
	running "$1" && r=running
	echo "$1: dozed says $(state_of "$1"), runtime says $r, set $(set_ports)"
}

# Requests the pages of random services, pausing 0-2 s between requests so
# that idle-1s services also go to sleep; counts the answers. Failures while
# dozed is down are expected (no one holds the redirected ports then).
client_loop() { # stopfile countsfile ports...
	local stopfile=$1 counts=$2 ok=0 bad=0 port
	shift 2
	local -a ports=("$@")
	RANDOM=$((SEED + 1))
	while [ ! -e "$stopfile" ]; do
		port=${ports[RANDOM % ${#ports[@]}]}
		if in_ns curl -s --max-time 20 "http://127.0.0.1:$port/" | grep -q 'dozed test'; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1))
		fi
		echo "$ok $bad" >"$counts"
		sleep "$((RANDOM % 2)).$((RANDOM % 10))"
	done
}

test_every_service_is_consistent_after_each_sigkill() {
	local names=("crash-a-$RT" "crash-b-$RT") ports=("$PORT_A" "$PORT_B")
	local i j action delay what t0 restart_ms consistent_ms max_restart=0 max_consistent=0
	local stopfile=$WORK/$RT/client.stop counts=$WORK/$RT/client.counts
	rm -f "$stopfile" "$counts"
	lib_bg client_loop "$stopfile" "$counts" "${ports[@]}"
	local client=$LAST_BG
	for ((i = 1; i <= MOMENTS; i++)); do
		j=$((RANDOM % 2))
		action=$((RANDOM % 3))
		delay=$(rnd 400)
		case $action in
		0)
			delay=$(rnd 2500)
			what="at a random time ($delay ms)"
			;;
		1)
			# A request to a sleeping service: the kill lands in its wake.
			asleep "${names[j]}" || break
			lib_bg in_ns curl -s --max-time 20 -o /dev/null "http://127.0.0.1:${ports[j]}/"
			what="$delay ms after a request to ${names[j]}, asleep"
			;;
		2)
			ctl sleep "${names[j]}" >/dev/null 2>&1
			what="$delay ms after 'dozectl sleep ${names[j]}'"
			;;
		esac
		sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
		stop_dozed KILL
		t0=$(now_ms)
		start_dozed || { fail "moment $i ($what): dozed did not start again"; break; }
		restart_ms=$(($(now_ms) - t0))
		for j in 0 1; do
			wait_for 20000 "consistent ${names[j]} after moment $i ($what): $(describe "${names[j]}" "${ports[j]}")" \
				consistent "${names[j]}" "${ports[j]}" || break 2
		done
		consistent_ms=$(($(now_ms) - t0))
		for j in 0 1; do
			page_ok "${ports[j]}" ||
				{ fail "moment $i ($what): the next request to ${names[j]} failed: $(describe "${names[j]}" "${ports[j]}")"; break 2; }
		done
		[ $restart_ms -gt $max_restart ] && max_restart=$restart_ms
		[ $consistent_ms -gt $max_consistent ] && max_consistent=$consistent_ms
		echo "   moment $i: killed $what; restarted in $restart_ms ms, consistent in $consistent_ms ms"
	done
	touch "$stopfile"
	wait "$client" 2>/dev/null
	local ok=0 bad=0
	[ -s "$counts" ] && read -r ok bad <"$counts"
	echo "   seed $SEED, $MOMENTS moments: restart max $max_restart ms, consistent max $max_consistent ms;" \
		"client loop: $ok answered, $bad failed (failures while dozed was down are expected)"
	[ "$ok" -gt 0 ] || fail "the client loop got no page at all"
}

ONLY=("$@")
echo "   crash seed: $SEED (CRASH_SEED=$SEED $0 replays it), $MOMENTS moments"
env_up
port=18300
for RT in $RUNTIMES; do
	PORT_A=$port PORT_B=$((port + 1))
	port=$((port + 2))
	DOZED_ARGS=(--wake-timeout 15s --stop-timeout 2)
	if ! start_dozed; then
		echo "FAIL ${RT}_start_dozed: $FAILED"
		tail -n 20 "$(dozed_log)"
		ANY_FAILED=1
		continue
	fi
	FAILED=""
	make_service "crash-a-$RT" "$PORT_A" --idle 1s && make_service "crash-b-$RT" "$PORT_B" --idle 1s
	if [ -n "$FAILED" ]; then
		echo "FAIL ${RT}_create_services: $FAILED"
		ANY_FAILED=1
		stop_dozed
		continue
	fi
	run_test "${RT}_" test_every_service_is_consistent_after_each_sigkill
	stop_dozed TERM
done
exit $ANY_FAILED
