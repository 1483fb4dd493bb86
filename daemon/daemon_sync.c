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
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/nft.h"
#include "dozed/runtime.h"
#include "dozed/settings.h"
#include "dozed/state_store.h"

#define LABEL_ENABLE	     "dozed.enable"
#define LABEL_IDLE	     "dozed.idle"
#define LABEL_WAKE_ON	     "dozed.wake-on"
#define LABEL_PROBE	     "dozed.probe"
#define LABEL_IGNORE	     "dozed.ignore"
#define LABEL_KEEP_AWAKE     "dozed.keep-awake"
#define LABEL_FREEZE_AFTER   "dozed.freeze-after"
#define LABEL_RECLAIM_FROZEN "dozed.reclaim-frozen"

static void reconcile_retry(struct dozed *d);
static void reconcile_next(struct dozed *d);

/* The registry's words when it has them: they name the port and its owner. */
static void log_reconcile_refused(struct dozed *d, const struct service *s)
{
	const char *refused = service_registry_error(d->services);
	log_error("%s: cannot be reconciled: %s", s->name, refused[0] ? refused : s->reason);
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

/* A service's settings as the registry takes them, with idle_us resolved. */
static struct service_spec spec_of_settings(const struct service_settings *set, uint64_t idle_us)
{
	return (struct service_spec){
	    .idle_us = idle_us,
	    .wake_on_data = set->wake_on_data,
	    .probe = set->probe,
	    .ignore = set->ignore,
	    .ignore_set = set->ignore_set,
	    .keep_awake_connections = set->keep_awake_connections,
	    .freeze_after_us = set->freeze_after_us,
	    .reclaim_frozen = set->reclaim_frozen,
	};
}

int dozed_enable_container(struct dozed *d, const struct runtime_container *c,
			   const struct service_settings *set, struct service **out, char *why,
			   size_t why_len)
{
	uint64_t idle_us = set->idle_set ? set->idle_us : d->cfg.idle_us;
	struct service_port ports[SERVICE_MAX_PORTS];
	size_t n_ports = container_ports(c, ports);
	struct service *s = service_find_by_container(d->services, c->id);
	if (s) {
		struct service_spec now = spec_of_settings(set, idle_us);
		service_update_settings(d->services, s, &now);
		dozed_flows_apply_rules(d, s);
		dozed_freeze_settings_changed(d, s);
		s->disabling = false; /* enabled again before a disable completed */
		svc_extra_of(s)->idle_explicit = set->idle_set;
		/* Inspected just now: an UNKNOWN one is known from here on. */
		if (s->state == SERVICE_UNKNOWN) {
			if (service_reconcile(d->services, s, c->id, ports, n_ports, c->running) <
			    0)
				log_reconcile_refused(d, s);
			else if (c->running)
				dozed_attach_counter(d, s, c);
		}
		*out = s;
		return 0;
	}
	if (n_ports == 0) {
		snprintf(why, why_len,
			 "%s publishes no TCP port: dozed wakes a container by its published "
			 "ports (run it with -p HOSTPORT:PORT)",
			 c->name);
		return -EINVAL;
	}
	struct svc_extra *x = svc_extra_create(d);
	if (!x) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	x->idle_explicit = set->idle_set;
	struct service_spec spec = spec_of_settings(set, idle_us);
	spec.name = c->name;
	spec.container_id = c->id;
	spec.ports = ports;
	spec.n_ports = n_ports;
	spec.userdata = x;
	int r = service_add(d->services, &spec, c->running, &s);
	if (r < 0) {
		svc_extra_destroy(x);
		/* The registry's words first: they name the other service. */
		const char *refused = service_registry_error(d->services);
		if (refused[0])
			snprintf(why, why_len, "%s", refused);
		else if (r == -EADDRINUSE)
			snprintf(why, why_len, "a port of %s belongs to another service", c->name);
		else if (r == -EEXIST)
			snprintf(why, why_len, "another service is named %s", c->name);
		else
			snprintf(why, why_len, "cannot manage %s: %s", c->name, strerror(-r));
		return r;
	}
	x->id = s->id;
	if (c->running)
		dozed_attach_counter(d, s, c);
	*out = s;
	return 0;
}

/* dozed.idle, dozed.wake-on, dozed.probe, dozed.ignore, dozed.keep-awake,
 * dozed.freeze-after and dozed.reclaim-frozen, through the one parser of every
 * per-service setting: a bad value is logged, with what is wrong and what is
 * allowed, and that setting's default used. */
static void settings_from_labels(const struct runtime_container *c, struct service_settings *set,
				 uint64_t default_idle_us)
{
	static const char *const labels[] = {
	    LABEL_IDLE,	      LABEL_WAKE_ON,	  LABEL_PROBE,	       LABEL_IGNORE,
	    LABEL_KEEP_AWAKE, LABEL_FREEZE_AFTER, LABEL_RECLAIM_FROZEN};
	*set = (struct service_settings){0};
	for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
		const char *v = runtime_container_label(c, labels[i]), *expected = NULL;
		if (v && settings_set(set, labels[i] + strlen("dozed."), v, &expected) < 0)
			log_warning("%s: label %s=%s: %s; using the default", c->name, labels[i], v,
				    expected);
	}
	char why[192];
	if (settings_check_tiers(set->idle_set ? set->idle_us : default_idle_us,
				 set->freeze_after_us, why, sizeof(why)) < 0) {
		log_warning("%s: label %s=%s: %s; it is not frozen", c->name, LABEL_FREEZE_AFTER,
			    runtime_container_label(c, LABEL_FREEZE_AFTER), why);
		set->freeze_after_us = 0;
	}
}

