// SPDX-License-Identifier: MIT
/*
 * Light sleep (docs/design.md, "Light sleep"): an idle service is frozen
 * through the runtime's pause before it is stopped; the first packet for it
 * thaws it, with nothing redirected or relayed. Part of the service machine:
 * pure, effects through its ops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/service.h"
#include "dozed/settings.h"
#include "dozed/socket_util.h"
#include "service_internal.h"

static uint64_t now(struct service_registry *r)
{
	return service_registry_now_us(r);
}

bool service_freeze_tier_on(const struct service *s)
{
	return s->freeze_after_us && !s->freeze_refused[0] && s->freeze_after_us < s->idle_us;
}

uint64_t service_tier_us(const struct service *s)
{
	if (s->state == SERVICE_AWAKE && service_freeze_tier_on(s))
		return s->freeze_after_us;
	return s->idle_us;
}

static void set_frozen_reason(struct service *s, const char *how)
{
	char stop[32];
	service_set_reason(s, "%s; thaws on the first %s, %s%s", how,
			   s->wake_on_data ? "bytes a client sends" : "connection or datagram",
			   s->idle_us > DURATION_MAX_US ? "never stopped" : "stopped after ",
			   s->idle_us > DURATION_MAX_US
			       ? ""
			       : settings_idle_to_string(s->idle_us, stop, sizeof(stop)));
}

void service_go_to_freeze(struct service_registry *r, struct service *s)
{
	r->ops.timer_set(r->ud, s, 0);
	s->freeze_pending = true;
	s->thaw_wanted = false;
	char idle[32];
	service_set_reason(s, "freezing after %s without counted traffic",
			   duration_format(now(r) - service_idle_since(s), idle, sizeof(idle)));
	r->ops.runtime_freeze(r->ud, s);
}

static void note_thaw_asked(struct service *s, const char *trigger, const char *client,
			    uint64_t at_us)
{
	snprintf(s->thaw_trigger, sizeof(s->thaw_trigger), "%s", trigger);
	snprintf(s->thaw_client, sizeof(s->thaw_client), "%s", client ? client : "");
	s->thaw_at_us = at_us;
}

void service_on_freeze_done(struct service_registry *r, uint64_t id, int err, const char *msg,
			    struct json_object *facts)
{
	struct service *s = service_find_by_id(r, id);
	if (!s || !s->freeze_pending || s->state != SERVICE_AWAKE) {
		json_object_put(facts);
		return;
	}
	s->freeze_pending = false;
	if (err == -EAGAIN && !s->disabling) {
		/* No answer (the runtime is down): not a refusal; again later. */
		json_object_put(facts);
		service_set_reason(s,
				   "awake; not frozen: the runtime did not answer its pause (%s); "
				   "tries again in %llus",
				   msg && msg[0] ? msg : strerror(-err),
				   (unsigned long long)(SERVICE_FREEZE_RETRY_US / 1000000));
		r->ops.timer_set(r->ud, s, now(r) + SERVICE_FREEZE_RETRY_US);
		return;
	}
	if (err < 0) {
		json_object_put(facts);
		snprintf(s->freeze_refused, sizeof(s->freeze_refused), "%s",
			 msg && msg[0] ? msg : strerror(-err));
		if (s->disabling) {
			service_disable_now(r, s);
			return;
		}
		char idle[32];
		service_set_reason(s,
				   "awake; not frozen (%s); sleeps "
				   "after %s without counted traffic",
				   s->freeze_refused,
				   settings_idle_to_string(s->idle_us, idle, sizeof(idle)));
		service_arm_idle_timer(r, s);
		return;
	}
	uint64_t t = now(r);
	if (!facts)
		facts = service_facts_new();
	service_facts_add_int(facts, "idle_ms", (int64_t)((t - service_idle_since(s)) / 1000));
	s->paused = true;
	s->freezes++;
	service_enter(r, s, SERVICE_FROZEN);
	set_frozen_reason(s, "frozen");
	service_emit(r, s, "freeze", facts);
	if (s->thaw_wanted || s->disabling) {
		/* Copies: service_thaw writes them back into s. */
		char trigger[sizeof(s->thaw_trigger)], client[sizeof(s->thaw_client)];
		snprintf(trigger, sizeof(trigger), "%s",
			 s->disabling ? "disable" : s->thaw_trigger);
		snprintf(client, sizeof(client), "%s", s->disabling ? "" : s->thaw_client);
		s->thaw_wanted = false;
		service_thaw(r, s, trigger, client, s->disabling ? t : s->thaw_at_us);
		return;
	}
	service_arm_idle_timer(r, s);
}

