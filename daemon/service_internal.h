/* SPDX-License-Identifier: MIT */
#pragma once

/* What service.c (the transitions) and service_registry.c (the registry)
 * share; nothing outside the service state machine sees it. */

#include "dozed/service.h"

struct service_registry {
	struct service_ops ops;
	void *ud;
	uint64_t start_timeout_us; /* 0: none */
	struct service *head;
	size_t n;
	uint64_t next_id;
	char error[320]; /* why the last add or reconcile was refused; "" if not */
};

/* Records why a call is refused (service_registry_error); returns -err. */
__attribute__((format(printf, 3, 4))) int service_refuse(struct service_registry *r, int err,
							 const char *fmt, ...);
/* -EADDRINUSE (refused, with the owner named) when a port is another's than self's. */
int service_check_ports(struct service_registry *r, const struct service *self, const char *name,
			const struct service_port *ports, size_t n_ports);
/* A new service for spec, not yet in the registry: its state is the caller's. */
int service_alloc(struct service_registry *r, const struct service_spec *spec,
		  struct service **out);
/* Frees a service service_alloc made that never went into the registry. */
void service_discard(struct service *s);
void service_link(struct service_registry *r, struct service *s);
void service_unlink(struct service_registry *r, struct service *s);
/* Frees a service taken out of the registry: timer cancelled, ops->forget. */
void service_destroy(struct service_registry *r, struct service *s);

/* The transitions' shared steps (service.c), for service_unknown.c and
 * service_runtime.c. */
void service_enter(struct service_registry *r, struct service *s, enum service_state state);
__attribute__((format(printf, 2, 3))) void service_set_reason(struct service *s, const char *fmt,
							      ...);
/* The ports into / out of the set; < 0 when nft refused (s unchanged). */
int service_redirect_add(struct service_registry *r, struct service *s);
int service_redirect_remove(struct service_registry *r, struct service *s);
void service_become_awake(struct service_registry *r, struct service *s);
void service_begin_wake(struct service_registry *r, struct service *s,
			const struct sockaddr_storage *client, const char *trigger);
/* An event; facts (from service_facts_new) is taken, may be NULL. */
void service_emit(struct service_registry *r, struct service *s, const char *event,
		  struct json_object *facts);
struct json_object *service_facts_new(void);
void service_facts_add_int(struct json_object *facts, const char *key, int64_t v);
void service_facts_add_str(struct json_object *facts, const char *key, const char *v);
/* A failed wake: held clients reset (by the activator, or here when
 * reset_held), FAILED after repeated ones, else ASLEEP. */
void service_wake_failure(struct service_registry *r, struct service *s, bool reset_held,
			  const char *cause);

/* The settings of spec (idle, wake_on, probe, ignore rules, keep awake)
 * into s, for service_add and service_update_settings. */
void service_take_settings(struct service *s, const struct service_spec *spec);

/* service_idle.c: the idle decision. */
/* When s sleeps by its last reading: its last activity (or wake) + idle. */
uint64_t service_idle_deadline(const struct service *s);
/* Reads the counted traffic and the relayed clients waiting into s. */
void service_read_activity(struct service_registry *r, struct service *s);
/* Its idle timer: a look when the last quarter of the idle time begins,
 * then the deadline. */
void service_arm_idle_timer(struct service_registry *r, struct service *s);
/* The idle timer fired for an awake s: moves the deadline, keeps it awake
 * for a connection, or puts it to sleep. */
void service_idle_check(struct service_registry *r, struct service *s);
/* service.c: ports into the set, then the stop. */
int service_go_to_sleep(struct service_registry *r, struct service *s, const char *why);
/* service.c: stops managing s (ports straight to it, forgotten). */
void service_disable_now(struct service_registry *r, struct service *s);

/* service_freeze.c: light sleep. */
/* Set, not refused by the runtime, and shorter than the idle time. */
bool service_freeze_tier_on(const struct service *s);
/* The idle time of s's next tier: freeze_after while awake with light sleep
 * on, else idle. */
uint64_t service_tier_us(const struct service *s);
/* The runtime's pause, the wake hook armed first. */
void service_go_to_freeze(struct service_registry *r, struct service *s);
/* A frozen s runs again (or restarts, clients held, when it cannot). */
void service_thaw(struct service_registry *r, struct service *s, const char *trigger,
		  const char *client, uint64_t at_us);
/* Since when s has been idle: its last counted traffic, or its wake when
 * nothing counted since. */
static inline uint64_t service_idle_since(const struct service *s)
{
	return s->last_activity_us > s->awake_since_us ? s->last_activity_us : s->awake_since_us;
}
/* An awake or frozen service whose idle clock runs: no pause or thaw is
 * out, whose answer decides what comes next. */
static inline bool service_idle_clock_runs(const struct service *s)
{
	return (s->state == SERVICE_AWAKE && !s->freeze_pending) ||
	       (s->state == SERVICE_FROZEN && !s->thaw_pending);
}
