#!/usr/bin/env bash
# Runs every test program given on the command line, shows their output, and
# ends with the summary line "N passed, N failed[, N skipped]".
# Exits non-zero when any test failed or a program died without reporting.
set -uo pipefail

passed=0 failed=0 skipped=0 broken=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for prog in "$@"; do
	echo "== $prog"
	"$prog" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^SKIP ' "$log")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $prog: exited with status $rc without reporting a failed test"
		broken=$((broken + 1))
	fi
done

failed=$((failed + broken))
if [ "$skipped" -gt 0 ]; then
	echo "note: skipped tests cannot run on this machine; see the SKIP lines above"
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
