#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Compose files, for real: tests/e2e/compose/compose.yml (an HTTP service and
# Redis, each with dozed.enable=true and its own dozed.idle and dozed.probe)
# brought up by Debian's docker-compose (v1) against the test dockerd and by
# podman-compose against the test Podman (tests/runtime-env.sh). dozed finds
# both from their labels alone, one falls asleep when idle and the other on
# `dozectl sleep`, real clients (curl, redis-cli) wake them and get their
# answers, and `down` makes dozed drop both with a "removed" event.
#
# docker-compose reaches the test dockerd through DOCKER_HOST; podman-compose
# runs the `podman` binary, so it is given a wrapper (--podman-path) that
# runs podman as a client of the test Podman's service (--url), and the
# cgroup parent every test container of that Podman gets (--podman-run-args).
#
# Usage: [BUILD=build] tests/e2e/test_compose.sh [TEST_NAME...]
# DOZED_IMAGE_CACHE=DIR keeps the image tars between runs.
set -uo pipefail
SUITE=compose TABLE=dozedcompose ACT_PORT=15471
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

for tool in docker-compose:docker-compose podman-compose:podman-compose redis-cli:redis-tools; do
	command -v "${tool%%:*}" >/dev/null ||
		{ echo "FAIL $SUITE: missing ${tool%%:*} (Debian package ${tool##*:})"; exit 1; }
done

COMPOSE_FILE=tests/e2e/compose/compose.yml
PROJECT=dozedcompose
WEB_PORT=18471 CACHE_PORT=18472
# The web service's idle time, short enough to watch it fall asleep.
export WEB_IDLE=3s
# Loading the Redis data set takes 1-4 s here, depending on the load.
WAKE_TIMEOUT_S=20
CLIENT_S=$((WAKE_TIMEOUT_S * 2 + 10))

# compose ARGS...: the runtime's compose tool on our file and project.
compose() {
	case $RT in
	docker)
		DOCKER_HOST="unix://$RTDIR/docker.sock" DOCKER_CONFIG="$RTDIR/docker-cli" \
			docker-compose --ansi never -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
		;;
	podman)
		podman-compose --podman-path "$WORK/bin/podman" \
			--podman-run-args "--cgroup-parent /$(basename "$(cat "$RTDIR/cgroup")")/podman" \
			-p "$PROJECT" -f "$COMPOSE_FILE" "$@"
		;;
	esac
}

# podman as a client of the test Podman, for podman-compose.
podman_wrapper() {
	mkdir -p "$WORK/bin"
	cat >"$WORK/bin/podman" <<EOF
#!/bin/sh
CONTAINERS_CONF='$RTDIR/podman/containers.conf' exec $(command -v podman) --url 'unix://$RTDIR/podman.sock' "\$@"
EOF
	chmod +x "$WORK/bin/podman"
}

# The name the compose tool gave a service's container (by compose's own
# labels, which both tools set), or nothing.
cname() { # service
	rt ps -a --filter "label=com.docker.compose.project=$PROJECT" \
		--filter "label=com.docker.compose.service=$1" --format '{{.Names}}' 2>/dev/null | head -n 1
}
WEB="" CACHE=""

idle_ms_of() { ctl status "$1" --json 2>/dev/null | jq -r '.service.idle_timeout_ms // ""'; }
probe_set() { ctl status "$1" --json 2>/dev/null | jq -r '.service.probe // ""'; }
listed() { ctl list --json 2>/dev/null | jq -e --arg n "$1" '[.services[]? // .[]? | .name] | index($n) != null' >/dev/null; }
not_listed() { ! listed "$1"; }
last_trigger() { last_event "$1" "$2" | jq -r '.trigger // ""'; }
rd() { in_ns timeout "$CLIENT_S" redis-cli -h 127.0.0.1 -p "$CACHE_PORT" "$@" 2>&1; }
rd_pong() { [ "$(rd ping)" = PONG ]; }
page_got() { in_ns curl -sS --max-time "$CLIENT_S" "http://127.0.0.1:$WEB_PORT/" 2>&1; }

# --- the tests -------------------------------------------------------------------

test_up_enables_both_services_from_their_labels() {
	if ! compose up -d >"$WORK/up-$RT.log" 2>&1; then
		fail "$RT compose up -d failed: $(tail -n 3 "$WORK/up-$RT.log" | tr '\n' ' ')"
		return
	fi
	WEB=$(cname web) CACHE=$(cname cache)
	[ -n "$WEB" ] && [ -n "$CACHE" ] ||
		{ fail "no containers with the compose labels of $PROJECT (web '$WEB', cache '$CACHE')"; return; }
	wait_for 15000 "enabled event of $WEB" events_at_least enabled "$WEB" 1
	wait_for 15000 "enabled event of $CACHE" events_at_least enabled "$CACHE" 1
	[ -z "$FAILED" ] || return
	listed "$WEB" || fail "dozectl list lacks $WEB"
	listed "$CACHE" || fail "dozectl list lacks $CACHE"
	# The labels' own settings, per service.
	[[ $(probe_set "$WEB") == http* ]] || fail "$WEB: probe '$(probe_set "$WEB")', expected http (dozed.probe)"
	[ "$(probe_set "$CACHE")" = redis ] || fail "$CACHE: probe '$(probe_set "$CACHE")', expected redis (dozed.probe)"
	[ "$(idle_ms_of "$WEB")" = 3000 ] || fail "$WEB: idle $(idle_ms_of "$WEB") ms, expected 3000 (dozed.idle=$WEB_IDLE)"
	[ "$(idle_ms_of "$CACHE")" = 1800000 ] || fail "$CACHE: idle $(idle_ms_of "$CACHE") ms, expected 1800000 (dozed.idle=30m)"
	wait_for 30000 "Redis answering PING before it sleeps" rd_pong
}

