// SPDX-License-Identifier: MIT
/*
 * A service's wake: the clients held for it (held.c keeps the queue), the
 * request to the daemon, the probe (probe.c) and its end, ready (the held
 * clients are relayed) or not (they are reset, or stay held when the probe
 * ran during a stop).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dozed/activator.h"
#include "dozed/clock.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "activator_internal.h"
#include "client_count.h"
#include "conntrack.h"
#include "probe.h"
#include "dozed/probe_answer.h"
#include "dozed/settings.h"
#include "relay.h"

struct waking *waking_find(const struct activator *a, uint64_t id)
{
	struct waking *w;
	LIST_FOREACH (wakings, w, a->wakings)
		if (w->route.service_id == id)
			return w;
	return NULL;
}

void waking_free(struct waking *w)
{
	LIST_REMOVE(wakings, w->a->wakings, w);
	prober_free(w->prober);
	if (w->hold_deadline)
		event_free(w->hold_deadline);
	client_count_free(w->clients);
	free(w);
}

static void on_hold_deadline(evutil_socket_t fd, short what, void *arg);

/* A wake for route, linked in; NULL when out of memory (logged). */
struct waking *waking_new(struct activator *a, const struct activator_route *route)
{
	struct waking *w = calloc(1, sizeof(*w));
	if (!w || client_count_new(&w->clients) < 0 ||
	    !(w->hold_deadline = evtimer_new(a->base, on_hold_deadline, w))) {
		if (w)
			client_count_free(w->clients);
		free(w);
		log_error_errno(ENOMEM, "Failed to allocate a wake");
		return NULL;
	}
	w->a = a;
	w->route = *route;
	LIST_PREPEND(wakings, a->wakings, w);
	return w;
}

void waking_reset_held(struct waking *w)
{
	while (w->head) {
		conntrack_reset_client(w->a->conntrack, w->head->fd);
		held_unlink(w->head);
	}
}

/* Ends a wake that did not succeed; calls the daemon last, as w is gone by then. */
static void waking_fail(struct waking *w, int reason, bool tell_daemon, const char *last_answer)
{
	struct activator *a = w->a;
	uint64_t id = w->route.service_id;
	/* Copied: it may be the prober's, freed with w. */
	char last[PROBE_WHY_MAX];
	snprintf(last, sizeof(last), "%s", last_answer ? last_answer : "");
	waking_reset_held(w);
	waking_free(w);
	a->counters.wakes_failed++;
	if (tell_daemon)
		a->ops.wake_failed(a->userdata, id, reason, last);
}

static void on_hold_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct waking *w = arg;
	log_warning("Service %llu was not started within %llu ms of a client arriving; "
		    "resetting %zu held clients",
		    (unsigned long long)w->route.service_id,
		    (unsigned long long)(w->a->cfg.hold_timeout_us / 1000), w->n_held);
	waking_fail(w, -ETIMEDOUT, true, NULL);
}

void waking_request(struct waking *w, const struct sockaddr_storage *client)
{
	struct activator *a = w->a;
	if (w->wake_requested)
		return;
	w->wake_requested = true;
	if (!w->prober) {
		struct timeval tv = timeval_from_us(a->cfg.hold_timeout_us);
		evtimer_add(w->hold_deadline, &tv);
	}
	/* Last: the daemon may answer at once, even with activator_service_failed(). */
	a->ops.wake_requested(a->userdata, w->route.service_id, client);
}

static void record_wake_time(struct activator *a, uint64_t total_us)
{
	/* In microseconds: truncated to ms, 5.9 ms would count as le 5 ms. */
	size_t i = 0;
	while (i + 1 < ACTIVATOR_WAKE_BUCKETS &&
	       total_us > (uint64_t)activator_wake_bucket_ms[i] * 1000)
		i++;
	a->counters.wake_ms_hist[i]++;
	a->counters.wake_us_sum += total_us;
}

/* The probe ended, held clients stay held: the hold timeout runs for them
 * again, until the next probe or the daemon's word. */
static void waking_end_probe(struct waking *w)
{
	prober_free(w->prober);
	w->prober = NULL;
	w->during_stop = false;
	w->awake = false;
	struct timeval tv = timeval_from_us(w->a->cfg.hold_timeout_us);
	evtimer_add(w->hold_deadline, &tv);
}

