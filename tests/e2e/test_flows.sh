#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Flow-based idle detection end to end, against real Podman and Docker
# (tests/runtime-env.sh), idle 2 s: what a user sees of health checks,
# connect-only probes, DNS, real requests, ignore rules, a long Redis command
# and held connections, in the runtime's own events, `dozectl status` and
# `dozectl flows --json`.
#
# Besides the runtime's namespace (where dozed runs and 127.0.0.1:PORT is
# each container's published port), each runtime gets a test namespace, a
# "remote host" on a veth link: there 10.207.0.2, on the runtime's side
# 10.207.0.1. A client from there reaches a port published on every address
# at 10.207.0.1:PORT and is seen by the container as 10.207.0.2; the
# containers reach servers there (a resolver on 53, a metrics sink on 9090)
# through the runtime's masquerade.
#
# Usage: [BUILD=build] tests/e2e/test_flows.sh [TEST_NAME...]
# DOZED_IMAGE_CACHE=DIR keeps the Redis image's tar between runs.
set -uo pipefail
SUITE=flows TABLE=dozedflows ACT_PORT=15481
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

for tool in socat redis-cli bash; do
	command -v $tool >/dev/null || { echo "FAIL $SUITE: missing $tool ('make deps' installs it)"; exit 1; }
done
[ -x /bin/busybox ] || { echo "FAIL $SUITE: missing /bin/busybox (Debian package busybox-static)"; exit 1; }

IDLE=2s IDLE_MS=2000
# From an enable (or the end of what kept it awake) to the sleep event: the
# idle time, the 1 s re-check of a blocker, and room for a busy host.
SLEEP_MS=$((IDLE_MS + 6000))
# How long a service kept awake must stay so: three idle times.
AWAKE_MS=$((IDLE_MS * 3))
PEER=10.207.0.2 GW=10.207.0.1
LO_PORT=18481 CHK_PORT=18482 DNS_PORT=18483 WEB_PORT=18484 PUSH_PORT=18485 RD_PORT=18486 \
	FLOW_PORT=18487 BAD_PORT=18488 EX_PORT=18489
# Fixed ports of the test's own clients, so that their flows are found by peer.
CURL_LPORT=40123

peer_ns() { echo "$WORK/peer-$RT.net"; }
in_peer() { nsenter --net="$(peer_ns)" -- "$@"; }
# A program in the test namespace, in the background; LAST_BG is that program.
in_peer_bg() { # FILE PROGRAM ARGS...
	local out=$1
	shift
	nsenter --net="$(peer_ns)" -- "$@" >"$out" 2>&1 &
	BG_PIDS+=($!)
	LAST_BG=$!
}

peer_cleanup() {
	local ns
	for ns in "$WORK"/peer-*.net; do
		[ -e "$ns" ] && umount "$ns" 2>/dev/null
	done
	return 0
}
LIB_EXTRA_CLEANUP=peer_cleanup

# The test namespace of this runtime, linked to the runtime's namespace
# (where dozed runs: its PID names that namespace for ip(8)).
peer_up() {
	local ns
	ns=$(peer_ns)
	findmnt -rn -M "$ns" >/dev/null && return 0
	touch "$ns"
	unshare --net="$ns" ip link set lo up &&
		in_peer ip link add dzflow1 type veth peer name dzflow0 netns "$DOZED_PID" &&
		in_peer ip addr add "$PEER/24" dev dzflow1 && in_peer ip link set dzflow1 up &&
		in_ns ip addr add "$GW/24" dev dzflow0 && in_ns ip link set dzflow0 up ||
		{ fail "cannot link a test namespace to the runtime's"; return 1; }
	wait_for 5000 "the test namespace reaching the runtime's" in_peer /bin/busybox ping -c 1 -W 1 "$GW"
}

# --- servers in the test namespace ---------------------------------------------

# A resolver: each query is answered NXDOMAIN (its id and question sent
# back) and counted, one line per query, in $WORK/dns-$RT.log.
DNS_ANSWER='t=$(mktemp); dd bs=4096 count=1 of="$t" 2>/dev/null; echo q >>"$1"
{ head -c 2 "$t"; printf "\201\203"; tail -c +5 "$t" | head -c 2; printf "\0\0\0\0\0\0"; tail -c +13 "$t"; } >"$t.r"
cat "$t.r"; rm -f "$t" "$t.r"'
resolver_up() {
	[ -n "${RESOLVER_UP[$RT]:-}" ] && return 0
	printf '%s\n' "$DNS_ANSWER" >"$WORK/dns-answer.sh"
	: >"$WORK/dns-$RT.log"
	in_peer_bg "$WORK/resolver-$RT.out" socat "UDP-RECVFROM:53,bind=$PEER,fork" \
		"EXEC:sh $WORK/dns-answer.sh $WORK/dns-$RT.log"
	RESOLVER_UP[$RT]=1
	wait_for 5000 "the test resolver answering" resolver_answers
}
# nslookup exits 1 on NXDOMAIN: its words say whether it was answered.
resolver_answers() { [[ $(in_peer /bin/busybox nslookup -timeout=1 dozed.test "$PEER" 2>&1) == *NXDOMAIN* ]]; }
declare -A RESOLVER_UP=() SINK_UP=() EXACT_UP=()
dns_queries() { wc -l <"$WORK/dns-$RT.log"; }

