#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# dozed's metrics with the real tools, against real Podman and Docker
# (tests/runtime-env.sh): promtool (Debian's prometheus package) checks a
# real dozed's /metrics and `dozectl metrics` with real services; a real
# Prometheus server (its own data directory and port, scraping every second)
# sees a sleep and two wakes, read back through its HTTP query API
# (increase(dozed_wakes_total[1m]), the wake histogram's count); and a wake
# during a storm of scrapes (rounds of 100 concurrent ones) succeeds while
# every scrape gets a whole, valid answer. dozed and Prometheus run in the
# runtime's network namespace; nothing listens on the host.
#
# Container names cannot hold a quote, a backslash or a newline (both
# runtimes allow [a-zA-Z0-9][a-zA-Z0-9_.-]*): the escaping of such label
# values is tested on the writer (tests/unit/test_metrics_text.c); here a
# name with a dot and an underscore stands for the odd ones.
#
# Usage: [BUILD=build] [RUNTIMES="podman docker"] tests/e2e/test_prometheus.sh [TEST_NAME...]
set -uo pipefail
SUITE=prometheus TABLE=dozedprom ACT_PORT=15481
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/prom_lib.sh
source tests/e2e/prom_lib.sh

for tool in "$PROMETHEUS:prometheus" "$PROMTOOL:prometheus"; do
	[ -x "${tool%%:*}" ] || { echo "FAIL $SUITE: missing ${tool%%:*} (Debian package ${tool##*:})"; exit 1; }
done
command -v ss >/dev/null || { echo "FAIL $SUITE: missing ss (Debian package iproute2)"; exit 1; }
"$DOZED" --help 2>&1 | grep -q -- --metrics-listen ||
	{ echo "FAIL $SUITE: $DOZED has no --metrics-listen (not in its --help)"; exit 1; }

WEB_PORT=18481 ODD_PORT=18482
METRICS_PORT="" PROM_PORT=""
LIB_EXTRA_CLEANUP=prom_stop

web() { echo "web-$RT"; }
odd() { echo "api.v2_$RT"; }
metrics_url() { echo "http://127.0.0.1:$METRICS_PORT/metrics"; }
# The page through a wake: curl's time to its first byte, in ms, on stdout.
wake_page() { # port file
	local t
	t=$(in_ns curl -sS --max-time 30 -o "$2" -w '%{time_starttransfer}' "http://127.0.0.1:$1/" 2>&1) || return 1
	grep -q 'dozed test' "$2" && awk -v t="$t" 'BEGIN { printf "%d\n", t * 1000 }'
}
# A series' value in one scrape's text (the first line that starts with it).
series_value() { # file series
	awk -v s="$2" 'index($0, s " ") == 1 { print $NF; exit }' "$1"
}

# --- the tests -------------------------------------------------------------------

