#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: the runtime client's own HTTP code (http_unix) against libcurl's
# multi interface on libevent and libevent's evhttp client, on the same work
# (wake, inspect, event-stream reconnect, memory), one table per runtime
# (tests/bench/bench_http_client.c), then the code each client adds to the
# daemon's mapped libraries. Real runtimes from tests/runtime-env.sh, each
# with one busybox container of its own, removed at the end.
# BENCH_QUICK=1 (tests/bench/quick.sh): tiny sizes, nothing written to
# tests/bench/results. HTTP_WAKES, HTTP_INSPECTS, HTTP_EVENTS, HTTP_RSS_N:
# the full run's sizes (30, 200, 30, 1000).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
QUICK=""
[ "${BENCH_QUICK:-0}" = 0 ] || QUICK=1
ENV=tests/runtime-env.sh
BIN=$BUILD/tests/bench/bench_http_client
[ -x "$BIN" ] || { echo "bench_http_client: $BIN is missing (make $BIN)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dozed-benchhttp.XXXXXX)
RTDIR=$WORK/rt

cleanup() {
	"$ENV" down "$RTDIR" >/dev/null 2>&1 || echo "bench_http_client: runtime-env down failed; see $RTDIR" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT

"$ENV" up "$RTDIR" >"$WORK/env.log" 2>&1 || { tail -n 20 "$WORK/env.log"; exit 1; }
out=$WORK/http_client.txt
{
	echo
	echo "HTTP client comparison — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
		"$(nproc) cores; Docker $("$ENV" cli "$RTDIR" docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')," \
		"Podman $("$ENV" cli "$RTDIR" podman version --format '{{.Server.Version}}' 2>/dev/null || echo '?')," \
		"libcurl $(curl-config --version 2>/dev/null | cut -d' ' -f2 || echo '?')," \
		"libevent $(pkg-config --modversion libevent 2>/dev/null || echo '?')"
} | tee "$out"

# The shared libraries a file needs, resolved, one a line.
libs_of() {
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		xargs -r realpath | sort -u
}
sum_sizes() { # files on stdin: "file bytes text+data bytes"
	local files
	files=$(cat)
	[ -n "$files" ] || { echo "0 0"; return; }
	# shellcheck disable=SC2086
	echo "$(stat -L -c %s $files | awk '{ s += $1 } END { print s }')" \
		"$(size $files | awk 'NR > 1 { s += $1 + $2 } END { print s }')"
}
# What libcurl brings that dozed does not map: the memory child reports their RSS.
extra=""
if [ -x "$BUILD/dozed" ]; then
	curl_so=$(libs_of "$BIN" | grep '/libcurl\.so' | head -n 1)
	dozed_libs=$(libs_of "$BUILD/dozed")
	extra=$( (
		echo "$curl_so"
		libs_of "$curl_so"
	) | sort -u | comm -23 - <(echo "$dozed_libs"))
	# shellcheck disable=SC2086 # one library a word
	HTTP_EXTRA_LIBS=$(basename -a $extra | tr '\n' ' ')
	export HTTP_EXTRA_LIBS
fi

rc=0
for rt in docker podman; do
	name=bench-http-$rt
	"$ENV" create "$RTDIR" "$rt" "$name" - >/dev/null
	"$BIN" run "$rt" "$RTDIR/$rt.sock" "$name" | tee -a "$out" || rc=1
	"$ENV" rm "$RTDIR" "$rt" "$name"
done

{
	echo
	echo "Code each client adds to what the daemon maps ($BUILD/dozed's libraries)"
	printf '%-28s %-10s %12s %16s  %s\n' client libraries "file bytes" "text+data bytes" notes
	own=$(size "$BUILD/obj/daemon/runtime/http_unix.o" "$BUILD/obj/daemon/runtime/http_parse.o" 2>/dev/null |
		awk 'NR > 1 { s += $1 + $2 } END { print s }')
	printf '%-28s %-10s %12s %16s  %s\n' "today (http_unix)" 0 - "${own:-?}" \
		"http_unix.o + http_parse.o, in dozed itself"
	if [ -n "$extra" ]; then
		read -r bytes text < <(sum_sizes <<<"$extra")
		printf '%-28s %-10s %12s %16s  %s\n' "libcurl multi" "$(wc -l <<<"$extra")" "$bytes" "$text" \
			"$HTTP_EXTRA_LIBS"
		ev=$(grep -m 1 '/libevent-2\.1\.so' <<<"$dozed_libs" || true)
		printf '%-28s %-10s %12s %16s  %s\n' "evhttp (2.1, connect shim)" 0 - - \
			"${ev:+in $(basename "$ev"), which dozed maps already}"
	else
		echo "(no $BUILD/dozed: make $BUILD/dozed for the library sizes)"
	fi
} | tee -a "$out"

[ -n "$QUICK" ] || { mkdir -p tests/bench/results && cp "$out" tests/bench/results/http_client.txt; }
exit $rc
