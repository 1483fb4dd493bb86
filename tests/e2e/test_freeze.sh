#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Light sleep end to end, against real Podman and Docker (tests/runtime-env.sh):
# services frozen after 1 s of idle time through the runtime's pause, thawed
# by the first packet for them. What a user observes: `dozectl list/status`
# say frozen, `podman/docker inspect` says paused, a client on the published
# port, a client in another container on the same runtime network (by the
# container's name), psql to a frozen PostgreSQL and a peer's TCP keepalive
# on an open connection each get what they would get from a running one;
# freeze then stop; dozed killed while a service is frozen; bad values.
#
# Clients run in the runtime's network namespace (where dozed runs and
# 127.0.0.1:PORT is each container's published port), or in containers of
# their own on a network the test makes (dzfreeze-RT, with the runtime's DNS
# for container names: Podman's aardvark-dns, Docker's embedded resolver).
#
# Usage: [BUILD=build] tests/e2e/test_freeze.sh [TEST_NAME...]
# DOZED_IMAGE_CACHE=DIR keeps the PostgreSQL image's tar between runs.
set -uo pipefail
SUITE=freeze TABLE=dozedfreeze ACT_PORT=15491
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

PG_BIN=/usr/lib/postgresql/15/bin
PYTHON=/usr/bin/python3
for tool in "$PG_BIN/psql:postgresql-client-15" "$PYTHON:python3" "$(command -v ss || echo ss):iproute2" \
	"$(command -v socat || echo socat):socat"; do
	[ -x "${tool%%:*}" ] || { echo "FAIL $SUITE: missing ${tool%%:*} (Debian package ${tool##*:})"; exit 1; }
done

WEB_PORT=18491 NET_PORT=18492 PG_PORT=18493 STOP_PORT=18494 KA_PORT=18495 DATA_PORT=18496 \
	SYN_PORT=18497 KILL_PORT=18498 BAD_PORT=18499 OK_PORT=18490 MEM_PORT=18479 CMD_PORT=18478 BURST_PORT=18477 GONE_PORT=18476 RTDOWN_PORT=18470 \
	FULL_PORT=18471 HAND_PORT=18472
FREEZE_AFTER=1s
# From an enable (or a thaw) to the frozen state: the freeze-after time plus
# room for a busy host (the idle check, the runtime's pause).
FREEZE_MS=12000
# A thaw: the client's answer comes within this (the runtime's own unpause,
# should the fast path fail, takes 20-30 ms; a cold start would take more).
CLIENT_S=20
# The negative checks' window: how long a service must stay frozen with
# traffic that must not thaw it. A fixed time by nature (nothing to wait
# for); it spans several keepalive intervals (1 s).
STAYS_FROZEN_MS=4000
PAGE='<html><body>dozed test</body></html>'
# Each container this test makes, removed on exit (with its network) before
# the runtimes go.
NETS=()
# lib.sh went to the top of the tree.
# shellcheck source=tests/e2e/freeze_lib.sh
source tests/e2e/freeze_lib.sh

# --- the tests ---------------------------------------------------------------------

# The count a container's loop writes to /tmp/n ten times a second, read
# through its init's root (no exec: a paused container takes none).
ticks() { # name
	local pid
	pid=$(rt inspect -f '{{.State.Pid}}' "$1" 2>/dev/null)
	cat "/proc/$pid/root/tmp/n" 2>/dev/null || echo 0
}
ticks_above() { [ "$(ticks "$1")" -gt "$2" ]; }
readonly TICKER='trap "exit 0" TERM; httpd -f -p 80 -h /www & ( n=0; while :; do n=$((n+1)); echo $n >/tmp/n; sleep 0.1; done ) & wait'

