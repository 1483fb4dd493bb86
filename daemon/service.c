// SPDX-License-Identifier: MIT
/*
 * The service state machine's transitions and inputs (docs/design.md,
 * "Service states"); the registry they work on is service_registry.c. Pure:
 * every effect goes through the registry's ops, nothing is logged.
 */
#include "dozed/service.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/socket_util.h"
#include "dozed/utf8.h"
#include "service_internal.h"

static uint64_t now(struct service_registry *r)
{
	return service_registry_now_us(r);
}

__attribute__((format(printf, 2, 3))) void service_set_reason(struct service *s, const char *fmt,
							      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	/* Users read it as JSON: a cut character or a runtime's stray byte is a '?'. */
	utf8_sanitize(s->reason);
}

void service_enter(struct service_registry *r, struct service *s, enum service_state state)
{
	enum service_state from = s->state;
	uint64_t t = now(r);
	/* A clock read before the stretch began (a fake's, set back) adds nothing. */
	if ((size_t)from < SERVICE_STATE_COUNT && t > s->state_since_us)
		s->state_total_us[from] += t - s->state_since_us;
	s->state = state;
	s->state_since_us = t;
	if (from != state)
		r->ops.state_changed(r->ud, s, from);
}

void service_emit(struct service_registry *r, struct service *s, const char *event,
		  struct json_object *facts)
{
	r->ops.emit(r->ud, s, event, facts);
}

struct json_object *service_facts_new(void)
{
	return json_object_new_object();
}

void service_facts_add_int(struct json_object *facts, const char *key, int64_t v)
{
	if (facts)
		json_object_object_add(facts, key, json_object_new_int64(v));
}

void service_facts_add_str(struct json_object *facts, const char *key, const char *v)
{
	if (facts && v)
		json_object_object_add(facts, key, json_object_new_string(v));
}

/* --- transitions ------------------------------------------------------------ */

void service_become_awake(struct service_registry *r, struct service *s)
{
	service_enter(r, s, SERVICE_AWAKE);
	s->running = true;
	s->awake_since_us = now(r);
	s->start_after_stop = false;
	char idle[32];
	service_set_reason(s, "awake; sleeps after %s without counted traffic",
			   duration_format(s->idle_us, idle, sizeof(idle)));
	s->kept_awake_by[0] = '\0';
	s->kept_awake_sent = false;
	service_arm_idle_timer(r, s);
}

int service_redirect_remove(struct service_registry *r, struct service *s)
{
	if (!s->redirected)
		return 0;
	int ret = r->ops.redirect_remove(r->ud, s);
	if (ret >= 0)
		s->redirected = false;
	return ret;
}

int service_redirect_add(struct service_registry *r, struct service *s)
{
	if (s->redirected)
		return 0;
	int ret = r->ops.redirect_add(r->ud, s);
	if (ret >= 0)
		s->redirected = true;
	return ret;
}

/* Ports first, then the stop: a client arriving meanwhile is held, not refused. */
int service_go_to_sleep(struct service_registry *r, struct service *s, const char *why)
{
	uint64_t t = now(r);
	int ret = service_redirect_add(r, s);
	if (ret < 0) {
		service_set_reason(s, "could not redirect its ports (%s); stays awake",
				   strerror(-ret));
		r->ops.timer_set(r->ud, s, t + s->idle_us);
		return ret;
	}
	uint64_t last = service_idle_since(s);
	struct json_object *facts = service_facts_new();
	service_facts_add_int(facts, "idle_ms", (int64_t)((t - last) / 1000));
	service_facts_add_int(facts, "egress_bytes", (int64_t)s->egress_bytes);
	service_facts_add_int(facts, "egress_packets", (int64_t)s->egress_packets);
	service_facts_add_str(facts, "trigger", why);
	if (s->last_counted[0] && s->last_activity_us > s->awake_since_us &&
	    s->last_activity_us != s->last_waited_us)
		service_facts_add_str(facts, "last_counted", s->last_counted);
	r->ops.timer_set(r->ud, s, 0);
	service_enter(r, s, SERVICE_SLEEPING);
	s->start_after_stop = false;
	s->stop_probing = false;
	char idle[32];
	service_set_reason(s, "stopping (%s after %s without counted traffic)", why,
			   duration_format(t - last, idle, sizeof(idle)));
	service_emit(r, s, "sleep", facts);
	r->ops.runtime_stop(r->ud, s);
	return 0;
}

