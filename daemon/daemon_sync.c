// SPDX-License-Identifier: MIT
/*
 * Keeping the services in step with the runtime: the saved and labelled
 * containers at start-up, the runtime's events, and a full resync whenever
 * the event stream comes back after a break (what happened meanwhile is lost).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_internal.h"
#include "dozed/duration.h"
#include "dozed/feed.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "dozed/state_store.h"

#define LABEL_ENABLE  "dozed.enable"
#define LABEL_IDLE    "dozed.idle"
#define LABEL_WAKE_ON "dozed.wake-on"

static void service_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	service_on_timer(x->d->services, x->id);
}

static bool has_port(const struct service_port *ports, size_t n, uint16_t host_port)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i].host_port == host_port)
			return true;
	return false;
}

/* The published TCP host ports of c, each once. */
static size_t container_ports(const struct runtime_container *c, struct service_port *out)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_ports && n < SERVICE_MAX_PORTS; i++) {
		if (has_port(out, n, c->ports[i].host_port))
			continue;
		struct service_port *p = &out[n++];
		snprintf(p->host_ip, sizeof(p->host_ip), "%s", c->ports[i].host_ip);
		p->host_port = c->ports[i].host_port;
		p->container_port = c->ports[i].container_port;
	}
	return n;
}

int dozed_enable_container(struct dozed *d, const struct runtime_container *c, uint64_t idle_us,
			   bool idle_explicit, bool wake_on_data, struct service **out, char *why,
			   size_t why_len)
{
	struct service *s = service_find_by_container(d->services, c->id);
	if (s) {
		service_update_settings(d->services, s, idle_explicit ? idle_us : d->cfg.idle_us,
					wake_on_data);
		s->disabling = false; /* enabled again before a disable completed */
		((struct svc_extra *)s->userdata)->idle_explicit = idle_explicit;
		*out = s;
		return 0;
	}
	struct service_port ports[SERVICE_MAX_PORTS];
	size_t n_ports = container_ports(c, ports);
	if (n_ports == 0) {
		snprintf(why, why_len,
			 "%s publishes no TCP port: dozed wakes a container by its published "
			 "ports (run it with -p HOSTPORT:PORT)",
			 c->name);
		return -EINVAL;
	}
	struct svc_extra *x = calloc(1, sizeof(*x));
	if (x)
		x->timer = evtimer_new(d->base, service_timer_cb, x);
	if (!x || !x->timer) {
		free(x);
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	x->d = d;
	x->idle_explicit = idle_explicit;
	struct service_spec spec = {
	    .name = c->name,
	    .container_id = c->id,
	    .idle_us = idle_explicit ? idle_us : d->cfg.idle_us,
	    .wake_on_data = wake_on_data,
	    .ports = ports,
	    .n_ports = n_ports,
	    .userdata = x,
	};
	int r = service_add(d->services, &spec, c->running, &s);
	if (r < 0) {
		event_free(x->timer);
		free(x);
		if (r == -EADDRINUSE)
			snprintf(why, why_len, "a port of %s belongs to another service", c->name);
		else if (r == -EEXIST)
			snprintf(why, why_len, "another service is named %s", c->name);
		else
			snprintf(why, why_len, "cannot manage %s: %s", c->name, strerror(-r));
		return r;
	}
	x->id = s->id;
	if (c->running)
		dozed_attach_counter(d, s, c->cgroup_dir);
	*out = s;
	return 0;
}

/* dozed.idle=DURATION and dozed.wake-on=data on a labelled container. */
static void settings_from_labels(const struct runtime_container *c, uint64_t *idle_us,
				 bool *idle_explicit, bool *wake_on_data)
{
	const char *idle = runtime_container_label(c, LABEL_IDLE);
	const char *wake_on = runtime_container_label(c, LABEL_WAKE_ON);
	*idle_explicit = false;
	if (idle) {
		if (duration_parse_us(idle, idle_us) == 0 && *idle_us >= 1000000)
			*idle_explicit = true;
		else
			log_warning("%s: label %s=%s is not a duration of 1s or more (like 30s, "
				    "10m, 2h); using the default",
				    c->name, LABEL_IDLE, idle);
	}
	if (wake_on && strcmp(wake_on, "data") != 0 && strcmp(wake_on, "connect") != 0)
		log_warning("%s: label %s=%s: expected connect or data; using connect", c->name,
			    LABEL_WAKE_ON, wake_on);
	*wake_on_data = wake_on && strcmp(wake_on, "data") == 0;
}

static bool label_enabled(const struct runtime_container *c)
{
	const char *v = runtime_container_label(c, LABEL_ENABLE);
	return v && strcmp(v, "true") == 0;
}

/* --- start-up ---------------------------------------------------------------------- */

static void load_done(int err, const struct runtime_error *error, const struct runtime_container *c,
		      void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	enum pending_kind kind = op->kind;
	char name[256];
	snprintf(name, sizeof(name), "%s", op->container);
	uint64_t idle_us = op->idle_us;
	bool idle_explicit = op->idle_explicit, wake_on_data = op->wake_on_data;
	bool from_label = op->from_label;
	pending_op_free(op);
	if (kind == PENDING_LOAD)
		d->loading--;

	if (err == -ENOENT && error->http_status == 404 && from_label) {
		/* Gone before we looked: it was never ours. */
	} else if (err == -ENOENT && error->http_status == 404) {
		/* Saved, but the container is gone. */
		feed_emit(d->feed, "removed", name, NULL, NULL);
		dozed_save_state(d);
	} else if (err < 0) {
		log_error("%s: cannot load its state: %s", name, error->message);
	} else if (!from_label || label_enabled(c)) {
		if (from_label)
			settings_from_labels(c, &idle_us, &idle_explicit, &wake_on_data);
		bool known = service_find_by_container(d->services, c->id) != NULL;
		struct service *s;
		char why[256];
		if (dozed_enable_container(d, c, idle_us, idle_explicit, wake_on_data, &s, why,
					   sizeof(why)) < 0)
			log_error("%s: not managed: %s", c->name, why);
		else if (!known && from_label) {
			feed_emit(d->feed, "enabled", s->name, s->container_id, NULL);
			dozed_save_state(d);
		}
	}
	dozed_check_ready(d);
}

/* A saved service (settings given) or a labelled container (settings from its labels). */
static int inspect_for_load(struct dozed *d, enum pending_kind kind, const char *container,
			    const char *name, bool from_label, uint64_t idle_us, bool wake_on_data)
{
	struct pending_op *op = pending_op_new(d, kind, 0);
	if (!op)
		return -ENOMEM;
	op->from_label = from_label;
	/* The name for events and logs; the runtime is asked by id when known. */
	op->container = strdup(name);
	op->idle_us = idle_us;
	op->idle_explicit = idle_us > 0;
	op->wake_on_data = wake_on_data;
	int r = op->container ? runtime_inspect(d->runtime, container, load_done, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		return log_error_errno(r, "Failed to ask the runtime about %s", container);
	}
	if (kind == PENDING_LOAD)
		d->loading++;
	return 0;
}

static void labelled_listed(int err, const struct runtime_error *error,
			    const struct runtime_container *cs, size_t n, void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	bool at_start = op->kind == PENDING_LIST;
	pending_op_free(op);
	if (at_start)
		d->loading--;
	if (err < 0)
		log_error("Cannot list the containers labelled %s=true: %s", LABEL_ENABLE,
			  error->message);
	for (size_t i = 0; err >= 0 && i < n; i++)
		if (!service_find_by_container(d->services, cs[i].id))
			inspect_for_load(d, at_start ? PENDING_LOAD : PENDING_LABELED, cs[i].id,
					 cs[i].name ? cs[i].name : cs[i].id, true, 0, false);
	dozed_check_ready(d);
}

static int list_labelled(struct dozed *d, enum pending_kind kind)
{
	struct pending_op *op = pending_op_new(d, kind, 0);
	if (!op)
		return -ENOMEM;
	int r = runtime_list(d->runtime, LABEL_ENABLE "=true", labelled_listed, op);
	if (r < 0) {
		pending_op_free(op);
		return log_error_errno(r, "Failed to list the labelled containers");
	}
	if (kind == PENDING_LIST)
		d->loading++;
	return 0;
}

int dozed_sync_start(struct dozed *d)
{
	struct state_service *saved = NULL;
	size_t n = 0;
	int r = state_store_load(d->cfg.state_dir, &saved, &n);
	if (r < 0 && r != -EBADMSG)
		return r;
	/* The saved labels come first, so labelled ones are not enabled twice. */
	for (size_t i = 0; i < n; i++) {
		const char *which = saved[i].container_id && *saved[i].container_id
					? saved[i].container_id
					: saved[i].container;
		inspect_for_load(d, PENDING_LOAD, which, saved[i].name, false, saved[i].idle_us,
				 saved[i].wake_on_data);
	}
	state_services_free(saved, n);
	d->loading++; /* until the list below is answered */
	r = list_labelled(d, PENDING_LIST);
	d->loading--;
	dozed_check_ready(d);
	return r;
}

/* --- runtime events ------------------------------------------------------------------ */

static void resync_done(int err, const struct runtime_error *error,
			const struct runtime_container *c, void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	struct service *s = service_find_by_id(d->services, op->service_id);
	pending_op_free(op);
	if (!s)
		return;
	if (err == -ENOENT && error->http_status == 404) {
		service_remove(d->services, s);
		dozed_save_state(d);
		return;
	}
	if (err < 0)
		return;
	if (c->running && (s->state == SERVICE_ASLEEP || s->state == SERVICE_FAILED)) {
		service_on_runtime_started(d->services, s->id);
		dozed_attach_counter(d, s, c->cgroup_dir);
	} else if (!c->running && s->state == SERVICE_AWAKE) {
		service_on_runtime_died(d->services, s->id);
	}
}

static void events_connected(void *userdata)
{
	struct dozed *d = userdata;
	if (!d->ready)
		return; /* start-up is doing all of this */
	for (struct service *s = service_first(d->services); s; s = s->next) {
		struct pending_op *op = pending_op_new(d, PENDING_RESYNC, s->id);
		if (op && runtime_inspect(d->runtime, s->container_id, resync_done, op) < 0)
			pending_op_free(op);
	}
	list_labelled(d, PENDING_LABELED);
}

static void events_event(const struct runtime_event *ev, void *userdata)
{
	struct dozed *d = userdata;
	struct service *s = service_find_by_container(d->services, ev->id);
	if (!s) {
		if (ev->type == RUNTIME_EVENT_START)
			inspect_for_load(d, PENDING_LABELED, ev->id, ev->name ? ev->name : ev->id,
					 true, 0, false);
		return;
	}
	switch (ev->type) {
	case RUNTIME_EVENT_START:
		service_on_runtime_started(d->services, s->id);
		dozed_reattach(d, s);
		break;
	case RUNTIME_EVENT_DIE:
		service_on_runtime_died(d->services, s->id);
		break;
	case RUNTIME_EVENT_DESTROY:
		service_remove(d->services, s);
		dozed_save_state(d);
		break;
	}
}

const struct runtime_events_ops dozed_events_ops = {
    .event = events_event,
    .connected = events_connected,
};