static void on_probe_done(void *arg, int result, const char *last_answer)
{
	struct waking *w = arg;
	struct activator *a = w->a;
	if (result < 0 && w->during_stop) {
		/* Not serving any more: the stop goes on, and the daemon starts
		 * the service again and probes it anew for these clients. */
		log_info("Service %llu, being stopped, did not serve within %llu ms (last "
			 "answer: %s); its %zu held clients stay held",
			 (unsigned long long)w->route.service_id,
			 (unsigned long long)(a->cfg.wake_timeout_us / 1000),
			 last_answer[0] ? last_answer : "none", w->n_held);
		if (!w->head) {
			/* Nobody to hold: no wake to wait for (its hold timeout
			 * would tell the daemon of a failure that is none). */
			waking_free(w);
			return;
		}
		waking_end_probe(w);
		return;
	}
	if (result < 0) {
		log_warning("Service %llu was not ready within %llu ms (last answer: %s); "
			    "resetting %zu held clients",
			    (unsigned long long)w->route.service_id,
			    (unsigned long long)(a->cfg.wake_timeout_us / 1000),
			    last_answer[0] ? last_answer : "none", w->n_held);
		waking_fail(w, result, true, last_answer);
		return;
	}

	uint64_t now = clock_monotonic_us();
	uint64_t probe_us = now - w->starting_us;
	uint64_t total_us = now - (w->first_hold_us ? w->first_hold_us : w->starting_us);
	uint64_t id = w->route.service_id;
	record_wake_time(a, total_us);
	a->counters.wakes_ready++;

	/* Asked again: an address may have gone since a client was held (a
	 * DHCP renewal, a VIP failing over), and the relay would connect to
	 * another host's. Held clients mostly share a destination: asked once. */
	struct sockaddr_storage checked = {0};
	bool checked_local = false;
	/* A probe during a stop or of an awake service found it serving
	 * already: its clients' answers are no wake's. */
	struct relay_wake *wake = a->ops.first_response && !w->during_stop && !w->awake && w->head
				      ? relay_wake_new()
				      : NULL;
	while (w->head) {
		struct held_conn *h = w->head;
		int fd = h->fd;
		struct sockaddr_storage dst = h->dst;
		uint64_t accepted_us = h->accepted_us;
		held_unlink(h);
		if (memcmp(&dst, &checked, sizeof(dst)) != 0) {
			checked = dst;
			checked_local = activator_dst_is_local(a, fd, &dst);
		} else if (!checked_local) {
			a->counters.rejected_not_local++;
		}
		if (!checked_local) {
			conntrack_reset_client(a->conntrack, fd);
			continue;
		}
		/* The relay owns fd from here, whatever happens. */
		(void)relay_start(a->relays, id, fd, &dst, wake, accepted_us);
	}
	relay_wake_unref(wake);
	waking_free(w);
	a->ops.service_ready(a->userdata, id, probe_us, total_us);
}

int activator_service_starting(struct activator *a, uint64_t service_id,
			       const struct sockaddr_storage *probe_dst)
{
	struct activator_probe probe = {.dst = probe_dst, .netns_fd = -1};
	return activator_service_probe(a, service_id, &probe);
}

int activator_service_probe(struct activator *a, uint64_t service_id,
			    const struct activator_probe *probe)
{
	const struct sockaddr_storage *probe_dst = probe->dst;
	const struct probe_spec *spec = probe->spec;
	if (spec && spec->kind != PROBE_TCP && spec->kind != PROBE_HTTP &&
	    spec->kind != PROBE_POSTGRES && spec->kind != PROBE_REDIS && spec->kind != PROBE_MYSQL)
		/* The daemon's to resolve (auto) or run (healthcheck): its held
		 * clients are left as they are. */
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "Cannot probe service %llu with \"%s\": the activator runs "
				       "tcp, http, postgres, redis and mysql probes only",
				       (unsigned long long)service_id,
				       settings_probe_kind_name(spec->kind));
	struct waking *w = waking_find(a, service_id);
	if (w && w->prober && w->during_stop && !probe->during_stop) {
		/* The stop is over and the service started again: its probe
		 * replaces the one of the stop (no longer the service's). */
		prober_free(w->prober);
		w->prober = NULL;
	}
	if (w && w->prober)
		return 0;
	/* Its clients all gone, a wake has no destination of its own either. */
	if ((!w || !w->head) && !probe_dst)
		return log_error_errno(SYNTHETIC_ERRNO(ENOENT),
				       "Cannot probe service %llu: no client is waiting "
				       "and no address to probe was given",
				       (unsigned long long)service_id);
	if (!w) {
		/* Clients arriving during this wake are held in it: their
		 * wake is under way, their wake_min_bytes does not matter. */
		struct activator_route route = {.service_id = service_id};
		w = waking_new(a, &route);
		if (!w)
			return -ENOMEM;
		w->wake_requested = true;
	}
	evtimer_del(w->hold_deadline);
	w->starting_us = clock_monotonic_us();
	struct prober_target target = {.dst = probe_dst ? *probe_dst : w->head->dst,
				       .netns_fd = probe_dst ? probe->netns_fd : -1,
				       .spec = spec};
	w->during_stop = probe->during_stop;
	w->awake = probe->awake;
	uint64_t timeout = probe->timeout_us && probe->timeout_us < a->cfg.wake_timeout_us
			       ? probe->timeout_us
			       : a->cfg.wake_timeout_us;
	int r = prober_start(a->base, &target, a->cfg.mark, a->cfg.probe_interval_us, timeout,
			     &a->counters.probe_attempts, on_probe_done, w, &w->prober);
	if (r < 0) {
		waking_fail(w, r, false, NULL);
		return r;
	}
	return 0;
}

void activator_service_probe_cancel(struct activator *a, uint64_t service_id)
{
	struct waking *w = waking_find(a, service_id);
	if (!w || !w->prober)
		return;
	waking_end_probe(w);
}

void activator_service_failed(struct activator *a, uint64_t service_id)
{
	struct waking *w = waking_find(a, service_id);
	if (w)
		waking_fail(w, -ECANCELED, false, NULL);
}

size_t activator_service_waiting(const struct activator *a, uint64_t service_id)
{
	return relay_set_count_waiting(a->relays, service_id);
}

size_t activator_service_held(const struct activator *a, uint64_t service_id)
{
	const struct waking *w = waking_find(a, service_id);
	return w ? w->n_held : 0;
}
