// SPDX-License-Identifier: MIT
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "netns.h"

void cmd_run_ok(int ns_fd, const char *const argv[])
{
	int r = run_cmd(ns_fd, argv, NULL);
	if (r == 0)
		return;
	char cmd[256] = "";
	for (size_t i = 0; argv[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "",
			 argv[i]);
	FAIL("`%s` failed (%d): ip(8), sysctl(8) and nft(8) (iproute2, procps, nftables) are "
	     "needed",
	     cmd, r);
}
