// SPDX-License-Identifier: MIT
/* The text of dozed --help, its defaults printed from settings.h so that text
 * and value cannot drift apart. */
#include <stdio.h>

#include "dozed/config.h"
#include "dozed/duration.h"
#include "dozed/flow_rule.h"
#include "dozed/settings.h"

#define USAGE_MAX 4096

const char *dozed_config_usage(void)
{
	static char text[USAGE_MAX];
	if (text[0])
		return text;

	char idle[DURATION_FORMAT_MAX], probe[DURATION_FORMAT_MAX], wake[DURATION_FORMAT_MAX];
	char silent[DURATION_FORMAT_MAX], control_idle[DURATION_FORMAT_MAX];
	char unanswered[DURATION_FORMAT_MAX];
	duration_format(DOZED_IDLE_DEFAULT_US, idle, sizeof(idle));
	duration_format(DOZED_PROBE_INTERVAL_DEFAULT_US, probe, sizeof(probe));
	duration_format(DOZED_WAKE_TIMEOUT_DEFAULT_US, wake, sizeof(wake));
	duration_format(DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US, silent, sizeof(silent));
	duration_format(DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US, control_idle, sizeof(control_idle));
	duration_format(DOZED_UNANSWERED_TIMEOUT_DEFAULT_US, unanswered, sizeof(unanswered));

	snprintf(text, sizeof(text),
		 "Usage: dozed [OPTION...]\n"
		 "\n"
		 "Stops idle containers and starts them again on their first TCP connection.\n"
		 "Options may also be set in the config file as \"key = value\" lines, with the\n"
		 "same keys without the leading \"--\"; the command line wins.\n"
		 "\n"
		 "  --runtime-socket PATH   Docker or Podman API socket (default: the path of\n"
		 "                          DOCKER_HOST=unix://PATH, else %s)\n"
		 "  --control PATH          control socket for dozectl\n"
		 "                          (default %s)\n"
		 "  --control-group NAME    group that may also use the control socket\n"
		 "                          (default: root only)\n"
		 "  --activator-port PORT   where redirected connections arrive (default %u)\n"
		 "  --nft-table NAME        nftables table, inet family (default %s)\n"
		 "  --mark VALUE            packet mark of dozed's own connections, decimal or\n"
		 "                          0x hex (default %#x)\n"
		 "  --state-dir DIR         where enabled services are kept (default %s)\n"
		 "  --idle DURATION         stop a container after this long without counted\n"
		 "                          traffic (default %s, at least 1s)\n"
		 "  --probe-interval DURATION\n"
		 "                          how often a waking service is probed (default %s,\n"
		 "                          1ms to 10s)\n"
		 "  --wake-timeout DURATION give up on a wake after this long (default %s, from\n"
		 "                          the probe interval to 10m)\n"
		 "  --stop-timeout SECONDS  grace period of a stop before SIGKILL, for every\n"
		 "                          container (0-3600; default: each container's own\n"
		 "                          stop timeout, else %u)\n"
		 "  --max-held N            connections held per waking service; more are reset\n"
		 "                          (default %u, 1-1000000)\n"
		 "  --max-held-per-client N held connections from one client address (default\n"
		 "                          %u or max-held if smaller, 1 to max-held)\n"
		 "  --held-silent-timeout DURATION\n"
		 "                          a held connection of a --wake-on data service that\n"
		 "                          has sent nothing is closed after this (default %s,\n"
		 "                          100ms to 1h)\n"
		 "  --control-idle-timeout DURATION\n"
		 "                          close a control connection with no request for this\n"
		 "                          long; events followers excepted (default %s, 1s to\n"
		 "                          1h)\n"
		 "  --ignore RULES          traffic that never keeps a service awake, for the\n"
		 "                          services without rules of their own: peer CIDRs,\n"
		 "                          ports or proto/port, or both (10.0.0.0/8,tcp/9090,\n"
		 "                          192.0.2.7:443), at most %u, comma-separated\n"
		 "                          (default none)\n"
		 "  --unanswered-timeout DURATION\n"
		 "                          a peer's request unanswered for longer no longer\n"
		 "                          keeps its service awake (default %s, at least 1s)\n"
		 "  --log-level LEVEL       err, warning, notice, info (default) or debug\n"
		 "  --metrics-listen ADDR:PORT\n"
		 "                          serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		 "                          (numeric address: 127.0.0.1:9321, [::1]:9321;\n"
		 "                          default: off; dozectl metrics works either way)\n"
		 "  --config PATH           config file (default %s, which may\n"
		 "                          be missing)\n"
		 "  --check                 check that this host can run dozed, then exit\n"
		 "  --version               print the version\n"
		 "  -h, --help              this text\n"
		 "\n"
		 "DURATION is a whole number and one unit: ms, s, m or h (30ms, 10s, 10m, 2h),\n"
		 "at most " DURATION_MAX_TEXT
		 ". Numbers are decimal, without a sign or leading zeros;\n"
		 "only --mark also takes 0x hex.\n",
		 DOZED_RUNTIME_SOCKET_DEFAULT, DOZED_CONTROL_PATH_DEFAULT,
		 (unsigned)DOZED_ACTIVATOR_PORT_DEFAULT, DOZED_NFT_TABLE_DEFAULT,
		 (unsigned)DOZED_MARK_DEFAULT, DOZED_STATE_DIR_DEFAULT, idle, probe, wake,
		 (unsigned)DOZED_STOP_TIMEOUT_DEFAULT_S, (unsigned)DOZED_MAX_HELD_DEFAULT,
		 (unsigned)DOZED_MAX_HELD_PER_CLIENT_DEFAULT, silent, control_idle,
		 (unsigned)FLOW_RULES_MAX, unanswered, DOZED_CONFIG_PATH_DEFAULT);
	return text;
}
