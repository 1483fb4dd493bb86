// SPDX-License-Identifier: MIT
/*
 * The metrics of the activator and of the daemon itself: the activator's
 * counters, the runtime client's calls, the control socket, the flow map,
 * the build. The services' series are daemon_metrics.c's.
 */
#include "daemon_internal.h"
#include "daemon_metrics.h"
#include "dozed/activator.h"
#include "dozed/control.h"
#include "dozed/metrics.h"
#include "dozed/runtime.h"
#include "dozed/version.h"

static void one_u64(struct metrics_text *m, const char *name, const char *type, const char *help,
		    uint64_t v)
{
	metrics_family(m, name, type, help);
	metrics_sample_u64(m, name, NULL, 0, v);
}

static void labelled(struct metrics_text *m, const char *name, const char *label, const char *value,
		     uint64_t v)
{
	struct metrics_label l = {label, value};
	metrics_sample_u64(m, name, &l, 1, v);
}

static void render_activator_wakes(struct metrics_text *m, const struct activator_counters *c)
{
	/* Its own bounds, in ms; the last is open (+Inf). */
	double bounds[ACTIVATOR_WAKE_BUCKETS - 1];
	for (size_t i = 0; i + 1 < ACTIVATOR_WAKE_BUCKETS; i++)
		bounds[i] = activator_wake_bucket_ms[i] / 1e3;
	double sum = (double)c->wake_us_sum / 1e6;
	metrics_family(m, "dozed_activator_wake_seconds", "histogram",
		       "Wakes with clients held: the first held client's connect to the probe "
		       "finding the service ready.");
	metrics_histogram(m, "dozed_activator_wake_seconds", NULL, 0, bounds, c->wake_ms_hist,
			  ACTIVATOR_WAKE_BUCKETS - 1, sum);
}

static void render_activator(struct dozed *d, struct metrics_text *m)
{
	struct activator_counters c = {0};
	if (d->activator)
		activator_get_counters(d->activator, &c);
	one_u64(m, "dozed_activator_accepted_total", "counter",
		"Connections the activator accepted (redirected clients).", c.accepted);
	metrics_family(m, "dozed_activator_rejected_total", "counter",
		       "Connections the activator reset, by why: unrouted (no service owns its "
		       "destination), not_local, loopback, full (max held), per_client.");
	const char *n = "dozed_activator_rejected_total";
	labelled(m, n, "reason", "unrouted", c.rejected_unrouted);
	labelled(m, n, "reason", "not_local", c.rejected_not_local);
	labelled(m, n, "reason", "loopback", c.rejected_loopback);
	labelled(m, n, "reason", "full", c.rejected_full);
	labelled(m, n, "reason", "per_client", c.rejected_per_client);
	one_u64(m, "dozed_activator_held", "gauge", "Clients held now, every service's.",
		c.held_now);
	one_u64(m, "dozed_activator_relayed", "gauge", "Connections relayed now.", c.relayed_now);
	one_u64(m, "dozed_activator_relayed_total", "counter", "Connections relayed.",
		c.relayed_total);
	metrics_family(m, "dozed_activator_relay_bytes_total", "counter",
		       "Bytes the relays passed, by direction.");
	n = "dozed_activator_relay_bytes_total";
	labelled(m, n, "direction", "to_backend", c.bytes_to_backend);
	labelled(m, n, "direction", "to_client", c.bytes_to_client);
	one_u64(m, "dozed_activator_probe_attempts_total", "counter",
		"Readiness probe attempts of waking services.", c.probe_attempts);
	one_u64(m, "dozed_activator_relay_connect_retries_total", "counter",
		"Relay connects to a backend started again, unanswered.", c.relay_connect_retries);
	one_u64(m, "dozed_activator_relay_connect_failed_total", "counter",
		"Relay connects to a backend that failed.", c.relay_connect_failed);
	metrics_family(m, "dozed_activator_held_closed_total", "counter",
		       "Held clients that went before a wake relayed them: client_left, silent "
		       "(reset after sending nothing), evicted (to make room).");
	n = "dozed_activator_held_closed_total";
	labelled(m, n, "why", "client_left", c.held_closed);
	labelled(m, n, "why", "silent", c.held_silent_closed);
	labelled(m, n, "why", "evicted", c.held_evicted);
	render_activator_wakes(m, &c);
}

static void render_runtime(struct dozed *d, struct metrics_text *m)
{
	struct runtime_counters rc = {0};
	if (d->runtime)
		runtime_get_counters(d->runtime, &rc);
	metrics_family(m, "dozed_runtime_calls_total", "counter",
		       "Calls to the container runtime's API, by call.");
	for (int i = 0; i < RUNTIME_CALL_COUNT; i++)
		labelled(m, "dozed_runtime_calls_total", "call", runtime_call_name(i), rc.calls[i]);
	metrics_family(m, "dozed_runtime_errors_total", "counter",
		       "Calls to the container runtime's API that failed, by call.");
	for (int i = 0; i < RUNTIME_CALL_COUNT; i++)
		labelled(m, "dozed_runtime_errors_total", "call", runtime_call_name(i),
			 rc.errors[i]);
	struct runtime_events_counters ec = {0};
	if (d->events)
		runtime_events_get_counters(d->events, &ec);
	one_u64(m, "dozed_runtime_event_reconnects_total", "counter",
		"Times the runtime's event stream was connected again after its first connect.",
		ec.connects > 0 ? ec.connects - 1 : 0);
}

void dozed_metrics_render_daemon(struct dozed *d, struct metrics_text *m)
{
	render_activator(d, m);
	render_runtime(d, m);
	struct control_counters cc = {0};
	if (d->control)
		control_get_counters(d->control, &cc);
	one_u64(m, "dozed_control_connections_total", "counter",
		"Connections to the control socket (refused ones included).", cc.accepted);
	one_u64(m, "dozed_control_connections", "gauge", "Control clients connected now.",
		cc.clients_now);
	one_u64(m, "dozed_flow_map_evictions_total", "counter",
		"Flows the full flow map pushed out (as of its last walk).",
		d->metrics_flow_evictions);
	metrics_family(m, "dozed_build_info", "gauge", "1, labelled with dozed's version.");
	labelled(m, "dozed_build_info", "version", DOZED_VERSION, 1);
	one_u64(m, "dozed_services", "gauge", "Services dozed manages (enabled).",
		d->services ? service_count(d->services) : 0);
}