/* Running again: awake, its idle clock from now. */
static void thawed(struct service_registry *r, struct service *s, const char *how)
{
	uint64_t t = now(r);
	uint64_t frozen_us = t - s->state_since_us;
	s->paused = false;
	s->thaw_pending = false;
	s->thaws++;
	s->last_thaw_us = s->thaw_at_us && t >= s->thaw_at_us ? (int64_t)(t - s->thaw_at_us) : -1;
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "trigger", s->thaw_trigger);
	if (s->thaw_client[0])
		service_facts_add_str(facts, "client", s->thaw_client);
	if (s->last_thaw_us >= 0)
		service_facts_add_int(facts, "thaw_us", s->last_thaw_us);
	service_facts_add_str(facts, "how", how);
	service_facts_add_int(facts, "frozen_ms", (int64_t)(frozen_us / 1000));
	service_become_awake(r, s);
	service_emit(r, s, "thaw", facts);
	if (s->disabling)
		service_disable_now(r, s);
}

/* It cannot run again as it was: a restart, with new clients held. */
static void thaw_failed(struct service_registry *r, struct service *s, const char *why)
{
	s->thaw_pending = false;
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "trigger", s->thaw_trigger);
	service_facts_add_str(facts, "result", "failed");
	service_facts_add_str(facts, "reason", why);
	service_facts_add_str(facts, "fallback", "restart");
	service_emit(r, s, "thaw", facts);
	if (service_go_to_sleep(r, s, "thaw failed") == 0)
		s->start_after_stop = true;
}

void service_thaw(struct service_registry *r, struct service *s, const char *trigger,
		  const char *client, uint64_t at_us)
{
	if (s->thaw_pending)
		return;
	note_thaw_asked(s, trigger, client, at_us);
	r->ops.timer_set(r->ud, s, 0);
	char why[200] = "";
	int ret = r->ops.runtime_thaw(r->ud, s, why, sizeof(why));
	if (ret > 0) {
		thawed(r, s, "freezer");
		return;
	}
	if (ret == 0) {
		s->thaw_pending = true;
		service_set_reason(s, "thawing (%s) through the runtime", trigger);
		return;
	}
	thaw_failed(r, s, why[0] ? why : strerror(-ret));
}

void service_on_thaw_done(struct service_registry *r, uint64_t id, int err, const char *msg)
{
	struct service *s = service_find_by_id(r, id);
	if (!s || s->state != SERVICE_FROZEN || !s->thaw_pending)
		return;
	if (err < 0) {
		char why[240];
		snprintf(why, sizeof(why), "the runtime did not unpause it: %s",
			 msg && msg[0] ? msg : strerror(-err));
		thaw_failed(r, s, why);
		return;
	}
	thawed(r, s, "runtime");
}

void service_on_packet(struct service_registry *r, uint64_t id,
		       const struct sockaddr_storage *client, uint64_t at_us)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	char who[INET6_ADDRSTRLEN + 16] = "";
	if (client)
		sockaddr_to_string(client, who, sizeof(who));
	if (s->state == SERVICE_FROZEN)
		service_thaw(r, s, "packet", who, at_us);
	else if (s->state == SERVICE_AWAKE && s->freeze_pending && !s->thaw_wanted) {
		/* It came as the pause was out: thawed once the pause answers. */
		s->thaw_wanted = true;
		note_thaw_asked(s, "packet during freeze", who, at_us);
	}
}

void service_found_paused(struct service_registry *r, struct service *s)
{
	if (s->state != SERVICE_AWAKE || s->freeze_pending)
		return;
	r->ops.timer_set(r->ud, s, 0);
	s->paused = true;
	service_enter(r, s, SERVICE_FROZEN);
	/* Its idle clock runs from now: when it was paused is not known. */
	s->awake_since_us = now(r);
	set_frozen_reason(s, "found paused, so frozen");
	service_arm_idle_timer(r, s);
}
