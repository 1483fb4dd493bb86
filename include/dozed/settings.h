/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every default of dozed, once: the config file, the command line, the parts
 * (control socket, runtime client, nft table, activator) and dozectl take
 * them from here.
 */

#include <stdint.h>

#define DOZED_CONFIG_PATH_DEFAULT	      "/etc/dozed/dozed.conf"
#define DOZED_RUNTIME_SOCKET_DEFAULT	      "/var/run/docker.sock"
#define DOZED_CONTROL_PATH_DEFAULT	      "/run/dozed/control.sock"
#define DOZED_STATE_DIR_DEFAULT		      "/var/lib/dozed"
#define DOZED_ACTIVATOR_PORT_DEFAULT	      15001
#define DOZED_NFT_TABLE_DEFAULT		      "dozed"
#define DOZED_MARK_DEFAULT		      0x1d0
#define DOZED_IDLE_DEFAULT_US		      (UINT64_C(10) * 60 * 1000000)
#define DOZED_PROBE_INTERVAL_DEFAULT_US	      (UINT64_C(30) * 1000)
#define DOZED_WAKE_TIMEOUT_DEFAULT_US	      (UINT64_C(10) * 1000000)
#define DOZED_STOP_TIMEOUT_DEFAULT_S	      10
#define DOZED_MAX_HELD_DEFAULT		      4096
#define DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US  (UINT64_C(10) * 1000000)
#define DOZED_MAX_HELD_PER_CLIENT_DEFAULT     256
#define DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US (UINT64_C(30) * 1000000)
