#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Wake probes against real servers: PostgreSQL 15 and Redis 7 (with a data set
# that takes about a second to load) from tests/images/mkimage.sh, an HTTP app
# whose port is held by a placeholder listener before the real server answers,
# and a container whose HEALTHCHECK passes a second after it starts. Each
# client is started while its service is asleep and must get the server's
# real answer: no 57P03 "the database system is starting up", no -LOADING, no
# closed connection, no 404 of a page the app makes once ready. Podman and
# Docker, both real (tests/runtime-env.sh).
#
# Usage: [BUILD=build] tests/e2e/test_probe_servers.sh [TEST_NAME...]
# DOZED_IMAGE_CACHE=DIR keeps the image tars between runs.
set -uo pipefail
SUITE=probe-servers TABLE=dozedprobe ACT_PORT=15461
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

PG_BIN=/usr/lib/postgresql/15/bin
for tool in "$PG_BIN/psql:postgresql-client-15" "$PG_BIN/pgbench:postgresql-15" \
	"$(command -v redis-cli || echo redis-cli):redis-tools" \
	"$(command -v redis-benchmark || echo redis-benchmark):redis-tools"; do
	[ -x "${tool%%:*}" ] || { echo "FAIL $SUITE: missing ${tool%%:*} (Debian package ${tool##*:})"; exit 1; }
done
command -v socat >/dev/null || { echo "FAIL $SUITE: missing socat (Debian package socat)"; exit 1; }

PG_PORT=18461 RD_PORT=18462 WEB_PORT=18463 HC_PORT=18464 BAD_PORT=18465 LBL_PORT=18466
# Loading the Redis data set takes 1-4 s here, depending on the load.
WAKE_TIMEOUT_S=20
# The wrong-kind test runs with a dozed of its own that gives up sooner.
SHORT_WAKE_TIMEOUT_S=3
# Every client of a test gets at most this long: a wake plus slack.
CLIENT_S=$((WAKE_TIMEOUT_S * 2 + 10))

in_ns_bg() { # FILE PROGRAM ARGS...: in the runtime's namespace, stdout and stderr in FILE
	local out=$1
	shift
	nsenter --net="$(netns)" -- "$@" >"$out" 2>&1 &
	BG_PIDS+=($!)
	LAST_BG=$!
}

ready_probe() { last_event ready "$1" | jq -r '.probe // ""'; }
probe_used() { ctl status "$1" --json 2>/dev/null | jq -r '.service.probe_used // ""'; }
probe_set() { ctl status "$1" --json 2>/dev/null | jq -r '.service.probe // ""'; }

# --- PostgreSQL ------------------------------------------------------------------

PG="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres connect_timeout=$CLIENT_S"
pg_select1() { [ "$(in_ns "$PG_BIN/psql" "$PG" -Atc 'select 1' 2>/dev/null)" = 1 ]; }