void service_begin_wake(struct service_registry *r, struct service *s,
			const struct sockaddr_storage *client, const char *trigger)
{
	r->ops.timer_set(r->ud, s, 0);
	service_enter(r, s, SERVICE_WAKING);
	s->wake_started_us = now(r);
	s->start_done_us = 0;
	s->start_after_stop = false;
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "trigger", trigger);
	char who[INET6_ADDRSTRLEN + 16] = "";
	if (client) {
		sockaddr_to_string(client, who, sizeof(who));
		service_facts_add_str(facts, "client", who);
	}
	service_set_reason(s, "waking (%s%s%s)", trigger, client ? " from " : "", who);
	service_emit(r, s, "wake", facts);
	/* A runtime that hangs must not hold the clients for its own call timeout. */
	if (r->start_timeout_us)
		r->ops.timer_set(r->ud, s, s->wake_started_us + r->start_timeout_us);
	r->ops.runtime_start(r->ud, s);
}

/*
 * A client or a command came during the stop: the container may still serve
 * (a PID 1 that ignores SIGTERM serves for the whole grace period), so it is
 * probed; if it answers, the stop is cancelled (cancel_sleep).
 */
static void probe_during_stop(struct service_registry *r, struct service *s)
{
	if (!s->running || s->stop_probing)
		return;
	s->stop_probing = true;
	r->ops.activator_starting(r->ud, s);
}

/* Stops managing s: its ports go straight to it, it is forgotten. */
void service_disable_now(struct service_registry *r, struct service *s)
{
	service_redirect_remove(r, s);
	service_emit(r, s, "disabled", NULL);
	service_unlink(r, s);
	service_destroy(r, s);
}

static uint64_t backoff_us(unsigned failures)
{
	unsigned shift = failures - SERVICE_FAILURES_BEFORE_BACKOFF;
	if (shift > 10)
		return SERVICE_BACKOFF_MAX_US;
	uint64_t b = SERVICE_BACKOFF_FIRST_US << shift;
	return b > SERVICE_BACKOFF_MAX_US ? SERVICE_BACKOFF_MAX_US : b;
}

/* Held clients were reset (by the activator, or here when reset_held). */
void service_wake_failure(struct service_registry *r, struct service *s, bool reset_held,
			  const char *cause)
{
	char why[320];
	snprintf(why, sizeof(why), "%s", cause);
	utf8_sanitize(why);
	if (reset_held)
		r->ops.activator_failed(r->ud, s);
	s->failures++;
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "reason", why);
	service_facts_add_int(facts, "failures", s->failures);
	service_emit(r, s, "wake_failed", facts);
	/* A container that started but never answered is of no use running. */
	if (s->running)
		r->ops.runtime_stop(r->ud, s);
	if (s->disabling) {
		service_disable_now(r, s);
		return;
	}
	if (s->failures >= SERVICE_FAILURES_BEFORE_BACKOFF) {
		uint64_t b = backoff_us(s->failures);
		service_enter(r, s, SERVICE_FAILED);
		s->retry_at_us = now(r) + b;
		char in[32];
		service_set_reason(s, "%u wakes failed (last: %s); connections refused for %s",
				   s->failures, why, duration_format(b, in, sizeof(in)));
		r->ops.timer_set(r->ud, s, s->retry_at_us);
	} else {
		service_enter(r, s, SERVICE_ASLEEP);
		service_set_reason(s, "last wake failed (%s); wakes on the next connection", why);
	}
}

/* --- public ------------------------------------------------------------------ */

