// SPDX-License-Identifier: MIT
/*
 * The daemon's metrics (daemon_metrics.h): the services' series here, the
 * activator's and the daemon's own in daemon_metrics_daemon.c. A family's
 * samples are written together, so each family walks the services.
 */
#include "daemon_metrics.h"

#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>
#include <string.h>

#include "daemon_internal.h"
#include "dozed/activator.h"
#include "dozed/clock.h"
#include "dozed/flow_counter.h"
#include "dozed/metrics.h"

static struct svc_metrics *svc_metrics_of(const struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	return x ? &x->metrics : NULL;
}

void dozed_metrics_note_event(struct dozed *d, struct service *s, const char *event,
			      const struct json_object *facts)
{
	d->metrics_last_us = 0;
	struct svc_metrics *m = svc_metrics_of(s);
	if (m)
		svc_metrics_note_event(m, event, facts);
}

void dozed_metrics_note_first_response(struct dozed *d, uint64_t service_id, uint64_t us)
{
	struct service *s = service_find_by_id(d->services, service_id);
	struct svc_metrics *m = s ? svc_metrics_of(s) : NULL;
	if (m)
		metrics_hist_observe(&m->wake, (double)us / 1e6);
	d->metrics_last_us = 0;
}

void dozed_metrics_note_flows(struct dozed *d, struct service *s, const struct flow_totals *t)
{
	(void)d;
	struct svc_extra *x = svc_extra_of(s);
	if (!x || !x->attachment)
		return;
	uint64_t cg = flow_attachment_cgroup_id(x->attachment);
	uint64_t ignored = 0;
	for (int c = FLOWS_COUNTED + 1; c < FLOWS_CLASS_MAX; c++)
		ignored += t->ignored[c].bytes;
	metrics_run_total_note(&x->metrics.counted, cg, t->counted_bytes);
	metrics_run_total_note(&x->metrics.ignored, cg, ignored);
}

void dozed_metrics_note_map_stats(struct dozed *d, const struct flow_map_stats *st)
{
	/* evicted is created - live - deleted: a counter, kept from going back. */
	if (st->evicted > d->metrics_flow_evictions)
		d->metrics_flow_evictions = st->evicted;
}

/* Fresh readings before a scrape, as a status takes them: an awake
 * service's egress and waiting clients, and the flow bytes of one whose
 * container runs (a stopped one's cgroup is gone: its last reading stays).
 * An awake one's activity read (the registry's egress_read) notes its flows
 * already: one read of its counter, not two. */
static void refresh(struct dozed *d)
{
	for (struct service *s = service_first(d->services); s; s = s->next) {
		if (s->state == SERVICE_AWAKE) {
			service_refresh_activity(d->services, s);
			continue;
		}
		struct svc_extra *x = svc_extra_of(s);
		struct flow_totals t;
		if (s->state == SERVICE_FROZEN && d->flows && x && x->attachment &&
		    flow_counter_read(d->flows, x->attachment, &t) == 0)
			dozed_metrics_note_flows(d, s, &t);
	}
}

static void svc_u64(struct metrics_text *m, const char *name, const struct service *s,
		    const char *label, const char *value, uint64_t v)
{
	struct metrics_label l[2] = {{"service", s->name}, {label, value}};
	metrics_sample_u64(m, name, l, label ? 2 : 1, v);
}

static void render_states(struct dozed *d, struct metrics_text *m)
{
	uint64_t now = service_registry_now_us(d->services);
	metrics_family(m, "dozed_service_state", "gauge",
		       "1 for the state the service is in, 0 for each other state.");
	for (struct service *s = service_first(d->services); s; s = s->next)
		for (int st = 0; st < SERVICE_STATE_COUNT; st++)
			svc_u64(m, "dozed_service_state", s, "state", service_state_name(st),
				s->state == (enum service_state)st);
	metrics_family(m, "dozed_service_seconds_total", "counter",
		       "Seconds the service spent in each state since it was enabled "
		       "(or since dozed started), the current stretch included.");
	for (struct service *s = service_first(d->services); s; s = s->next) {
		for (int st = 0; st < SERVICE_STATE_COUNT; st++) {
			struct metrics_label l[2] = {{"service", s->name},
						     {"state", service_state_name(st)}};
			metrics_sample_double(m, "dozed_service_seconds_total", l, 2,
					      (double)service_state_time_us(s, st, now) / 1e6);
		}
	}
}

