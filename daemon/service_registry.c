// SPDX-License-Identifier: MIT
/*
 * The service registry: the services, found by id, name, container or port,
 * added and removed; the ops every service's effects go through. The
 * transitions are service.c's. Logs nothing: a refusal's text is kept for
 * the caller (service_registry_error).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/service.h"
#include "service_internal.h"

static const char *const state_names[] = {
    [SERVICE_AWAKE] = "awake",	 [SERVICE_SLEEPING] = "sleeping", [SERVICE_ASLEEP] = "asleep",
    [SERVICE_WAKING] = "waking", [SERVICE_FAILED] = "failed",	  [SERVICE_UNKNOWN] = "unknown",
    [SERVICE_FROZEN] = "frozen",
};

const char *service_state_name(enum service_state s)
{
	return (size_t)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

/* Every op is called unconditionally: one left out (a copy of the ops that
 * fell behind the struct) is refused here, not a call through NULL later. */
static bool ops_complete(const struct service_ops *ops)
{
	return ops->now_us && ops->redirect_add && ops->redirect_remove && ops->runtime_stop &&
	       ops->runtime_start && ops->runtime_stop_cancel && ops->activator_starting &&
	       ops->activator_probe_cancel && ops->activator_failed && ops->activator_held &&
	       ops->activator_waiting && ops->egress_read && ops->sleep_blocker && ops->timer_set &&
	       ops->runtime_freeze && ops->runtime_thaw && ops->emit && ops->forget &&
	       ops->state_changed;
}

int service_registry_new(const struct service_ops *ops, void *ud, struct service_registry **out)
{
	if (!ops || !ops_complete(ops))
		return -EINVAL;
	struct service_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ops = *ops;
	r->ud = ud;
	r->next_id = 1;
	*out = r;
	return 0;
}

void service_destroy(struct service_registry *r, struct service *s)
{
	r->ops.timer_set(r->ud, s, 0);
	r->ops.forget(r->ud, s);
	free(s->name);
	free(s->container_id);
	free(s);
}

void service_registry_free(struct service_registry *r)
{
	if (!r)
		return;
	while (r->head) {
		struct service *s = r->head;
		r->head = s->next;
		service_destroy(r, s);
	}
	free(r);
}

void service_registry_set_start_timeout(struct service_registry *r, uint64_t us)
{
	r->start_timeout_us = us;
}

const char *service_registry_error(const struct service_registry *r)
{
	return r->error;
}

/* A refused call: returns -err, and says why for the caller to log. */
int service_refuse(struct service_registry *r, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return -err;
}

struct service *service_first(struct service_registry *r)
{
	return r->head;
}

size_t service_count(const struct service_registry *r)
{
	return r->n;
}

