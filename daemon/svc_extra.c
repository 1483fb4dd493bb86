// SPDX-License-Identifier: MIT
/*
 * What the daemon keeps beside each service: its timer, its egress counter
 * attachment, the flags of the runtime calls out for it. Made here when a
 * service is added, freed here when the registry forgets it.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>

#include "daemon_internal.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/health.h"

static void svc_extra_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	service_on_timer(x->d->services, x->id);
}

static void svc_extra_probe_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	struct service *s = service_find_by_id(x->d->services, x->id);
	if (s && s->state == SERVICE_WAKING)
		dozed_probe_start(x->d, s);
}

static void svc_extra_stop_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	struct service *s = service_find_by_id(x->d->services, x->id);
	if (s)
		dozed_stop_grace_over(x->d, s);
}

static void svc_extra_stop_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct svc_extra *x = arg;
	struct service *s = service_find_by_id(x->d->services, x->id);
	if (s)
		dozed_stop_drain_look(x->d, s);
}

static void svc_extra_free_timers(struct svc_extra *x)
{
	struct event *timers[] = {x->timer, x->probe_retry, x->stop_grace, x->stop_drain};
	for (size_t i = 0; i < ARRAY_SIZE(timers); i++)
		if (timers[i])
			event_free(timers[i]);
}

struct svc_extra *svc_extra_create(struct dozed *d)
{
	struct svc_extra *x = calloc(1, sizeof(*x));
	if (x) {
		x->timer = evtimer_new(d->base, svc_extra_timer_cb, x);
		x->probe_retry = evtimer_new(d->base, svc_extra_probe_retry_cb, x);
		x->stop_grace = evtimer_new(d->base, svc_extra_stop_grace_cb, x);
		x->stop_drain = evtimer_new(d->base, svc_extra_stop_drain_cb, x);
	}
	if (!x || !x->timer || !x->probe_retry || !x->stop_grace || !x->stop_drain) {
		if (x)
			svc_extra_free_timers(x);
		free(x);
		log_error_errno(ENOMEM, "Failed to allocate a service's timers");
		return NULL;
	}
	x->d = d;
	svc_metrics_init(&x->metrics);
	return x;
}

void svc_extra_destroy(struct svc_extra *x)
{
	if (!x)
		return;
	if (x->attachment)
		flows_purge_soon(x->d);
	flow_counter_detach(x->attachment);
	health_check_free(x->health);
	dozed_stop_forget(x->d, x);
	dozed_freeze_forget(x->d, x);
	svc_extra_free_timers(x);
	free(x);
}
