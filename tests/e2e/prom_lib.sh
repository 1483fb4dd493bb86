# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# dozed's /metrics and a real Prometheus, for tests/e2e/test_prometheus.sh and
# tests/bench/bench_scrape.sh: sourced after tests/e2e/lib.sh (in_ns, lib_bg_to,
# WORK). Prometheus runs in the runtime's network namespace, as dozed does,
# with its own data directory and port, and is ended by its recorded PID.
# shellcheck disable=SC2034 # PROM_PID and the like are for the sourcing script

PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
PROM_PID=""

# A TCP port nobody listens on in the runtime's namespace, from FIRST up.
prom_free_port() { # first
	local p
	for ((p = $1; p < $1 + 200; p++)); do
		in_ns ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

# One scrape of dozed's listener into FILE; 0 when it was a whole 200 answer.
prom_scrape() { # port file
	[ "$(in_ns curl -sS --max-time 10 -o "$2" -w '%{http_code}' "http://127.0.0.1:$1/metrics" 2>/dev/null)" = 200 ]
}

# The text ends with a newline and promtool takes it; else why, on stdout.
prom_check_text() { # file
	[ -s "$1" ] || { echo "empty"; return 1; }
	[ "$(tail -c 1 "$1" | od -An -tx1 | tr -d ' ')" = 0a ] ||
		{ echo "does not end with a newline ($(wc -c <"$1") bytes)"; return 1; }
	local out
	out=$("$PROMTOOL" check metrics <"$1" 2>&1) || { echo "promtool: $(head -n 3 <<<"$out" | tr '\n' ' ')"; return 1; }
}

# prom_dir: a Prometheus of its own for each runtime (a data directory of
# another run would hold that one's series, under the same job and target).
prom_dir() { echo "$WORK/prometheus-$RT"; }

# prom_start METRICS_PORT PROM_PORT: a Prometheus scraping dozed every second.
prom_start() {
	local dir
	dir=$(prom_dir)
	rm -rf "$dir"
	mkdir -p "$dir/data"
	cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dozed
    static_configs:
      - targets: ["127.0.0.1:$1"]
EOF
	# nsenter execs prometheus: LAST_BG is the server itself.
	# Its log is on stderr: kept beside its stdout.
	lib_bg_to "$dir/prometheus.log" env PROM_LOG="$dir/prometheus.log" bash -c 'exec "$@" 2>>"$PROM_LOG"' prom nsenter --net="$(netns)" -- "$PROMETHEUS" \
		--config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
		--web.listen-address="127.0.0.1:$2" --log.level=warn
	PROM_PID=$LAST_BG
	PROM_PORT=$2
}

prom_stop() {
	[ -n "$PROM_PID" ] || return 0
	lib_end "$PROM_PID"
	PROM_PID=""
}

prom_alive() { [ -n "$PROM_PID" ] && kill -0 "$PROM_PID" 2>/dev/null; }
prom_ready() { [ "$(in_ns curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PROM_PORT/-/ready" 2>/dev/null)" = 200 ]; }

# The first result's value of an instant query, or nothing.
prom_query() { # expr
	in_ns curl -sS --max-time 5 -G --data-urlencode "query=$1" \
		"http://127.0.0.1:$PROM_PORT/api/v1/query" 2>/dev/null |
		jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}

# The times (epoch seconds) of the samples of a range query whose value is VALUE.
prom_times_of() { # range-expr value
	in_ns curl -sS --max-time 5 -G --data-urlencode "query=$1" \
		"http://127.0.0.1:$PROM_PORT/api/v1/query" 2>/dev/null |
		jq -r --arg v "$2" '.data.result[0].values[]? | select(.[1] == $v) | .[0]' 2>/dev/null
}

# The query's value is above THRESHOLD.
prom_above() { # expr threshold
	local v
	v=$(prom_query "$1")
	[ -n "$v" ] && awk -v v="$v" -v t="$2" 'BEGIN { exit !(v + 0 > t + 0) }'
}

# prom_storm URL DIR MIN_ROUNDS STOPFILE: rounds of 100 concurrent scrapes
# (one curl, --parallel), each answer in DIR/ROUND/N and what curl saw of
# each ("CODE BYTES EXIT") in DIR/ROUND.codes, until STOPFILE exists and at
# least MIN_ROUNDS ran (at most 200 rounds). DIR/started marks the first.
prom_storm() {
	local url=$1 dir=$2 min=$3 stop=$4 r=0 i
	local -a args
	mkdir -p "$dir"
	while [ $r -lt "$min" ] || [ ! -e "$stop" ]; do
		r=$((r + 1))
		mkdir -p "$dir/$r"
		args=()
		for ((i = 1; i <= ${STORM_SIZE:-100}; i++)); do
			args+=(-o "$dir/$r/$i" "$url")
		done
		[ $r -eq 1 ] && touch "$dir/started"
		in_ns curl -sS --no-progress-meter --parallel --parallel-immediate --parallel-max "${STORM_SIZE:-100}" \
			--max-time 30 -w '%{http_code} %{size_download} %{exitcode}\n' "${args[@]}" \
			>"$dir/$r.codes" 2>"$dir/$r.err"
		[ $r -lt 200 ] || break
	done
	echo "$r" >"$dir/rounds"
}

# Every answer of a storm: 200, whole (curl's exit 0), newline-ended and
# promtool-valid (two promtools at a time). Prints what is wrong, if anything.
prom_storm_check() { # dir
	local dir=$1 rounds bad
	rounds=$(cat "$dir/rounds" 2>/dev/null) || { echo "the storm did not finish"; return 1; }
	bad=$(cat "$dir"/*.codes | grep -cv '^200 [1-9][0-9]* 0$')
	[ "$bad" -eq 0 ] || { echo "$bad of the scrapes were not whole 200 answers, e.g. '$(cat "$dir"/*.codes | grep -v '^200 [1-9][0-9]* 0$' | head -n 1)' ($(head -n 1 "$dir"/*.err | tr '\n' ' '))"; return 1; }
	local n
	n=$(cat "$dir"/*.codes | wc -l)
	[ "$n" -eq $((rounds * ${STORM_SIZE:-100})) ] || { echo "curl reported $n scrapes of $((rounds * ${STORM_SIZE:-100}))"; return 1; }
	bad=$(find "$dir" -mindepth 2 -type f | sort |
		xargs -P 2 -n 1 sh -c 'w=$(tail -c 1 "$1" | od -An -tx1 | tr -d " "); [ "$w" = 0a ] || { echo "$1: no final newline"; exit 0; }; "$0" check metrics <"$1" >/dev/null 2>&1 || echo "$1: promtool refuses it"' "$PROMTOOL")
	[ -z "$bad" ] || { echo "$(wc -l <<<"$bad") bad answers: $(head -n 2 <<<"$bad" | tr '\n' ' ')"; return 1; }
}
