# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# What tests/e2e/test_freeze.sh observes of light sleep, beside lib.sh: what
# dozed, the runtime and the kernel say of a frozen container, a client's
# page, thaw events, and the cleanup of what a freeze can leave behind.
# Sourced after lib.sh; uses its rt, ctl, in_ns, fail and wait_for, and the
# test's NETS, CLIENT_S, PAGE and FREEZE_MS.
# Candidates for lib.sh once other tests freeze containers: thaw_leftovers
# (a frozen process holds `runtime-env.sh down`), rt_status, wait_state,
# wait_rt, kernel_frozen, list_state, container_ip.

# A frozen process cannot die (a v1 freezer holds even SIGKILL): whatever
# the runtimes or dozed left frozen under the test's own cgroup is thawed,
# so that runtime-env.sh down can end it and remove the cgroups.
thaw_leftovers() {
	local name d v2
	[ -s "$RTDIR/cgroup" ] || return 0
	name=$(basename "$(cat "$RTDIR/cgroup")")
	[ -n "$name" ] || return 0
	if [ -d "/sys/fs/cgroup/freezer/$name" ]; then
		find "/sys/fs/cgroup/freezer/$name" -name freezer.state | while read -r d; do
			[ "$(cat "$d" 2>/dev/null)" = THAWED ] || echo THAWED >"$d" 2>/dev/null
		done
	fi
	v2=$(findmnt -t cgroup2 -rno TARGET | head -n 1)
	if [ -n "$v2" ] && [ -d "$v2/$name" ]; then
		find "$v2/$name" -name cgroup.freeze | while read -r d; do
			[ "$(cat "$d" 2>/dev/null)" = 0 ] || echo 0 >"$d" 2>/dev/null
		done
	fi
	return 0
}

