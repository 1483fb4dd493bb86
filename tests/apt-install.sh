#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs Debian packages without starting their services: docker.io,
# containerd and haproxy would otherwise start on the host, with their own
# bridges and firewall rules. The tests start their own, in namespaces.
set -euo pipefail
[ $# -gt 0 ] || exit 0
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# dozed: no service starts during this install\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
fi
trap '[ $made_policy -eq 0 ] || rm -f "$policy"' EXIT
# Another apt (an unattended upgrade, a second make) may hold the lock: wait for it.
apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@"
