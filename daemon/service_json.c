// SPDX-License-Identifier: MIT
/* A service as the control protocol shows it (dozectl list and status). */
#include <json-c/json.h>

#include <stdio.h>

#include "dozed/duration.h"
#include "dozed/service.h"
#include "dozed/settings.h"
#include "service_internal.h"

/* Why an awake service is still awake: its counted traffic, an open
 * connection, a client dozed relayed; and when it sleeps. */
static void awake_reason(const struct service *s, uint64_t t, char *buf, size_t len)
{
	char ago[32], left[32], in[64], after[96];
	uint64_t last = service_idle_since(s);
	uint64_t idle = t > last ? t - last : 0;
	/* Its next tier: frozen (light sleep), else stopped. */
	uint64_t tier = service_tier_us(s);
	const char *verb = tier < s->idle_us ? "freezes" : "sleeps";
	duration_format(idle < tier ? tier - idle : 0, left, sizeof(left));
	if (tier > DURATION_MAX_US) {
		snprintf(in, sizeof(in), "never sleeps");
		snprintf(after, sizeof(after), "never sleeps");
	} else {
		snprintf(in, sizeof(in), "%s in %s", verb, left);
		snprintf(after, sizeof(after), "%s %s after the last is answered", verb, left);
	}
	if (s->freeze_pending)
		snprintf(buf, len, "%s", s->reason);
	else if (s->clients_waiting > 0)
		snprintf(buf, len,
			 "%zu relayed client%s waiting for its answer; %s, without counted "
			 "traffic",
			 s->clients_waiting, s->clients_waiting == 1 ? "" : "s", after);
	else if (s->kept_awake_by[0] && idle >= tier)
		snprintf(buf, len, "kept awake by %s; looks again every %llus", s->kept_awake_by,
			 (unsigned long long)(SERVICE_KEPT_RECHECK_US / 1000000));
	else if (s->last_activity_us > s->awake_since_us &&
		 s->last_activity_us == s->last_waited_us)
		snprintf(buf, len,
			 "a relayed client waited for its answer %s ago; %s without counted "
			 "traffic",
			 duration_format(idle, ago, sizeof(ago)), in);
	else if (s->last_activity_us > s->awake_since_us)
		snprintf(buf, len, "last counted traffic %s ago%s%s; %s",
			 duration_format(idle, ago, sizeof(ago)), s->last_counted[0] ? ", " : "",
			 s->last_counted, in);
	else
		snprintf(buf, len, "no counted traffic since it woke %s ago; %s",
			 duration_format(idle, ago, sizeof(ago)), in);
}

struct json_object *service_to_json(struct service_registry *r, struct service *s)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	/* Totals and last activity as of now, not as of the last timer. */
	uint64_t t = service_registry_now_us(r);
	if (s->state == SERVICE_AWAKE)
		service_refresh_activity(r, s);
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "container", json_object_new_string(s->container_id));
	json_object_object_add(o, "state", json_object_new_string(service_state_name(s->state)));
	struct json_object *ports = json_object_new_array();
	for (size_t i = 0; i < s->n_ports; i++)
		json_object_array_add(ports, json_object_new_int(s->ports[i].host_port));
	json_object_object_add(o, "ports", ports);
	/* null: never stopped (an idle of never). */
	json_object_object_add(o, "idle_timeout_ms",
			       s->idle_us > DURATION_MAX_US
				   ? NULL
				   : json_object_new_int64((int64_t)(s->idle_us / 1000)));
	json_object_object_add(o, "freeze_after_ms",
			       s->freeze_after_us
				   ? json_object_new_int64((int64_t)(s->freeze_after_us / 1000))
				   : NULL);
	json_object_object_add(o, "reclaim_frozen", json_object_new_boolean(s->reclaim_frozen));
	json_object_object_add(o, "freezes", json_object_new_int64((int64_t)s->freezes));
	json_object_object_add(o, "thaws", json_object_new_int64((int64_t)s->thaws));
	json_object_object_add(o, "last_thaw_us",
			       s->last_thaw_us < 0 ? NULL : json_object_new_int64(s->last_thaw_us));
	if (s->freeze_refused[0])
		json_object_object_add(o, "freeze_refused",
				       json_object_new_string(s->freeze_refused));
	json_object_object_add(o, "wake_on",
			       json_object_new_string(settings_wake_on_to_string(s->wake_on_data)));
	char probe[PROBE_HTTP_PATH_MAX + 16];
	json_object_object_add(
	    o, "probe",
	    json_object_new_string(settings_probe_to_string(&s->probe, probe, sizeof(probe))));
	if (s->probe_used[0])
		json_object_object_add(o, "probe_used", json_object_new_string(s->probe_used));
	json_object_object_add(o, "sleeps_cancelled",
			       json_object_new_int64((int64_t)s->sleeps_cancelled));
	if (s->last_stop[0])
		json_object_object_add(o, "last_stop", json_object_new_string(s->last_stop));
	uint64_t last = service_idle_since(s);
	if (s->state == SERVICE_AWAKE || s->state == SERVICE_FROZEN) {
		uint64_t idle = t > last ? t - last : 0;
		json_object_object_add(o, "idle_for_ms",
				       json_object_new_int64((int64_t)(idle / 1000)));
		/* Stopped then (frozen first, freezes_in_ms, with light sleep). */
		uint64_t in = idle < s->idle_us ? s->idle_us - idle : 0;
		json_object_object_add(o, "sleeps_in_ms",
				       s->idle_us > DURATION_MAX_US
					   ? NULL
					   : json_object_new_int64((int64_t)(in / 1000)));
		uint64_t tier = service_tier_us(s);
		if (s->state == SERVICE_AWAKE && tier < s->idle_us)
			json_object_object_add(
			    o, "freezes_in_ms",
			    json_object_new_int64(
				(int64_t)((idle < tier ? tier - idle : 0) / 1000)));
	} else {
		uint64_t since = t > s->state_since_us ? t - s->state_since_us : 0;
		json_object_object_add(o, "idle_for_ms",
				       json_object_new_int64((int64_t)(since / 1000)));
	}
	json_object_object_add(o, "last_wake_ms",
			       s->last_wake_ms < 0 ? NULL : json_object_new_int64(s->last_wake_ms));
	json_object_object_add(o, "wakes", json_object_new_int64((int64_t)s->wakes));
	json_object_object_add(o, "held", json_object_new_int64((int64_t)service_held(r, s)));
	json_object_object_add(o, "waiting", json_object_new_int64((int64_t)s->clients_waiting));
	json_object_object_add(o, "egress_bytes", json_object_new_int64((int64_t)s->egress_bytes));
	json_object_object_add(o, "egress_packets",
			       json_object_new_int64((int64_t)s->egress_packets));
	json_object_object_add(
	    o, "keep_awake",
	    json_object_new_string(s->keep_awake_connections ? "connections" : "none"));
	char reason[448];
	if (s->state == SERVICE_AWAKE)
		awake_reason(s, t, reason, sizeof(reason));
	json_object_object_add(
	    o, "reason", json_object_new_string(s->state == SERVICE_AWAKE ? reason : s->reason));
	return o;
}