int service_add(struct service_registry *r, const struct service_spec *spec, bool running,
		struct service **out)
{
	r->error[0] = '\0';
	if (spec->n_ports == 0)
		return service_refuse(r, EINVAL, "Cannot manage %s: it publishes no TCP port",
				      spec->name);
	struct service *s;
	int ret = service_alloc(r, spec, &s);
	if (ret < 0)
		return ret;
	s->state = running ? SERVICE_AWAKE : SERVICE_ASLEEP;
	if (!running) {
		ret = service_redirect_add(r, s);
		if (ret < 0) {
			service_discard(s);
			return ret;
		}
		service_enter(r, s, SERVICE_ASLEEP);
		service_set_reason(s, "stopped; wakes on the next connection");
	}
	service_link(r, s);
	if (running)
		service_become_awake(r, s);
	*out = s;
	return 0;
}

void service_update_settings(struct service_registry *r, struct service *s,
			     const struct service_spec *set)
{
	service_take_settings(s, set);
	if (service_idle_clock_runs(s))
		service_arm_idle_timer(r, s);
}

void service_disable(struct service_registry *r, struct service *s)
{
	/* Paused: thawed first (now, or once the pause under way answers). */
	if (s->state == SERVICE_FROZEN || (s->state == SERVICE_AWAKE && s->freeze_pending)) {
		if (s->disabling)
			return;
		s->disabling = true;
		service_set_reason(s, "being disabled: thawed first, then no longer managed");
		if (s->state == SERVICE_FROZEN)
			service_thaw(r, s, "disable", NULL, now(r));
		return;
	}
	/* UNKNOWN: nothing can be woken yet; the user asked, so it goes now. */
	if (s->state == SERVICE_AWAKE || s->state == SERVICE_UNKNOWN) {
		service_disable_now(r, s);
		return;
	}
	/* Not running: it is woken first and let go once it answers, so that
	 * no client meets a stopped container in between. */
	if (s->disabling)
		return;
	s->disabling = true;
	if (s->state == SERVICE_ASLEEP || s->state == SERVICE_FAILED)
		service_begin_wake(r, s, NULL, "disable");
	else if (s->state == SERVICE_SLEEPING) {
		s->start_after_stop = true;
		probe_during_stop(r, s);
	}
	service_set_reason(s, "being disabled: woken first, then no longer managed");
}

void service_remove(struct service_registry *r, struct service *s)
{
	service_redirect_remove(r, s);
	if (r->ops.activator_held(r->ud, s) > 0)
		r->ops.activator_failed(r->ud, s);
	service_emit(r, s, "removed", NULL);
	service_unlink(r, s);
	service_destroy(r, s);
}

int service_sleep_now(struct service_registry *r, struct service *s, const char *why)
{
	switch (s->state) {
	case SERVICE_AWAKE:
		if (s->freeze_pending)
			return -EBUSY;
		service_read_activity(r, s);
		return service_go_to_sleep(r, s, why);
	case SERVICE_FROZEN:
		if (s->thaw_pending)
			return -EBUSY;
		service_read_activity(r, s);
		return service_go_to_sleep(r, s, why);
	case SERVICE_ASLEEP:
	case SERVICE_FAILED:
		return -EALREADY;
	default:
		return -EBUSY;
	}
}

int service_wake_now(struct service_registry *r, struct service *s, const char *why)
{
	switch (s->state) {
	case SERVICE_ASLEEP:
	case SERVICE_FAILED:
		service_begin_wake(r, s, NULL, why);
		return 0;
	case SERVICE_SLEEPING:
		s->start_after_stop = true;
		probe_during_stop(r, s);
		return 0;
	case SERVICE_FROZEN:
		service_thaw(r, s, why, NULL, now(r));
		return 0;
	case SERVICE_UNKNOWN:
		return -EBUSY;
	default:
		return -EALREADY;
	}
}

