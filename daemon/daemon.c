// SPDX-License-Identifier: MIT
/* dozed's parts joined: construction, and the effects of the state machine. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon_internal.h"
#include "daemon_metrics.h"
#include "dozed/activator.h"
#include "dozed/control.h"
#include "daemon_flows.h"
#include "dozed/flow_counter.h"
#include "dozed/feed.h"
#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics_http.h"
#include "dozed/nft.h"
#include "dozed/runtime.h"
#include "dozed/socket_util.h"
#include "dozed/state_store.h"

#define FEED_HISTORY 1000

/* --- effects of the state machine ------------------------------------------------ */

static int ops_redirect_add(void *ud, struct service *s)
{
	struct dozed *d = ud;
	uint16_t ports[SERVICE_MAX_PORTS];
	size_t n = service_host_ports(s, ports);
	int r = nft_set_add_ports(d->nft, ports, n);
	/* The set first: every entry made after it is a redirected one. */
	if (r >= 0 && d->activator)
		activator_forget_unredirected(d->activator, ports, n);
	return r;
}

static int ops_redirect_remove(void *ud, struct service *s)
{
	struct dozed *d = ud;
	uint16_t ports[SERVICE_MAX_PORTS];
	return nft_set_remove_ports(d->nft, ports, service_host_ports(s, ports));
}

static void runtime_start_done(int err, const struct runtime_error *error, void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	uint64_t id = op->service_id;
	pending_op_free(op);
	const char *msg = err < 0 ? error->message : NULL;
	struct service *s = service_find_by_id(d->services, id);
	if (err < 0)
		log_warning("%s: start failed: %s", s ? s->name : "a removed service", msg);
	/* On success the machine asks for the probe, whose inspect also
	 * attaches the counter to the new cgroup. */
	service_on_start_done(d->services, id, err, msg);
}

static void runtime_start_service(struct dozed *d, struct service *s)
{
	struct pending_op *op = pending_op_new(d, PENDING_START, s->id);
	int r = op ? runtime_start(d->runtime, s->container_id, runtime_start_done, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		/* Report it through the machine, as a failed call would be. */
		service_on_start_done(d->services, s->id, r, strerror(-r));
	}
}

static void ops_runtime_stop(void *ud, struct service *s)
{
	dozed_stop_frozen_or_begin(ud, s);
}

static void ops_runtime_freeze(void *ud, struct service *s)
{
	dozed_freeze_begin(ud, s);
}

static int ops_runtime_thaw(void *ud, struct service *s, char *why, size_t len)
{
	return dozed_thaw_begin(ud, s, why, len);
}

static void ops_runtime_start(void *ud, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	x->probe_vanished = 0; /* a new wake */
	x->health_started_us = 0;
	evtimer_del(x->probe_retry);
	runtime_start_service(ud, s);
}

static void ops_activator_starting(void *ud, struct service *s)
{
	dozed_probe_start(ud, s);
}

static void ops_activator_probe_cancel(void *ud, struct service *s)
{
	dozed_probe_cancel(ud, s);
}

static bool ops_runtime_stop_cancel(void *ud, struct service *s)
{
	return dozed_stop_cancel(ud, s);
}

static void ops_activator_failed(void *ud, struct service *s)
{
	struct dozed *d = ud;
	/* A health command still running belongs to the wake that failed. */
	dozed_probe_cancel(d, s);
	activator_service_failed(d->activator, s->id);
}

static size_t ops_activator_held(void *ud, struct service *s)
{
	struct dozed *d = ud;
	return activator_service_held(d->activator, s->id);
}

static size_t ops_activator_waiting(void *ud, struct service *s)
{
	struct dozed *d = ud;
	return activator_service_waiting(d->activator, s->id);
}

static void ops_egress_read(void *ud, struct service *s)
{
	struct dozed *d = ud;
	struct svc_extra *x = svc_extra_of(s);
	struct flow_totals t;
	if (!x->attachment)
		return;
	int r = flow_counter_read(d->flows, x->attachment, &t);
	if (r == -ENOENT) {
		flow_counter_detach(x->attachment);
		x->attachment = NULL;
		flows_purge_soon(d);
	}
	if (r < 0)
		return;
	service_note_egress(s, t.egress_bytes, t.egress_packets, t.counted_last_ns);
	dozed_metrics_note_flows(d, s, &t);
	char what[sizeof(s->last_counted)] = "";
	if (t.counted_last_ns)
		flows_describe(d, &t.last_counted, what, sizeof(what));
	service_note_counted(s, what);
}