static const struct metrics_tally *tally_sleeps(const struct svc_metrics *sm)
{
	return &sm->sleeps;
}

static const struct metrics_tally *tally_wakes(const struct svc_metrics *sm)
{
	return &sm->wakes;
}

static const struct metrics_tally *tally_thaws(const struct svc_metrics *sm)
{
	return &sm->thaws;
}

static void render_tally(struct dozed *d, struct metrics_text *m, const char *name,
			 const char *help,
			 const struct metrics_tally *(*tally_of)(const struct svc_metrics *))
{
	metrics_family(m, name, "counter", help);
	for (struct service *s = service_first(d->services); s; s = s->next) {
		const struct svc_metrics *sm = svc_metrics_of(s);
		if (!sm)
			continue;
		const struct metrics_tally *t = tally_of(sm);
		for (size_t i = 0; i < t->used; i++)
			svc_u64(m, name, s, "trigger", t->slot[i].key, t->slot[i].n);
	}
}

static void render_transitions(struct dozed *d, struct metrics_text *m)
{
	render_tally(d, m, "dozed_sleeps_total", "Sleeps (stops) begun, by what put it to sleep.",
		     tally_sleeps);
	metrics_family(m, "dozed_sleep_results_total", "counter",
		       "How sleeps' stops ended: stopped, cancelled (a client came and the "
		       "container still served), failed.");
	for (struct service *s = service_first(d->services); s; s = s->next) {
		svc_u64(m, "dozed_sleep_results_total", s, "result", "stopped", s->sleeps_stopped);
		svc_u64(m, "dozed_sleep_results_total", s, "result", "cancelled",
			s->sleeps_cancelled);
		svc_u64(m, "dozed_sleep_results_total", s, "result", "failed", s->sleeps_failed);
	}
	render_tally(d, m, "dozed_wakes_total", "Wakes begun, by what woke it.", tally_wakes);
	metrics_family(m, "dozed_wake_results_total", "counter",
		       "How wakes ended: ready (the probe passed) or failed.");
	for (struct service *s = service_first(d->services); s; s = s->next) {
		const struct svc_metrics *sm = svc_metrics_of(s);
		if (!sm)
			continue;
		svc_u64(m, "dozed_wake_results_total", s, "result", "ready", sm->wakes_ready);
		svc_u64(m, "dozed_wake_results_total", s, "result", "failed", sm->wakes_failed);
	}
	metrics_family(m, "dozed_freezes_total", "counter", "Light sleeps (pauses) done.");
	for (struct service *s = service_first(d->services); s; s = s->next)
		svc_u64(m, "dozed_freezes_total", s, NULL, NULL, s->freezes);
	render_tally(d, m, "dozed_thaws_total", "Thaws from light sleep, by what thawed it.",
		     tally_thaws);
}

static void svc_hist(struct metrics_text *m, const char *name, const struct service *s,
		     const char *label, const char *value, const struct metrics_hist *h)
{
	struct metrics_label l[2] = {{"service", s->name}, {label, value}};
	metrics_histogram(m, name, l, label ? 2 : 1, metrics_bucket_s, h->counts, METRICS_BUCKETS,
			  h->sum);
}

