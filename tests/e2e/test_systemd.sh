#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# dozed as systemd runs it: sockets passed by socket activation
# (systemd-socket-activate, as dozed.socket would), READY=1 and STATUS= on
# $NOTIFY_SOCKET, STOPPING=1 on SIGTERM, and a clear refusal of bad options.
# In a private network namespace, with no container runtime at all. And the
# shipped units as systemd reads them (no unknown or misspelt directive) and
# runs them: systemd-nspawn boots this host's /usr with a fresh /etc and /var
# (--volatile=yes, nothing of the host's is written) in its own network
# namespace and cgroup, with the built dozed at /usr/local/sbin/dozed and
# dozed.service and dozed.socket as shipped, so that every directive of the
# sandbox (capabilities, system call filter, read-only system...) applies.
#
# Usage: [BUILD=build] tests/e2e/test_systemd.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
for tool in socat systemd-socket-activate unshare nft systemd-analyze systemd-nspawn capsh jq; do
	command -v $tool >/dev/null || { echo "FAIL systemd: missing $tool ('make deps' installs it)"; exit 1; }
done
WORK=$(mktemp -d /tmp/dozed-systemd.XXXXXX)
PIDS=()
CGROUPS=() # made for the container: removed, deepest first, once it is gone
# systemd-nspawn's working directories, removed after it if it made them.
NSPAWN_DIRS=()
for d in /run/systemd/nspawn /run/systemd/nspawn-root; do [ -e $d ] || NSPAWN_DIRS+=($d); done
cleanup() {
	local p c
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for c in "${CGROUPS[@]}" "${NSPAWN_DIRS[@]}"; do
		[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
[ -z "${KEEP:-}" ] || trap - EXIT
now_ms() { date +%s%3N; }
any_failed=0
report() { # name, start ms, failure or ""
	if [ -z "$3" ]; then echo "PASS $1 ($(($(now_ms) - $2)) ms)"; else echo "FAIL $1: $3"; any_failed=1; fi
}

wait_file_has() { # file, text, ms
	local deadline=$(($(now_ms) + $3))
	until grep -q "$2" "$1" 2>/dev/null; do
		[ "$(now_ms)" -lt $deadline ] || return 1
		sleep 0.05
	done
}

# --- socket activation and notifications -------------------------------------
t0=$(now_ms)
why=""
socat -u UNIX-RECV:"$WORK/notify.sock" - >"$WORK/notify.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$WORK/notify.sock" ] && break; sleep 0.02; done
# One network namespace for dozed and the client, made by this shell's child.
unshare -n sh -c '
	ip link set lo up
	exec systemd-socket-activate -E NOTIFY_SOCKET="$1/notify.sock" -l 15001 -l "$1/control.sock" \
		"$2/dozed" --runtime-socket "$1/no-runtime.sock" --control "$1/control.sock" \
		--state-dir "$1/state" --nft-table dozedsd --activator-port 15001
' sh "$WORK" "$BUILD" >"$WORK/dozed.log" 2>&1 &
DOZED=$!
PIDS+=($DOZED)
for _ in $(seq 200); do [ -S "$WORK/control.sock" ] && break; sleep 0.02; done
# Like systemd, systemd-socket-activate starts dozed on the first connection,
# which waits in the control socket's backlog meanwhile.
if ! out=$("$BUILD/dozectl" --control "$WORK/control.sock" list --json 2>&1); then
	why="dozectl on the passed control socket: $out"
elif ! wait_file_has "$WORK/notify.log" 'READY=1' 10000; then
	why="no READY=1 on NOTIFY_SOCKET within 10 s"
elif ! grep -q 'STATUS=0 services' "$WORK/notify.log"; then
	why="no STATUS= line: $(tr '\n' ' ' <"$WORK/notify.log")"
elif ! grep -q 'socket activation: 1 activator and 1 control sockets' "$WORK/dozed.log"; then
	why="dozed did not use the passed sockets: $(tail -n 5 "$WORK/dozed.log")"
fi
report systemd_socket_activation_and_ready_notification "$t0" "$why"

t0=$(now_ms)
why=""
kill -TERM $DOZED
if ! wait_file_has "$WORK/notify.log" 'STOPPING=1' 10000; then
	why="no STOPPING=1 after SIGTERM"
fi
wait $DOZED
rc=$?
[ -n "$why" ] || [ $rc -eq 0 ] || why="dozed exited with $rc after SIGTERM"
[ -n "$why" ] || [ -S "$WORK/control.sock" ] || why="dozed removed the control socket systemd owns"
report systemd_sigterm_says_stopping_and_exits_0 "$t0" "$why"

# --- bad options ----------------------------------------------------------------
t0=$(now_ms)
why=""
out=$("$BUILD/dozed" --idle 10x 2>&1)
rc=$?
[ $rc -eq 2 ] || why="exit status $rc, expected 2"
[[ $out == *"--idle 10x"* ]] || why="message does not name the value: $out"
printf 'activator-port = 70000\n' >"$WORK/bad.conf"
out=$("$BUILD/dozed" --config "$WORK/bad.conf" 2>&1)
[[ $out == *"bad.conf:1"*"70000"* ]] || why="config file error does not name file, line and value: $out"
report dozed_rejects_bad_values_with_key_value_and_what_is_allowed "$t0" "$why"
# --- the units -------------------------------------------------------------------
t0=$(now_ms)
why=""
mkdir -p "$WORK/units"
# verify wants an ExecStart= that exists: the built dozed, as installed.
sed "s|^ExecStart=/usr/local/sbin/dozed|ExecStart=$PWD/$BUILD/dozed|" daemon/systemd/dozed.service \
	>"$WORK/units/dozed.service"
cp daemon/systemd/dozed.socket "$WORK/units/"
out=$(cd "$WORK/units" && systemd-analyze verify --man=no ./dozed.service ./dozed.socket 2>&1)
[ -z "$out" ] || why="systemd-analyze verify: $(tr '\n' ' ' <<<"$out")"
grep -q '^CapabilityBoundingSet=CAP_' daemon/systemd/dozed.service || why="dozed.service has no CapabilityBoundingSet="
report systemd_units_have_no_unknown_or_bad_directive "$t0" "$why"

# --- the shipped units under a real systemd ---------------------------------------
t0=$(now_ms)
why=""
# Boots into this target: the two units and what they need, nothing else.
printf '%s\n' '[Unit]' 'Description=dozed.socket and dozed.service only' \
	'Requires=dozed.socket dozed.service' 'After=dozed.socket dozed.service' >"$WORK/dozed-test.target"
# The container's own cgroup, in every hierarchy systemd uses (cgroup2, and
# name=systemd on hybrid hosts), made here and removed by cleanup.
cg_name=dozed-systemd-test.${WORK##*.}
while read -r mp; do
	mkdir "$mp/$cg_name" && CGROUPS+=("$mp/$cg_name")
done < <(awk '$9 == "cgroup2" || ($9 == "cgroup" && $NF ~ /name=systemd/) { print $5 }' /proc/self/mountinfo)
# Installed as make install would, where the unit expects it (the container's
# /usr is this host's, read-only: these directories replace its own).
mkdir -p "$WORK/sbin" "$WORK/bin"
cp "$BUILD/dozed" "$WORK/sbin/"
cp "$BUILD/dozectl" "$WORK/bin/"
(
	for c in "${CGROUPS[@]}"; do echo "$BASHPID" >"$c/cgroup.procs"; done
	exec systemd-nspawn --quiet --register=no --keep-unit -D / --volatile=yes --private-network \
		--machine="$cg_name" --bind-ro="$WORK/sbin:/usr/local/sbin" --bind-ro="$WORK/bin:/usr/local/bin" \
		--bind-ro="$PWD/daemon/systemd/dozed.service:/etc/systemd/system/dozed.service" \
		--bind-ro="$PWD/daemon/systemd/dozed.socket:/etc/systemd/system/dozed.socket" \
		--bind-ro="$WORK/dozed-test.target:/etc/systemd/system/dozed-test.target" \
		--system-call-filter="bpf setns" -b systemd.unit=dozed-test.target systemd.firstboot=off
) >"$WORK/nspawn.log" 2>&1 &
NSPAWN=$!
PIDS+=($NSPAWN)
# Its systemd, as this host sees it: the process in its init.scope.
CT=""
deadline=$(($(now_ms) + 30000))
while [ -z "$CT" ] && [ "$(now_ms)" -lt $deadline ] && kill -0 $NSPAWN 2>/dev/null; do
	CT=$(head -n 1 "${CGROUPS[0]}/payload/init.scope/cgroup.procs" 2>/dev/null)
	[ -n "$CT" ] || sleep 0.1
done
in_ct() { nsenter -t "$CT" -m -p -- "$@"; }
unit_state() { in_ct systemctl show -p ActiveState --value dozed.service 2>/dev/null; }
state=""
if [ -z "$CT" ]; then
	why="systemd-nspawn did not boot: $(tail -n 5 "$WORK/nspawn.log" | tr '\n' ' ')"
else
	deadline=$(($(now_ms) + 60000))
	until state=$(unit_state) && { [ "$state" = active ] || [ "$state" = failed ]; } ||
		[ "$(now_ms)" -ge $deadline ]; do sleep 0.2; done
fi
if [ -z "$why" ] && [ "$state" != active ]; then
	why="dozed.service is '$state' under systemd: $(in_ct journalctl -u dozed.service --no-pager -o cat -p warning -n 6 2>&1 | tr '\n' ' ')"
fi
if [ -z "$why" ]; then
	main=$(in_ct systemctl show -p MainPID --value dozed.service)
	st=$(in_ct cat "/proc/$main/status")
	eff=$(awk '/^CapEff:/ { print $2 }' <<<"$st")
	got=$(capsh --decode="$eff" | sed 's/^.*=//' | tr ',' '\n' | sort | xargs)
	want=$(sed -n 's/^CapabilityBoundingSet=//p' daemon/systemd/dozed.service |
		tr '[:upper:] ' '[:lower:]\n' | grep . | sort | xargs)
	[ "$got" = "$want" ] || why="dozed runs with '$got', the unit says '$want'"
	grep -q '^Seccomp:[[:space:]]*2' <<<"$st" || why="dozed runs without its system call filter"
	grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$st" || why="dozed runs without NoNewPrivileges"
	out=$(in_ct dozectl list --json 2>&1)
	jq -e '.services | length == 0' <<<"$out" >/dev/null 2>&1 ||
		why="dozectl list through dozed.socket: $out"
	nsenter -t "$CT" -n -- nft list table inet dozed >/dev/null 2>&1 ||
		why="no nftables table inet dozed in the container's namespace"
	in_ct systemctl stop dozed.service 2>/dev/null # "can still be activated by dozed.socket"
	state=$(unit_state)
	result=$(in_ct systemctl show -p Result --value dozed.service)
	{ [ "$state" = inactive ] && [ "$result" = success ]; } ||
		why=${why:-"after systemctl stop, dozed.service is $state ($result)"}
fi
report systemd_runs_the_shipped_units_with_their_sandbox "$t0" "$why"
exit $any_failed