test_postgres_psql_and_pgbench_started_while_asleep_succeed_with_no_failed_transaction() {
	local name=pg-$RT
	container_run "$name" dozed-test/postgres:latest "$PG_PORT" 5432 || return
	wait_for 30000 "PostgreSQL answering select 1 before dozed" pg_select1 || return
	in_ns "$PG_BIN/pgbench" -i -q -s 1 "$PG" >"$WORK/pgbench-init.log" 2>&1 ||
		{ fail "pgbench -i failed: $(tail -n 2 "$WORK/pgbench-init.log")"; return; }
	ctl enable "$name" --idle 2s >/dev/null || { fail "dozectl enable $name failed"; return; }
	asleep "$name" || return
	redirected "$PG_PORT" || { fail "port $PG_PORT is not redirected while asleep"; return; }

	local psql_pid bench_pid psql_rc bench_rc out
	in_ns_bg "$WORK/psql.out" "$PG_BIN/psql" "$PG" -Atc 'select 1'
	psql_pid=$LAST_BG
	in_ns_bg "$WORK/pgbench.out" "$PG_BIN/pgbench" -n -S -c 4 -j 2 -T 3 "$PG"
	bench_pid=$LAST_BG
	wait "$psql_pid"
	psql_rc=$?
	wait "$bench_pid"
	bench_rc=$?
	out=$(cat "$WORK/psql.out")
	if [ "$psql_rc" -ne 0 ] || [ "$out" != 1 ]; then
		fail "psql after the sleep: exit $psql_rc: $out"
	fi
	out=$(cat "$WORK/pgbench.out")
	[ "$bench_rc" -eq 0 ] || fail "pgbench -S after the sleep: exit $bench_rc: $(grep -m2 -i 'error\|fatal\|abort' <<<"$out")"
	grep -q '^number of failed transactions: 0 ' <<<"$out" ||
		fail "pgbench had failed transactions: $(grep -m1 'failed\|abort' <<<"$out")"
	local n
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	[ "${n:-0}" -gt 0 ] || fail "pgbench processed no transaction: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
	[[ $out != *"starting up"* ]] || fail "a client saw 57P03: $(grep -m1 'starting up' <<<"$out")"
	events_at_least wake "$name" 1 || fail "no wake event: the clients did not wake it"
	[[ $(ready_probe "$name") == *postgres* ]] ||
		fail "the wake's ready event names probe '$(ready_probe "$name")', expected postgres (auto, port 5432)"
	[[ $(probe_used "$name") == *postgres* ]] || fail "status shows probe '$(probe_used "$name")', expected postgres"
	echo "   pg: $n transactions; ready: $(last_event ready "$name" | jq -c '{start_ms, probe_ms, total_ms}')"
}

# --- Redis -------------------------------------------------------------------------

rd() { in_ns redis-cli -h 127.0.0.1 -p "$RD_PORT" "$@" 2>&1; }
rd_marker() { [ "$(rd get dozed:marker)" = built ]; }

# Seconds the last start took to load the data set, from the server's own log.
rd_load_s() {
	rt logs "$1" 2>&1 | sed -n 's/.*DB loaded from disk: \([0-9.]*\) seconds.*/\1/p' | tail -n 1
}

test_redis_get_and_benchmark_started_while_asleep_see_no_loading_and_keep_the_data() {
	local name=rd-$RT value
	container_run "$name" dozed-test/redis:latest "$RD_PORT" 6379 || return
	wait_for 30000 "Redis serving its data set before dozed" rd_marker || return
	value=kept-$RT-$(now_ms)
	[ "$(rd set dozed:before-sleep "$value")" = OK ] || { fail "SET before the sleep: $(rd set dozed:before-sleep "$value")"; return; }
	ctl enable "$name" --idle 2s >/dev/null || { fail "dozectl enable $name failed"; return; }
	asleep "$name" || return

	local get_pid bench_pid bench_rc out
	in_ns_bg "$WORK/redis-get.out" redis-cli -h 127.0.0.1 -p "$RD_PORT" get dozed:before-sleep
	get_pid=$LAST_BG
	in_ns_bg "$WORK/redis-bench.out" redis-benchmark -h 127.0.0.1 -p "$RD_PORT" -n 2000 -c 10 -t get -q
	bench_pid=$LAST_BG
	wait "$get_pid"
	wait "$bench_pid"
	bench_rc=$?
	out=$(cat "$WORK/redis-get.out")
	[ "$out" = "$value" ] || fail "GET after the sleep answered '$out', expected '$value' (SET before it)"
	out=$(tr '\r' '\n' <"$WORK/redis-bench.out")
	[ "$bench_rc" -eq 0 ] || fail "redis-benchmark: exit $bench_rc: $(grep -m1 -i 'error' <<<"$out")"
	[[ $out != *LOADING* ]] || fail "redis-benchmark saw LOADING: $(grep -m1 LOADING <<<"$out")"
	grep -q '^GET: .*requests per second' <<<"$out" || fail "redis-benchmark gave no GET figure: $(tail -n 2 <<<"$out")"
	# The test means something only if loading takes a while.
	local load
	load=$(rd_load_s "$name")
	if [ -z "$load" ]; then
		fail "the server's log does not say how long it loaded"
	elif ! awk -v s="$load" 'BEGIN { exit !(s >= 0.5) }'; then
		fail "the data set loaded in $load s: the test needs at least 0.5 s (REDIS_KEYS of tests/images/mkimage.sh)"
	fi
	events_at_least wake "$name" 1 || fail "no wake event"
	[[ $(ready_probe "$name") == *redis* ]] ||
		fail "the wake's ready event names probe '$(ready_probe "$name")', expected redis (auto, port 6379)"
	echo "   redis: loaded in ${load:-?} s; $(grep -m1 'requests per second' <<<"$out"); ready: $(last_event ready "$name" | jq -c '{start_ms, probe_ms, total_ms}')"
}

