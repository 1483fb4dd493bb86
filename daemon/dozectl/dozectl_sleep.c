// SPDX-License-Identifier: MIT
/* dozectl's words for light sleep: the two tiers, the freezes and thaws, a
 * refused pause; from a SERVICE object of the control protocol. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dozed/dozectl_format.h"
#include "dozed/duration.h"

char *dozectl_format_timing_us(uint64_t us, char *buf, size_t len)
{
	/* A thaw takes microseconds to milliseconds: its digits are the point. */
	if (us < 1000)
		snprintf(buf, len, "%" PRIu64 "us", us);
	else if (us < 10000)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "ms", us / 1000, us % 1000 / 100);
	else
		dozectl_format_timing_ms(us / 1000, buf, len);
	return buf;
}

bool dozectl_idle_is_never(struct json_object *s)
{
	struct json_object *v;
	uint64_t ms;
	/* null: never stopped. "never" is UINT64_MAX microseconds: a daemon that
	 * prints it as a number says so too. */
	if (!json_object_object_get_ex(s, "idle_timeout_ms", &v))
		return false;
	return v == NULL || (dozectl_json_u64(s, "idle_timeout_ms", &ms) &&
			     ms >= UINT64_MAX / DURATION_US_PER_MS);
}

static bool is_true(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

/* Appends to buf at off (cut to fit); the new end. */
__attribute__((format(printf, 4, 5))) static size_t append(char *buf, size_t len, size_t off,
							   const char *fmt, ...)
{
	if (off >= len)
		return off;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

const char *dozectl_format_light_sleep(struct json_object *s, char *buf, size_t len)
{
	const char *refused = dozectl_json_str(s, "freeze_refused");
	uint64_t freeze_ms = 0, idle_ms, freezes = 0, thaws = 0, thaw_us;
	bool has_freeze = dozectl_json_u64(s, "freeze_after_ms", &freeze_ms);
	char a[DURATION_FORMAT_MAX];
	if (len == 0)
		return NULL;
	buf[0] = '\0';
	if (refused && *refused) {
		char safe[256];
		snprintf(buf, len, "off (%s)", dozectl_sanitize(refused, safe, sizeof(safe)));
		return buf;
	}
	/* Absent: a daemon without light sleep; null or 0: none. */
	if (!has_freeze && !json_object_object_get_ex(s, "freeze_after_ms", NULL))
		return NULL;
	if (freeze_ms == 0) {
		snprintf(buf, len, "off");
		return buf;
	}
	size_t off =
	    append(buf, len, 0, "frozen after %s idle", dozectl_format_ms(freeze_ms, a, sizeof(a)));
	if (dozectl_idle_is_never(s))
		off = append(buf, len, off, ", never stopped");
	else if (dozectl_json_u64(s, "idle_timeout_ms", &idle_ms))
		off = append(buf, len, off, ", stopped after %s",
			     dozectl_format_ms(idle_ms, a, sizeof(a)));
	if (is_true(s, "reclaim_frozen"))
		off = append(buf, len, off, ", memory reclaimed once frozen");
	dozectl_json_u64(s, "freezes", &freezes);
	dozectl_json_u64(s, "thaws", &thaws);
	if (freezes == 0 && thaws == 0)
		return buf;
	off = append(buf, len, off, "; %" PRIu64 " freeze%s, %" PRIu64 " thaw%s", freezes,
		     freezes == 1 ? "" : "s", thaws, thaws == 1 ? "" : "s");
	if (dozectl_json_u64(s, "last_thaw_us", &thaw_us))
		append(buf, len, off, ", last thaw %s",
		       dozectl_format_timing_us(thaw_us, a, sizeof(a)));
	return buf;
}