test_a_frozen_service_answers_an_http_client_on_its_published_port() {
	local name=web-$RT thaws wakes started code secs ev n0 n1
	CREATE_SH=$TICKER "$ENV" create "$RTDIR" "$RT" "$name" "$WEB_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	wait_for 10000 "$name's loop ticking" ticks_above "$name" 2 || return
	ctl enable "$name" --freeze-after "$FREEZE_AFTER" --idle 30s >/dev/null ||
		{ fail "dozectl enable $name failed"; return; }
	wait_frozen "$name" || return
	# Its loop stands still while frozen (a fixed window: nothing to wait for).
	n0=$(ticks "$name")
	sleep 0.5
	n1=$(ticks "$name")
	[ "$n1" = "$n0" ] || fail "$name's loop ran while frozen: $n0 -> $n1 ticks in 0.5 s"
	local idle
	idle=$(last_event freeze "$name" | jq -r '.idle_ms // 0')
	[ "$idle" -ge 950 ] || fail "the freeze event says idle $idle ms, under the freeze-after time (1 s)"
	thaws=$(event_count thaw "$name") wakes=$(event_count wake "$name") started=$(started_at "$name")
	read -r code secs < <(fetch "http://127.0.0.1:$WEB_PORT/" "$WORK/web-$RT.body")
	got_page "$code" "$WORK/web-$RT.body" "a client of the frozen $name"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	awake_and_running "$name" "$WEB_PORT"
	wait_for 2000 "$name's loop running again after the thaw" ticks_above "$name" "$n1"
	[ "$(event_count wake "$name")" = "$wakes" ] || fail "the client's request woke $name (a wake event), not a thaw"
	[ "$(started_at "$name")" = "$started" ] || fail "$name was restarted: StartedAt $started -> $(started_at "$name")"
	# What status says of its tiers and its freezes.
	local st
	st=$(status_json "$name" | jq -c '.service | {freeze_after_ms, freezes, thaws, last_thaw_us}')
	jq -e '.freeze_after_ms == 1000 and .freezes >= 1 and .thaws >= 1 and (.last_thaw_us | type) == "number"' \
		<<<"$st" >/dev/null || fail "status --json: $st"
	echo "   first byte after ${secs}s; thaw: $(thaw_facts "$ev"); freeze: $(freeze_facts "$name")"
	drop "$name"
}

test_dozectl_wake_thaws_a_frozen_service() {
	local name=cmd-$RT thaws out rc
	make_service "$name" "$CMD_PORT" --freeze-after "$FREEZE_AFTER" --idle 30s || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	out=$(ctl wake "$name" 2>&1)
	rc=$?
	[ $rc -eq 0 ] || { fail "dozectl wake $name: exit $rc: $out"; return; }
	wait_for 5000 "a thaw event of $name" events_at_least thaw "$name" $((thaws + 1)) || return
	local ev
	ev=$(last_event thaw "$name")
	[ "$(jq -r '.trigger // ""' <<<"$ev")" = command ] || fail "the thaw event's trigger is not command: $ev"
	wait_rt 5000 "$name" running "the runtime saying $name is running after dozectl wake"
	echo "   thaw: $(thaw_facts "$ev")"
	drop "$name"
}

test_a_client_in_another_container_reaches_a_frozen_one_by_its_name() {
	local name=net-$RT net=dzfreeze-$RT thaws out rc ip ev client t0 t1
	if ! rt network inspect "$net" >/dev/null 2>&1; then
		rt network create "$net" >/dev/null 2>"$WORK/net.log" ||
			{ fail "cannot create network $net: $(tail -n 2 "$WORK/net.log")"; return; }
		NETS+=("$net")
	fi
	container_run "$name" dozed-test/busybox:latest "$NET_PORT" 80 --network "$net" || return
	ctl enable "$name" --freeze-after "$FREEZE_AFTER" --idle 30s >/dev/null ||
		{ fail "dozectl enable $name failed"; return; }
	ip=$(container_ip "$name")
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	# busybox wget (busybox-static 1.35) crashes with -T (signal 11): the
	# outer timeout bounds it.
	t0=$(now_ms)
	# shellcheck disable=SC2046 # none or one word
	out=$(timeout $((CLIENT_S + 30)) "$ENV" cli "$RTDIR" "$RT" run --rm --network "$net" $(podman_parent) \
		dozed-test/busybox:latest wget -q -O - "http://$name/" 2>&1)
	rc=$?
	t1=$(now_ms)
	[ $rc -eq 0 ] && [ "$out" = "$PAGE" ] ||
		fail "wget http://$name/ from a container on $net: exit $rc: $(head -c 300 <<<"$out")"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	# The packet that thawed it came from the other container: an address
	# of the network's subnet, not the server's own nor the host's side.
	client=$(jq -r '.client // ""' <<<"$ev")
	client=${client%:*}
	[ "${client%.*}" = "${ip%.*}" ] && [ "$client" != "$ip" ] && [ "${client##*.}" != 1 ] ||
		fail "the thaw event names client '$client': not another container of $net ($ip is $name)"
	awake_and_running "$name" "$NET_PORT"
	echo "   $name ($ip) answered a container ($client) by name in $((t1 - t0)) ms (its start included); thaw: $(thaw_facts "$ev")"
	drop "$name"
}