# A metrics sink on 9090: busybox httpd, a small page.
sink_up() {
	[ -n "${SINK_UP[$RT]:-}" ] && return 0
	mkdir -p "$WORK/sink"
	echo 'dozed_test_metric 1' >"$WORK/sink/metrics"
	in_peer_bg "$WORK/sink-$RT.out" /bin/busybox httpd -f -p "$PEER:9090" -h "$WORK/sink"
	SINK_UP[$RT]=1
	wait_for 5000 "the metrics sink answering" \
		in_peer /bin/busybox wget -q -O /dev/null "http://$PEER:9090/metrics"
}

# On 9091: reads exactly 777 bytes, sends exactly 5000, closes.
exact_up() {
	[ -n "${EXACT_UP[$RT]:-}" ] && return 0
	in_peer_bg "$WORK/exact-$RT.out" socat "TCP-LISTEN:9091,bind=$PEER,reuseaddr,fork" \
		"SYSTEM:head -c 777 >/dev/null; head -c 5000 /dev/zero"
	EXACT_UP[$RT]=1
	wait_for 5000 "the exact server listening" \
		in_peer bash -c "exec 3<>/dev/tcp/$PEER/9091"
}

# --- what a user observes --------------------------------------------------------

ts_ms() { date -d "$1" +%s%3N; }
# ms from T0 to the service's last sleep event.
last_sleep_after() { # name t0
	local ts
	ts=$(last_event sleep "$1" | jq -r '.ts // empty')
	[ -n "$ts" ] || { echo -1; return; }
	echo $(($(ts_ms "$ts") - $2))
}
sleep_top_flows() { last_event sleep "$1" | jq -c '.top_flows // []'; }
status_json() { ctl status "$1" --json 2>/dev/null; }
# flows_of NAME: the service's flows, as `dozectl flows NAME --json` gives them.
flows_of() { ctl flows "$1" --json 2>/dev/null | jq -c '[.services[]? | .flows[]?]'; }
flow_by_peer() { # name peer: the flow with that peer, or null
	flows_of "$1" | jq -c --arg p "$2" '[.[] | select(.peer == $p)] | first // null'
}
flow_at_least() { # name peer field n
	[ "$(flow_by_peer "$1" "$2" | jq -r --arg f "$3" '.[$f] // 0')" -ge "$4" ]
}
open_inbound_listed() {
	status_json "$1" | jq -e '[.service.activity.open_connections[]? | select(.inbound)] | length > 0'
}
loopback_ignored() { [ "$(status_json "$1" | jq -r '.service.activity.ignored.loopback.packets // 0')" -gt 0 ]; }
file_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# The service sleeps, within SLEEP_MS, idle for its idle time by the sleep
# event; and, unless told "rearmed" (an enable that changed only what counts:
# the idle time runs from its last counted traffic, before T0), not before
# its idle time has passed since T0 (just before the enable), by the event's
# own time.
sleeps_after_idle() { # name t0 before (sleep events before) [rearmed]
	local name=$1 t0=$2 before=$3 after idle
	wait_for "$SLEEP_MS" "sleep event of $name" events_at_least sleep "$name" $((before + 1)) || return 1
	after=$(last_sleep_after "$name" "$t0")
	[ -n "${4:-}" ] || [ "$after" -ge $((IDLE_MS - 50)) ] ||
		fail "$name slept ${after} ms after its enable, before its idle time ($IDLE_MS ms)"
	idle=$(last_event sleep "$name" | jq -r '.idle_ms // 0')
	[ "$idle" -ge $((IDLE_MS - 50)) ] || fail "$name's sleep event says idle ${idle} ms, under $IDLE_MS"
	wait_for 15000 "stopped $name" stopped "$name"
}