static enum service_kept ops_sleep_blocker(void *ud, struct service *s, char *what, size_t len)
{
	return dozed_flows_blocker(ud, s, what, len);
}

static void ops_timer_set(void *ud, struct service *s, uint64_t at_us)
{
	(void)ud;
	timer_arm_at(svc_extra_of(s)->timer, at_us);
}

void dozed_emit(struct dozed *d, struct service *s, const char *event, struct json_object *facts)
{
	dozed_metrics_note_event(d, s, event, facts);
	feed_emit(d->feed, event, s->name, s->container_id, facts);
}

static void ops_emit(void *ud, struct service *s, const char *event, struct json_object *facts)
{
	struct dozed *d = ud;
	/* What went on in its last idle window, counted or not. */
	if (facts && strcmp(event, "sleep") == 0)
		flows_add_top_to_sleep(d, s, facts);
	if (facts && strcmp(event, "kept_awake") == 0)
		dozed_flows_add_kept_peer(d, s, facts);
	dozed_emit(d, s, event, facts);
}

static void ops_forget(void *ud, struct service *s)
{
	(void)ud;
	struct svc_extra *x = svc_extra_of(s);
	if (!x)
		return;
	svc_extra_destroy(x);
	s->userdata = NULL;
}

static void ops_state_changed(void *ud, struct service *s, enum service_state from)
{
	log_debug("%s: %s -> %s", s->name, service_state_name(from), service_state_name(s->state));
	/* A probe asked for before (during a stop, of a client redirected while
	 * awake, in a wake that failed) must not probe this wake's container
	 * before its start returns: its own probe is asked for after this. */
	if (s->state == SERVICE_WAKING && s->userdata)
		dozed_probe_drop_asks(ud, s);
}

_Static_assert(STATE_MAX_PORTS == SERVICE_MAX_PORTS, "a saved service holds all its ports");

const struct service_ops dozed_service_ops = {
    .now_us = clock_monotonic_us_of,
    .redirect_add = ops_redirect_add,
    .redirect_remove = ops_redirect_remove,
    .runtime_stop = ops_runtime_stop,
    .runtime_start = ops_runtime_start,
    .runtime_stop_cancel = ops_runtime_stop_cancel,
    .activator_starting = ops_activator_starting,
    .activator_probe_cancel = ops_activator_probe_cancel,
    .activator_failed = ops_activator_failed,
    .activator_held = ops_activator_held,
    .activator_waiting = ops_activator_waiting,
    .egress_read = ops_egress_read,
    .sleep_blocker = ops_sleep_blocker,
    .runtime_freeze = ops_runtime_freeze,
    .runtime_thaw = ops_runtime_thaw,
    .timer_set = ops_timer_set,
    .emit = ops_emit,
    .forget = ops_forget,
    .state_changed = ops_state_changed,
};

/* --- flow counter ------------------------------------------------------------------ */

void dozed_attach_counter(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	struct svc_extra *x = svc_extra_of(s);
	const char *cgroup_dir = c->cgroup_dir;
	/* Its address names it in other services' flows; its init, its
	 * network namespace for its open connections. */
	snprintf(x->ip, sizeof(x->ip), "%s", c->ip);
	x->pid = c->pid;
	if (!cgroup_dir)
		return;
	struct stat st;
	/* The same path after a restart is a new cgroup: the old one is dying. */
	if (x->attachment && stat(cgroup_dir, &st) == 0 &&
	    st.st_ino == flow_attachment_cgroup_id(x->attachment)) {
		dozed_freeze_found(d, s, c);
		return;
	}
	if (x->attachment)
		flows_purge_soon(d);
	flow_counter_detach(x->attachment);
	x->attachment = NULL;
	/* A counter that cannot attach leaves the service awake for ever: say so. */
	if (flow_counter_attach(d->flows, cgroup_dir, &x->attachment) < 0)
		log_warning("%s: its traffic is not counted, so it will not sleep by itself",
			    s->name);
	else {
		dozed_flows_apply_rules(d, s);
		/* A new container run: a new chance for a pause refused before. */
		s->freeze_refused[0] = '\0';
	}
	/* Its new cgroup starts from zero: nothing sent since it (re)started. */
	s->egress_bytes = s->egress_packets = 0;
	service_note_counted(s, "");
	svc_extra_of(s)->wake_armed = false;
	dozed_freeze_found(d, s, c);
}

