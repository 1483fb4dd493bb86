// SPDX-License-Identifier: MIT
/*
 * Light sleep's wake ring (docs/design.md, "Light sleep"): the flow
 * counter's records of the first packet for a frozen cgroup, read from the
 * loop, each handed to its service; and, with wake_on=data, the look at a
 * frozen listener's backlog that a reported SYN asks for.
 */
#include <errno.h>
#include <event2/event.h>

#include "daemon_internal.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/open_conns.h"

static struct service *service_of_cgroup(struct dozed *d, uint64_t cgroup_id)
{
	for (struct service *s = service_first(d->services); s; s = s->next) {
		struct svc_extra *x = svc_extra_of(s);
		if (x && x->attachment && flow_attachment_cgroup_id(x->attachment) == cgroup_id)
			return s;
	}
	return NULL;
}

/*
 * With wake_on=data a connect-only client does not thaw a frozen service,
 * but its connection waits in the listener's accept queue; once the queue is
 * full the kernel drops every SYN, and no client can send the bytes that
 * would. Half full: thawed, to accept them.
 */
static void backlog_check(struct dozed *d, struct service *s, const struct flow_wake *w)
{
	_cleanup_close_ int fd = dozed_container_netns(s);
	unsigned queued = 0, max = 0;
	if (fd < 0 || open_conns_backlog(fd, &queued, &max) < 0 || max == 0)
		return;
	if (queued == 0 || queued * 2 < max)
		return;
	log_info("%s: %u of %u connections wait in its listener's backlog: thawing it", s->name,
		 queued, max);
	service_on_packet(d->services, s->id, &w->peer, w->at_ns / 1000);
}

static void wake_record(const struct flow_wake *w, void *userdata)
{
	struct dozed *d = userdata;
	struct service *s = service_of_cgroup(d, w->cgroup_id);
	if (!s)
		return;
	if (w->syn_seen) {
		if (s->state == SERVICE_FROZEN && s->wake_on_data)
			backlog_check(d, s, w);
		return;
	}
	service_on_packet(d->services, s->id, &w->peer, w->at_ns / 1000);
}

static void wake_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct dozed *d = arg;
	(void)flow_counter_wake_consume(d->flows, wake_record, d); /* logs its errors */
}

int dozed_wake_watch_start(struct dozed *d)
{
	int fd = flow_counter_wake_fd(d->flows);
	if (fd < 0)
		return log_error_errno(fd, "Failed to find the wake ring's fd: %m");
	d->wake_event = event_new(d->base, fd, EV_READ | EV_PERSIST, wake_readable, d);
	if (!d->wake_event || event_add(d->wake_event, NULL) < 0)
		return log_error_errno(ENOMEM, "Failed to watch the wake ring");
	return 0;
}

void dozed_wake_watch_stop(struct dozed *d)
{
	if (d->wake_event)
		event_free(d->wake_event);
	d->wake_event = NULL;
}
