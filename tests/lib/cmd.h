/* SPDX-License-Identifier: MIT */
#pragma once

/* Commands a test cannot do without (ip, nft, sysctl): run, or fail the test. */

/* Runs argv in namespace ns_fd (-1: the current one) with netns.h's run_cmd;
 * fails the test, naming the command and its status, unless it exits 0. */
void cmd_run_ok(int ns_fd, const char *const argv[]);
