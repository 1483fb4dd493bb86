// SPDX-License-Identifier: MIT
/*
 * Memory back to the kernel after a burst. glibc keeps the heap that
 * thousands of held connections or a crowd of control clients needed, so
 * dozed's RSS would stay at its high-water mark; once things are quiet
 * again, malloc_trim() returns it.
 */
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>

#include "daemon_internal.h"
#include "dozed/activator.h"
#include "dozed/control.h"
#include "dozed/log.h"

/* Quiet for one tick after a change: trim. Two wakeups a minute cost nothing;
 * a burst's memory goes back within two ticks of its end. */
#define TRIM_TICK_S 2

/* What changes whenever a connection comes, goes or is served. */
static uint64_t busy_signature(const struct dozed *d)
{
	struct activator_counters a = {0};
	struct control_counters c = {0};
	if (d->activator)
		activator_get_counters(d->activator, &a);
	if (d->control)
		control_get_counters(d->control, &c);
	return a.accepted + a.held_now + a.relayed_now + a.relayed_total + c.accepted +
	       c.clients_now + c.subscribers_now + c.requests + c.broadcasts;
}

static void trim_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct dozed *d = arg;
	uint64_t sig = busy_signature(d);
	if (sig == d->trim_seen && sig != d->trim_done) {
		malloc_trim(0);
		d->trim_done = sig;
		log_debug("quiet after a burst: freed heap returned to the kernel");
	}
	d->trim_seen = sig;
}

int dozed_trim_start(struct dozed *d)
{
	d->trim_timer = event_new(d->base, -1, EV_PERSIST, trim_tick, d);
	struct timeval tv = {.tv_sec = TRIM_TICK_S};
	if (!d->trim_timer || event_add(d->trim_timer, &tv) < 0)
		return log_error_errno(ENOMEM, "Failed to set up the memory trim timer");
	d->trim_seen = d->trim_done = busy_signature(d);
	return 0;
}

void dozed_trim_stop(struct dozed *d)
{
	if (d->trim_timer)
		event_free(d->trim_timer);
	d->trim_timer = NULL;
}
