// SPDX-License-Identifier: MIT
/*
 * When an awake service is idle: counted traffic (one read of the flow
 * counter), relayed clients waiting, and at the deadline what its open
 * connections say (docs/design.md, "Flows"). Part of the service machine:
 * pure, effects through its ops.
 */
#include <stdio.h>
#include <string.h>

#include "dozed/service.h"
#include "service_internal.h"

static uint64_t now(struct service_registry *r)
{
	return service_registry_now_us(r);
}

uint64_t service_idle_deadline(const struct service *s)
{
	uint64_t last = service_idle_since(s);
	uint64_t tier = service_tier_us(s);
	/* An idle of never is UINT64_MAX: saturate. */
	return last > UINT64_MAX - tier ? UINT64_MAX : last + tier;
}

/*
 * Egress is activity, and so is a client dozed relayed that waits for the
 * service's answer: the service may send nothing meanwhile (a proxy in front
 * of it retrying a full backlog) and still be in use.
 */
void service_read_activity(struct service_registry *r, struct service *s)
{
	r->ops.egress_read(r->ud, s);
	s->clients_waiting = r->ops.activator_waiting(r->ud, s);
	if (s->clients_waiting > 0)
		s->last_waited_us = now(r);
	if (s->last_waited_us > s->last_activity_us)
		s->last_activity_us = s->last_waited_us;
}

/*
 * The idle timer looks once when the last quarter of the idle time begins,
 * then at the deadline: traffic found at the deadline but not at the first
 * look came when the service was close to sleeping, and is named in a
 * kept_awake event. One read each time, nothing per packet.
 */
void service_arm_idle_timer(struct service_registry *r, struct service *s)
{
	uint64_t deadline = service_idle_deadline(s);
	s->armed_activity_us = s->last_activity_us;
	if (deadline == UINT64_MAX) {
		/* Never stopped (an idle of never), and frozen already. */
		s->armed_late = true;
		r->ops.timer_set(r->ud, s, 0);
		return;
	}
	uint64_t late = deadline - service_tier_us(s) / 4;
	s->armed_late = now(r) >= late;
	r->ops.timer_set(r->ud, s, s->armed_late ? deadline : late);
}

/* Counted traffic reset the timer in the last quarter of the idle time. */
static void emit_kept_by_traffic(struct service_registry *r, struct service *s)
{
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "by", "traffic");
	service_facts_add_str(facts, "what", s->last_counted[0] ? s->last_counted : "traffic");
	uint64_t before =
	    s->armed_activity_us > s->awake_since_us ? s->armed_activity_us : s->awake_since_us;
	service_facts_add_int(facts, "idle_ms", (int64_t)((s->last_activity_us - before) / 1000));
	service_emit(r, s, "kept_awake", facts);
}

/* Past the deadline, an open connection may still keep it awake. A freeze
 * keeps connections open: only an unanswered request stops one. */
static bool kept_by_connection(struct service_registry *r, struct service *s, bool freeze)
{
	char what[sizeof(s->kept_awake_by)] = "";
	enum service_kept kept = r->ops.sleep_blocker(r->ud, s, what, sizeof(what));
	if (kept == SERVICE_NOT_KEPT || (freeze && kept == SERVICE_KEPT_CONNECTION)) {
		s->kept_awake_by[0] = '\0';
		return false;
	}
	snprintf(s->kept_awake_by, sizeof(s->kept_awake_by), "%s", what);
	if (!s->kept_awake_sent) {
		struct json_object *facts = service_facts_new();
		service_facts_add_str(
		    facts, "by", kept == SERVICE_KEPT_UNANSWERED ? "unanswered" : "connection");
		service_facts_add_str(facts, "what", what);
		service_emit(r, s, "kept_awake", facts);
		s->kept_awake_sent = true;
	}
	r->ops.timer_set(r->ud, s, now(r) + SERVICE_KEPT_RECHECK_US);
	return true;
}

void service_idle_check(struct service_registry *r, struct service *s)
{
	service_read_activity(r, s);
	bool moved = s->last_activity_us > s->armed_activity_us;
	if (moved) {
		/* A new idle window: a connection may keep it again, and say so. */
		s->kept_awake_by[0] = '\0';
		s->kept_awake_sent = false;
	}
	if (now(r) < service_idle_deadline(s)) {
		if (moved && s->armed_late && s->last_activity_us > s->awake_since_us)
			emit_kept_by_traffic(r, s);
		service_arm_idle_timer(r, s);
		return;
	}
	bool freeze = s->state == SERVICE_AWAKE && service_freeze_tier_on(s);
	if (kept_by_connection(r, s, freeze))
		return;
	/* The answer may have gone between the read and the look at its
	 * connections: it is activity, read once more before the stop. */
	uint64_t before = s->last_activity_us;
	service_read_activity(r, s);
	if (s->last_activity_us > before) {
		service_arm_idle_timer(r, s);
		return;
	}
	if (freeze)
		service_go_to_freeze(r, s);
	else
		service_go_to_sleep(r, s, "idle");
}

void service_refresh_activity(struct service_registry *r, struct service *s)
{
	service_read_activity(r, s);
}