static bool label_enabled(const struct runtime_container *c)
{
	const char *v = runtime_container_label(c, LABEL_ENABLE);
	return v && strcmp(v, "true") == 0;
}

/* --- start-up ---------------------------------------------------------------------- */

/* A labelled container, inspected: managed if its label still says so. */
static void labelled_inspected(int err, const struct runtime_error *error,
			       const struct runtime_container *c, void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	if (op->kind == PENDING_LOAD)
		d->loading--;
	pending_op_free(op);

	if (err == -ENOENT && error->http_status == 404) {
		/* Gone before we looked: it was never ours. */
	} else if (err < 0) {
		log_error("A labelled container: cannot inspect it: %s", error->message);
	} else if (label_enabled(c) && !service_find_by_container(d->services, c->id)) {
		struct service_settings set;
		settings_from_labels(c, &set, d->cfg.idle_us);
		struct service *s;
		char why[256];
		if (dozed_enable_container(d, c, &set, &s, why, sizeof(why)) < 0) {
			log_error("%s: not managed: %s", c->name, why);
		} else {
			dozed_emit(d, s, "enabled", NULL);
			dozed_save_state(d);
		}
	}
	dozed_check_ready(d);
}

static int inspect_labelled(struct dozed *d, enum pending_kind kind, const char *id)
{
	struct pending_op *op = pending_op_new(d, kind, 0);
	if (!op)
		return -ENOMEM;
	int r = runtime_inspect(d->runtime, id, labelled_inspected, op);
	if (r < 0) {
		pending_op_free(op);
		return log_error_errno(r, "Failed to ask the runtime about %s", id);
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
			inspect_labelled(d, at_start ? PENDING_LOAD : PENDING_LABELED, cs[i].id);
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

static bool port_in(const uint16_t *ports, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i] == port)
			return true;
	return false;
}

/*
 * A saved service goes into the registry at once, UNKNOWN, with the ports it
 * had and its redirect as the kept table has it: whatever the runtime says
 * later, or if it says nothing for a while, no client of a sleeping service
 * meets a closed port meanwhile.
 */
