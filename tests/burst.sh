#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/burst.sh HOST PORT N TIMEOUT_S
# Opens N connections to HOST:PORT at once (to a sleeping service, the
# activator holds them all), then sends each "GET /" and reads each answer.
# Prints one line per client: "ok" (the test page came), "other-answer",
# "no-answer-within-Ns" or "read-failed: why". TIMEOUT_S bounds the whole read.
set -uo pipefail
host=$1 port=$2 n=$3 timeout_s=$4
fds=()
for _ in $(seq "$n"); do
	if exec {fd}<>"/dev/tcp/$host/$port"; then fds+=("$fd"); else echo connect-failed; fi
done
for fd in "${fds[@]}"; do printf 'GET / HTTP/1.0\r\n\r\n' >&"$fd" || echo send-failed; done
deadline=$((SECONDS + timeout_s))
for fd in "${fds[@]}"; do
	left=$((deadline - SECONDS))
	[ $left -ge 1 ] || left=1
	page=$(timeout "$left" cat <&"$fd" 2>&1)
	case $? in
	0) if [[ $page == *"dozed test"* ]]; then echo ok; else echo other-answer; fi ;;
	124) echo "no-answer-within-${timeout_s}s" ;;
	*) echo "read-failed: ${page##*: }" ;;
	esac
	exec {fd}<&-
done