static void reattach_done(int err, const struct runtime_error *error,
			  const struct runtime_container *c, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	svc_extra_of(s)->reattach_pending = false;
	if (err < 0) {
		log_warning("%s: cannot find its cgroup: %s", s->name, error->message);
		return;
	}
	if (c->running)
		dozed_attach_counter(d, s, c);
}

void dozed_reattach(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->reattach_pending)
		return;
	struct pending_op *op = pending_op_new(d, PENDING_REATTACH, s->id);
	if (!op)
		return;
	if (runtime_inspect(d->runtime, s->container_id, reattach_done, op) < 0) {
		pending_op_free(op);
		return;
	}
	x->reattach_pending = true;
}

/* --- state ----------------------------------------------------------------------- */

int dozed_save_state(struct dozed *d)
{
	size_t n = service_count(d->services), i = 0;
	_cleanup_free_ struct state_service *saved = calloc(n ? n : 1, sizeof(*saved));
	if (!saved)
		return log_error_errno(ENOMEM, "Failed to save the enabled services");
	for (struct service *s = service_first(d->services); s; s = s->next) {
		if (s->disabling)
			continue; /* asked to go: not there after a restart */
		struct state_service *o = &saved[i++];
		*o = (struct state_service){
		    .name = s->name,
		    .container = s->name,
		    .container_id = s->container_id,
		    .idle_us = svc_extra_of(s)->idle_explicit ? s->idle_us : 0,
		    .wake_on_data = s->wake_on_data,
		    .probe = s->probe,
		    .ignore = s->ignore,
		    .ignore_set = s->ignore_set,
		    .keep_awake_connections = s->keep_awake_connections,
		    .freeze_after_us = s->freeze_after_us,
		    .reclaim_frozen = s->reclaim_frozen,
		    .n_ports = s->n_ports,
		};
		for (size_t k = 0; k < s->n_ports; k++) {
			snprintf(o->ports[k].host_ip, sizeof(o->ports[k].host_ip), "%s",
				 s->ports[k].host_ip);
			o->ports[k].host_port = s->ports[k].host_port;
			o->ports[k].container_port = s->ports[k].container_port;
		}
	}
	return state_store_save(d->cfg.state_dir, saved, i, &d->aside);
}

void dozed_status_text(struct dozed *d, char *buf, size_t len)
{
	size_t counts[SERVICE_FROZEN + 1] = {0};
	for (struct service *s = service_first(d->services); s; s = s->next)
		if ((size_t)s->state < ARRAY_SIZE(counts))
			counts[s->state]++;
	snprintf(buf, len,
		 "%zu services: %zu awake, %zu frozen, %zu asleep, %zu waking, %zu failed, %zu "
		 "unknown",
		 service_count(d->services), counts[SERVICE_AWAKE], counts[SERVICE_FROZEN],
		 counts[SERVICE_ASLEEP] + counts[SERVICE_SLEEPING], counts[SERVICE_WAKING],
		 counts[SERVICE_FAILED], counts[SERVICE_UNKNOWN]);
}

/* --- activator callbacks ------------------------------------------------------------ */

static int act_route_lookup(void *ud, const struct sockaddr_storage *dst,
			    struct activator_route *route)
{
	struct dozed *d = ud;
	struct service *s = service_find_by_port(d->services, sockaddr_port(dst));
	if (!s || !service_accepts_clients(d->services, s))
		return -ENOENT;
	*route = (struct activator_route){.service_id = s->id, .wake_min_bytes = s->wake_on_data};
	return 0;
}

static void act_wake_requested(void *ud, uint64_t id, const struct sockaddr_storage *client)
{
	struct dozed *d = ud;
	service_on_wake_requested(d->services, id, client);
}