PG="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres connect_timeout=$CLIENT_S"
pg_select1() { [ "$(in_ns "$PG_BIN/psql" "$PG" -Atc 'select 1' 2>/dev/null)" = 1 ]; }

test_a_frozen_postgres_answers_psql_with_no_restart() {
	local name=pg-$RT thaws wakes started out rc t0 t1 ev
	container_run "$name" dozed-test/postgres:latest "$PG_PORT" 5432 || return
	wait_for 30000 "PostgreSQL answering select 1 before dozed" pg_select1 || return
	ctl enable "$name" --freeze-after "$FREEZE_AFTER" --idle 30s >/dev/null ||
		{ fail "dozectl enable $name failed"; return; }
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name") wakes=$(event_count wake "$name") started=$(started_at "$name")
	t0=$(now_ms)
	out=$(in_ns "$PG_BIN/psql" "$PG" -Atc 'select 1' 2>&1)
	rc=$?
	t1=$(now_ms)
	[ $rc -eq 0 ] && [ "$out" = 1 ] || fail "psql -c 'select 1' to the frozen $name: exit $rc: $out"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	[ "$(started_at "$name")" = "$started" ] ||
		fail "PostgreSQL was restarted: StartedAt $started -> $(started_at "$name")"
	[ "$(event_count wake "$name")" = "$wakes" ] ||
		fail "psql woke $name (a wake event: $(last_event wake "$name" | jq -c .)), not a thaw"
	rt_status_is "$name" paused && wait_for 5000 "the runtime saying $name runs" rt_status_is "$name" running
	echo "   psql answered in $((t1 - t0)) ms; thaw: $(thaw_facts "$ev"); freeze: $(freeze_facts "$name")"
	drop "$name"
}

ts_ms() { date -d "$1" +%s%3N; }
event_ts_ms() { # event name
	local ts
	ts=$(last_event "$1" "$2" | jq -r '.ts // empty')
	[ -n "$ts" ] && ts_ms "$ts" || echo 0
}

test_a_frozen_service_is_stopped_after_its_idle_time_and_wakes_as_today() {
	local name=st-$RT t0 thaws wakes readies code secs f s
	t0=$(now_ms)
	make_service "$name" "$STOP_PORT" --freeze-after "$FREEZE_AFTER" --idle 4s || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	wait_state 20000 "$name" asleep "asleep state of $name after frozen" || return
	wait_rt 15000 "$name" exited "the runtime saying $name exited" || return
	redirected "$STOP_PORT" || fail "port $STOP_PORT is not redirected while $name is asleep"
	f=$(event_ts_ms freeze "$name") s=$(event_ts_ms sleep "$name")
	[ "$f" -gt 0 ] && [ "$s" -gt "$f" ] || fail "no freeze event before the sleep event (freeze at $f, sleep at $s)"
	[ "$(event_count thaw "$name")" = "$thaws" ] || fail "the stop thawed it as if a client came: $(last_event thaw "$name")"
	wakes=$(event_count wake "$name") readies=$(event_count ready "$name")
	read -r code secs < <(fetch "http://127.0.0.1:$STOP_PORT/" "$WORK/st-$RT.body")
	got_page "$code" "$WORK/st-$RT.body" "a client of the asleep $name"
	events_at_least wake "$name" $((wakes + 1)) || fail "no wake event: the client did not wake it"
	wait_for 5000 "a ready event" events_at_least ready "$name" $((readies + 1))
	wait_for 5000 "the runtime saying $name runs" rt_status_is "$name" running
	echo "   frozen $((f - t0)) ms, stopped $((s - t0)) ms after its enable; cold wake first byte after ${secs}s;" \
		"ready: $(last_event ready "$name" | jq -c '{start_ms, probe_ms, total_ms}')"
	drop "$name"
}

# A client that opens a connection with TCP keepalive every second, says so
# (its local port, in READY), waits for GO, then sends a request on it and
# writes the answer to OUT once the server closes.
readonly KEEPALIVE_CLIENT='
import os, socket, sys, time
host, port, ready, go, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.create_connection((host, port), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 120)
with open(ready + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.02)
s.sendall(b"GET / HTTP/1.0\r\nHost: dozed\r\n\r\n")
s.settimeout(30)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
with open(out + ".tmp", "wb") as f:
    f.write(data)
os.rename(out + ".tmp", out)
'

