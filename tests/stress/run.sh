#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make stress: the long runs kept out of make check — the soak (100 clients
# across 100 sleep/wake cycles) and the crash test at 20 moments — with
# tests/run.sh's summary line.
#
# Usage: [BUILD=build] tests/stress/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export BUILD=${BUILD:-build}
export CRASH_MOMENTS=${CRASH_MOMENTS:-20}
exec tests/run.sh tests/stress/soak.sh tests/e2e/test_crash.sh