static void act_ready(void *ud, uint64_t id, uint64_t probe_us, uint64_t total_us)
{
	(void)total_us; /* the activator's histogram counts it */
	struct dozed *d = ud;
	struct service *s = service_find_by_id(d->services, id);
	struct svc_extra *x = s ? svc_extra_of(s) : NULL;
	if (x && x->health_started_us) {
		/* The activator saw only the connect after the health command. */
		probe_us = clock_monotonic_us() - x->health_started_us;
		x->health_started_us = 0;
	}
	service_on_ready(d->services, id, probe_us);
}

static void act_wake_failed(void *ud, uint64_t id, int reason, const char *last_answer)
{
	struct dozed *d = ud;
	service_on_wake_failed(d->services, id, reason, last_answer);
}

static void act_first_response(void *ud, uint64_t id, uint64_t us)
{
	dozed_metrics_note_first_response(ud, id, us);
}

static const struct activator_ops dozed_activator_ops = {
    .route_lookup = act_route_lookup,
    .wake_requested = act_wake_requested,
    .service_ready = act_ready,
    .wake_failed = act_wake_failed,
    .first_response = act_first_response,
};

/* --- construction ---------------------------------------------------------------------- */

static void feed_to_subscribers(void *ud, const struct json_object *event)
{
	struct dozed *d = ud;
	if (d->control)
		control_broadcast(d->control, event);
}

void dozed_remove_stale_ports(struct dozed *d)
{
	if (d->stale_ports_checked || d->loading > 0)
		return;
	for (struct service *s = service_first(d->services); s; s = s->next)
		if (s->state == SERVICE_UNKNOWN)
			return; /* its ports may be among them: once it is known */
	d->stale_ports_checked = true;
	if (d->state_incomplete) {
		log_warning("Redirected ports that no service owns are kept, as they may belong to "
			    "a service whose entry in %s/" STATE_FILE_NAME " could not be read: "
			    "see the services.json.corrupt-* files there, re-enable what they "
			    "list, fix or remove the bad entries, delete the copies",
			    d->cfg.state_dir);
		return;
	}
	/* No port stays redirected for a service that is gone. */
	_cleanup_free_ uint16_t *ports = NULL;
	size_t n = 0;
	if (nft_set_list_ports(d->nft, &ports, &n) < 0)
		return;
	size_t stale = 0;
	for (size_t i = 0; i < n; i++) {
		struct service *s = service_find_by_port(d->services, ports[i]);
		if (!s || !s->redirected)
			ports[stale++] = ports[i];
	}
	if (stale > 0 && nft_set_remove_ports(d->nft, ports, stale) >= 0)
		log_info("removed %zu stale redirected ports", stale);
}

void dozed_check_ready(struct dozed *d)
{
	if (d->ready || d->loading > 0)
		return;
	dozed_remove_stale_ports(d);
	d->ready = true;
	char status[128];
	dozed_status_text(d, status, sizeof(status));
	log_info("ready: %s", status);
	if (d->ready_cb)
		d->ready_cb(d->ready_ud);
}

static int activator_open(struct dozed *d, const struct dozed_fds *fds)
{
	struct activator_config acfg;
	activator_config_defaults(&acfg);
	acfg.port = d->cfg.activator_port;
	acfg.mark = d->cfg.mark;
	acfg.probe_interval_us = d->cfg.probe_interval_us;
	acfg.wake_timeout_us = d->cfg.wake_timeout_us;
	acfg.max_held = d->cfg.max_held;
	acfg.silent_timeout_us = d->cfg.held_silent_timeout_us;
	acfg.max_held_per_client = d->cfg.max_held_per_client;
	int act_fds[2];
	size_t n_fds = 0;
	for (size_t i = 0; fds && i < 2; i++)
		if (fds->activator[i] >= 0)
			act_fds[n_fds++] = fds->activator[i];
	if (n_fds > 0)
		return activator_new_from_fds(d->base, &acfg, &dozed_activator_ops, d, act_fds,
					      n_fds, &d->activator);
	return activator_new(d->base, &acfg, &dozed_activator_ops, d, &d->activator);
}

static int metrics_render(void *ud, struct metrics_blob **out)
{
	return dozed_metrics_render(ud, out);
}

/* First of all: an address it cannot listen on stops dozed before it has
 * touched the ruleset or a container. */
