#!/usr/bin/env bash
# make bench: every benchmark in one run, peers side by side. Results are also
# written under tests/bench/results/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}

# The peers the relay is compared with, from Debian's packages.
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v socat >/dev/null || need+=(socat)
[ -x /lib/systemd/systemd-socket-proxyd ] || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}"
	tests/apt-install.sh "${need[@]}"
fi

mkdir -p tests/bench/results
echo "dozed benchmarks — $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, Linux $(uname -r)"
"$BUILD"/tests/bench/bench_nft
"$BUILD"/tests/bench/bench_relay
"$BUILD"/tests/bench/bench_egress
"$BUILD"/tests/bench/bench_egress_wake
# The scale tables, (a) then (b): the second runs even when the first failed,
# as when they were one benchmark.
scale=0
"$BUILD"/tests/bench/bench_held || scale=$?
"$BUILD"/tests/bench/bench_fleet || scale=$?
[ "$scale" -eq 0 ] || exit "$scale"
BUILD=$BUILD tests/bench/bench_wake.sh
BUILD=$BUILD tests/bench/bench_scrape.sh
BUILD=$BUILD tests/bench/bench_http_client.sh
