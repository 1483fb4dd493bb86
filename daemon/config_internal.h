/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dozed's own settings, one table of keys shared by the command line and the
 * config file (config.c parses both; config_keys.c holds the table and each
 * key's setter). Private to config*.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/config.h"

/* Sets one key from its text. 0, -ENOMEM, or -EINVAL with *expected saying
 * what is allowed. */
typedef int (*config_key_set_fn)(struct dozed_config *c, const char *value, const char **expected);

struct config_key {
	const char *name;
	config_key_set_fn set; /* NULL for flags, which take no value */
	bool args_only;	       /* not allowed in the config file */
	bool *(*flag)(struct dozed_config *c);
};

enum {
	KEY_RUNTIME_SOCKET,
	KEY_CONTROL,
	KEY_CONTROL_GROUP,
	KEY_ACTIVATOR_PORT,
	KEY_NFT_TABLE,
	KEY_MARK,
	KEY_STATE_DIR,
	KEY_IDLE,
	KEY_PROBE_INTERVAL,
	KEY_WAKE_TIMEOUT,
	KEY_STOP_TIMEOUT,
	KEY_MAX_HELD,
	KEY_HELD_SILENT_TIMEOUT,
	KEY_MAX_HELD_PER_CLIENT,
	KEY_CONTROL_IDLE_TIMEOUT,
	KEY_IGNORE,
	KEY_UNANSWERED_TIMEOUT,
	KEY_LOG_LEVEL,
	KEY_METRICS_LISTEN,
	KEY_CONFIG,
	KEY_CHECK,
	KEY_VERSION,
	KEY_HELP,
	N_KEYS,
};

extern const struct config_key config_keys[N_KEYS];

/* The key called name (len bytes; in a file, '_' may stand for '-'), or NULL. */
const struct config_key *config_key_lookup(const char *name, size_t len, bool file);
/* Its bit in set_by_args_ and set_by_file_. */
uint32_t config_key_bit(const struct config_key *k);
/* *field becomes a copy of value (the old one freed). 0, -ENOMEM. */
int config_replace_string(char **field, const char *value);