static int metrics_open(struct dozed *d)
{
	char why[320];
	int r = metrics_http_new(d->base, &d->cfg.metrics_addr, metrics_render, d, &d->metrics_http,
				 why, sizeof(why));
	if (r < 0) {
		log_error("%s", why);
		return r;
	}
	log_info("metrics at http://%s/metrics", d->cfg.metrics_listen);
	return 0;
}

static int control_open(struct dozed *d, const struct dozed_fds *fds)
{
	struct control_config ccfg;
	control_config_defaults(&ccfg);
	ccfg.path = d->cfg.control_path;
	ccfg.idle_timeout_us = d->cfg.control_idle_timeout_us;
	if (d->cfg.control_group)
		ccfg.gid = d->cfg.control_gid;
	if (fds && fds->control >= 0)
		return control_new_from_fd(d->base, fds->control, &ccfg, dozed_control_handler, d,
					   &d->control);
	return control_new(d->base, &ccfg, dozed_control_handler, d, &d->control);
}

int dozed_new(struct event_base *base, const struct dozed_config *cfg, const struct dozed_fds *fds,
	      void (*ready)(void *userdata), void *userdata, struct dozed **out)
{
	struct dozed *d = calloc(1, sizeof(*d));
	if (!d)
		return log_error_errno(ENOMEM, "Failed to allocate the daemon");
	d->base = base;
	d->cfg = *cfg;
	d->ready_cb = ready;
	d->ready_ud = userdata;

	struct runtime_config rcfg;
	runtime_config_defaults(&rcfg);
	rcfg.socket_path = cfg->runtime_socket;

	int r = cfg->metrics_listen ? metrics_open(d) : 0;
	if (r >= 0)
		r = flow_counter_new(0, &d->flows);
	if (r >= 0)
		r = dozed_wake_watch_start(d);
	if (r >= 0)
		r = nft_ctx_new(&d->nft, cfg->nft_table, cfg->mark, cfg->activator_port);
	if (r >= 0)
		r = nft_table_create(d->nft);
	if (r >= 0)
		r = feed_new(FEED_HISTORY, &d->feed);
	if (r >= 0) {
		r = service_registry_new(&dozed_service_ops, d, &d->services);
		if (r == -EINVAL)
			log_error_errno(
			    SYNTHETIC_ERRNO(EINVAL),
			    "The service registry refused the daemon's ops: one is missing");
		else if (r < 0)
			log_error_errno(r, "Failed to allocate the service registry");
	}
	if (r >= 0)
		service_registry_set_start_timeout(d->services, cfg->wake_timeout_us);
	if (r >= 0)
		r = activator_open(d, fds);
	if (r >= 0)
		r = runtime_new(base, &rcfg, &d->runtime);
	if (r >= 0)
		r = control_open(d, fds);
	if (r >= 0) {
		feed_set_sink(d->feed, feed_to_subscribers, d);
		r = runtime_events_new(d->runtime, &dozed_events_ops, d, &d->events);
	}
	if (r >= 0)
		r = dozed_trim_start(d);
	if (r >= 0)
		r = dozed_sync_start(d);
	if (r < 0) {
		dozed_free(d);
		return r;
	}
	*out = d;
	return 0;
}

void dozed_free(struct dozed *d)
{
	if (!d)
		return;
	/* Callbacks stop first: the runtime cancels without calling back; no
	 * scrape renders a daemon half freed. */
	metrics_http_free(d->metrics_http);
	dozed_metrics_forget(d);
	dozed_trim_stop(d);
	dozed_wake_watch_stop(d);
	runtime_events_free(d->events);
	runtime_free(d->runtime);
	if (d->reconcile_timer)
		event_free(d->reconcile_timer);
	while (d->ops)
		pending_op_free(d->ops);
	control_free(d->control);
	activator_free(d->activator);
	service_registry_free(d->services);
	feed_free(d->feed);
	state_aside_clear(&d->aside);
	nft_ctx_free(d->nft);
	flows_snapshot_drop(d);
	if (d->snapshot_timer)
		event_free(d->snapshot_timer);
	if (d->purge_timer)
		event_free(d->purge_timer);
	flow_counter_free(d->flows);
	free(d);
}