# Stays awake for ms: no sleep event, awake, running, all along.
stays_awake() { # name ms before
	local name=$1 ms=$2 before=$3 deadline
	deadline=$(($(now_ms) + ms))
	while [ "$(now_ms)" -lt $deadline ]; do
		if [ "$(event_count sleep "$name")" -gt "$before" ]; then
			fail "$name slept: $(last_event sleep "$name" | jq -c '{ts, reason, last_counted, top_flows}')"
			return 1
		fi
		sleep 0.2
	done
	state_is "$name" awake || { fail "$name is $(state_of "$name") after $ms ms, not awake"; return 1; }
	running "$name" || { fail "$name's container is not running"; return 1; }
}

# A container from the test image: httpd on 80 plus the shell's background
# LOOP, 80 published on 127.0.0.1:PORT (PUBLISH_IP for others).
busybox_service() { # name port loop
	CREATE_SH="trap 'exit 0' TERM; httpd -f -p 80 -h /www & ( $3 ) & wait" \
		"$ENV" create "$RTDIR" "$RT" "$1" "$2" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $1: $(tail -n 2 "$WORK/create.log")"; return 1; }
}
# The count the container's loop keeps in /tmp/n.
loop_count() { rt exec "$1" cat /tmp/n 2>/dev/null || echo 0; }
loop_at_least() { [ "$(loop_count "$1")" -ge "$2" ]; }
readonly COUNT='n=$((n+1)); echo $n >/tmp/n'

# --- the tests ---------------------------------------------------------------------

test_a_loopback_health_check_inside_the_container_lets_it_sleep() {
	local name=lo-$RT t0 before
	busybox_service "$name" "$LO_PORT" \
		"while :; do wget -q -O /dev/null http://127.0.0.1/ && $COUNT; sleep 1; done" || return
	wait_for 10000 "two health checks of $name" loop_at_least "$name" 2 || return
	before=$(event_count sleep "$name")
	t0=$(now_ms)
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	sleeps_after_idle "$name" "$t0" "$before" || return
	# Nothing of it left the container: no flow in the sleep event.
	local top
	top=$(sleep_top_flows "$name")
	[ "$(jq '[.[] | select(.peer | startswith("127."))] | length' <<<"$top")" = 0 ] ||
		fail "the sleep event lists loopback flows: $top"
	[ -n "$FAILED" ] || echo "   slept $(last_sleep_after "$name" "$t0") ms after its enable"
}

# connect, close, no byte: what a load balancer's TCP check does.
CHECKER='n=0; while :; do if exec 3<>/dev/tcp/127.0.0.1/$0; then exec 3>&-; n=$((n+1)); echo $n >"$1"; fi; sleep 1; done'

test_connect_only_checks_every_second_let_it_sleep() {
	local name=chk-$RT t0 before checks=$WORK/checks-$RT
	"$ENV" create "$RTDIR" "$RT" "$name" "$CHK_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	echo 0 >"$checks"
	lib_bg nsenter --net="$(netns)" -- bash -c "$CHECKER" "$CHK_PORT" "$checks"
	local checker=$LAST_BG
	wait_for 10000 "two connect-only checks of $name" file_at_least "$checks" 2 || return
	before=$(event_count sleep "$name")
	t0=$(now_ms)
	# --wake-on data: a check of the sleeping service is held, not a wake.
	ctl enable "$name" --idle "$IDLE" --wake-on data >/dev/null || { fail "dozectl enable $name failed"; return; }
	sleeps_after_idle "$name" "$t0" "$before"
	local n
	n=$(cat "$checks")
	kill "$checker" 2>/dev/null
	[ "$n" -ge 3 ] || fail "only $n connect-only checks were made"
	local top
	top=$(sleep_top_flows "$name")
	jq -e '[.[] | select(.proto == "tcp" and .ignored == "no payload" and .opened_by == "peer")] | length > 0' \
		<<<"$top" >/dev/null || fail "the sleep event names no ignored connect-only flow: $top"
	[ -n "$FAILED" ] || echo "   $n checks; slept $(last_sleep_after "$name" "$t0") ms after its enable"
}