void service_on_timer(struct service_registry *r, uint64_t id)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	if (s->state == SERVICE_FAILED) {
		if (now(r) < s->retry_at_us) {
			r->ops.timer_set(r->ud, s, s->retry_at_us);
			return;
		}
		service_enter(r, s, SERVICE_ASLEEP);
		service_set_reason(
		    s, "backoff over after %u failed wakes; wakes on the next connection",
		    s->failures);
		return;
	}
	if (s->state == SERVICE_WAKING && s->start_done_us == 0 && r->start_timeout_us) {
		uint64_t deadline = s->wake_started_us + r->start_timeout_us;
		if (now(r) < deadline) {
			/* The loop's timer may fire a little early by our clock. */
			r->ops.timer_set(r->ud, s, deadline);
			return;
		}
		char in[32], why[96];
		snprintf(why, sizeof(why), "the runtime did not start it within %s",
			 duration_format(r->start_timeout_us, in, sizeof(in)));
		service_wake_failure(r, s, true, why);
		return;
	}
	if (!service_idle_clock_runs(s))
		return;
	service_idle_check(r, s);
}

void service_on_stop_done(struct service_registry *r, uint64_t id, int err, const char *msg)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	if (s->state != SERVICE_SLEEPING) {
		if (err >= 0)
			s->running = false;
		return;
	}
	if (s->stop_probing) {
		/* Its probe was of the container now gone (or that stays, when the
		 * stop failed): the next probe is a wake's own. */
		s->stop_probing = false;
		r->ops.activator_probe_cancel(r->ud, s);
	}
	bool held = r->ops.activator_held(r->ud, s) > 0;
	if (err < 0) {
		s->sleeps_failed++;
		if (held) {
			/* Still running: the held clients can go through. */
			service_enter(r, s, SERVICE_WAKING);
			s->wake_started_us = s->start_done_us = now(r);
			r->ops.activator_starting(r->ud, s);
			return;
		}
		service_redirect_remove(r, s);
		service_become_awake(r, s);
		service_set_reason(s, "stop failed: %s", msg ? msg : strerror(-err));
		return;
	}
	s->running = false;
	s->sleeps_stopped++;
	if (held || s->start_after_stop) {
		snprintf(s->last_stop, sizeof(s->last_stop),
			 "finished, then started again for a %s that came during it",
			 held ? "client" : "command");
		service_begin_wake(r, s, NULL,
				   held ? "connection during stop" : "command during stop");
		return;
	}
	snprintf(s->last_stop, sizeof(s->last_stop), "finished");
	service_enter(r, s, SERVICE_ASLEEP);
	service_set_reason(s, "asleep; wakes on the next connection");
}

void service_on_start_done(struct service_registry *r, uint64_t id, int err, const char *msg)
{
	struct service *s = service_find_by_id(r, id);
	if (!s || s->state != SERVICE_WAKING)
		return;
	if (err < 0) {
		char why[320];
		snprintf(why, sizeof(why), "start failed: %s", msg ? msg : strerror(-err));
		service_wake_failure(r, s, true, why);
		return;
	}
	s->running = true;
	s->start_done_us = now(r);
	r->ops.timer_set(r->ud, s, 0);
	r->ops.activator_starting(r->ud, s);
}

void service_on_wake_requested(struct service_registry *r, uint64_t id,
			       const struct sockaddr_storage *client)
{
	struct service *s = service_find_by_id(r, id);
	if (!s)
		return;
	switch (s->state) {
	case SERVICE_ASLEEP:
		service_begin_wake(r, s, client, "connection");
		break;
	case SERVICE_SLEEPING:
		s->start_after_stop = true;
		probe_during_stop(r, s);
		break;
	case SERVICE_AWAKE:
		/* Redirected just before its ports left the set: it answers now. */
		r->ops.activator_starting(r->ud, s);
		break;
	case SERVICE_FAILED:
		if (now(r) >= s->retry_at_us)
			service_begin_wake(r, s, client, "connection");
		else
			r->ops.activator_failed(r->ud, s);
		break;
	case SERVICE_WAKING:
		if (s->start_done_us)
			r->ops.activator_starting(r->ud, s);
		break;
	case SERVICE_FROZEN: {
		/* Redirected as its ports left the set for the freeze. */
		char who[INET6_ADDRSTRLEN + 16] = "";
		if (client)
			sockaddr_to_string(client, who, sizeof(who));
		service_thaw(r, s, "connection", who, now(r));
		if (s->state == SERVICE_AWAKE)
			r->ops.activator_starting(r->ud, s);
		break;
	}
	case SERVICE_UNKNOWN:
		/* Held until the runtime answers (or the activator's hold timeout). */
		s->wake_when_known = true;
		break;
	}
}

