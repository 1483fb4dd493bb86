// SPDX-License-Identifier: MIT
/* A service's settings from a control request, through the one parser of each. */
#include "dozed/control_settings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/utf8.h"

/* The most of a bad value a message quotes back: a request may be 64 KiB. */
#define SHOWN_MAX 64

/* Like snprintf, but a message cut short ends between two characters: it
 * goes back to the client in a JSON string, which must stay UTF-8. */
__attribute__((format(printf, 3, 4))) static void format_cut(char *buf, size_t len, const char *fmt,
							     ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n < len || len == 0)
		return;
	/* The last character, if its tail was cut off, goes whole. */
	size_t end = len - 1, start = end;
	while (start > 0 && ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
		start--;
	if (start > 0 && (unsigned char)buf[start - 1] >= 0xc0) {
		start--;
		unsigned char lead = (unsigned char)buf[start];
		size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
		if (end - start < need)
			buf[start] = '\0';
	}
}

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
		size_t len = strlen(v), shown = utf8_prefix(v, len, SHOWN_MAX);
		/* The rule parser's message quotes the bad rule itself (cut and
		 * escaped): a megabyte of rules is not echoed back whole. */
		if (strcmp(keys[i], "ignore") == 0)
			format_cut(err, errlen, "ignore: %s", expected);
		else
			format_cut(err, errlen, "%s %.*s%s: %s", keys[i], (int)shown, v,
				   shown < len ? "..." : "", expected);
		return -EINVAL;
	}
	/* A JSON boolean: what a JSON client writes; the parser reads its text. */
	bool reclaim = control_request_get_bool(req, "reclaim_frozen", false);
	if (settings_set(&set, "reclaim_frozen", reclaim ? "true" : "false", &expected) < 0) {
		format_cut(err, errlen, "reclaim_frozen: %s", expected);
		return -EINVAL;
	}
	if (settings_check_tiers(set.idle_set ? set.idle_us : default_idle_us, set.freeze_after_us,
				 err, errlen) < 0)
		return -EINVAL;
	*out = set;
	return 0;
}
