// SPDX-License-Identifier: MIT
#include "dozed/feed.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dozed/log.h"
#include "dozed/macro.h"

struct feed {
	/* A ring of history_max events: the oldest at head. */
	struct json_object **ring;
	size_t history_max;
	size_t head, count;
	uint64_t dropped;

	feed_sink_fn sink;
	void *sink_userdata;
	feed_clock_fn clock;
	void *clock_userdata;
};

static const char *const event_names[] = {
    "enabled",	   "disabled", "sleep",	     "sleep_cancelled", "wake", "ready",
    "wake_failed", "removed",  "kept_awake", "freeze",		"thaw",
};

static const char *const reserved_keys[] = {"ts", "event", "service", "container"};

int feed_new(size_t history_max, struct feed **out)
{
	if (history_max == 0)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "The event history must hold at least one event");

	_cleanup_free_ struct feed *f = calloc(1, sizeof(*f));
	if (!f)
		return log_error_errno(ENOMEM, "Failed to allocate the activity feed");
	f->ring = calloc(history_max, sizeof(*f->ring));
	if (!f->ring)
		return log_error_errno(ENOMEM, "Failed to allocate a history of %zu events",
				       history_max);
	f->history_max = history_max;
	*out = TAKE_PTR(f);
	return 0;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->count; i++)
		json_object_put(f->ring[(f->head + i) % f->history_max]);
	free(f->ring);
	free(f);
}

void feed_set_sink(struct feed *f, feed_sink_fn fn, void *userdata)
{
	f->sink = fn;
	f->sink_userdata = userdata;
}

void feed_set_clock(struct feed *f, feed_clock_fn fn, void *userdata)
{
	f->clock = fn;
	f->clock_userdata = userdata;
}

