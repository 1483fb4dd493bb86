# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Shared by the crash, fault, abuse and soak tests: real Podman and Docker from
# tests/runtime-env.sh, dozed run inside a runtime's network namespace with its
# own nft table, state dir and control socket, and the PASS/FAIL conventions of
# tests/e2e/test_e2e.sh. A test sets SUITE, TABLE and ACT_PORT, sources this
# file, defines its test_* functions and runs each with run_test.
#
# Everything a test starts is recorded (DOZED_PID, lib_bg PIDs) and ended by
# that PID on exit, failed or not; the runtimes go with `runtime-env.sh down`.
# shellcheck disable=SC2034 # LAST_BG, ANY_FAILED and the like are for the tests

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
BUILD=${BUILD:-build}
ENV=tests/runtime-env.sh
DOZED=$BUILD/dozed
DOZECTL=$BUILD/dozectl
: "${SUITE:?set SUITE before sourcing lib.sh}" "${TABLE:?}" "${ACT_PORT:?}"

for tool in curl jq nft nsenter unshare ip cc; do
	command -v $tool >/dev/null || { echo "FAIL $SUITE: missing $tool ('make deps' installs it)"; exit 1; }
done
for bin in "$DOZED" "$DOZECTL"; do
	[ -x "$bin" ] || { echo "FAIL $SUITE: $bin is not built (make all)"; exit 1; }
done

WORK=$(mktemp -d "/tmp/dozed-$SUITE.XXXXXX")
RTDIR=$WORK/rt
RT=${RT:-podman}
DOZED_PID=""
DOZED_ARGS=()
BG_PIDS=()
FLOOD=$WORK/flood

