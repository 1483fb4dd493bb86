// SPDX-License-Identifier: MIT
/*
 * One walk of the flow map for many readers: the sleeps, statuses and flow
 * table of one second share it, so that a thousand services falling asleep
 * together walk the map once, not a thousand times.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>

#include "daemon_flows.h"
#include "daemon_internal.h"
#include "dozed/clock.h"
#include "dozed/log.h"

/* How long a walk serves: a sleep event or a status a second behind. */
#define SNAPSHOT_TTL_US 1000000ull

/* Counted first, then by bytes both ways. */
static int flow_order(const struct flow_info *x, const struct flow_info *y)
{
	bool cx = x->last_counted_ns != 0, cy = y->last_counted_ns != 0;
	if (cx != cy)
		return cx ? -1 : 1;
	uint64_t bx = x->bytes[0] + x->bytes[1], by = y->bytes[0] + y->bytes[1];
	return bx > by ? -1 : bx < by ? 1 : 0;
}

static int by_cgroup_then_order(const void *a, const void *b)
{
	const struct flow_info *x = a, *y = b;
	if (x->cgroup_id != y->cgroup_id)
		return x->cgroup_id < y->cgroup_id ? -1 : 1;
	return flow_order(x, y);
}

void flows_snapshot_drop(struct dozed *d)
{
	free(d->snapshot.flows);
	d->snapshot = (struct flows_snapshot){0};
}

static void snapshot_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	/* Its memory (a full map is some MB) goes back at once. */
	flows_snapshot_drop(arg);
}

static void purge_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct dozed *d = arg;
	(void)flow_counter_purge(d->flows); /* logged; kept for the next */
}

void flows_purge_soon(struct dozed *d)
{
	if (!d->flows)
		return;
	if (!d->purge_timer && !(d->purge_timer = evtimer_new(d->base, purge_due, d))) {
		(void)flow_counter_purge(d->flows);
		return;
	}
	if (evtimer_pending(d->purge_timer, NULL))
		return;
	struct timeval tv = timeval_from_us(SNAPSHOT_TTL_US);
	evtimer_add(d->purge_timer, &tv);
}

const struct flows_snapshot *flows_snapshot_get(struct dozed *d)
{
	struct flows_snapshot *snap = &d->snapshot;
	uint64_t now = clock_monotonic_us();
	if (snap->at_us && now - snap->at_us < SNAPSHOT_TTL_US)
		return snap;
	flows_snapshot_drop(d);
	snap->at_us = now;
	if (!d->flows) {
		snap->err = snap->stats_err = -ENODEV;
		return snap;
	}
	/* Stopped containers' flows go first: not listed, not counted live. */
	(void)flow_counter_purge(d->flows);
	snap->err = flow_counter_list_all(d->flows, 0, &snap->flows, &snap->n);
	if (snap->n > 1)
		qsort(snap->flows, snap->n, sizeof(*snap->flows), by_cgroup_then_order);
	snap->stats_err = flow_counter_map_stats(d->flows, &snap->stats);
	if (snap->stats_err == 0)
		dozed_metrics_note_map_stats(d, &snap->stats);
	if (!d->snapshot_timer)
		d->snapshot_timer = evtimer_new(d->base, snapshot_expired, d);
	if (d->snapshot_timer) {
		struct timeval tv = timeval_from_us(SNAPSHOT_TTL_US);
		evtimer_add(d->snapshot_timer, &tv);
	}
	return snap;
}

size_t flows_of_service(struct dozed *d, const struct service *s, const struct flow_info **first)
{
	const struct svc_extra *x = svc_extra_of(s);
	*first = NULL;
	if (!x->attachment)
		return 0;
	const struct flows_snapshot *snap = flows_snapshot_get(d);
	uint64_t id = flow_attachment_cgroup_id(x->attachment);
	/* The first of its cgroup's, by halves. */
	size_t lo = 0, hi = snap->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (snap->flows[mid].cgroup_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < snap->n && snap->flows[end].cgroup_id == id)
		end++;
	*first = snap->flows + lo;
	return end - lo;
}
