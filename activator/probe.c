// SPDX-License-Identifier: MIT
#include "probe.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/socket_util.h"

struct prober {
	struct event_base *base;
	struct sockaddr_storage dst;
	int netns_fd, home_netns_fd; /* -1 unless probing in another namespace */
	uint64_t interval_us, started_us, attempt_us;
	uint32_t mark;
	uint64_t *attempts;
	prober_done_fn done;
	void *arg;
	int fd; /* the attempt in flight, or -1 */
	struct event *connecting;
	struct event *tick;
	struct event *deadline;
};

/* A connecting socket made in the container's namespace; it stays there. */
static int socket_connect_in_netns(struct prober *p)
{
	if (setns(p->netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket_connect_marked(&p->dst, p->mark);
	if (setns(p->home_netns_fd, CLONE_NEWNET) < 0) {
		/* Every later socket would be made in the container: stop here. */
		perror("dozed: cannot return to its own network namespace");
		abort();
	}
	return fd;
}

static void prober_schedule(struct prober *p)
{
	uint64_t elapsed = clock_monotonic_us() - p->started_us;
	uint64_t next = elapsed < PROBE_FAST_WINDOW_US && PROBE_FAST_INTERVAL_US < p->interval_us
			    ? PROBE_FAST_INTERVAL_US
			    : p->interval_us;
	struct timeval tv = timeval_from_us(next);
	evtimer_add(p->tick, &tv);
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
	(void)fd;
	(void)what;
	struct prober *p = arg;
	int r = socket_connect_result(p->fd);
	if (r == -EINPROGRESS)
		return;
	prober_stop_attempt(p);
	if (r == 0) {
		event_del(p->tick);
		p->done(p->arg, 0);
	}
	/* Refused or unreachable: the next tick tries again. */
}

static void prober_attempt(struct prober *p)
{
	prober_schedule(p);
	if (p->fd >= 0) {
		/* The tick may come before the connect's own event in a busy loop. */
		int r = socket_connect_result(p->fd);
		if (r == 0) {
			on_connect_result(p->fd, EV_WRITE, p);
			return;
		}
		/* Still connecting: given up only after a whole interval, as a SYN
		 * sent before the container's network existed may never be answered. */
		if (r == -EINPROGRESS && clock_monotonic_us() - p->attempt_us < p->interval_us)
			return;
	}
	prober_stop_attempt(p);
	(*p->attempts)++;
	p->attempt_us = clock_monotonic_us();
	int fd =
	    p->netns_fd >= 0 ? socket_connect_in_netns(p) : socket_connect_marked(&p->dst, p->mark);
	if (fd == -EPERM && p->netns_fd >= 0) {
		/* Every attempt will fail alike until the wake times out: say why once. */
		static bool warned;
		if (!warned)
			log_warning_errno(fd, "Cannot enter a container's network namespace to "
					      "probe it: dozed needs CAP_SYS_ADMIN");
		warned = true;
	}
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

int prober_start(struct event_base *base, const struct prober_target *target, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out)
{
	struct prober *p = calloc(1, sizeof(*p));
	if (!p)
		return log_error_errno(ENOMEM, "Failed to allocate a prober");
	*p = (struct prober){.base = base,
			     .dst = target->dst,
			     .netns_fd = -1,
			     .home_netns_fd = -1,
			     .interval_us = interval_us,
			     .started_us = clock_monotonic_us(),
			     .mark = mark,
			     .attempts = attempts,
			     .done = done,
			     .arg = arg,
			     .fd = -1};
	if (target->netns_fd >= 0) {
		p->netns_fd = fcntl(target->netns_fd, F_DUPFD_CLOEXEC, 3);
		p->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (p->netns_fd < 0 || p->home_netns_fd < 0) {
			int r = -errno;
			prober_free(p);
			return log_error_errno(r,
					       "Failed to keep the network namespaces to probe in");
		}
	}
	p->tick = evtimer_new(base, on_tick, p);
	p->deadline = evtimer_new(base, on_deadline, p);
	struct timeval timeout = timeval_from_us(timeout_us);
	if (!p->tick || !p->deadline || evtimer_add(p->deadline, &timeout) < 0) {
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
	if (p->netns_fd >= 0)
		close(p->netns_fd);
	if (p->home_netns_fd >= 0)
		close(p->home_netns_fd);
	if (p->tick)
		event_free(p->tick);
	if (p->deadline)
		event_free(p->deadline);
	free(p);
}