# The control, after the test above: with the tcp probe the first GET lands
# in the second of loading. If this fails, the test above proves nothing.
test_redis_with_the_tcp_probe_answers_loading() {
	local name=rd-$RT out
	rt inspect "$name" >/dev/null 2>&1 || { fail "$name is missing (made by the test above)"; return; }
	ctl enable "$name" --idle 1h --probe tcp >/dev/null || { fail "dozectl enable $name --probe tcp failed"; return; }
	asleep "$name" || return
	out=$(rd get dozed:marker)
	[[ $out == *LOADING* ]] || fail "with --probe tcp the first GET got '$out', not LOADING: the data set loads too fast"
	ctl enable "$name" --idle 1h --probe auto >/dev/null || fail "dozectl enable $name --probe auto failed"
}

# --- an HTTP app that binds before it serves ---------------------------------------

# For 1.5 s a placeholder (nc) accepts each connection and closes it; then the
# real httpd answers.
readonly LATE_HTTPD='trap "exit 0" TERM; nc -ll -p 80 -e true & n=$!; sleep 1.5; kill $n; wait $n; httpd -f -p 80 -h /www & wait'

web_get() { # output of one request, or curl's error
	in_ns curl -sS --max-time "$CLIENT_S" "http://127.0.0.1:$WEB_PORT/" 2>&1
}

# The control: with the tcp probe the placeholder's accept counts as ready and
# the client gets a closed connection. If this fails, the next test proves nothing.
test_tcp_probe_hands_the_client_to_the_placeholder_listener() {
	local name=late-$RT out
	CREATE_SH=$LATE_HTTPD "$ENV" create "$RTDIR" "$RT" "$name" "$WEB_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	ctl enable "$name" --idle 1h --probe tcp >/dev/null || { fail "dozectl enable $name --probe tcp failed"; return; }
	asleep "$name" || return
	out=$(web_get)
	[[ $out != *"dozed test"* ]] ||
		fail "with --probe tcp the client got the page: the placeholder phase did not show"
	[[ $out == *"Empty reply"* || $out == *reset* || $out == *"closed"* ]] ||
		fail "with --probe tcp the client got neither the page nor a closed connection: $out"
}

test_http_probe_is_not_fooled_by_a_listener_that_does_not_answer() {
	local name=late-$RT out
	rt inspect "$name" >/dev/null 2>&1 ||
		{ CREATE_SH=$LATE_HTTPD "$ENV" create "$RTDIR" "$RT" "$name" "$WEB_PORT" >/dev/null 2>"$WORK/create.log" ||
			{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }; }
	ctl enable "$name" --idle 1h --probe http >/dev/null || { fail "dozectl enable $name --probe http failed"; return; }
	[[ $(probe_set "$name") == http* ]] || fail "status --json gives probe '$(probe_set "$name")', expected http"
	ctl status "$name" 2>&1 | grep -q '^ *probe:.*http' || fail "dozectl status shows no http probe: $(ctl status "$name" 2>&1 | tr '\n' ' ')"
	asleep "$name" || return
	out=$(web_get)
	[[ $out == *"dozed test"* ]] || fail "with --probe http the client got: $out"
	local probe_ms
	probe_ms=$(last_event ready "$name" | jq -r '.probe_ms // 0')
	[ "$probe_ms" -ge 1000 ] ||
		fail "ready after $probe_ms ms of probing, inside the placeholder's 1.5 s"
	[[ $(ready_probe "$name") == http* ]] || fail "the ready event names probe '$(ready_probe "$name")'"
}

