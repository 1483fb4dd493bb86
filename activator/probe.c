// SPDX-License-Identifier: MIT
#include "probe.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <unistd.h>

#include "dozed/log.h"
#include "relay.h"

struct prober {
	struct event_base *base;
	struct sockaddr_storage dst;
	uint32_t mark;
	uint64_t *attempts;
	prober_done_fn done;
	void *arg;
	int fd; /* the attempt in flight, or -1 */
	struct event *connecting;
	struct event *tick;
	struct event *deadline;
};

static struct timeval tv_from_us(uint64_t us)
{
	return (struct timeval){.tv_sec = (time_t)(us / 1000000),
				.tv_usec = (suseconds_t)(us % 1000000)};
}

static void prober_stop_attempt(struct prober *p)
{
	if (p->connecting) {
		event_free(p->connecting);
		p->connecting = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
}

static void on_connect_result(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct prober *p = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	prober_stop_attempt(p);
	if (err == 0)
		p->done(p->arg, 0);
	/* Refused or unreachable: the next tick tries again. */
}

static void prober_attempt(struct prober *p)
{
	/* An attempt still pending after a whole interval is given up: a SYN
	 * sent before the container's network existed may never be answered. */
	prober_stop_attempt(p);
	(*p->attempts)++;
	int fd = socket_connect_marked(&p->dst, p->mark);
	if (fd < 0) {
		log_debug_errno(fd, "Probe attempt failed");
		return;
	}
	p->fd = fd;
	p->connecting = event_new(p->base, fd, EV_WRITE, on_connect_result, p);
	if (!p->connecting || event_add(p->connecting, NULL) < 0)
		prober_stop_attempt(p);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	prober_attempt(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct prober *p = arg;
	prober_stop_attempt(p);
	event_del(p->tick);
	p->done(p->arg, -ETIMEDOUT);
}

int prober_start(struct event_base *base, const struct sockaddr_storage *dst, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out)
{
	struct prober *p = calloc(1, sizeof(*p));
	if (!p)
		return log_error_errno(ENOMEM, "Failed to allocate a prober");
	*p = (struct prober){.base = base,
			     .dst = *dst,
			     .mark = mark,
			     .attempts = attempts,
			     .done = done,
			     .arg = arg,
			     .fd = -1};
	p->tick = event_new(base, -1, EV_PERSIST, on_tick, p);
	p->deadline = evtimer_new(base, on_deadline, p);
	struct timeval interval = tv_from_us(interval_us), timeout = tv_from_us(timeout_us);
	if (!p->tick || !p->deadline || event_add(p->tick, &interval) < 0 ||
	    evtimer_add(p->deadline, &timeout) < 0) {
		prober_free(p);
		return log_error_errno(ENOMEM, "Failed to set up the probe timers");
	}
	prober_attempt(p);
	*out = p;
	return 0;
}

void prober_free(struct prober *p)
{
	if (!p)
		return;
	prober_stop_attempt(p);
	if (p->tick)
		event_free(p->tick);
	if (p->deadline)
		event_free(p->deadline);
	free(p);
}