lib_cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	stop_dozed KILL
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	[ -n "${LIB_EXTRA_CLEANUP:-}" ] && $LIB_EXTRA_CLEANUP
	if [ -d "$RTDIR" ]; then
		"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "$SUITE: runtime-env down failed; see $RTDIR" >&2
	fi
	# KEEP_WORK=1 keeps dozed's logs and state for a look after the run.
	[ -d "$RTDIR" ] || [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap lib_cleanup EXIT

now_ms() { date +%s%3N; }

# Runs a command in the background and records its PID, to be ended on exit.
lib_bg() {
	"$@" &
	BG_PIDS+=($!)
	LAST_BG=$!
}

# lib_bg_to FILE PROGRAM ARGS...: the same for a program (not a function),
# its output in FILE; LAST_BG is the program itself (bash and nsenter exec
# it), so that a signal to that PID reaches it.
lib_bg_to() {
	local out=$1
	shift
	"$@" >"$out" &
	BG_PIDS+=($!)
	LAST_BG=$!
}

# Ends a program started by lib_bg_to and waits for its output.
lib_end() { # pid
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# --- assertions --------------------------------------------------------------

# Every failed check of a test is named, in order.
FAILED=""
fail() { FAILED=${FAILED:+$FAILED; }$*; }

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

# --- the runtime and dozed ---------------------------------------------------

netns() { echo "$RTDIR/ns/$RT.net"; }
in_ns() { nsenter --net="$(netns)" -- "$@"; }
ctl() { "$DOZECTL" --control "$WORK/$RT/control.sock" "$@"; }
rt() { "$ENV" cli "$RTDIR" "$RT" "$@"; }
dozed_log() { echo "$WORK/$RT/dozed.log"; }

env_up() {
	if ! "$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1; then
		echo "FAIL $SUITE: the test runtimes did not start:"
		tail -n 20 "$WORK/env.log"
		exit 1
	fi
}

# tool_build SRC: a test's C tool, built from its one source into
# $WORK/NAME (NAME: SRC without .c), once.
tool_build() {
	local out
	out=$WORK/$(basename "$1" .c)
	[ -x "$out" ] && return 0
	cc -std=gnu11 -Wall -Wextra -Werror -O2 -o "$out" "$1" 2>"$out.log" || {
		echo "FAIL $SUITE: cannot build $1: $(head -n 3 "$out.log")"
		exit 1
	}
}

# The C client for thousands of connections.
flood_build() { tool_build tests/stress/flood.c; }

# start_dozed [OPTION...]: DOZED_ARGS and these; waits for its control socket.
# RUNTIME_SOCK: the API socket it talks to (the runtime's own by default).
start_dozed() {
	mkdir -p "$WORK/$RT"
	# nsenter execs dozed: $! is dozed itself, to be signalled by that PID.
	(
		ulimit -n "${DOZED_NOFILE:-20000}" 2>/dev/null
		exec nsenter --net="$(netns)" -- "$DOZED" --runtime-socket "${RUNTIME_SOCK:-$RTDIR/$RT.sock}" \
			--control "$WORK/$RT/control.sock" --state-dir "$WORK/$RT/state" \
			--nft-table "$TABLE" --activator-port "$ACT_PORT" --log-level debug \
			"${DOZED_ARGS[@]}" "$@"
	) >>"$(dozed_log)" 2>&1 &
	DOZED_PID=$!
	wait_for 10000 "dozed answering on its control socket" ctl list || return 1
	kill -0 "$DOZED_PID" 2>/dev/null || { fail "dozed exited at start-up"; return 1; }
}

stop_dozed() { # signal
	[ -n "$DOZED_PID" ] || return 0
	kill "-${1:-TERM}" "$DOZED_PID" 2>/dev/null
	wait "$DOZED_PID" 2>/dev/null
	DOZED_PID=""
}

dozed_alive() { [ -n "$DOZED_PID" ] && kill -0 "$DOZED_PID" 2>/dev/null; }

# --- what a user observes ------------------------------------------------------

running() { [ "$(rt inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
stopped() { [ "$(rt inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = false ]; }
set_ports() {
	in_ns nft -j list set inet "$TABLE" sleeping 2>/dev/null |
		jq -c '[.nftables[].set.elem // [] | .[]] | sort'
}
redirected() { # port
	in_ns nft -j list set inet "$TABLE" sleeping 2>/dev/null |
		jq -e --argjson p "$1" '[.nftables[].set.elem // [] | .[]] | index($p) != null' >/dev/null
}
not_redirected() { ! redirected "$1"; }
state_of() { # the service's state, or none when dozed does not know it
	local s
	s=$(ctl status "$1" --json 2>/dev/null | jq -r '.service.state // empty' 2>/dev/null)
	echo "${s:-none}"
}
state_is() { [ "$(state_of "$1")" = "$2" ]; }
reason_of() { ctl status "$1" --json 2>/dev/null | jq -r '.service.reason // ""'; }
event_count() { # event service
	ctl events --json | jq -s --arg e "$1" --arg s "$2" '[.[] | select(.event == $e and .service == $s)] | length'
}
events_at_least() { [ "$(event_count "$1" "$2")" -ge "$3" ]; }
last_event() { # event service
	ctl events --json | jq -s -c --arg e "$1" --arg s "$2" '[.[] | select(.event == $e and .service == $s)] | last'
}
page_ok() { # port [max seconds]
	in_ns curl -sS --max-time "${2:-20}" "http://127.0.0.1:$1/" 2>/dev/null | grep -q 'dozed test'
}

# Puts a service to sleep (or lets a sleep under way finish).
asleep() { # name
	ctl sleep "$1" >/dev/null 2>&1
	wait_for 15000 "asleep state of $1" state_is "$1" asleep && wait_for 10000 "stopped $1" stopped "$1"
}

# A container with port 80 published on 127.0.0.1:PORT, managed with OPTIONS.
make_service() { # name port [enable options...]
	local name=$1 port=$2
	shift 2
	"$ENV" create "$RTDIR" "$RT" "$name" "$port" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return 1; }
	ctl enable "$name" "$@" >/dev/null || { fail "dozectl enable $name failed"; return 1; }
}

# --- dozed's resources -----------------------------------------------------------

dozed_fds() { ls "/proc/$DOZED_PID/fd" 2>/dev/null | wc -l; }
dozed_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DOZED_PID/status" 2>/dev/null; }

# Milliseconds a fresh dozectl list takes (its own start included), or 99999.
list_ms() {
	local t0 t1
	t0=$(date +%s%N)
	ctl list >/dev/null 2>&1 || { echo 99999; return; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# --- the test loop ---------------------------------------------------------------

ONLY=()
selected() {
	[ ${#ONLY[@]} -eq 0 ] && return 0
	local t
	for t in "${ONLY[@]}"; do [[ $1 == *"$t"* ]] && return 0; done
	return 1
}

# run_test PREFIX FUNCTION: one PASS/FAIL line, with dozed's log on failure.
ANY_FAILED=0
run_test() {
	local prefix=$1 t=$2 t0 log_lines=0
	selected "$t" || return 0
	FAILED=""
	t0=$(now_ms)
	[ -f "$(dozed_log)" ] && log_lines=$(wc -l <"$(dozed_log)")
	$t
	if [ -z "$FAILED" ]; then
		echo "PASS ${prefix}${t#test_} ($(($(now_ms) - t0)) ms)"
	else
		echo "FAIL ${prefix}${t#test_}: $FAILED"
		if [ -f "$(dozed_log)" ]; then
			echo "--- what dozed logged during it (last 40 lines)"
			tail -n +$((log_lines + 1)) "$(dozed_log)" |
				grep -v 'Control client [0-9]* \(connected\|disconnected\)' | tail -n 40
		fi
		ANY_FAILED=1
	fi
}

# --- containers of other images ------------------------------------------------

# container_run NAME IMAGE HOSTPORT CPORT [RUN OPTION...] [-- COMMAND...]:
# started, CPORT published on 127.0.0.1:HOSTPORT, under the test's cgroup.
container_run() {
	local name=$1 image=$2 hport=$3 cport=$4
	shift 4
	local -a args=(run -d --name "$name" -p "127.0.0.1:$hport:$cport") cmd=()
	[ "$RT" = podman ] && args+=(--cgroup-parent "/$(basename "$(cat "$RTDIR/cgroup")")/podman")
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift && cmd=("$@")
	rt "${args[@]}" "$image" "${cmd[@]}" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name from $image: $(tail -n 2 "$WORK/create.log")"; return 1; }
}

started_at() { rt inspect -f '{{.State.StartedAt}}' "$1" 2>/dev/null; }
