#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make demo: a busybox web container on Podman goes to sleep after 5 s
# without traffic and wakes on the next request, narrated. Everything runs in
# private namespaces made by tests/runtime-env.sh and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ENV=tests/runtime-env.sh
RT=podman
NAME=demo-web
PORT=18200

WORK=$(mktemp -d /tmp/dozed-demo.XXXXXX)
RTDIR=$WORK/rt
DOZED_PID="" FOLLOW_PID=""

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
	bold "Cleaning up"
	[ -n "$FOLLOW_PID" ] && kill "$FOLLOW_PID" 2>/dev/null
	[ -n "$DOZED_PID" ] && kill "$DOZED_PID" 2>/dev/null && wait "$DOZED_PID" 2>/dev/null
	"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "runtime-env down failed; see $RTDIR"
	rm -rf "$WORK"
	echo "done."
}
trap cleanup EXIT

in_ns() { nsenter --net="$RTDIR/ns/$RT.net" -- "$@"; }
ctl() { "$BUILD/dozectl" --control "$WORK/control.sock" "$@"; }
container_state() { "$ENV" cli "$RTDIR" "$RT" inspect -f '{{.State.Status}}' "$NAME"; }
fetch() {
	in_ns curl -sS --max-time 20 -o "$WORK/page" -w '%{time_total}' "http://127.0.0.1:$PORT/"
}

bold "Starting a private Podman (podman system service) with a busybox image"
"$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1 || { tail -n 20 "$WORK/env.log"; exit 1; }
"$ENV" create "$RTDIR" "$RT" "$NAME" "$PORT" >/dev/null
echo "container $NAME publishes 127.0.0.1:$PORT -> 80 (busybox httpd)"

bold "Starting dozed in Podman's network namespace"
nsenter --net="$RTDIR/ns/$RT.net" -- "$BUILD/dozed" --runtime-socket "$RTDIR/$RT.sock" --control "$WORK/control.sock" \
	--state-dir "$WORK/state" --nft-table dozeddemo >"$WORK/dozed.log" 2>&1 &
DOZED_PID=$!
for _ in $(seq 100); do ctl list >/dev/null 2>&1 && break; sleep 0.1; done
ctl events --follow | sed -u 's/^/   event: /' &
FOLLOW_PID=$!

bold "dozectl enable $NAME --idle 5s"
ctl enable "$NAME" --idle 5s
ctl list

bold "The container serves while awake"
t=$(fetch)
echo "GET / -> $(cat "$WORK/page")  (${t}s)"

bold "Nobody calls for 5 s: dozed stops it"
for _ in $(seq 150); do [ "$(container_state)" = exited ] && break; sleep 0.1; done
echo "the runtime says: $(container_state)"
ctl list

bold "A request arrives: dozed holds it, starts the container, relays it"
t=$(fetch)
echo "GET / -> $(cat "$WORK/page")  (${t}s, cold)"
echo "the runtime says: $(container_state)"
sleep 0.3
ctl status "$NAME"

bold "And again, awake"
t=$(fetch)
echo "GET / -> $(cat "$WORK/page")  (${t}s, warm)"