test_a_dns_query_a_second_to_a_resolver_lets_it_sleep() {
	local name=dns-$RT t0 before q0
	resolver_up || return
	busybox_service "$name" "$DNS_PORT" \
		"while :; do nslookup -timeout=1 dozed.test $PEER >/dev/null 2>&1; $COUNT; sleep 1; done" || return
	wait_for 30000 "two DNS queries of $name" loop_at_least "$name" 2 || return
	q0=$(dns_queries)
	[ "$q0" -ge 2 ] || { fail "the resolver got $q0 queries from $name's loop"; return; }
	before=$(event_count sleep "$name")
	t0=$(now_ms)
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	sleeps_after_idle "$name" "$t0" "$before" || return
	# Queries went on while it was idle: the sleep event's DNS flow was
	# last seen after the enable (the resolver's own log may lag on a busy
	# host: each query is logged by a child of its own).
	local top after
	top=$(sleep_top_flows "$name")
	after=$(last_sleep_after "$name" "$t0")
	jq -e --arg p "$PEER:53" --argjson after "$after" '[.[] | select(.peer == $p and .proto == "udp" and .ignored == "dns" and .opened_by == "container" and .last_seen_ago_ms < $after)] | length > 0' \
		<<<"$top" >/dev/null || fail "the sleep event names no ignored DNS flow seen while it was idle (slept $after ms after its enable): $top"
	[ -n "$FAILED" ] || echo "   $(($(dns_queries) - q0)) queries logged while enabled; slept $after ms after its enable"
}

WEB_CLIENT='n=0; while :; do curl -sS -o /dev/null --max-time 5 "http://$0/" && { n=$((n+1)); echo $n >"$1"; }; sleep 1; done'

test_an_http_request_every_second_keeps_it_awake_and_status_names_the_client() {
	local name=web-$RT before reqs=$WORK/reqs-$RT
	PUBLISH_IP=0.0.0.0 "$ENV" create "$RTDIR" "$RT" "$name" "$WEB_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	echo 0 >"$reqs"
	in_peer_bg "$WORK/web-client-$RT.out" bash -c "$WEB_CLIENT" "$GW:$WEB_PORT" "$reqs"
	local client=$LAST_BG
	wait_for 10000 "two requests from the test namespace" file_at_least "$reqs" 2 || return
	before=$(event_count sleep "$name")
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	stays_awake "$name" "$AWAKE_MS" "$before" || { kill "$client"; return; }
	local st text peer
	st=$(status_json "$name")
	text=$(ctl status "$name" 2>&1)
	peer=$(jq -r '.service.activity.last_counted.peer // ""' <<<"$st")
	[[ $peer == "$PEER:"* ]] ||
		fail "status --json: last counted traffic from '$peer', expected $PEER:PORT: $(jq -c '.service.activity' <<<"$st")"
	[[ $(jq -r '.service.reason // ""' <<<"$st") == *"last counted traffic"*"$PEER:"* ]] ||
		fail "the reason does not name the client $PEER: $(jq -r '.service.reason' <<<"$st")"
	grep -q "$PEER" <<<"$text" || fail "dozectl status does not name the client $PEER: $(tr '\n' '|' <<<"$text")"
	echo "   $(cat "$reqs") requests; reason: $(jq -r '.service.reason' <<<"$st")"
	# The control: without the client it sleeps.
	kill "$client"
	wait_for "$SLEEP_MS" "a sleep once the client stopped" events_at_least sleep "$name" $((before + 1))
}

PUSHER="while :; do wget -q -O /dev/null http://$PEER:9090/metrics && $COUNT; sleep 1; done"

test_an_ignore_rule_lets_a_service_that_pushes_to_tcp_9090_sleep() {
	local name=push-$RT t0 before
	sink_up || return
	busybox_service "$name" "$PUSH_PORT" "$PUSHER" || return
	# A container's start and exec are slow on a busy host: room for both.
	wait_for 30000 "two pushes of $name to $PEER:9090" loop_at_least "$name" 2 || return
	# Without the rule its pushes are work: it stays awake.
	before=$(event_count sleep "$name")
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	stays_awake "$name" "$AWAKE_MS" "$before" || return
	local peer
	peer=$(status_json "$name" | jq -r '.service.activity.last_counted.peer // ""')
	[ "$peer" = "$PEER:9090" ] || fail "without the rule, last counted traffic is '$peer', not $PEER:9090"
	t0=$(now_ms)
	ctl enable "$name" --idle "$IDLE" --ignore tcp/9090 >/dev/null ||
		{ fail "dozectl enable $name --ignore tcp/9090 failed"; return; }
	[ "$(status_json "$name" | jq -r '.service.ignore // ""')" = tcp/9090 ] ||
		fail "status gives ignore '$(status_json "$name" | jq -r '.service.ignore')', expected tcp/9090"
	sleeps_after_idle "$name" "$t0" "$before" rearmed || return
	local top
	top=$(sleep_top_flows "$name")
	jq -e --arg p "$PEER:9090" '[.[] | select(.peer == $p and .ignored == "rule tcp/9090")] | length > 0' \
		<<<"$top" >/dev/null || fail "the sleep event names no flow to $PEER:9090 ignored by the rule: $top"
}

