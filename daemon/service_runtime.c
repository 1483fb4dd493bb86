// SPDX-License-Identifier: MIT
/*
 * What the runtime says happened to a container outside dozed's own
 * requests: a start or a stop by hand, an exit as it woke.
 */
#include <string.h>

#include "service_internal.h"

void service_on_runtime_started(struct service_registry *r, uint64_t id)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	if (s->state != SERVICE_ASLEEP && s->state != SERVICE_FAILED) {
		s->running = s->state != SERVICE_SLEEPING || s->running;
		return;
	}
	/* Started outside dozed: it serves, so its ports go straight to it. */
	if (service_redirect_remove(r, s) < 0) {
		s->running = true;
		return;
	}
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "trigger", "runtime");
	s->failures = 0;
	service_become_awake(r, s);
	service_set_reason(s, "started outside dozed; sleeps after its idle time");
	service_emit(r, s, "wake", facts);
}

void service_on_runtime_died(struct service_registry *r, uint64_t id)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	/* SLEEPING: our own stop; WAKING: possibly the late event of the stop
	 * before, so the probe's deadline decides. */
	if (s->state != SERVICE_AWAKE && s->state != SERVICE_FROZEN) {
		if (s->state != SERVICE_WAKING)
			s->running = false;
		return;
	}
	s->running = false;
	s->paused = s->freeze_pending = s->thaw_pending = false;
	r->ops.timer_set(r->ud, s, 0);
	int ret = service_redirect_add(r, s);
	if (ret < 0) {
		service_set_reason(
		    s, "stopped outside dozed, but its ports could not be redirected (%s)",
		    strerror(-ret));
		return;
	}
	service_enter(r, s, SERVICE_ASLEEP);
	s->sleeps_stopped++; /* a sleep the runtime's own hand stopped */
	service_set_reason(s, "stopped outside dozed; wakes on the next connection");
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "trigger", "runtime");
	service_emit(r, s, "sleep", facts);
}

void service_on_wake_exited(struct service_registry *r, uint64_t id, const char *why)
{
	struct service *s = service_find_by_id(r, id);
	if (!s || s->state != SERVICE_WAKING)
		return;
	s->running = false;
	service_wake_failure(r, s, true, why);
}