test_promtool_accepts_the_metrics_of_a_real_dozed_with_real_services() {
	local f=$WORK/scrape-$RT
	make_service "$(web)" "$WEB_PORT" --idle 1h || return
	make_service "$(odd)" "$ODD_PORT" --idle 1h --probe http || return
	asleep "$(odd)" || return
	prom_scrape "$METRICS_PORT" "$f" || { fail "no 200 answer from $(metrics_url)"; return; }
	local why
	why=$(prom_check_text "$f") || fail "/metrics: $why"
	local s
	for s in "dozed_service_state{service=\"$(web)\",state=\"awake\"}" \
		"dozed_service_state{service=\"$(odd)\",state=\"asleep\"}" \
		"dozed_service_state{service=\"$(odd)\",state=\"awake\"}" \
		"dozed_sleeps_total{service=\"$(odd)\",trigger=\"command\"}" "dozed_services"; do
		[ -n "$(series_value "$f" "$s")" ] || fail "no $s in /metrics"
	done
	[ "$(series_value "$f" "dozed_service_state{service=\"$(odd)\",state=\"asleep\"}")" = 1 ] ||
		fail "$(odd) asleep is not 1 in dozed_service_state"
	[ "$(series_value "$f" "dozed_service_state{service=\"$(odd)\",state=\"awake\"}")" = 0 ] ||
		fail "$(odd) awake is not 0 in dozed_service_state"
	[ "$(series_value "$f" dozed_services)" = 2 ] || fail "dozed_services is $(series_value "$f" dozed_services), expected 2"
	grep -q '^dozed_build_info{' "$f" || fail "no dozed_build_info"
	echo "   $RT: $(grep -c '^dozed_' "$f") samples, $(grep -c '^# TYPE' "$f") families, $(wc -c <"$f") bytes"
}

test_dozectl_metrics_passes_promtool() {
	local f=$WORK/ctl-metrics-$RT
	if ! ctl metrics >"$f" 2>"$f.err"; then
		fail "dozectl metrics failed: $(head -n 2 "$f.err" | tr '\n' ' ')"
		return
	fi
	local why
	why=$(prom_check_text "$f") || fail "dozectl metrics: $why"
	grep -q "^dozed_service_state{service=\"$(web)\",state=\"awake\"} 1" "$f" ||
		fail "dozectl metrics lacks $(web) awake 1"
}

test_prometheus_reads_a_sleep_and_the_wakes_back() {
	PROM_PORT=$(prom_free_port 19090) || { fail "no free port for Prometheus"; return; }
	prom_start "$METRICS_PORT" "$PROM_PORT"
	wait_for 30000 "Prometheus ready on 127.0.0.1:$PROM_PORT" prom_ready ||
		{ fail "see $(tail -n 3 "$(prom_dir)/prometheus.log" | tr '\n' ' ')"; return; }
	wait_for 15000 "Prometheus scraping dozed (up == 1)" prom_above 'up{job="dozed"}' 0 || return
	local name f ms
	name=$(web)
	f=$WORK/page-$RT
	# Two sleeps and wakes: a counter whose series starts at the first wake
	# has its first increase at the second.
	local cycle
	for cycle in 1 2; do
		asleep "$name" || return
		wait_for 15000 "Prometheus seeing $name asleep" \
			prom_above "dozed_service_state{service=\"$name\",state=\"asleep\"}" 0 || return
		ms=$(wake_page "$WEB_PORT" "$f") || { fail "wake $cycle: curl did not get the page: $(head -c 200 "$f")"; return; }
		echo "   $RT: wake $cycle: first byte after $ms ms"
	done
	wait_for 20000 "increase(dozed_wakes_total{service=\"$name\"}[1m]) > 0 in Prometheus" \
		prom_above "sum(increase(dozed_wakes_total{service=\"$name\"}[1m]))" 0 || return
	local scrape=$WORK/after-wakes-$RT hist=dozed_wake_seconds_count sel="{service=\"$name\"}"
	prom_scrape "$METRICS_PORT" "$scrape" || { fail "no 200 answer from $(metrics_url)"; return; }
	if ! grep -q "^dozed_wake_seconds_count{" "$scrape"; then
		hist=dozed_wake_phase_seconds_count sel="{service=\"$name\",phase=\"ready\"}"
		echo "   note: dozed exports no dozed_wake_seconds (connect → first byte): reading $hist instead"
	fi
	wait_for 20000 "$hist$sel >= 2 in Prometheus" prom_above "$hist$sel" 1 || return
	echo "   $RT: increase(dozed_wakes_total[1m]) = $(prom_query "sum(increase(dozed_wakes_total{service=\"$name\"}[1m]))"), $hist = $(prom_query "$hist$sel"), sleeps counted $(prom_query "sum(dozed_sleeps_total{service=\"$name\"})")"
	prom_alive || fail "Prometheus exited: $(tail -n 3 "$(prom_dir)/prometheus.log" | tr '\n' ' ')"
}

test_a_wake_during_a_scrape_storm_succeeds_and_every_scrape_is_whole() {
	local name dir stop ms storm_pid rounds
	name=$(web)
	dir=$WORK/storm-$RT
	stop=$dir.stop
	asleep "$name" || return
	# A baseline wake, without the storm, for the figure only.
	local base
	base=$(wake_page "$WEB_PORT" "$WORK/page-base-$RT") || { fail "the baseline wake got no page"; return; }
	asleep "$name" || return
	local storm_t0
	storm_t0=$(date +%s.%N)
	lib_bg prom_storm "$(metrics_url)" "$dir" 2 "$stop"
	storm_pid=$LAST_BG
	wait_for 10000 "the storm's first round" test -e "$dir/started" || return
	ms=$(wake_page "$WEB_PORT" "$WORK/page-storm-$RT") || fail "the wake during the storm: curl did not get the page: $(head -c 200 "$WORK/page-storm-$RT")"
	touch "$stop"
	wait "$storm_pid"
	rounds=$(cat "$dir/rounds" 2>/dev/null)
	events_at_least ready "$name" 1 || fail "no ready event of $name"
	[ "$(state_of "$name")" = awake ] || fail "$name is $(state_of "$name") after the wake, expected awake"
	local why
	why=$(prom_storm_check "$dir") || fail "the storm: $why"
	dozed_alive || fail "dozed exited"
	# Prometheus' own scrapes meanwhile, as a figure: its 1 s timeout is
	# timing, which a loaded machine can miss.
	if prom_alive; then
		local down t
		down=""
		for t in $(prom_times_of 'up{job="dozed"}[2m]' 0); do
			down+=" $(awk -v t="$t" -v s="$storm_t0" 'BEGIN { printf "%+.1f", t - s }')"
		done
		echo "   $RT: Prometheus' scrapes of dozed over the last 2 min: $(prom_query 'sum_over_time(up{job="dozed"}[2m])') of $(prom_query 'count_over_time(up{job="dozed"}[2m])') up${down:+ (down at${down} s from the start of the storm)}, the longest took $(prom_query 'max_over_time(scrape_duration_seconds{job="dozed"}[2m])') s"
	fi
	echo "   $RT: first byte ${base:-?} ms alone, ${ms:-?} ms during ${rounds:-?} rounds of ${STORM_SIZE:-100} concurrent scrapes (a figure, not judged; tests/bench/bench_scrape.sh measures it)"
}

env_up
for RT in ${RUNTIMES:-podman docker}; do
	METRICS_PORT=$(in_ns true && prom_free_port 19321) || { echo "FAIL ${RT}_port: no free port"; ANY_FAILED=1; continue; }
	start_dozed --metrics-listen "127.0.0.1:$METRICS_PORT" || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	for t in test_promtool_accepts_the_metrics_of_a_real_dozed_with_real_services \
		test_dozectl_metrics_passes_promtool \
		test_prometheus_reads_a_sleep_and_the_wakes_back \
		test_a_wake_during_a_scrape_storm_succeeds_and_every_scrape_is_whole; do
		run_test "${RT}_" "$t"
	done
	prom_stop
	stop_dozed
done
exit $ANY_FAILED