static uint64_t feed_now_ms(const struct feed *f)
{
	if (f->clock)
		return f->clock(f->clock_userdata);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void format_ts(uint64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	char date[32];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", date, (unsigned)(ms % 1000));
}

static bool fact_int(struct json_object *facts, const char *key, int64_t *out)
{
	struct json_object *v;
	if (!facts || !json_object_object_get_ex(facts, key, &v))
		return false;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

static const char *fact_str(struct json_object *facts, const char *key)
{
	struct json_object *v;
	if (!facts || !json_object_object_get_ex(facts, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* "850 ms", "2.0 s", "10.0 min", "2.5 h": readable in a log line. */
static void format_ms(int64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRId64 " ms", ms);
	else if (ms < 60 * 1000)
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
	else if (ms < 60 * 60 * 1000)
		snprintf(buf, len, "%.1f min", (double)ms / 60000.0);
	else
		snprintf(buf, len, "%.1f h", (double)ms / 3600000.0);
}

/* The human line of an event, as in "web: sleep (idle 2.0 s, 1234 bytes sent)". */
static void format_message(char *msg, size_t len, const char *event, const char *service,
			   const char *container, struct json_object *facts)
{
	char a[32], b[32], c[32];
	int64_t v1, v2, v3;
	const char *s;

	if (strcmp(event, "sleep") == 0 && fact_int(facts, "idle_ms", &v1)) {
		format_ms(v1, a, sizeof(a));
		if (fact_int(facts, "egress_bytes", &v2))
			snprintf(msg, len, "%s: sleep (idle %s, %" PRId64 " bytes sent)", service,
				 a, v2);
		else
			snprintf(msg, len, "%s: sleep (idle %s)", service, a);
	} else if (strcmp(event, "wake") == 0 && (s = fact_str(facts, "client"))) {
		snprintf(msg, len, "%s: wake (connection from %s)", service, s);
	} else if (strcmp(event, "wake") == 0 && (s = fact_str(facts, "trigger"))) {
		snprintf(msg, len, "%s: wake (by %s)", service, s);
	} else if (strcmp(event, "ready") == 0 && fact_int(facts, "total_ms", &v1) &&
		   fact_int(facts, "start_ms", &v2) && fact_int(facts, "probe_ms", &v3)) {
		format_ms(v1, a, sizeof(a));
		format_ms(v2, b, sizeof(b));
		format_ms(v3, c, sizeof(c));
		snprintf(msg, len, "%s: ready in %s (start %s, probe %s)", service, a, b, c);
	} else if (strcmp(event, "wake_failed") == 0) {
		s = fact_str(facts, "reason");
		snprintf(msg, len, "%s: wake failed: %s", service, s ? s : "no reason given");
	} else if (strcmp(event, "thaw") == 0 && (s = fact_str(facts, "result")) &&
		   strcmp(s, "failed") == 0) {
		s = fact_str(facts, "reason");
		snprintf(msg, len, "%s: thaw failed: %s; restarting it", service,
			 s ? s : "no reason given");
	} else if (strcmp(event, "thaw") == 0 && fact_int(facts, "thaw_us", &v1)) {
		s = fact_str(facts, "trigger");
		snprintf(msg, len, "%s: thawed in %lld us (%s, by the %s)", service, (long long)v1,
			 s ? s : "?", fact_str(facts, "how") ? fact_str(facts, "how") : "?");
	} else if (strcmp(event, "freeze") == 0 && fact_int(facts, "pause_ms", &v1)) {
		snprintf(msg, len, "%s: frozen (the runtime's pause took %lld ms)", service,
			 (long long)v1);
	} else if (strcmp(event, "kept_awake") == 0 && (s = fact_str(facts, "what"))) {
		snprintf(msg, len, "%s: kept awake by %s", service, s);
	} else if (strcmp(event, "enabled") == 0 && container) {
		snprintf(msg, len, "%s: enabled (container %.12s)", service, container);
	} else if ((s = fact_str(facts, "reason"))) {
		snprintf(msg, len, "%s: %s (%s)", service, event, s);
	} else {
		snprintf(msg, len, "%s: %s", service, event);
	}
}

/* One line per event; under systemd, a journal entry with the event's fields too. */
static void log_event(struct json_object *e, const char *event, const char *service,
		      const char *container, struct json_object *facts)
{
	char msg[512];
	format_message(msg, sizeof(msg), event, service, container, facts);
	if (log_stderr_is_journal() &&
	    log_event_journal(LOG_INFO, msg, service, event,
			      json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN)) == 0)
		return;
	log_info("%s", msg);
}

static bool event_known(const char *event)
{
	for (size_t i = 0; i < ARRAY_SIZE(event_names); i++)
		if (strcmp(event, event_names[i]) == 0)
			return true;
	return false;
}

static int check_facts(struct json_object *facts, const char *event)
{
	if (!facts)
		return 0;
	if (!json_object_is_type(facts, json_type_object))
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "The facts of a %s event are not a JSON object", event);
	for (size_t i = 0; i < ARRAY_SIZE(reserved_keys); i++)
		if (json_object_object_get_ex(facts, reserved_keys[i], NULL))
			return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
					       "The facts of a %s event use the reserved key "
					       "\"%s\"",
					       event, reserved_keys[i]);
	return 0;
}

static int add_string(struct json_object *obj, const char *key, const char *value)
{
	struct json_object *v = json_object_new_string(value);
	if (!v || json_object_object_add(obj, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int build_event(const struct feed *f, const char *event, const char *service,
		       const char *container, struct json_object *facts, struct json_object **out)
{
	char ts[48];
	format_ts(feed_now_ms(f), ts, sizeof(ts));

	struct json_object *e = json_object_new_object();
	if (!e || add_string(e, "ts", ts) < 0 || add_string(e, "event", event) < 0 ||
	    add_string(e, "service", service) < 0 ||
	    (container && add_string(e, "container", container) < 0))
		goto oom;
	if (facts) {
		json_object_object_foreach(facts, key, value)
		{
			if (json_object_object_add(e, key, json_object_get(value)) < 0) {
				json_object_put(value);
				goto oom;
			}
		}
	}
	*out = e;
	return 0;
oom:
	json_object_put(e);
	return log_error_errno(ENOMEM, "Failed to build a %s event for %s", event, service);
}

static void history_append(struct feed *f, struct json_object *e)
{
	if (f->count == f->history_max) {
		json_object_put(f->ring[f->head]);
		f->ring[f->head] = NULL;
		f->head = (f->head + 1) % f->history_max;
		f->count--;
		f->dropped++;
	}
	f->ring[(f->head + f->count) % f->history_max] = json_object_get(e);
	f->count++;
}

int feed_emit(struct feed *f, const char *event, const char *service, const char *container,
	      struct json_object *facts)
{
	struct json_object *e = NULL;
	int r;

	if (!event || !event_known(event)) {
		r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Unknown activity event \"%s\"",
				    event ? event : "(null)");
		goto out;
	}
	if (!service || !*service) {
		r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "A %s event without a service", event);
		goto out;
	}
	r = check_facts(facts, event);
	if (r < 0)
		goto out;
	r = build_event(f, event, service, container, facts, &e);
	if (r < 0)
		goto out;

	history_append(f, e);
	log_event(e, event, service, container, facts);
	if (f->sink)
		f->sink(f->sink_userdata, e);
	r = 0;
out:
	json_object_put(e);
	json_object_put(facts);
	return r;
}

int feed_history_json(const struct feed *f, struct json_object **out)
{
	struct json_object *a = json_object_new_array_ext((int)f->count);
	if (!a)
		return log_error_errno(ENOMEM, "Failed to list the event history");
	for (size_t i = 0; i < f->count; i++) {
		struct json_object *e = f->ring[(f->head + i) % f->history_max];
		if (json_object_array_add(a, json_object_get(e)) < 0) {
			json_object_put(e);
			json_object_put(a);
			return log_error_errno(ENOMEM, "Failed to list the event history");
		}
	}
	*out = a;
	return 0;
}

size_t feed_history_size(const struct feed *f)
{
	return f->count;
}

uint64_t feed_history_dropped(const struct feed *f)
{
	return f->dropped;
}
