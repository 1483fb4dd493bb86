#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through run_test and the trap
# SPDX-License-Identifier: MIT
#
# The bash completion of dozectl (daemon/dozectl/dozectl.bash), as bash runs
# it: a fresh bash sources it, COMP_WORDS and COMP_CWORD are set as readline
# would, _dozectl is called and COMPREPLY checked. Commands and each command's
# options against `dozectl --help`; the fixed values, each accepted by
# dozectl's own parser; service names from a real dozed, reached through the
# --control on the line (three forms) or $DOZED_CONTROL; nothing offered and
# nothing said when dozed does not answer (stopped with SIGSTOP, then gone).
#
# The cheapest real dozed: no container runtime at all (its socket does not
# exist), in a network namespace of its own (unshare -n: its nft table and
# activator port are that namespace's, gone with it), with its own state dir
# holding three services, which it loads in state unknown and lists.
#
# Usage: [BUILD=build] tests/e2e/test_completion.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
COMPLETION=daemon/dozectl/dozectl.bash
DZ=$BUILD/dozectl
TABLE=dozedcomp ACT_PORT=15631
NAMES="cache_2 db.main web"

for tool in unshare timeout jq; do
	command -v $tool >/dev/null || { echo "FAIL completion: missing $tool ('make deps' installs it)"; exit 1; }
done
for bin in "$BUILD/dozed" "$DZ"; do
	[ -x "$bin" ] || { echo "FAIL completion: $bin is not built (make all)"; exit 1; }
done
[ -f "$COMPLETION" ] || { echo "FAIL completion: $COMPLETION is missing"; exit 1; }