freeze_cleanup() {
	thaw_leftovers
	local n r
	for n in ${NETS[@]+"${NETS[@]}"}; do
		r=${n##*-}
		[ -S "$RTDIR/$r.sock" ] || continue
		# Its containers first: a network in use is not removed.
		timeout 20 "$ENV" cli "$RTDIR" "$r" ps -aq --filter "network=$n" 2>/dev/null |
			xargs -r timeout 20 "$ENV" cli "$RTDIR" "$r" rm -f >/dev/null 2>&1
		timeout 20 "$ENV" cli "$RTDIR" "$r" network rm "$n" >/dev/null 2>&1
	done
	return 0
}
# shellcheck disable=SC2034 # lib.sh's cleanup calls it
LIB_EXTRA_CLEANUP=freeze_cleanup

# --- what a user observes --------------------------------------------------------

rt_status() { rt inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
rt_status_is() { [ "$(rt_status "$1")" = "$2" ]; }
# The state in `dozectl list`'s table.
list_state() { ctl list 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n { print $2 }'; }
status_json() { ctl status "$1" --json 2>/dev/null; }
container_ip() { # the address of its first network
	rt inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" 2>/dev/null |
		awk '{ print $1 }'
}
podman_parent() { # Podman takes the test's cgroup per container
	[ "$RT" = podman ] && echo "--cgroup-parent=/$(basename "$(cat "$RTDIR/cgroup")")/podman"
}

# wait_state MS NAME STATE WHAT: dozed says NAME is STATE within MS; else a
# failure that says what it is instead.
wait_state() {
	wait_for "$1" "$4" state_is "$2" "$3" || { fail "($2 is $(state_of "$2"))"; return 1; }
}
# wait_rt MS NAME STATUS WHAT: the same for the runtime's State.Status.
wait_rt() {
	wait_for "$1" "$4" rt_status_is "$2" "$3" || { fail "(the runtime says $2 is $(rt_status "$2"))"; return 1; }
}

# The kernel's view: each process of the container (each whose cgroup path
# names its id) is in a frozen cgroup: the v1 freezer's freezer.state FROZEN,
# or cgroup v2's cgroup.events "frozen 1" (dozed parks a frozen container's
# processes frozen that way). Prints what is not.
kernel_unfrozen() { # name: the processes not frozen, "none" when it has none
	local id f pid p q n=0 v2
	id=$(rt inspect -f '{{.Id}}' "$1" 2>/dev/null)
	[ -n "$id" ] || { echo "no container $1"; return; }
	v2=$(findmnt -t cgroup2 -rno TARGET | head -n 1)
	for f in /proc/[0-9]*/cgroup; do
		grep -q "$id" "$f" 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/cgroup}
		n=$((n + 1))
		p=$(awk -F: '$2 == "freezer" { print $3 }' "$f" 2>/dev/null)
		[ -n "$p" ] && [ "$(cat "/sys/fs/cgroup/freezer$p/freezer.state" 2>/dev/null)" = FROZEN ] &&
			continue
		q=$(awk -F: '$1 == 0 { print $3 }' "$f" 2>/dev/null)
		grep -qx 'frozen 1' "$v2$q/cgroup.events" 2>/dev/null ||
			echo "$pid (${p:+v1 $p: $(cat "/sys/fs/cgroup/freezer$p/freezer.state" 2>/dev/null), }v2 $q: not frozen)"
	done
	[ $n -gt 0 ] || echo none
}
kernel_frozen() { [ -z "$(kernel_unfrozen "$1")" ]; }

# Frozen, as dozed, the runtime and the kernel say it: state frozen in
# status and list, inspect says paused, its processes frozen.
wait_frozen() { # name
	wait_state "$FREEZE_MS" "$1" frozen "frozen state of $1" || return 1
	wait_rt 5000 "$1" paused "the runtime saying $1 is paused" || return 1
	[ "$(list_state "$1")" = frozen ] || { fail "dozectl list says $1 is '$(list_state "$1")', not frozen"; return 1; }
	wait_for 2000 "$1's processes frozen" kernel_frozen "$1" ||
		{ fail "(dozed and the runtime say frozen; not frozen: $(kernel_unfrozen "$1" | tr '\n' ' '))"; return 1; }
}

# fetch URL FILE: the body in FILE; prints "HTTP_CODE SECONDS_TO_FIRST_BYTE".
fetch() {
	in_ns curl -sS --max-time "$CLIENT_S" -o "$2" -w '%{http_code} %{time_starttransfer}' "$1" 2>"$2.err" ||
		echo "000 0"
}
# got_page CODE FILE WHAT: a 200 with the test page, else a failure saying what came.
got_page() {
	if [ "$1" != 200 ] || [ "$(cat "$2" 2>/dev/null)" != "$PAGE" ]; then
		fail "$3 got HTTP $1: $(head -c 200 "$2" 2>/dev/null) $(cat "$2.err" 2>/dev/null)"
		return 1
	fi
}

# A thaw event after BEFORE of them, by a packet (trigger packet, or packet
# during freeze); it goes into THAW_EV (not
# printed: a failure must reach this shell, not a $(...) subshell).
thawed_by_packet() { # name before
	THAW_EV=null
	wait_for 5000 "a thaw event of $1" events_at_least thaw "$1" $(($2 + 1)) || return 1
	THAW_EV=$(last_event thaw "$1")
	# "packet during freeze": it came as the service was freezing again.
	[[ "$(jq -r '.trigger // ""' <<<"$THAW_EV")" == packet* ]] &&
		[ "$(jq -r '.result // "ok"' <<<"$THAW_EV")" != failed ] ||
		{ fail "the thaw event is not a thaw by a packet: $THAW_EV"; return 1; }
}
thaw_facts() { jq -c '{trigger, client, thaw_us, how}' <<<"$1"; }

# Requests the page every 0.2 s (its counted traffic keeps it awake while
# the runtime's view is checked: with freeze-after 1 s it would freeze again).
keep_busy() { # port
	lib_bg nsenter --net="$(netns)" -- sh -c \
		"while :; do curl -s -o /dev/null --max-time 5 http://127.0.0.1:$1/; sleep 0.2; done"
	BUSY=$LAST_BG
}

# The processes of the container outside its own cgroup (in dozed's
# DIR.dozed-thaw sibling, where a thaw by the freezer puts them until they
# are settled back), one per line.
unsettled() { # name
	local id f
	id=$(rt inspect -f '{{.Id}}' "$1" 2>/dev/null)
	[ -n "$id" ] || return 0
	for f in /proc/[0-9]*/cgroup; do
		grep -q "$id" "$f" 2>/dev/null || continue
		grep "$id" "$f" 2>/dev/null | grep -q 'dozed-thaw' && echo "${f%/cgroup}: $(grep -m1 'dozed-thaw' "$f")"
	done
}
settled() { [ -z "$(unsettled "$1")" ]; }

# After a thaw: awake, the runtime's view caught up (running), and its
# processes back in their own cgroup (within the settle time, 2 s, and room).
awake_and_running() { # name port
	keep_busy "$2"
	wait_state 5000 "$1" awake "awake state of $1 after the thaw"
	wait_rt 5000 "$1" running "the runtime saying $1 is running after the thaw"
	wait_for 8000 "$1's processes back in their own cgroup after the thaw" settled "$1" ||
		fail "(still out: $(unsettled "$1" | head -n 3 | tr '\n' ' '))"
	kill "$BUSY" 2>/dev/null
	wait "$BUSY" 2>/dev/null
}

drop() { # name: no longer managed, removed
	ctl disable "$1" >/dev/null 2>&1
	"$ENV" rm "$RTDIR" "$RT" "$1"
}

freeze_facts() { last_event freeze "$1" | jq -c '{idle_ms, pause_ms, memory_bytes}'; }
