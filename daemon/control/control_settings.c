// SPDX-License-Identifier: MIT
/* A service's settings from a control request, through the one parser of each. */
#include "dozed/control_settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dozed/macro.h"

int control_request_settings(struct json_object *req, uint64_t default_idle_us,
			     struct service_settings *out, char *err, size_t errlen)
{
	/* The request's keys, as settings_set() takes them. */
	static const char *const keys[] = {"idle",   "wake_on",	   "probe",
					   "ignore", "keep_awake", "freeze_after"};
	struct service_settings set = {0};
	const char *expected = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = control_request_get_string(req, keys[i]);
		if (!v || settings_set(&set, keys[i], v, &expected) == 0)
			continue;
		/* The rule parser's message quotes the bad rule itself (cut and
		 * escaped): a megabyte of rules is not echoed back whole. */
		if (strcmp(keys[i], "ignore") == 0)
			snprintf(err, errlen, "ignore: %s", expected);
		else
			snprintf(err, errlen, "%s %s: %s", keys[i], v, expected);
		return -EINVAL;
	}
	/* A JSON boolean: what a JSON client writes; the parser reads its text. */
	bool reclaim = control_request_get_bool(req, "reclaim_frozen", false);
	if (settings_set(&set, "reclaim_frozen", reclaim ? "true" : "false", &expected) < 0) {
		snprintf(err, errlen, "reclaim_frozen: %s", expected);
		return -EINVAL;
	}
	if (settings_check_tiers(set.idle_set ? set.idle_us : default_idle_us, set.freeze_after_us,
				 err, errlen) < 0)
		return -EINVAL;
	*out = set;
	return 0;
}