static int add_saved(struct dozed *d, const struct state_service *saved, const uint16_t *set_ports,
		     size_t n_set)
{
	struct service_port ports[SERVICE_MAX_PORTS];
	size_t n_ports = saved->n_ports < SERVICE_MAX_PORTS ? saved->n_ports : SERVICE_MAX_PORTS;
	bool redirected = false;
	for (size_t i = 0; i < n_ports; i++) {
		snprintf(ports[i].host_ip, sizeof(ports[i].host_ip), "%s", saved->ports[i].host_ip);
		ports[i].host_port = saved->ports[i].host_port;
		ports[i].container_port = saved->ports[i].container_port;
		redirected = redirected || port_in(set_ports, n_set, ports[i].host_port);
	}
	struct svc_extra *x = svc_extra_create(d);
	if (!x)
		return -ENOMEM;
	x->idle_explicit = saved->idle_us > 0;
	struct service_spec spec = {
	    .name = saved->name,
	    .container_id = saved->container_id ? saved->container_id : "",
	    .idle_us = saved->idle_us ? saved->idle_us : d->cfg.idle_us,
	    .wake_on_data = saved->wake_on_data,
	    .probe = saved->probe,
	    .ignore = saved->ignore,
	    .ignore_set = saved->ignore_set,
	    .keep_awake_connections = saved->keep_awake_connections,
	    .freeze_after_us = saved->freeze_after_us,
	    .reclaim_frozen = saved->reclaim_frozen,
	    .ports = ports,
	    .n_ports = n_ports,
	    .userdata = x,
	};
	/* Saved with the daemon's idle, which may have changed since: kept, and
	 * not used (the machine freezes only before its idle time) while so. */
	char why[192];
	if (settings_check_tiers(spec.idle_us, spec.freeze_after_us, why, sizeof(why)) < 0)
		log_warning("%s: its saved light sleep is not used: %s", saved->name, why);
	struct service *s;
	int r = service_add_unknown(d->services, &spec, redirected,
				    "the runtime has not answered yet", &s);
	if (r < 0) {
		svc_extra_destroy(x);
		/* Out of memory: its ports may be in the set, so none is removed. */
		d->state_incomplete = true;
		const char *refused = service_registry_error(d->services);
		if (refused[0] && r != -ENOMEM)
			return log_error_errno(SYNTHETIC_ERRNO(r),
					       "%s: the saved service cannot be loaded: %s",
					       saved->name, refused);
		return log_error_errno(r, "%s: the saved service cannot be loaded", saved->name);
	}
	x->id = s->id;
	dozed_reconcile(d, s, PENDING_LOAD);
	return 0;
}

int dozed_sync_start(struct dozed *d)
{
	struct state_service *saved = NULL;
	size_t n = 0;
	int r = state_store_load(d->cfg.state_dir, &saved, &n, &d->aside);
	if (r < 0 && r != -EBADMSG)
		return r;
	d->state_incomplete =
	    r == -EBADMSG || d->aside.n > 0 || state_store_count_corrupt(d->cfg.state_dir) > 0;
	_cleanup_free_ uint16_t *set_ports = NULL;
	size_t n_set = 0;
	if (n > 0 && nft_set_list_ports(d->nft, &set_ports, &n_set) < 0)
		n_set = 0; /* logged; then none counts as redirected, and none is removed */
	/* The saved services come first, so labelled ones are not enabled twice. */
	for (size_t i = 0; i < n; i++)
		add_saved(d, &saved[i], set_ports, n_set);
	state_services_free(saved, n);
	d->loading++; /* until the list below is answered */
	if (list_labelled(d, PENDING_LIST) < 0) {
		/* Logged; the saved services go on, and the list is asked again. */
		d->relist = true;
		reconcile_retry(d);
	}
	d->loading--;
	dozed_check_ready(d);
	return 0;
}

/* --- reconciling: a service against what the runtime says of its container ----------- */

static void reconcile_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct dozed *d = arg;
	if (d->relist) {
		d->relist = list_labelled(d, PENDING_LABELED) < 0;
		if (d->relist)
			reconcile_retry(d);
	}
	for (struct service *s = service_first(d->services); s; s = s->next)
		if (s->state == SERVICE_UNKNOWN)
			dozed_reconcile(d, s, PENDING_RESYNC);
}

#define RECONCILE_RETRY_FIRST_S 1
#define RECONCILE_RETRY_MAX_S	30

/* While a service is UNKNOWN the runtime is asked again, after 1 s doubling
 * to 30 s: its event stream may come back later than the runtime does, and a
 * thousand services must not ask a runtime that is down every second. */