# Segments the client's socket (local port LPORT) received: one per
# keepalive probe the peer's kernel answered.
segs_in() { # lport
	in_ns ss -tinH state established "( sport = :$1 )" 2>/dev/null |
		grep -o 'segs_in:[0-9]*' | head -n 1 | cut -d: -f2
}
segs_in_at_least() { [ "$(segs_in "$1")" -ge "$2" ] 2>/dev/null; }

# Frozen all along for ms: no thaw event after BEFORE, dozed and the runtime agree.
stays_frozen() { # name ms before what
	local deadline=$(($(now_ms) + $2))
	while [ "$(now_ms)" -lt $deadline ]; do
		if [ "$(event_count thaw "$1")" -gt "$3" ]; then
			fail "$4 thawed $1: $(last_event thaw "$1")"
			return 1
		fi
		state_is "$1" frozen || { fail "$4: $1 is $(state_of "$1"), not frozen"; return 1; }
		sleep 0.2
	done
	rt_status_is "$1" paused || { fail "$4: the runtime says $1 is $(rt_status "$1"), not paused"; return 1; }
}

test_a_peers_tcp_keepalive_does_not_thaw_it_and_a_request_on_that_connection_does() {
	local name=ka-$RT ip dir=$WORK/ka-$RT lport thaws seg0 ev client t0 t1
	"$ENV" create "$RTDIR" "$RT" "$name" "$KA_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	ip=$(container_ip "$name")
	[ -n "$ip" ] || { fail "no address for $name"; return; }
	mkdir -p "$dir" && rm -f "$dir"/*
	printf '%s\n' "$KEEPALIVE_CLIENT" >"$WORK/keepalive_client.py"
	# To the container's address: its own kernel answers the probes (a
	# published port may go through a proxy of the runtime's).
	wait_for 5000 "$name's httpd listening" in_ns bash -c "exec 3<>/dev/tcp/$ip/80" || return
	lib_bg nsenter --net="$(netns)" -- "$PYTHON" "$WORK/keepalive_client.py" "$ip" 80 \
		"$dir/ready" "$dir/go" "$dir/out"
	client=$LAST_BG
	wait_for 5000 "the keepalive client connected" test -s "$dir/ready" || return
	lport=$(cat "$dir/ready")
	ctl enable "$name" --freeze-after "$FREEZE_AFTER" --idle 1h >/dev/null ||
		{ fail "dozectl enable $name failed"; return; }
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	seg0=$(segs_in "$lport")
	[ -n "$seg0" ] || { fail "the client's connection (port $lport) is gone: $(in_ns ss -tn 2>&1 | head -n 5)"; return; }
	# Four probes answered by the frozen container's kernel, in the window.
	stays_frozen "$name" "$STAYS_FROZEN_MS" "$thaws" "the client's keepalive" || return
	segs_in_at_least "$lport" $((seg0 + 3)) ||
		{ fail "only $(($(segs_in "$lport") - seg0)) keepalive probes answered in $STAYS_FROZEN_MS ms (expected 3 or more)"; return; }
	local probes=$(($(segs_in "$lport") - seg0))
	t0=$(now_ms)
	touch "$dir/go"
	wait_for $((CLIENT_S * 1000)) "the answer on the kept-alive connection" test -s "$dir/out"
	t1=$(now_ms)
	wait "$client" 2>/dev/null
	head -n 1 "$dir/out" | grep -q '^HTTP/1.[01] 200' && grep -q "$PAGE" "$dir/out" ||
		fail "the request on the kept-alive connection got: $(head -c 200 "$dir/out" 2>/dev/null)"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	echo "   $probes keepalive probes answered while frozen, no thaw; the request answered in $((t1 - t0)) ms; thaw: $(thaw_facts "$ev")"
	drop "$name"
}

# A connect-only check (a load balancer's): open, close, no byte.
connect_only() { in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && exec 3>&-"; }

test_a_connect_only_check_does_not_thaw_it_with_wake_on_data_and_a_request_does() {
	local name=data-$RT thaws code secs ev
	make_service "$name" "$DATA_PORT" --freeze-after "$FREEZE_AFTER" --idle 1h --wake-on data || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	connect_only "$DATA_PORT" || { fail "the connect-only check to the frozen $name failed"; return; }
	connect_only "$DATA_PORT" || { fail "the second connect-only check failed"; return; }
	stays_frozen "$name" "$STAYS_FROZEN_MS" "$thaws" "a connect-only check (wake-on data)" || return
	read -r code secs < <(fetch "http://127.0.0.1:$DATA_PORT/" "$WORK/data-$RT.body")
	got_page "$code" "$WORK/data-$RT.body" "a request to the frozen $name (wake-on data)"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	echo "   two connect-only checks, frozen ${STAYS_FROZEN_MS} ms after; the request's first byte after ${secs}s; thaw: $(thaw_facts "$ev")"
	drop "$name"
}

# Connect-only checks pile up in a frozen listener's accept queue (busybox
# httpd's backlog is 9) and, once it is full, the kernel drops every SYN: no
# client could ever send the bytes that thaw it. Half full, dozed thaws it.
test_connect_only_checks_filling_its_backlog_thaw_it_with_wake_on_data() {
	local name=full-$RT thaws code secs i
	make_service "$name" "$FULL_PORT" --freeze-after "$FREEZE_AFTER" --idle 1h --wake-on data || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	for i in $(seq 12); do
		in_ns timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$FULL_PORT && exec 3>&-" ||
			echo "   connect-only check $i got no connection"
	done
	read -r code secs < <(fetch "http://127.0.0.1:$FULL_PORT/" "$WORK/full-$RT.body")
	got_page "$code" "$WORK/full-$RT.body" "a client after 12 connect-only checks (wake-on data)"
	thawed_by_packet "$name" "$thaws" || return
	echo "   the client's first byte after ${secs}s; thaw: $(thaw_facts "$THAW_EV")"
	drop "$name"
}

# Paused by hand through the runtime while awake: frozen, as if found so,
# and the first packet thaws it (else its clients would hang for ever).
test_a_service_paused_by_hand_is_frozen_and_thawed_by_a_client() {
	local name=hand-$RT thaws code secs
	make_service "$name" "$HAND_PORT" --idle 1h || return
	thaws=$(event_count thaw "$name")
	rt pause "$name" >/dev/null || { fail "cannot pause $name through the runtime"; return; }
	wait_state 5000 "$name" frozen "frozen state of $name after a pause by hand" || return
	read -r code secs < <(fetch "http://127.0.0.1:$HAND_PORT/" "$WORK/hand-$RT.body")
	got_page "$code" "$WORK/hand-$RT.body" "a client of $name paused by hand"
	thawed_by_packet "$name" "$thaws" || return
	awake_and_running "$name" "$HAND_PORT"
	echo "   first byte after ${secs}s; thaw: $(thaw_facts "$THAW_EV")"
	drop "$name"
}

# The control of the test above: without wake-on data a connect thaws it
# (else the test above proves nothing).
test_a_connect_only_check_thaws_it_without_wake_on_data() {
	local name=syn-$RT thaws ev
	make_service "$name" "$SYN_PORT" --freeze-after "$FREEZE_AFTER" --idle 1h || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	connect_only "$SYN_PORT" || { fail "the connect-only check to the frozen $name failed"; return; }
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	echo "   thaw: $(thaw_facts "$ev")"
	drop "$name"
}

# dozed killed while a service is frozen: the container stays paused (the
# runtime holds it); on restart dozed finds it so and the first packet thaws it.
test_dozed_killed_while_frozen_finds_it_frozen_and_the_first_packet_thaws_it() {
	local name=kill-$RT thaws code secs ev t0
	make_service "$name" "$KILL_PORT" --freeze-after "$FREEZE_AFTER" --idle 1h || return
	wait_frozen "$name" || return
	stop_dozed KILL
	rt_status_is "$name" paused || fail "with dozed killed the runtime says $name is $(rt_status "$name"), not paused"
	kernel_frozen "$name" || fail "with dozed killed, not frozen: $(kernel_unfrozen "$name" | tr '\n' ' ')"
	t0=$(now_ms)
	start_dozed || return
	wait_state 10000 "$name" frozen "frozen state of $name after the restart" || return
	[ "$(list_state "$name")" = frozen ] || fail "after the restart dozectl list says $name is '$(list_state "$name")'"
	local restarted=$(($(now_ms) - t0))
	rt_status_is "$name" paused || fail "after the restart the runtime says $name is $(rt_status "$name"), not paused"
	thaws=$(event_count thaw "$name")
	read -r code secs < <(fetch "http://127.0.0.1:$KILL_PORT/" "$WORK/kill-$RT.body")
	got_page "$code" "$WORK/kill-$RT.body" "the first client after the restart"
	thawed_by_packet "$name" "$thaws" || return
	ev=$THAW_EV
	awake_and_running "$name" "$KILL_PORT"
	echo "   frozen again $restarted ms after the restart; first byte after ${secs}s; thaw: $(thaw_facts "$ev")"
}

# While dozed is down, what a client of a frozen service gets: the kernel of
# the frozen container completes its handshake (the listening socket is
# there, frozen or not) and queues its request; nothing answers until dozed
# is back and thaws it. The client waits (no error, no reset) and then gets
# its answer.
established_to() { # port: a client's connection to 127.0.0.1:PORT is established
	[ -n "$(in_ns ss -tnH state established "( dport = :$1 )" 2>/dev/null)" ]
}

test_a_client_of_a_frozen_service_while_dozed_is_down_waits_then_gets_its_answer() {
	local name=kill-$RT client code out t0 t1
	rt inspect "$name" >/dev/null 2>&1 || make_service "$name" "$KILL_PORT" --freeze-after "$FREEZE_AFTER" --idle 1h || return
	wait_frozen "$name" || return
	stop_dozed KILL
	kernel_frozen "$name" || fail "with dozed killed, not frozen: $(kernel_unfrozen "$name" | tr '\n' ' ')"
	rm -f "$WORK/down-$RT.out"
	lib_bg_to "$WORK/down-$RT.out" nsenter --net="$(netns)" -- curl -sS --stderr - --max-time "$CLIENT_S" \
		-w '\n%{http_code}' "http://127.0.0.1:$KILL_PORT/"
	client=$LAST_BG
	wait_for 5000 "the client's connection established while dozed is down" established_to "$KILL_PORT"
	# The window: a client that had failed or been answered would have
	# done so by now (a thaw takes milliseconds).
	sleep 1
	kill -0 "$client" 2>/dev/null || fail "with dozed down the client ended: $(cat "$WORK/down-$RT.out")"
	[ ! -s "$WORK/down-$RT.out" ] || fail "with dozed down the client got: $(head -c 200 "$WORK/down-$RT.out")"
	rt_status_is "$name" paused || fail "with dozed down the runtime says $name is $(rt_status "$name")"
	t0=$(now_ms)
	start_dozed || return
	wait "$client"
	t1=$(now_ms)
	out=$(cat "$WORK/down-$RT.out")
	code=$(tail -n 1 <<<"$out")
	if [ "$code" = 200 ] && [[ $out == *"$PAGE"* ]]; then
		echo "   the waiting client was answered $((t1 - t0)) ms after dozed was started again"
	else
		fail "the client that came while dozed was down got, $((t1 - t0)) ms after dozed was started again: $(tr '\n' ' ' <<<"$out" | head -c 300)"
	fi
	drop "$name"
}

test_a_burst_of_clients_at_a_frozen_service_is_answered_with_one_thaw() {
	local name=burst-$RT thaws i n=50 ok=0 pids=() t0 t1
	make_service "$name" "$BURST_PORT" --freeze-after "$FREEZE_AFTER" --idle 30s || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	mkdir -p "$WORK/burst-$RT"
	t0=$(now_ms)
	for ((i = 0; i < n; i++)); do
		nsenter --net="$(netns)" -- curl -s --max-time "$CLIENT_S" -o "$WORK/burst-$RT/$i" \
			"http://127.0.0.1:$BURST_PORT/" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	t1=$(now_ms)
	for ((i = 0; i < n; i++)); do
		[ "$(cat "$WORK/burst-$RT/$i" 2>/dev/null)" = "$PAGE" ] && ok=$((ok + 1))
	done
	[ $ok -eq $n ] || fail "$ok of $n clients started at once at the frozen $name got the page"
	thawed_by_packet "$name" "$thaws" || return
	[ "$(event_count thaw "$name")" -eq $((thaws + 1)) ] ||
		fail "$(($(event_count thaw "$name") - thaws)) thaw events for one burst"
	echo "   $ok/$n answered in $((t1 - t0)) ms; thaw: $(thaw_facts "$THAW_EV")"
	drop "$name"
}

# The user removes a frozen container: dozed lets the service go (as for a
# removed asleep one) and goes on.
test_a_frozen_container_removed_by_its_user_is_let_go() {
	local name=gone-$RT
	make_service "$name" "$GONE_PORT" --freeze-after "$FREEZE_AFTER" --idle 30s || return
	wait_frozen "$name" || return
	local out
	out=$(rt rm -f "$name" 2>&1) || { fail "$RT rm -f of the frozen $name failed: $out"; return; }
	wait_for 10000 "$name let go by dozed" state_is "$name" none ||
		fail "(after rm -f dozed says $name is $(state_of "$name"))"
	dozed_alive || fail "dozed died"
	not_redirected "$GONE_PORT" || fail "port $GONE_PORT is still redirected"
}

# Podman's API service is not what runs its containers (conmon does): with
# it stopped, a frozen container still thaws at the first packet (dozed's
# freezer, no runtime call on the way), and once it is back the runtime's
# view catches up. (Docker's dockerd stops its containers when it stops.)
status_has_runtime_lags() { ctl status "$1" --json | jq -e '.service.runtime_lags // empty' >/dev/null; }
status_lacks_runtime_lags() { ! status_has_runtime_lags "$1"; }

test_a_frozen_service_answers_while_podmans_api_is_down() {
	local name=rtdown-$RT thaws code secs
	make_service "$name" "$RTDOWN_PORT" --freeze-after "$FREEZE_AFTER" --idle 30s || return
	wait_frozen "$name" || return
	thaws=$(event_count thaw "$name")
	"$ENV" stop "$RTDIR" podman >/dev/null 2>&1 || { fail "cannot stop Podman's API service"; return; }
	read -r code secs < <(fetch "http://127.0.0.1:$RTDOWN_PORT/" "$WORK/rtdown.body")
	got_page "$code" "$WORK/rtdown.body" "a client of the frozen $name with Podman's API down"
	# Its status says the runtime's view lags, once the unpause has failed.
	wait_for 5000 "status of $name saying the runtime lags" status_has_runtime_lags "$name"
	ctl status "$name" | grep -q '^runtime: *thawed and serving, but the runtime still says paused' ||
		fail "dozectl status does not say the runtime lags: $(ctl status "$name" | grep -i runtime)"
	"$ENV" start "$RTDIR" podman >/dev/null 2>&1 || { fail "cannot start Podman's API service again"; return; }
	wait_for 40000 "the runtime's view of $name caught up" status_lacks_runtime_lags "$name"
	thawed_by_packet "$name" "$thaws"
	awake_and_running "$name" "$RTDOWN_PORT"
	dozed_alive || fail "dozed died"
	echo "   first byte after ${secs}s with the runtime's API down; thaw: $(thaw_facts "$THAW_EV")"
	drop "$name"
}

# Page cache to reclaim: a 32 MiB file the container wrote before it served.
readonly CACHER='trap "exit 0" TERM; dd if=/dev/zero of=/tmp/big bs=1M count=32 2>/dev/null; sync; httpd -f -p 80 -h /www & wait'

test_reclaim_frozen_gives_memory_back_and_says_how_much() {
	local name=mem-$RT thaws ev before after code secs
	CREATE_SH=$CACHER "$ENV" create "$RTDIR" "$RT" "$name" "$MEM_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	wait_for 10000 "$name serving" page_ok "$MEM_PORT" 5 || return
	ctl enable "$name" --freeze-after "$FREEZE_AFTER" --idle 1h --reclaim-frozen >/dev/null ||
		{ fail "dozectl enable $name --reclaim-frozen failed"; return; }
	wait_frozen "$name" || return
	ev=$(last_event freeze "$name")
	before=$(jq -r '.memory_before // -1' <<<"$ev") after=$(jq -r '.memory_after // -1' <<<"$ev")
	if [ "$before" -lt 0 ] || [ "$after" -lt 0 ]; then
		fail "the freeze event gives no memory_before/memory_after: $ev"
	elif [ $((before - after)) -lt $((16 << 20)) ]; then
		fail "reclaimed $(((before - after) >> 20)) MiB of the 32 MiB file's cache (before $before, after $after)"
	fi
	thaws=$(event_count thaw "$name")
	read -r code secs < <(fetch "http://127.0.0.1:$MEM_PORT/" "$WORK/mem-$RT.body")
	got_page "$code" "$WORK/mem-$RT.body" "a client of the reclaimed $name"
	thawed_by_packet "$name" "$thaws" || return
	echo "   memory $((before >> 10)) KiB -> $((after >> 10)) KiB; first byte after ${secs}s; thaw: $(thaw_facts "$THAW_EV")"
	drop "$name"
}

test_bad_freeze_values_are_refused_naming_them() {
	local out rc mark bad=badfreeze-$RT ok=okfreeze-$RT
	out=$(ctl enable "nosuch-$RT" --freeze-after 0 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "--freeze-after 0: exit $rc, expected 2 (usage): $out"
	[[ $out == *freeze* && $out == *1s* && $out != *"unknown option"* ]] ||
		fail "the refusal of --freeze-after 0 does not name the setting and its minimum (1s): $out"
	# Under the minimum: refused, the minimum said (dozectl or the daemon).
	out=$(ctl enable "nosuch-$RT" --freeze-after 500ms 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "--freeze-after 500ms was taken (the minimum is 1s)"
	[[ $out == *1s* ]] || fail "the refusal of --freeze-after 500ms does not say the minimum (1s): $out"
	out=$(ctl enable "nosuch-$RT" --freeze-after banana 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "--freeze-after banana: exit $rc, expected 2 (usage): $out"
	[[ $out == *banana* ]] || fail "the refusal does not name the value banana: $out"
	out=$(ctl enable "nosuch-$RT" --freeze-after 10m --idle 5m 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "--freeze-after 10m --idle 5m: exit $rc, expected 2 (usage): $out"
	[[ $out == *freeze* && $out == *idle* && $out == *10m* && $out == *5m* ]] ||
		fail "the refusal of a freeze after the stop does not name both settings and values: $out"
	# The control protocol refuses it too, for clients other than dozectl.
	out=$(jq -cn --arg c "nosuch-$RT" '{cmd: "enable", container: $c, idle: "5m", freeze_after: "10m"}' |
		socat -t 5 - "UNIX-CONNECT:$WORK/$RT/control.sock" 2>&1)
	[[ $out == *'"ok":false'* && $out == *freeze* ]] || fail "the control socket took freeze_after 10m with idle 5m: $out"
	# The positive control: freeze only, never stopped.
	make_service "$ok" "$OK_PORT" --freeze-after "$FREEZE_AFTER" --idle never ||
		fail "--freeze-after 1s --idle never was refused"
	drop "$ok"
	# A label with a bad duration is named in the log (or the status).
	mark=$(wc -l <"$(dozed_log)")
	"$ENV" create "$RTDIR" "$RT" "$bad" "$BAD_PORT" dozed.enable=true dozed.freeze-after=banana >/dev/null 2>&1
	label_refused() {
		tail -n +$((mark + 1)) "$(dozed_log)" | grep -q 'dozed.freeze-after=banana' ||
			[[ $(reason_of "$bad") == *dozed.freeze-after* ]]
	}
	wait_for 10000 "a log line (or status) naming dozed.freeze-after=banana" label_refused
	"$ENV" rm "$RTDIR" "$RT" "$bad"
}

ONLY=("$@")
env_up
DOZED_ARGS=(--wake-timeout 20s --stop-timeout 2)
ALL=(test_bad_freeze_values_are_refused_naming_them
	test_a_frozen_service_answers_an_http_client_on_its_published_port
	test_dozectl_wake_thaws_a_frozen_service
	test_a_client_in_another_container_reaches_a_frozen_one_by_its_name
	test_a_frozen_postgres_answers_psql_with_no_restart
	test_a_frozen_service_is_stopped_after_its_idle_time_and_wakes_as_today
	test_a_peers_tcp_keepalive_does_not_thaw_it_and_a_request_on_that_connection_does
	test_a_connect_only_check_does_not_thaw_it_with_wake_on_data_and_a_request_does
	test_a_connect_only_check_thaws_it_without_wake_on_data
	test_connect_only_checks_filling_its_backlog_thaw_it_with_wake_on_data
	test_a_service_paused_by_hand_is_frozen_and_thawed_by_a_client
	test_reclaim_frozen_gives_memory_back_and_says_how_much
	test_a_burst_of_clients_at_a_frozen_service_is_answered_with_one_thaw
	test_a_frozen_container_removed_by_its_user_is_let_go
	test_dozed_killed_while_frozen_finds_it_frozen_and_the_first_packet_thaws_it
	test_a_client_of_a_frozen_service_while_dozed_is_down_waits_then_gets_its_answer)
for RT in ${FREEZE_RUNTIMES:-podman docker}; do
	if selected test_a_frozen_postgres_answers_psql_with_no_restart; then
		"$ENV" image "$RTDIR" "$RT" postgres >"$WORK/image.log" 2>&1 ||
			{ echo "FAIL ${RT}_image_postgres: $(tail -n 3 "$WORK/image.log")"; ANY_FAILED=1; }
	fi
	start_dozed || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	tests=("${ALL[@]}")
	[ "$RT" = podman ] && tests+=(test_a_frozen_service_answers_while_podmans_api_is_down)
	for t in "${tests[@]}"; do
		dozed_alive || start_dozed || { echo "FAIL ${RT}_restart: $FAILED"; ANY_FAILED=1; break; }
		run_test "${RT}_" "$t"
	done
	stop_dozed
done
exit $ANY_FAILED