static void render_histograms(struct dozed *d, struct metrics_text *m)
{
	static const char *const phases[METRICS_PHASES] = {
	    [METRICS_PHASE_START] = "start",
	    [METRICS_PHASE_PROBE] = "probe",
	    [METRICS_PHASE_READY] = "ready",
	};
	metrics_family(m, "dozed_wake_seconds", "histogram",
		       "A client held through a wake: its connect to the first byte of the "
		       "service's answer reaching it (once per wake).");
	for (struct service *s = service_first(d->services); s; s = s->next)
		if (svc_metrics_of(s))
			svc_hist(m, "dozed_wake_seconds", s, NULL, NULL, &svc_metrics_of(s)->wake);
	metrics_family(m, "dozed_wake_phase_seconds", "histogram",
		       "A wake's phases: start (the runtime's start call), probe (to ready), "
		       "ready (the wake to ready, in all).");
	for (struct service *s = service_first(d->services); s; s = s->next)
		for (int p = 0; svc_metrics_of(s) && p < METRICS_PHASES; p++)
			svc_hist(m, "dozed_wake_phase_seconds", s, "phase", phases[p],
				 &svc_metrics_of(s)->phase[p]);
	metrics_family(m, "dozed_thaw_seconds", "histogram",
		       "A thaw from light sleep: what asked for it to the service running.");
	for (struct service *s = service_first(d->services); s; s = s->next)
		if (svc_metrics_of(s))
			svc_hist(m, "dozed_thaw_seconds", s, NULL, NULL, &svc_metrics_of(s)->thaw);
}

static void render_traffic(struct dozed *d, struct metrics_text *m)
{
	metrics_family(m, "dozed_held_clients", "gauge",
		       "Clients the activator holds for the service now (through its wake).");
	for (struct service *s = service_first(d->services); s; s = s->next)
		svc_u64(m, "dozed_held_clients", s, NULL, NULL,
			d->activator ? activator_service_held(d->activator, s->id) : 0);
	metrics_family(m, "dozed_waiting_clients", "gauge",
		       "Relayed clients waiting for the service's answer.");
	for (struct service *s = service_first(d->services); s; s = s->next)
		svc_u64(m, "dozed_waiting_clients", s, NULL, NULL, s->clients_waiting);
	metrics_family(m, "dozed_egress_bytes_total", "counter",
		       "Bytes the service's containers sent, over all their runs.");
	for (struct service *s = service_first(d->services); s; s = s->next)
		svc_u64(m, "dozed_egress_bytes_total", s, NULL, NULL, s->egress_bytes_total);
	metrics_family(m, "dozed_flow_bytes_total", "counter",
		       "Bytes of the service's flows, both ways, that counted as activity "
		       "(counted) or not (ignored: loopback, no payload, DNS, NTP, ICMP, rules).");
	for (struct service *s = service_first(d->services); s; s = s->next) {
		const struct svc_metrics *sm = svc_metrics_of(s);
		if (!sm)
			continue;
		svc_u64(m, "dozed_flow_bytes_total", s, "kind", "counted", sm->counted.total);
		svc_u64(m, "dozed_flow_bytes_total", s, "kind", "ignored", sm->ignored.total);
	}
}

/*
 * A render reads every awake service's counters from the kernel (about 0.5
 * ms with two services): a storm of scrapes (a loop of curl, many
 * Prometheus servers) would keep the loop rendering while a wake waits
 * behind it. Scrapes within this time of a render get its text instead (a
 * reference to it, so that scrapers that read slowly share one copy); any event of a service (a
 * state change, a wake's timings) renders afresh, so only byte counts and times in state can lag,
 * by this much at most.
 */
#define METRICS_REUSE_US (250 * 1000)

static void render_fresh(struct dozed *d, struct metrics_text *out)
{
	if (d->services) {
		refresh(d);
		render_states(d, out);
		render_transitions(d, out);
		render_histograms(d, out);
		render_traffic(d, out);
	}
	dozed_metrics_render_daemon(d, out);
}

int dozed_metrics_render(struct dozed *d, struct metrics_blob **out)
{
	uint64_t t = clock_monotonic_us();
	if (d->metrics_last && d->metrics_last_us && t - d->metrics_last_us < METRICS_REUSE_US) {
		*out = metrics_blob_ref(d->metrics_last);
		return 0;
	}
	dozed_metrics_forget(d);
	struct metrics_text m;
	metrics_text_init(&m);
	render_fresh(d, &m);
	int r = metrics_text_error(&m);
	struct metrics_blob *b = metrics_blob_take(&m);
	if (!b)
		return r < 0 ? r : -ENOMEM;
	d->metrics_last = metrics_blob_ref(b);
	d->metrics_last_us = t;
	*out = b;
	return 0;
}

void dozed_metrics_forget(struct dozed *d)
{
	metrics_blob_unref(d->metrics_last);
	d->metrics_last = NULL;
	d->metrics_last_us = 0;
}