test_web_falls_asleep_when_idle_and_cache_on_dozectl_sleep() {
	[ -n "$WEB" ] || { fail "no web container (the up test failed)"; return; }
	wait_for 20000 "$WEB asleep after its dozed.idle=$WEB_IDLE" state_is "$WEB" asleep &&
		wait_for 10000 "$WEB stopped" stopped "$WEB"
	[ "$(last_trigger sleep "$WEB")" = idle ] || fail "$WEB's sleep trigger is '$(last_trigger sleep "$WEB")', expected idle"
	[ "$(state_of "$CACHE")" = awake ] || fail "$CACHE is $(state_of "$CACHE") before its sleep, expected awake (dozed.idle=30m)"
	asleep "$CACHE" || return
	redirected "$WEB_PORT" || fail "port $WEB_PORT is not redirected while $WEB sleeps"
	redirected "$CACHE_PORT" || fail "port $CACHE_PORT is not redirected while $CACHE sleeps"
}

test_real_clients_wake_both_and_get_their_answers() {
	[ -n "$WEB" ] || { fail "no web container (the up test failed)"; return; }
	local out
	out=$(page_got)
	[[ $out == *"dozed test"* ]] || fail "curl of the sleeping $WEB: '$out'"
	# At once: its idle time is short, and the Redis wake below takes seconds.
	running "$WEB" || fail "$WEB is not running after its wake"
	out=$(rd set dozed:compose "$RT")
	[ "$out" = OK ] || fail "redis-cli set on the sleeping $CACHE: '$out'"
	out=$(rd get dozed:compose)
	[ "$out" = "$RT" ] || fail "redis-cli get: '$out', expected $RT"
	[ "$(last_trigger wake "$WEB")" = connection ] || fail "$WEB's wake trigger is '$(last_trigger wake "$WEB")', expected connection"
	[ "$(last_trigger wake "$CACHE")" = connection ] || fail "$CACHE's wake trigger is '$(last_trigger wake "$CACHE")', expected connection"
	running "$CACHE" || fail "$CACHE is not running after its wake"
	echo "   $RT: ready: $WEB $(last_event ready "$WEB" | jq -c '{probe, total_ms}'), $CACHE $(last_event ready "$CACHE" | jq -c '{probe, total_ms}')"
}

test_down_makes_dozed_drop_both_with_a_removed_event() {
	[ -n "$WEB" ] || { fail "no web container (the up test failed)"; return; }
	# The cache asleep at the down (the web one, idle 3 s, may be either).
	asleep "$CACHE" || return
	if ! compose down >"$WORK/down-$RT.log" 2>&1; then
		fail "$RT compose down failed: $(tail -n 3 "$WORK/down-$RT.log" | tr '\n' ' ')"
		return
	fi
	wait_for 15000 "removed event of $WEB" events_at_least removed "$WEB" 1
	wait_for 15000 "removed event of $CACHE" events_at_least removed "$CACHE" 1
	wait_for 5000 "$WEB gone from dozectl list" not_listed "$WEB"
	wait_for 5000 "$CACHE gone from dozectl list" not_listed "$CACHE"
	wait_for 5000 "port $CACHE_PORT's redirect gone" not_redirected "$CACHE_PORT"
	not_redirected "$WEB_PORT" || fail "port $WEB_PORT is still redirected"
	dozed_alive || fail "dozed exited"
}

env_up
podman_wrapper
for RT in docker podman; do
	WEB="" CACHE=""
	"$ENV" image "$RTDIR" "$RT" redis >"$WORK/image.log" 2>&1 ||
		{ echo "FAIL ${RT}_image_redis: $(tail -n 3 "$WORK/image.log")"; ANY_FAILED=1; continue; }
	start_dozed --wake-timeout "${WAKE_TIMEOUT_S}s" || { echo "FAIL ${RT}_start: $FAILED"; ANY_FAILED=1; continue; }
	for t in test_up_enables_both_services_from_their_labels \
		test_web_falls_asleep_when_idle_and_cache_on_dozectl_sleep \
		test_real_clients_wake_both_and_get_their_answers \
		test_down_makes_dozed_drop_both_with_a_removed_event; do
		run_test "${RT}_" "$t"
	done
	compose down >/dev/null 2>&1
	stop_dozed
done
exit $ANY_FAILED
