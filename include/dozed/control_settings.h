/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A service's settings in a control request (enable, which also changes the
 * settings of a service enabled already): each key through the one parser
 * (settings.h), then the two tiers together. Pure: nothing is logged.
 */

#include <stddef.h>
#include <stdint.h>

#include "dozed/control_request.h"
#include "dozed/settings.h"

struct json_object;

/* The rows of those keys, for a command's control_field table:
 *   static const struct control_field enable_fields[] = {
 *       {"container", CONTROL_FIELD_STRING, "a string: a container's name or id"},
 *       CONTROL_SETTINGS_FIELDS,
 *   };
 */
/* clang-format off */
#define CONTROL_SETTINGS_FIELDS                                                                    \
	{"idle", CONTROL_FIELD_STRING, "a string like \"10m\""},                                     \
	{"wake_on", CONTROL_FIELD_STRING, "\"connect\" or \"data\""},                              \
	{"probe", CONTROL_FIELD_STRING, "a probe kind like \"postgres\" or \"http:/health\""},     \
	{"ignore", CONTROL_FIELD_STRING,                                                           \
	 "a string of rules like \"10.0.0.0/8,tcp/9090\" or \"none\""},                            \
	{"keep_awake", CONTROL_FIELD_STRING, "\"connections\" or \"none\""},                       \
	{"freeze_after", CONTROL_FIELD_STRING, "a string like \"30s\" or \"none\""},               \
	{"reclaim_frozen", CONTROL_FIELD_BOOL, "true or false"}
/* clang-format on */

/*
 * Reads those keys of req (its field types checked already, with
 * CONTROL_SETTINGS_FIELDS) into *out, which starts zeroed: a key left out
 * takes its default. default_idle_us is the daemon's --idle, for a request
 * without "idle". 0; or -EINVAL with err saying what the user sees: the key,
 * the value (its first 64 bytes, then "...") and what is allowed ("idle
 * 999ms: expected a duration of 1s or more, like 30s, 10m or 2h, or never";
 * "ignore: " and the rule parser's own message, which quotes the bad rule,
 * cut), or the tiers' message ("freeze_after (10m) must be shorter than idle
 * (5m): ..."). err: 512 bytes hold each whole; a shorter one is cut between
 * two characters (it stays UTF-8).
 */
int control_request_settings(struct json_object *req, uint64_t default_idle_us,
			     struct service_settings *out, char *err, size_t errlen);