static void reconcile_retry(struct dozed *d)
{
	if (!d->reconcile_timer)
		d->reconcile_timer = evtimer_new(d->base, reconcile_timer_cb, d);
	if (!d->reconcile_timer || evtimer_pending(d->reconcile_timer, NULL))
		return;
	unsigned s = d->reconcile_retry_s ? d->reconcile_retry_s : RECONCILE_RETRY_FIRST_S;
	d->reconcile_retry_s = s * 2 < RECONCILE_RETRY_MAX_S ? s * 2 : RECONCILE_RETRY_MAX_S;
	struct timeval tv = {.tv_sec = s};
	evtimer_add(d->reconcile_timer, &tv);
}

static void reconcile_unknown(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	struct service_port ports[SERVICE_MAX_PORTS];
	size_t n_ports = container_ports(c, ports);
	int r = service_reconcile(d->services, s, c->id, ports, n_ports, c->running);
	if (r < 0) {
		log_reconcile_refused(d, s);
		return;
	}
	log_info("%s: reconciled: %s", s->name, service_state_name(s->state));
	if (c->running)
		dozed_attach_counter(d, s, c);
	dozed_save_state(d); /* its ports and id as the runtime has them */
}

static void reconcile_done(int err, const struct runtime_error *error,
			   const struct runtime_container *c, void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	uint64_t id = op->service_id;
	struct service *s = service_find_by_id(d->services, id);
	if (op->kind == PENDING_LOAD)
		d->loading--;
	pending_op_free(op);
	bool again = false;
	d->reconcile_in_flight--;
	if (s) {
		struct svc_extra *x = svc_extra_of(s);
		x->inspect_pending = false;
		again = x->reinspect && err >= 0;
	}

	if (!s) {
		/* disabled or removed meanwhile */
	} else if (err == -ENOENT && error->http_status == 404) {
		/* Only the runtime's own "no such container" removes a service. */
		service_remove(d->services, s);
		dozed_save_state(d);
	} else if (err < 0) {
		struct svc_extra *x = svc_extra_of(s);
		if (s->state == SERVICE_UNKNOWN) {
			service_set_unknown_reason(s, error->message);
			if (strncmp(x->last_unknown_why, error->message,
				    sizeof(x->last_unknown_why) - 1) != 0)
				log_warning("%s: kept as it was until the runtime answers: %s",
					    s->name, error->message);
			snprintf(x->last_unknown_why, sizeof(x->last_unknown_why), "%s",
				 error->message);
			reconcile_retry(d);
		}
	} else if (s->state == SERVICE_UNKNOWN) {
		d->reconcile_retry_s = 0; /* the runtime answers: ask soon if more fail */
		reconcile_unknown(d, s, c);
	} else if (s->state_since_us != svc_extra_of(s)->inspect_state_since_us) {
		/* Asked in another state (awake, then a sleep stopped it): the
		 * answer may be older than the change, so it decides nothing. A
		 * late event's inspect answering "running" once a sleep had
		 * stopped the container would take its ports out of the set with
		 * nothing behind them: a client refused. */
		again = true;
	} else if (c->running && (s->state == SERVICE_ASLEEP || s->state == SERVICE_FAILED)) {
		service_on_runtime_started(d->services, s->id);
		dozed_attach_counter(d, s, c);
	} else if (!c->running && s->state == SERVICE_AWAKE) {
		service_on_runtime_died(d->services, s->id);
	}
	if (again && (s = service_find_by_id(d->services, id)))
		dozed_reconcile(d, s, PENDING_RESYNC);
	reconcile_next(d);
	dozed_remove_stale_ports(d);
	dozed_check_ready(d);
}

/* Inspects in flight at once: a thousand saved services must not take a
 * thousand descriptors, nor flood the runtime, at start-up. */
#define RECONCILE_MAX_IN_FLIGHT 64

/* Starts the reconciliations that waited for room. */
static void reconcile_next(struct dozed *d)
{
	for (struct service *s = service_first(d->services);
	     s && d->reconcile_waiting > 0 && d->reconcile_in_flight < RECONCILE_MAX_IN_FLIGHT;
	     s = s->next) {
		struct svc_extra *x = svc_extra_of(s);
		if (!x->reconcile_waiting)
			continue;
		x->reconcile_waiting = false;
		d->reconcile_waiting--;
		if (x->reconcile_kind == PENDING_LOAD)
			d->loading--; /* counted again as it starts */
		dozed_reconcile(d, s, x->reconcile_kind);
	}
}