/* A client came during the stop and the container still served it. */
static void cancel_sleep(struct service_registry *r, struct service *s, uint64_t probe_us)
{
	s->stop_probing = false;
	if (!r->ops.runtime_stop_cancel(r->ud, s)) {
		/* The kill went first: the clients relayed to it will be cut, and
		 * the stop's end wakes it again for the next ones. */
		return;
	}
	uint64_t t = now(r);
	service_redirect_remove(r, s);
	s->sleeps_cancelled++;
	struct json_object *facts = service_facts_new();
	service_facts_add_str(facts, "reason",
			      "a client came during the stop and the container still served");
	service_facts_add_int(facts, "stopping_ms", (int64_t)((t - s->state_since_us) / 1000));
	service_facts_add_int(facts, "probe_ms", (int64_t)(probe_us / 1000));
	service_become_awake(r, s);
	service_set_reason(
	    s, "awake: a client came during its stop and it still served, so the stop was "
	       "cancelled");
	snprintf(s->last_stop, sizeof(s->last_stop),
		 "cancelled: a client came during it and the container still served");
	service_emit(r, s, "sleep_cancelled", facts);
	if (s->disabling)
		service_disable_now(r, s);
}

void service_on_ready(struct service_registry *r, uint64_t id, uint64_t probe_us)
{
	struct service *s = service_find_by_id(r, id);
	if (s && s->state == SERVICE_SLEEPING && s->stop_probing) {
		cancel_sleep(r, s, probe_us);
		return;
	}
	if (!s || s->state != SERVICE_WAKING)
		return;
	uint64_t t = now(r);
	service_redirect_remove(r, s);
	s->failures = 0;
	s->wakes++;
	s->last_wake_ms = (int64_t)((t - s->wake_started_us) / 1000);
	struct json_object *facts = service_facts_new();
	uint64_t start_us = s->start_done_us ? s->start_done_us - s->wake_started_us : 0;
	service_facts_add_int(facts, "start_ms", (int64_t)(start_us / 1000));
	service_facts_add_int(facts, "probe_ms", (int64_t)(probe_us / 1000));
	service_facts_add_int(facts, "total_ms", s->last_wake_ms);
	if (s->probe_used[0])
		service_facts_add_str(facts, "probe", s->probe_used);
	service_become_awake(r, s);
	service_emit(r, s, "ready", facts);
	if (s->disabling)
		service_disable_now(r, s);
}

void service_on_wake_failed(struct service_registry *r, uint64_t id, int reason,
			    const char *last_answer)
{
	struct service *s = service_find_by_id(r, id);
	if (s && s->state == SERVICE_UNKNOWN)
		s->wake_when_known = false; /* the held clients gave up */
	if (!s || s->state != SERVICE_WAKING)
		return;
	char why[320];
	bool said = last_answer && last_answer[0];
	if (reason == -ETIMEDOUT)
		snprintf(why, sizeof(why), "not ready on port %u in time%s%s",
			 s->ports[0].host_port, said ? "; last answer: " : "",
			 said ? last_answer : "");
	else
		snprintf(why, sizeof(why), "%s%s%s", strerror(reason < 0 ? -reason : reason),
			 said ? "; last answer: " : "", said ? last_answer : "");
	service_wake_failure(r, s, false, why);
}

bool service_accepts_clients(struct service_registry *r, const struct service *s)
{
	return s->state != SERVICE_FAILED || now(r) >= s->retry_at_us;
}