test_a_malformed_ignore_rule_is_refused_naming_it_and_the_forms() {
	local name=push-$RT out rc
	rt inspect "$name" >/dev/null 2>&1 || busybox_service "$name" "$PUSH_PORT" "$PUSHER" || return
	ctl enable "$name" --idle 1h --ignore tcp/9090 >/dev/null || { fail "dozectl enable $name failed"; return; }
	out=$(ctl enable "$name" --ignore 10.0.0.0/33 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "--ignore 10.0.0.0/33: exit $rc, expected 2 (usage)"
	[[ $out == *10.0.0.0/33* ]] || fail "the refusal does not name the rule: $out"
	local form
	for form in 10.0.0.0/8 tcp/9090 udp/8125 192.0.2.7:443; do
		[[ $out == *"$form"* ]] || fail "the refusal does not show the form $form: $out"
	done
	# The control protocol refuses it too, for clients other than dozectl,
	# and the service keeps its rules.
	out=$(jq -cn --arg c "$name" '{cmd: "enable", container: $c, ignore: "tcp/9090,10.0.0.0/33"}' |
		socat -t 5 - "UNIX-CONNECT:$WORK/$RT/control.sock" 2>&1)
	[[ $out == *'"ok":false'* && $out == *10.0.0.0/33* ]] || fail "the control socket took rule 10.0.0.0/33: $out"
	[ "$(status_json "$name" | jq -r '.service.ignore // ""')" = tcp/9090 ] ||
		fail "a refused rule changed the service's rules to '$(status_json "$name" | jq -r '.service.ignore')'"
	# A label with a bad rule is named in the log.
	local mark bad=badignore-$RT
	mark=$(wc -l <"$(dozed_log)")
	"$ENV" create "$RTDIR" "$RT" "$bad" "$BAD_PORT" dozed.enable=true dozed.ignore=udp/0 >/dev/null 2>&1
	wait_for 10000 "a log line naming dozed.ignore=udp/0" \
		sh -c "tail -n +$((mark + 1)) '$(dozed_log)' | grep -q 'udp/0'"
	"$ENV" rm "$RTDIR" "$RT" "$bad"
}

# The image's Redis with DEBUG allowed (its config does not).
redis_run() {
	container_run "$1" dozed-test/redis:latest "$RD_PORT" 6379 -- \
		/usr/bin/redis-server /etc/redis/redis.conf --enable-debug-command yes
}
rd() { in_ns redis-cli -h 127.0.0.1 -p "$RD_PORT" "$@" 2>&1; }
rd_marker() { [ "$(rd get dozed:marker)" = built ]; }

test_a_redis_command_longer_than_the_idle_time_keeps_it_awake_until_answered() {
	local name=rd-$RT before t0 t1 out pid kept0
	redis_run "$name" || return
	wait_for 30000 "Redis serving its data set before dozed" rd_marker || return
	before=$(event_count sleep "$name")
	kept0=$(kept_count_by "$name" unanswered)
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	t0=$(now_ms)
	lib_bg_to "$WORK/debug-sleep-$RT.out" nsenter --net="$(netns)" -- \
		redis-cli -h 127.0.0.1 -p "$RD_PORT" DEBUG SLEEP 5
	pid=$LAST_BG
	wait "$pid"
	t1=$(now_ms)
	out=$(cat "$WORK/debug-sleep-$RT.out")
	if [ "$out" != OK ]; then
		fail "DEBUG SLEEP 5 answered '$out' after $((t1 - t0)) ms, expected OK (nothing: the connection was cut)"
	elif [ $((t1 - t0)) -lt 4900 ]; then
		fail "DEBUG SLEEP 5 took $((t1 - t0)) ms: it cannot have kept anything awake"
	fi
	[ "$(event_count sleep "$name")" = "$before" ] ||
		fail "it slept while the command ran: $(last_event sleep "$name" | jq -c '{ts, reason}')"
	local kept
	kept=$(kept_event_by "$name" unanswered)
	if [ "$(kept_count_by "$name" unanswered)" -gt "$kept0" ]; then
		kept_names_its_peer "$kept"
	else
		fail "no kept_awake event by an unanswered request: $(ctl events --json | jq -s -c --arg s "$name" '[.[] | select(.service == $s and .event == "kept_awake")]')"
	fi
	echo "   answered after $((t1 - t0)) ms; kept_awake: $(jq -c '{by, what, peer}' <<<"$kept")"
	# Answered, it sleeps.
	wait_for "$SLEEP_MS" "a sleep once answered" events_at_least sleep "$name" $((before + 1))
}

# The service's kept_awake events by BY (unanswered, connection): how many,
# and the last (null: none).
kept_events_by() { # name by
	ctl events --json | jq -s -c --arg s "$1" --arg b "$2" \
		'[.[] | select(.event == "kept_awake" and .service == $s and .by == $b)]'
}
kept_count_by() { kept_events_by "$1" "$2" | jq length; }
kept_event_by() { kept_events_by "$1" "$2" | jq -c last; }

# A client that sends its long command the moment its quick one is answered,
# as a pool or a script does (BEGIN, then the long query): both in the same
# kernel tick (4 ms at HZ=250), when the times of tcp_info cannot tell the
# request from the answer before it.
PIPELINED='exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1; printf "PING\r\n" >&3; read -t 30 -r a <&3; printf "DEBUG SLEEP 5\r\n" >&3; read -t 30 -r b <&3; echo "${a%$'"'"'\r'"'"'} ${b%$'"'"'\r'"'"'}" >"$1"'

test_a_long_command_sent_at_once_after_a_quick_answer_keeps_it_awake_until_answered() {
	local name=rd-$RT before t0 t1 out pid
	rt inspect "$name" >/dev/null 2>&1 || redis_run "$name" || return
	wait_for 30000 "Redis answering" rd_marker || return
	wait_for 5000 "port $RD_PORT out of the set" not_redirected "$RD_PORT" || return
	before=$(event_count sleep "$name")
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	t0=$(now_ms)
	: >"$WORK/pipelined-$RT"
	lib_bg nsenter --net="$(netns)" -- bash -c "$PIPELINED" "$RD_PORT" "$WORK/pipelined-$RT"
	pid=$LAST_BG
	wait "$pid"
	t1=$(now_ms)
	out=$(cat "$WORK/pipelined-$RT")
	[ "$out" = "+PONG +OK" ] ||
		fail "PING then DEBUG SLEEP 5 got '$out' after $((t1 - t0)) ms, expected '+PONG +OK' (nothing after PONG: the connection was cut)"
	[ "$(event_count sleep "$name")" = "$before" ] ||
		fail "it slept while the command ran: $(last_event sleep "$name" | jq -c '{ts, idle_ms}')"
	wait_for "$SLEEP_MS" "a sleep once answered" events_at_least sleep "$name" $((before + 1))
}

# A kept_awake event says what kept it and names the peer (ADDR:PORT).
kept_names_its_peer() { # event
	[ -n "$(jq -r '.what // ""' <<<"$1")" ] || fail "the kept_awake event says not what kept it: $1"
	jq -e '(.peer // "") | test("^([0-9.]+|\\[[0-9a-f:]+\\]):[0-9]+$")' <<<"$1" >/dev/null ||
		fail "the kept_awake event names no peer ADDR:PORT: $1"
}

# Holds a connection to Redis: PING, its answer, then silence until closed.
# Builtins only: killing the shell closes the connection.
HOLDER='exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1; printf "PING\r\n" >&3; read -r l <&3; echo "$l" >"$1"; while read -r -u 3 l; do :; done; echo closed >>"$1"'
holder_answered() { grep -q PONG "$1"; }
holder_cut() { grep -q closed "$1"; }

test_keep_awake_while_connected_holds_it_while_a_connection_is_open() {
	local name=rd-$RT before held=$WORK/held-$RT holder kept0
	rt inspect "$name" >/dev/null 2>&1 || redis_run "$name" || return
	wait_for 30000 "Redis answering" rd_marker || return
	wait_for 5000 "port $RD_PORT out of the set" not_redirected "$RD_PORT" || return

	# Off (the default): an open idle connection does not keep it awake,
	# but status lists it as what a sleep would cut.
	before=$(event_count sleep "$name")
	ctl enable "$name" --idle "$IDLE" >/dev/null || { fail "dozectl enable $name failed"; return; }
	: >"$held"
	lib_bg nsenter --net="$(netns)" -- bash -c "$HOLDER" "$RD_PORT" "$held"
	holder=$LAST_BG
	wait_for 5000 "the held connection's PONG" holder_answered "$held" || return
	wait_for 1500 "status listing the held connection" open_inbound_listed "$name" ||
		fail "(keep-awake off) status lists no inbound open connection a sleep would cut"
	wait_for "$SLEEP_MS" "a sleep with keep-awake off" events_at_least sleep "$name" $((before + 1)) || return
	wait_for 15000 "the held connection cut by the sleep" holder_cut "$held"
	kill "$holder" 2>/dev/null

	# On: it stays awake while one is open.
	ctl enable "$name" --idle "$IDLE" --keep-awake-while-connected >/dev/null ||
		{ fail "dozectl enable $name --keep-awake-while-connected failed"; return; }
	[ "$(status_json "$name" | jq -r '.service.keep_awake // ""')" = connections ] ||
		fail "status gives keep_awake '$(status_json "$name" | jq -r '.service.keep_awake')'"
	[ "$(rd get dozed:marker)" = built ] || { fail "the wake for the second half failed"; return; }
	wait_for 5000 "port $RD_PORT out of the set" not_redirected "$RD_PORT" || return
	before=$(event_count sleep "$name")
	kept0=$(kept_count_by "$name" connection)
	: >"$held"
	lib_bg nsenter --net="$(netns)" -- bash -c "$HOLDER" "$RD_PORT" "$held"
	holder=$LAST_BG
	wait_for 5000 "the held connection's PONG" holder_answered "$held" || return
	stays_awake "$name" "$AWAKE_MS" "$before" || return
	holder_cut "$held" && fail "the held connection was cut while keep-awake was on"
	local kept
	kept=$(kept_event_by "$name" connection)
	if [ "$(kept_count_by "$name" connection)" -gt "$kept0" ]; then
		kept_names_its_peer "$kept"
	else
		fail "no kept_awake event by the connection: $(ctl events --json | jq -s -c --arg s "$name" '[.[] | select(.service == $s and .event == "kept_awake")]')"
	fi
	kill "$holder"
	wait_for "$SLEEP_MS" "a sleep once the connection closed" events_at_least sleep "$name" $((before + 1))
}

test_flows_json_lists_the_peer_direction_and_payload_of_each_flow() {
	local name=fl-$RT sizes want_in want_out flow h b
	exact_up || return
	PUBLISH_IP=0.0.0.0 CREATE_SH="trap 'exit 0' TERM; httpd -f -p 80 -h /www & ( while :; do wget -q -O /dev/null http://127.0.0.1/; sleep 1; done ) & wait" \
		"$ENV" create "$RTDIR" "$RT" "$name" "$FLOW_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }

	# In: a request from the test namespace from a known port; curl counts
	# what it sent and what it got.
	sizes=$(in_peer curl -sS -o /dev/null --max-time 10 --local-port "$CURL_LPORT" \
		-w '%{size_request} %{size_header} %{size_download}' "http://$GW:$FLOW_PORT/") ||
		{ fail "the request from the test namespace failed: $sizes"; return; }
	read -r want_in h b <<<"$sizes"
	want_out=$((h + b))
	wait_for 5000 "a flow from $PEER:$CURL_LPORT with $want_out B out" \
		flow_at_least "$name" "$PEER:$CURL_LPORT" payload_out "$want_out" ||
		{ fail "flows: $(ctl flows "$name" --json 2>&1 | head -c 600)"; return; }
	flow=$(flow_by_peer "$name" "$PEER:$CURL_LPORT")
	jq -e --argjson i "$want_in" --argjson o "$want_out" \
		'.proto == "tcp" and .local_port == 80 and .opened_by == "peer" and .counted == true and
		 .payload_in == $i and .payload_out == $o and .packets_in > 0 and .packets_out > 0 and
		 .bytes_in > .payload_in and .bytes_out > .payload_out and (.ignored == null)' \
		<<<"$flow" >/dev/null ||
		fail "the request's flow (sent $want_in B, got $want_out B, to port 80, opened by the peer): $flow"

	# Out: the container sends exactly 777 bytes to 9091 and gets 5000.
	local got
	got=$(rt exec "$name" sh -c "head -c 777 /dev/zero | nc $PEER 9091 | wc -c" 2>&1)
	[ "$(tr -d ' ' <<<"$got")" = 5000 ] || { fail "the container got '$got' bytes from $PEER:9091, not 5000"; return; }
	wait_for 5000 "a flow to $PEER:9091 with 5000 B in" flow_at_least "$name" "$PEER:9091" payload_in 5000 ||
		{ fail "flows: $(ctl flows "$name" --json 2>&1 | head -c 600)"; return; }
	flow=$(flow_by_peer "$name" "$PEER:9091")
	jq -e '.proto == "tcp" and .opened_by == "container" and .counted == true and
		 .payload_out == 777 and .payload_in == 5000' <<<"$flow" >/dev/null ||
		fail "the container's flow to $PEER:9091 (sent 777 B, got 5000 B, opened by it): $flow"

	# Its loopback checks are no flow; status counts them as ignored.
	flows_of "$name" | jq -e '[.[] | select(.peer | startswith("127."))] | length == 0' >/dev/null ||
		fail "flows lists loopback peers: $(flows_of "$name")"
	# (one check a second, the first maybe before the enable)
	wait_for 5000 "ignored loopback traffic in status" loopback_ignored "$name" ||
		fail "status counts no ignored loopback traffic: $(status_json "$name" | jq -c '.service.activity.ignored')"
	# The table for people names both peers.
	local table
	table=$(ctl flows "$name" 2>&1)
	grep -q "$PEER:$CURL_LPORT" <<<"$table" && grep -q "$PEER:9091" <<<"$table" ||
		fail "dozectl flows does not show both peers: $(head -n 8 <<<"$table" | tr '\n' '|')"
	ctl disable "$name" >/dev/null 2>&1
}

# What was ignored, in status: its loopback checks, connect-only checks
# from the test namespace, DNS queries to the test resolver; and nothing
# counted, said so.
ignored_as_sent() { # name
	status_json "$1" | jq -e --arg p "$PEER" '.service.activity.ignored as $i |
		($i.loopback.packets // 0) > 0 and ($i.no_payload.checks // 0) >= 3 and
		($i.no_payload.checks_from // "") == $p and ($i.dns.queries // 0) >= 2'
}

test_status_says_what_it_ignored_and_that_nothing_counted() {
	local name=ex-$RT i st text
	resolver_up || return
	PUBLISH_IP=0.0.0.0 busybox_service "$name" "$EX_PORT" \
		"while :; do wget -q -O /dev/null http://127.0.0.1/; sleep 1; done" || return
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	for i in 1 2 3; do
		in_peer bash -c "exec 3<>/dev/tcp/$GW/$EX_PORT" ||
			{ fail "connect-only check $i from the test namespace failed"; return; }
	done
	# One lookup: an A and an AAAA query.
	rt exec "$name" nslookup -timeout=1 dozed.test "$PEER" >/dev/null 2>&1
	wait_for 5000 "status counting loopback, 3 checks from $PEER and 2 DNS queries" ignored_as_sent "$name" ||
		fail "status: $(status_json "$name" | jq -c '.service.activity')"
	st=$(status_json "$name")
	jq -e '.service.activity | (.counted_packets // 0) == 0 and .last_counted == null' <<<"$st" >/dev/null ||
		fail "status counts traffic: $(jq -c '.service.activity' <<<"$st")"
	[[ $(jq -r '.service.reason // ""' <<<"$st") == *"no counted traffic"* ]] ||
		fail "the reason does not say nothing was counted: $(jq -r '.service.reason' <<<"$st")"
	text=$(ctl status "$name" 2>&1)
	grep -E '^ *ignored:.*loopback.*DNS [0-9]+ quer.*[0-9]+ connect-only checks from '"$PEER" <<<"$text" >/dev/null ||
		grep -E '^ *ignored:.*loopback.*[0-9]+ connect-only checks from '"$PEER"'.*DNS [0-9]+ quer' <<<"$text" >/dev/null ||
		fail "dozectl status does not say what it ignored: $(grep -i ignored <<<"$text" | tr '\n' '|')"
	[ -n "$FAILED" ] || echo "   $(grep -E '^ *ignored:' <<<"$text" | sed 's/^ *//')"
	ctl disable "$name" >/dev/null 2>&1
}

ONLY=("$@")
env_up
ALL=(test_a_loopback_health_check_inside_the_container_lets_it_sleep
	test_connect_only_checks_every_second_let_it_sleep
	test_a_dns_query_a_second_to_a_resolver_lets_it_sleep
	test_an_http_request_every_second_keeps_it_awake_and_status_names_the_client
	test_an_ignore_rule_lets_a_service_that_pushes_to_tcp_9090_sleep
	test_a_malformed_ignore_rule_is_refused_naming_it_and_the_forms
	test_a_redis_command_longer_than_the_idle_time_keeps_it_awake_until_answered
	test_a_long_command_sent_at_once_after_a_quick_answer_keeps_it_awake_until_answered
	test_keep_awake_while_connected_holds_it_while_a_connection_is_open
	test_flows_json_lists_the_peer_direction_and_payload_of_each_flow
	test_status_says_what_it_ignored_and_that_nothing_counted)
for RT in podman docker; do
	"$ENV" image "$RTDIR" "$RT" redis >"$WORK/image.log" 2>&1 ||
		{ echo "FAIL ${RT}_image_redis: $(tail -n 3 "$WORK/image.log")"; ANY_FAILED=1; }
	start_dozed || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	FAILED=""
	peer_up || { echo "FAIL ${RT}_test_namespace: $FAILED"; ANY_FAILED=1; stop_dozed; continue; }
	for t in "${ALL[@]}"; do
		run_test "${RT}_" "$t"
	done
	stop_dozed
done
exit $ANY_FAILED