# --- HEALTHCHECK -------------------------------------------------------------------

# httpd serves at once; /www/ready, the health command's file and a page, is
# made a second later. A client asking for /ready gets 404 if woken too early.
readonly HEALTH_SH='trap "exit 0" TERM; rm -f /www/ready; httpd -f -p 80 -h /www & sleep 1; echo healthy >/www/ready; wait'

test_container_with_a_healthcheck_is_ready_only_once_healthy() {
	local name=health-$RT out
	container_run "$name" dozed-test/busybox:latest "$HC_PORT" 80 \
		--health-cmd 'test -e /www/ready' --health-interval 1s -- /bin/sh -c "$HEALTH_SH" || return
	# auto: the container has a health command.
	ctl enable "$name" --idle 1h >/dev/null || { fail "dozectl enable $name failed"; return; }
	asleep "$name" || return
	out=$(in_ns curl -sS --max-time "$CLIENT_S" "http://127.0.0.1:$HC_PORT/ready" 2>&1)
	[ "$out" = healthy ] || fail "GET /ready after the wake: $out"
	[[ $(ready_probe "$name") == *healthcheck* ]] ||
		fail "the ready event names probe '$(ready_probe "$name")', expected healthcheck (auto)"
	[[ $(probe_used "$name") == *healthcheck* ]] || fail "status shows probe '$(probe_used "$name")'"
	echo "   healthcheck: ready: $(last_event ready "$name" | jq -c '{start_ms, probe_ms, total_ms}')"
}

# --- a probe that cannot succeed, and bad values --------------------------------------

test_wrong_probe_kind_fails_the_wake_at_the_timeout_naming_the_last_answer() {
	local name=wrong-$RT t0 t1 out reason
	"$ENV" create "$RTDIR" "$RT" "$name" "$BAD_PORT" >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	ctl enable "$name" --idle 1h --probe redis >/dev/null || { fail "dozectl enable $name --probe redis failed"; return; }
	asleep "$name" || return
	t0=$(now_ms)
	out=$(in_ns curl -sS --max-time "$CLIENT_S" "http://127.0.0.1:$BAD_PORT/" 2>&1)
	t1=$(now_ms)
	[[ $out != *"dozed test"* ]] || fail "an httpd passed the redis probe"
	wait_for 5000 "wake_failed event" events_at_least wake_failed "$name" 1 || return
	[ $((t1 - t0)) -ge $((SHORT_WAKE_TIMEOUT_S * 1000 - 500)) ] ||
		fail "the client was let go after $((t1 - t0)) ms, before the --wake-timeout of ${SHORT_WAKE_TIMEOUT_S}s"
	reason=$(last_event wake_failed "$name" | jq -r '.reason // ""')
	[[ $reason == *redis* ]] || fail "wake_failed does not name the probe: $reason"
	# httpd answers PING with an HTTP error or a close: the reason says which.
	[[ $reason == *"redis:"* ]] || fail "wake_failed does not give the last answer: $reason"
	echo "   wake_failed after $((t1 - t0)) ms: $reason"
	dozed_alive || fail "dozed died"
}

test_unknown_probe_is_refused_naming_it_and_the_kinds() {
	local out rc
	out=$(ctl enable "nosuch-$RT" --probe gopher 2>&1)
	rc=$?
	[ $rc -eq 2 ] || fail "--probe gopher: exit $rc, expected 2 (usage)"
	[[ $out == *gopher* ]] || fail "the refusal does not name the value: $out"
	local k
	for k in auto tcp http postgres redis mysql healthcheck; do
		[[ $out == *"$k"* ]] || fail "the refusal does not list $k: $out"
	done
	# The control protocol refuses it too, for clients other than dozectl.
	out=$(echo '{"cmd":"enable","container":"nosuch","probe":"gopher"}' |
		socat -t 5 - "UNIX-CONNECT:$WORK/$RT/control.sock" 2>&1)
	[[ $out == *'"ok":false'* && $out == *gopher* ]] || fail "the control socket took probe gopher: $out"
}