void dozed_reconcile(struct dozed *d, struct service *s, enum pending_kind kind)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->inspect_pending) {
		/* Its answer may predate what made us ask: ask again after it. */
		x->reinspect = true;
		return;
	}
	if (x->reconcile_waiting)
		return;
	if (d->reconcile_in_flight >= RECONCILE_MAX_IN_FLIGHT) {
		x->reconcile_waiting = true;
		x->reconcile_kind = kind;
		d->reconcile_waiting++;
		if (kind == PENDING_LOAD)
			d->loading++; /* start-up is not over until it is asked */
		return;
	}
	x->reinspect = false;
	x->inspect_state_since_us = s->state_since_us;
	const char *which = s->container_id[0] ? s->container_id : s->name;
	struct pending_op *op = pending_op_new(d, kind, s->id);
	if (!op)
		return;
	int r = runtime_inspect(d->runtime, which, reconcile_done, op);
	if (r < 0) {
		pending_op_free(op);
		log_error_errno(r, "%s: cannot ask the runtime about its container", s->name);
		if (s->state == SERVICE_UNKNOWN)
			reconcile_retry(d);
		return;
	}
	x->inspect_pending = true;
	d->reconcile_in_flight++;
	if (kind == PENDING_LOAD)
		d->loading++;
}

/* --- runtime events ------------------------------------------------------------------ */

static void events_connected(void *userdata)
{
	struct dozed *d = userdata;
	if (!d->ready)
		return; /* start-up is doing all of this */
	for (struct service *s = service_first(d->services); s; s = s->next)
		dozed_reconcile(d, s, PENDING_RESYNC);
	list_labelled(d, PENDING_LABELED);
}

static void events_event(const struct runtime_event *ev, void *userdata)
{
	struct dozed *d = userdata;
	struct service *s = service_find_by_container(d->services, ev->id);
	if (!s) {
		if (ev->type == RUNTIME_EVENT_START)
			inspect_labelled(d, PENDING_LABELED, ev->id);
		return;
	}
	if (s->state == SERVICE_UNKNOWN && ev->type != RUNTIME_EVENT_DESTROY) {
		dozed_reconcile(d, s, PENDING_RESYNC);
		return;
	}
	switch (ev->type) {
	case RUNTIME_EVENT_START:
		/* Podman may send a start late, after the wake it belonged to
		 * failed and the container exited: a sleeping service is only
		 * taken as started outside dozed once inspect says it runs. */
		if (s->state == SERVICE_ASLEEP || s->state == SERVICE_FAILED) {
			dozed_reconcile(d, s, PENDING_RESYNC);
		} else {
			service_on_runtime_started(d->services, s->id);
			dozed_reattach(d, s);
		}
		break;
	case RUNTIME_EVENT_DIE:
		/* While waking, a die is either the late event of the stop before
		 * or the new start exiting at once; while awake, the late event of
		 * an earlier run: inspect tells which. */
		if (s->state == SERVICE_WAKING)
			dozed_check_exited(d, s);
		else if (s->state == SERVICE_AWAKE)
			dozed_reconcile(d, s, PENDING_RESYNC);
		else
			service_on_runtime_died(d->services, s->id);
		break;
	case RUNTIME_EVENT_DESTROY:
		service_remove(d->services, s);
		dozed_save_state(d);
		break;
	case RUNTIME_EVENT_PAUSE:
		/* Paused by hand (dozed's own pause is under way or done, and
		 * so it is not awake): frozen, its hook armed, as if found so. */
		if (s->state == SERVICE_AWAKE && !s->freeze_pending)
			dozed_reattach(d, s);
		break;
	case RUNTIME_EVENT_UNPAUSE:
	case RUNTIME_EVENT_KILL:
		/* By hand: a frozen service thaws, so that the unpause is true and
		 * the signal reaches a process that can act on it. */
		if (s->state == SERVICE_FROZEN)
			service_wake_now(d->services, s,
					 ev->type == RUNTIME_EVENT_KILL ? "runtime kill"
									: "runtime unpause");
		break;
	}
}

const struct runtime_events_ops dozed_events_ops = {
    .event = events_event,
    .connected = events_connected,
};