struct service *service_find_by_id(struct service_registry *r, uint64_t id)
{
	for (struct service *s = r->head; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct service *service_find_by_name(struct service_registry *r, const char *name)
{
	for (struct service *s = r->head; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

struct service *service_find_by_container(struct service_registry *r, const char *id_or_name)
{
	size_t len = strlen(id_or_name);
	for (struct service *s = r->head; s; s = s->next) {
		if (strcmp(s->name, id_or_name) == 0)
			return s;
		/* A unique id prefix, as the runtimes accept (12 hex digits shown). */
		if (len >= 12 && strncmp(s->container_id, id_or_name, len) == 0)
			return s;
	}
	return NULL;
}

struct service *service_find_by_port(struct service_registry *r, uint16_t host_port)
{
	for (struct service *s = r->head; s; s = s->next)
		for (size_t i = 0; i < s->n_ports; i++)
			if (s->ports[i].host_port == host_port)
				return s;
	return NULL;
}

void service_unlink(struct service_registry *r, struct service *s)
{
	for (struct service **p = &r->head; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			r->n--;
			return;
		}
	}
}

int service_check_ports(struct service_registry *r, const struct service *self, const char *name,
			const struct service_port *ports, size_t n_ports)
{
	for (size_t i = 0; i < n_ports; i++) {
		struct service *other = service_find_by_port(r, ports[i].host_port);
		if (other && other != self)
			return service_refuse(r, EADDRINUSE,
					      "Cannot manage %s: port %u is already %s's", name,
					      ports[i].host_port, other->name);
	}
	return 0;
}

int service_alloc(struct service_registry *r, const struct service_spec *spec, struct service **out)
{
	if (spec->n_ports > SERVICE_MAX_PORTS)
		return service_refuse(
		    r, EINVAL,
		    "Cannot manage %s: it publishes %zu TCP ports (1 to %d are supported)",
		    spec->name, spec->n_ports, SERVICE_MAX_PORTS);
	if (service_find_by_name(r, spec->name))
		return service_refuse(r, EEXIST, "%s is already managed", spec->name);
	int ret = service_check_ports(r, NULL, spec->name, spec->ports, spec->n_ports);
	if (ret < 0)
		return ret;
	struct service *s = calloc(1, sizeof(*s));
	if (!s)
		return service_refuse(r, ENOMEM, "Failed to allocate service %s", spec->name);
	s->name = strdup(spec->name);
	s->container_id = strdup(spec->container_id);
	if (!s->name || !s->container_id) {
		free(s->name);
		free(s->container_id);
		free(s);
		return service_refuse(r, ENOMEM, "Failed to allocate service %s", spec->name);
	}
	s->id = r->next_id++;
	service_take_settings(s, spec);
	if (spec->n_ports > 0)
		memcpy(s->ports, spec->ports, spec->n_ports * sizeof(*spec->ports));
	s->n_ports = spec->n_ports;
	s->last_wake_ms = -1;
	s->last_thaw_us = -1;
	/* Its time in its first state counts from now. */
	s->state_since_us = service_registry_now_us(r);
	s->userdata = spec->userdata;
	*out = s;
	return 0;
}

void service_discard(struct service *s)
{
	free(s->name);
	free(s->container_id);
	free(s);
}

void service_link(struct service_registry *r, struct service *s)
{
	s->next = r->head;
	r->head = s;
	r->n++;
}

size_t service_host_ports(const struct service *s, uint16_t *ports)
{
	for (size_t i = 0; i < s->n_ports; i++)
		ports[i] = s->ports[i].host_port;
	return s->n_ports;
}

uint64_t service_registry_now_us(struct service_registry *r)
{
	return r->ops.now_us(r->ud);
}

uint64_t service_state_time_us(const struct service *s, enum service_state state, uint64_t now_us)
{
	if ((size_t)state >= SERVICE_STATE_COUNT)
		return 0;
	uint64_t t = s->state_total_us[state];
	if (s->state == state && now_us > s->state_since_us)
		t += now_us - s->state_since_us;
	return t;
}

size_t service_held(struct service_registry *r, struct service *s)
{
	return r->ops.activator_held(r->ud, s);
}

void service_note_egress(struct service *s, uint64_t bytes, uint64_t packets, uint64_t last_ns)
{
	/* Less than last read: a new cgroup's counter (the daemon zeroes
	 * egress_bytes when it attaches one), counted from zero. */
	s->egress_bytes_total += bytes >= s->egress_bytes ? bytes - s->egress_bytes : bytes;
	s->egress_bytes = bytes;
	s->egress_packets = packets;
	if (last_ns)
		s->last_activity_us = last_ns / 1000;
}

void service_take_settings(struct service *s, const struct service_spec *spec)
{
	s->idle_us = spec->idle_us;
	s->wake_on_data = spec->wake_on_data;
	s->probe = spec->probe;
	s->ignore = spec->ignore;
	s->ignore_set = spec->ignore_set;
	s->keep_awake_connections = spec->keep_awake_connections;
	/* New settings, a new chance for a pause the runtime refused. */
	if (s->freeze_after_us != spec->freeze_after_us)
		s->freeze_refused[0] = '\0';
	s->freeze_after_us = spec->freeze_after_us;
	s->reclaim_frozen = spec->reclaim_frozen;
}

void service_note_counted(struct service *s, const char *what)
{
	snprintf(s->last_counted, sizeof(s->last_counted), "%s", what ? what : "");
}
