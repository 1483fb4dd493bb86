/* SPDX-License-Identifier: MIT */
#pragma once

/* The inputs of the config tests (tests/unit/test_config*.c). */

#include "dozed/config.h"

/* A config file with this text, removed when the test ends. */
const char *conf_file(const char *text);

/* dozed_config_from_argv() on "dozed" and the arguments. */
#define from_argv(c, msg, ...)                                                                     \
	from_argv_list((c), (msg), (const char *[]){"dozed", __VA_ARGS__, NULL})
int from_argv_list(struct dozed_config *c, char **msg, const char **argv);