WORK=$(mktemp -d /tmp/dozed-completion.XXXXXX)
SOCK=$WORK/control.sock
DOZED_PID=""
stop_dozed() {
	[ -n "$DOZED_PID" ] || return 0
	kill -CONT "$DOZED_PID" 2>/dev/null
	kill -TERM "$DOZED_PID" 2>/dev/null
	wait "$DOZED_PID" 2>/dev/null
	DOZED_PID=""
}
cleanup() {
	stop_dozed
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
any_failed=0
FAILED=""
fail() { FAILED=${FAILED:+$FAILED; }$*; }
run_test() { # function
	local t0
	FAILED=""
	t0=$(now_ms)
	"$1"
	if [ -z "$FAILED" ]; then
		echo "PASS completion_${1#test_} ($(($(now_ms) - t0)) ms)"
	else
		echo "FAIL completion_${1#test_}: $FAILED"
		any_failed=1
	fi
}

# comp WORD...: what the completion offers for the last word, one per line,
# sorted; what it wrote on stderr in $WORK/comp.err. Run by a bash of its own
# with nothing but the completion sourced, and no DOZED_CONTROL unless given
# (COMP_ENV="DOZED_CONTROL=...").
comp() {
	local -a with=()
	[ -n "${COMP_ENV:-}" ] && with=("$COMP_ENV")
	# shellcheck disable=SC2016 # expanded by that bash
	env -u DOZED_CONTROL "${with[@]}" bash --norc --noprofile -c '
		source "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_dozectl dozectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' completion "$COMPLETION" "$DZ" "$@" 2>"$WORK/comp.err" | sed '/^$/d' | sort
}
words() { tr ' ' '\n' | sed '/^$/d' | sort -u; }
flat() { printf '%s\n' "$1" | tr '\n' ' ' | sed 's/ *$//'; }
# expect WHAT "EXPECTED WORDS" WORD...: the completion of WORD... is exactly those.
expect() {
	local what=$1 want got
	want=$(printf '%s\n' "$2" | words)
	shift 2
	got=$(comp "$@")
	[ "$got" = "$want" ] || fail "$what: 'dozectl $*' offers [$(flat "$got")], expected [$(flat "$want")]"
	[ ! -s "$WORK/comp.err" ] || fail "$what: the completion wrote: $(head -c 300 "$WORK/comp.err")"
}

# --- what dozectl --help says (as tests/lint/man.sh reads it) -------------------

HELP=$("$DZ" --help)
help_commands() { printf '%s\n' "$HELP" | awk '/^  [a-z][a-z0-9-]*( |$)/ { print $1 }' | sort -u; }
# The bracketed options of a command's line and of its "      [..." continuations.
help_options_of() { # command
	printf '%s\n' "$HELP" | awk -v want="$1" '
		function scan(line) {
			while (match(line, /\[--[a-z][a-z0-9-]*/)) {
				print substr(line, RSTART + 1, RLENGTH - 1)
				line = substr(line, RSTART + RLENGTH)
			}
		}
		/^  [a-z][a-z0-9-]*( |$)/ { on = ($1 == want); if (on) scan($0); next }
		/^      \[/ { if (on) scan($0); next }
		/^  [^ ]/ || /^$/ { on = 0 }' | sort -u
}
GLOBAL="--control --help --version"

# --- the tests ---------------------------------------------------------------------

test_registers_for_dozectl() {
	local out
	# shellcheck disable=SC2016 # expanded by that bash
	out=$(bash --norc --noprofile -c 'source "$1" && complete -p dozectl' x "$COMPLETION" 2>&1)
	[[ $out == *"-F _dozectl"*dozectl* ]] || fail "complete -p dozectl after sourcing it: $out"
}

test_commands_are_those_of_dozectl_help() {
	local cmds
	cmds=$(help_commands)
	[ -n "$cmds" ] || { fail "no command found in dozectl --help"; return; }
	expect "every command" "$cmds" ""
	expect "a prefix" "$(printf '%s\n' "$cmds" | grep '^s')" s
	expect "after --control" "$cmds" --control /x ""
	: >"$WORK/a-socket-file"
	expect "a file for --control" "$WORK/a-socket-file" --control "$WORK/a-sock"
}

test_options_of_each_command_are_those_of_dozectl_help() {
	local c
	expect "the global options" "$GLOBAL" -
	for c in $(help_commands); do
		expect "$c's options" "$GLOBAL $(help_options_of "$c")" "$c" -
		# With nothing positional left, an empty word gets the command's own.
		case $c in
		list | events) expect "$c's options to an empty word" "$(help_options_of "$c")" "$c" "" ;;
		esac
	done
	expect "an option is not offered twice" \
		"$GLOBAL $(help_options_of enable | grep -vx -- --idle)" enable web --idle 5m -
	expect "a service given: options only" "--json" status web ""
	expect "a container to enable: nothing (the runtime's to know)" "" enable ""
}

# Each value the completion offers for OPTION is one dozectl accepts: told to
# reach a socket that does not exist, dozectl exits 3 after checking the
# values, 2 when it refuses one.
accepted() { # option value
	"$DZ" --control "$WORK/none.sock" enable x "$1" "$2" >/dev/null 2>&1
	[ $? -eq 3 ]
}

test_fixed_values() {
	expect "--wake-on" "connect data" enable web --wake-on ""
	expect "--wake-on=, one word" "--wake-on=data" enable web --wake-on=d
	expect "--wake-on=, split at =" "data" enable web --wake-on = d
	expect "--wake-on =, nothing typed" "connect data" enable web --wake-on =
	expect "--idle" "never" enable web --idle n
	expect "--idle's units" "10s 10m 10h" enable web --idle 10
	expect "--freeze-after" "none" enable web --freeze-after ""
	expect "--ignore" "none" enable web --ignore ""
	expect "--since's units" "5ms 5s 5m 5h" flows --since 5
	local kinds k v
	kinds=$(comp enable web --probe "")
	for k in auto tcp http postgres redis mysql healthcheck; do
		printf '%s\n' "$kinds" | grep -qx -- "$k" || fail "--probe does not offer $k: [$(flat "$kinds")]"
	done
	for v in $kinds; do accepted --probe "$v" || fail "--probe $v is offered, and dozectl refuses it"; done
	for v in connect data; do accepted --wake-on "$v" || fail "--wake-on $v is refused by dozectl"; done
	for v in never 10s 10m 10h; do accepted --idle "$v" || fail "--idle $v is refused by dozectl"; done
	for v in none 10s; do accepted --freeze-after "$v" || fail "--freeze-after $v is refused by dozectl"; done
	accepted --ignore none || fail "--ignore none is refused by dozectl"
}

test_service_names_from_a_real_dozed() {
	local real listed
	listed=$("$DZ" --control "$SOCK" list --json | jq -r '.services[].name' | grep -c .)
	[ "$listed" = 7 ] || { fail "dozed lists $listed services, expected 7 (3 plain, 4 the shell would expand)"; return; }
	real=$(printf '%s\n' "$NAMES" | words)
	expect "status" "$real" --control "$SOCK" status ""
	expect "a prefix" "web" --control "$SOCK" wake w
	expect "--control=PATH" "db.main" --control="$SOCK" sleep d
	expect "--control = PATH (split at =)" "$real" --control = "$SOCK" disable ""
	expect "--control after the command" "$real" flows --control "$SOCK" ""
	COMP_ENV="DOZED_CONTROL=$SOCK" expect "DOZED_CONTROL" "$real" status ""
	expect "another socket: no names" "" --control "$WORK/none.sock" status ""
}

# A name is never a word the shell expands: whatever answers on the socket
# (a dozed fed a state file, or a socket a --control points at) runs nothing.
test_names_the_shell_would_expand_are_neither_offered_nor_run() {
	expect "status, among names with \$(...), backquotes, \$((...)) and a space" "$NAMES" \
		--control "$SOCK" status ""
	expect "a prefix of the names with \$" "" --control "$SOCK" status '$'
	local f
	for f in pwned1 pwned2; do
		[ ! -e "$WORK/$f" ] || fail "completing ran the command in a service's name: $WORK/$f exists"
	done
}

test_silent_when_dozed_does_not_answer() {
	kill -STOP "$DOZED_PID" || { fail "cannot stop dozed (PID $DOZED_PID)"; return; }
	local t0 t1
	t0=$(now_ms)
	expect "dozed stopped (SIGSTOP)" "" --control "$SOCK" status ""
	t1=$(now_ms)
	kill -CONT "$DOZED_PID"
	echo "completion: $((t1 - t0)) ms to give up on a dozed that does not answer (a 1 s deadline)"
	expect "dozed answering again" "$NAMES" --control "$SOCK" status ""
}

test_silent_when_dozed_is_gone() {
	stop_dozed
	expect "dozed gone" "" --control "$SOCK" status ""
	expect "dozed gone, commands still" "$(help_commands)" --control "$SOCK" ""
}

# --- a real dozed ---------------------------------------------------------------------

start_dozed() {
	mkdir -p "$WORK/state"
	local a b c d e f g
	a=$(printf 'a%.0s' $(seq 64)) b=$(printf 'b%.0s' $(seq 64)) c=$(printf 'c%.0s' $(seq 64))
	d=$(printf 'd%.0s' $(seq 64)) e=$(printf 'e%.0s' $(seq 64)) f=$(printf 'f%.0s' $(seq 64))
	g=$(printf '1%.0s' $(seq 64))
	cat >"$WORK/state/services.json" <<-EOF
		[{"container": "web", "container_id": "$a", "name": "web", "idle_ms": 600000, "wake_on": "connect",
		  "ports": [{"host_ip": "", "host_port": 18631, "container_port": 80}]},
		 {"container": "db.main", "container_id": "$b", "name": "db.main", "idle_ms": 600000, "wake_on": "connect",
		  "ports": [{"host_ip": "", "host_port": 18632, "container_port": 5432}]},
		 {"container": "cache_2", "container_id": "$c", "name": "cache_2", "idle_ms": 600000, "wake_on": "connect",
		  "ports": [{"host_ip": "", "host_port": 18633, "container_port": 6379}]},
		 {"container": "n1", "container_id": "$d", "name": "\$(touch $WORK/pwned1)", "idle_ms": 600000,
		  "wake_on": "connect", "ports": [{"host_ip": "", "host_port": 18634, "container_port": 80}]},
		 {"container": "n2", "container_id": "$e", "name": "\`touch $WORK/pwned2\`", "idle_ms": 600000,
		  "wake_on": "connect", "ports": [{"host_ip": "", "host_port": 18635, "container_port": 80}]},
		 {"container": "n3", "container_id": "$f", "name": "\$((1+1))", "idle_ms": 600000,
		  "wake_on": "connect", "ports": [{"host_ip": "", "host_port": 18636, "container_port": 80}]},
		 {"container": "n4", "container_id": "$g", "name": "sp ace", "idle_ms": 600000,
		  "wake_on": "connect", "ports": [{"host_ip": "", "host_port": 18637, "container_port": 80}]}]
	EOF
	# unshare execs dozed: $! is dozed itself.
	unshare --net -- "$BUILD/dozed" --runtime-socket "$WORK/no-runtime.sock" --control "$SOCK" \
		--state-dir "$WORK/state" --nft-table $TABLE --activator-port $ACT_PORT --log-level debug \
		>"$WORK/dozed.log" 2>&1 &
	DOZED_PID=$!
	local deadline=$(($(now_ms) + 10000)) n
	until n=$("$DZ" --control "$SOCK" list --json 2>/dev/null | jq '.services | length' 2>/dev/null) &&
		[ "$n" = 7 ]; do
		if ! kill -0 "$DOZED_PID" 2>/dev/null || [ "$(now_ms)" -ge $deadline ]; then
			echo "FAIL completion_start_dozed: dozed does not list the 7 services within 10 s; its log:"
			tail -n 20 "$WORK/dozed.log"
			return 1
		fi
		sleep 0.05
	done
}

run_test test_registers_for_dozectl
run_test test_commands_are_those_of_dozectl_help
run_test test_options_of_each_command_are_those_of_dozectl_help
run_test test_fixed_values
if start_dozed; then
	run_test test_service_names_from_a_real_dozed
	run_test test_names_the_shell_would_expand_are_neither_offered_nor_run
	run_test test_silent_when_dozed_does_not_answer
	run_test test_silent_when_dozed_is_gone
else
	any_failed=1
fi
exit $any_failed