test_probe_label_is_used_and_a_bad_one_is_named() {
	local name=label-$RT bad=badlabel-$RT mark
	"$ENV" create "$RTDIR" "$RT" "$name" "$LBL_PORT" dozed.enable=true dozed.idle=1h \
		dozed.probe=http:/index.html dozed.ignore=10.0.0.0/8,tcp/9090 \
		dozed.keep-awake=connections >/dev/null 2>"$WORK/create.log" ||
		{ fail "cannot create $name: $(tail -n 2 "$WORK/create.log")"; return; }
	wait_for 10000 "labelled $name enabled" state_is "$name" awake || return
	[ "$(probe_set "$name")" = "http:/index.html" ] ||
		fail "label dozed.probe=http:/index.html gives probe '$(probe_set "$name")'"
	local js
	js=$(ctl status "$name" --json | jq -c '.service | {ignore, ignore_from, keep_awake}')
	[ "$js" = '{"ignore":"10.0.0.0/8,tcp/9090","ignore_from":"service","keep_awake":"connections"}' ] ||
		fail "labels dozed.ignore and dozed.keep-awake give $js"
	mark=$(wc -l <"$(dozed_log)")
	"$ENV" create "$RTDIR" "$RT" "$bad" - dozed.enable=true dozed.probe=gopher \
		dozed.ignore=10.0.0.0/33 dozed.keep-awake=always >/dev/null 2>&1
	wait_for 10000 "a log line naming dozed.probe=gopher" \
		sh -c "tail -n +$((mark + 1)) '$(dozed_log)' | grep -q 'dozed.probe=gopher'"
	wait_for 10000 "a log line naming the bad rule and the forms" \
		sh -c "tail -n +$((mark + 1)) '$(dozed_log)' | grep 'dozed.ignore=10.0.0.0/33' | grep -q 'expected rules like'"
	wait_for 10000 "a log line naming dozed.keep-awake=always" \
		sh -c "tail -n +$((mark + 1)) '$(dozed_log)' | grep -q 'dozed.keep-awake=always'"
}

ONLY=("$@")
env_up
for RT in podman docker; do
	for kind in postgres redis; do
		"$ENV" image "$RTDIR" "$RT" "$kind" >"$WORK/image.log" 2>&1 ||
			{ echo "FAIL ${RT}_image_$kind: $(tail -n 3 "$WORK/image.log")"; ANY_FAILED=1; }
	done
	start_dozed --wake-timeout "${WAKE_TIMEOUT_S}s" || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	for t in test_unknown_probe_is_refused_naming_it_and_the_kinds \
		test_postgres_psql_and_pgbench_started_while_asleep_succeed_with_no_failed_transaction \
		test_redis_get_and_benchmark_started_while_asleep_see_no_loading_and_keep_the_data \
		test_redis_with_the_tcp_probe_answers_loading \
		test_tcp_probe_hands_the_client_to_the_placeholder_listener \
		test_http_probe_is_not_fooled_by_a_listener_that_does_not_answer \
		test_container_with_a_healthcheck_is_ready_only_once_healthy \
		test_probe_label_is_used_and_a_bad_one_is_named; do
		run_test "${RT}_" "$t"
	done
	stop_dozed
	if selected test_wrong_probe_kind_fails_the_wake_at_the_timeout_naming_the_last_answer; then
		start_dozed --wake-timeout "${SHORT_WAKE_TIMEOUT_S}s" || { echo "FAIL ${RT}_restart: $FAILED"; ANY_FAILED=1; continue; }
		run_test "${RT}_" test_wrong_probe_kind_fails_the_wake_at_the_timeout_naming_the_last_answer
		stop_dozed
	fi
done
exit $ANY_FAILED
