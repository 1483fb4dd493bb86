// SPDX-License-Identifier: MIT
#include "probe.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/socket_util.h"
#include "dozed/probe_answer.h"
#include "dozed/settings.h"

struct prober {
	struct event_base *base;
	struct sockaddr_storage dst;
	int netns_fd, home_netns_fd; /* -1 unless probing in another namespace */
	enum probe_kind kind;
	uint64_t interval_us, started_us, attempt_us;
	uint32_t mark;
	uint64_t *attempts;
	prober_done_fn done;
	void *arg;
	int fd;			/* the attempt in flight, or -1 */
	bool talking;		/* it is connected: the request goes out, the answer comes in */
	struct event *writable; /* the connect's result, then room for the request */
	struct event *readable; /* the answer */
	struct event *tick;	/* the next attempt, or the end of the answer's wait */
	struct event *deadline;
	char request[PROBE_REQUEST_MAX];
	size_t request_len, sent;
	uint8_t answer[PROBE_ANSWER_MAX];
	size_t answer_len;
	char last_answer[PROBE_WHY_MAX];
};

__attribute__((format(printf, 2, 3))) static void prober_note(struct prober *p, const char *fmt,
							      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->last_answer, sizeof(p->last_answer), fmt, ap);
	va_end(ap);
}

/* A failed connect or a broken connection, in a user's words. */
static const char *errno_words(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "reset";
	case ETIMEDOUT:
	case EINPROGRESS:
		return "connect timed out";
	case EPIPE:
		return "connection closed";
	}
	return strerror(err);
}

static uint64_t answer_timeout_us(const struct prober *p)
{
	return p->interval_us > PROBE_ANSWER_TIMEOUT_MIN_US ? p->interval_us
							    : PROBE_ANSWER_TIMEOUT_MIN_US;
}

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

/* The next attempt on the schedule, and no sooner than min_us. */
static void prober_schedule(struct prober *p, uint64_t min_us)
{
	uint64_t elapsed = clock_monotonic_us() - p->started_us;
	uint64_t next = elapsed < PROBE_FAST_WINDOW_US && PROBE_FAST_INTERVAL_US < p->interval_us
			    ? PROBE_FAST_INTERVAL_US
			    : p->interval_us;
	if (next < min_us)
		next = min_us;
	struct timeval tv = timeval_from_us(next);
	evtimer_add(p->tick, &tv);
}

static void prober_stop_attempt(struct prober *p)
{
	if (p->writable) {
		event_free(p->writable);
		p->writable = NULL;
	}
	if (p->readable) {
		event_free(p->readable);
		p->readable = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	p->talking = false;
}

/* Ready: the last call, as done may free p. */
static void prober_succeed(struct prober *p)
{
	prober_stop_attempt(p);
	event_del(p->tick);
	event_del(p->deadline);
	p->done(p->arg, 0, p->last_answer);
}

/* The server answered, or closed, but does not serve yet: the next attempt
 * after the back-off, as each costs it a connection (a fork for PostgreSQL). */
static void prober_retry_after_answer(struct prober *p)
{
	prober_stop_attempt(p);
	prober_schedule(p, PROBE_ANSWER_BACKOFF_US);
}

static void prober_send(struct prober *p)
{
	while (p->sent < p->request_len) {
		ssize_t n = send(p->fd, p->request + p->sent, p->request_len - p->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* A short write: the rest once there is room. */
			event_add(p->writable, NULL);
			return;
		}
		if (n < 0) {
			/* The server closed or reset: its answer, if it sent one
			 * (a MySQL error packet, say), is still to be read. */
			p->sent = p->request_len;
			return;
		}
		p->sent += (size_t)n;
	}
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct prober *p = arg;
	const char *kind = settings_probe_kind_name(p->kind);
	/* The buffer is never full here: an answer of PROBE_ANSWER_MAX bytes
	 * has its verdict (not ready) at the latest. */
	ssize_t n =
	    recv(p->fd, p->answer + p->answer_len, sizeof(p->answer) - p->answer_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		int err = errno;
		if (p->answer_len)
			prober_note(p, "%s: %s after %zu bytes of an answer", kind,
				    errno_words(err), p->answer_len);
		else
			prober_note(p, "%s: %s before an answer", kind, errno_words(err));
		prober_retry_after_answer(p);
		return;
	}
	p->answer_len += (size_t)n;
	char why[PROBE_WHY_MAX];
	enum probe_verdict v =
	    probe_answer_judge(p->kind, p->answer, p->answer_len, n == 0, why, sizeof(why));
	if (v == PROBE_VERDICT_MORE)
		return;
	memcpy(p->last_answer, why, sizeof(why));
	if (v == PROBE_VERDICT_READY) {
		prober_succeed(p);
		return;
	}
	log_debug("Probe attempt not ready: %s", why);
	prober_retry_after_answer(p);
}

/* Connected: tcp is ready; a protocol sends its request and waits, at most
 * answer_timeout_us (the tick ends the wait), for the answer. */
static void prober_connected(struct prober *p)
{
	if (p->kind == PROBE_TCP) {
		prober_note(p, "tcp: connected");
		prober_succeed(p);
		return;
	}
	p->talking = true;
	p->sent = 0;
	p->answer_len = 0;
	struct timeval tv = timeval_from_us(answer_timeout_us(p));
	evtimer_add(p->tick, &tv);
	p->readable = event_new(p->base, p->fd, EV_READ | EV_PERSIST, on_readable, p);
	if (!p->readable || event_add(p->readable, NULL) < 0) {
		prober_note(p, "%s: out of memory for the answer",
			    settings_probe_kind_name(p->kind));
		prober_stop_attempt(p);
		prober_schedule(p, 0);
		return;
	}
	prober_send(p);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct prober *p = arg;
	if (p->talking) {
		prober_send(p);
		return;
	}
	int r = socket_connect_result(p->fd);
	if (r == -EINPROGRESS) {
		event_add(p->writable, NULL);
		return;
	}
	if (r < 0) {
		/* Refused or unreachable: the next tick tries again. */
		prober_note(p, "%s", errno_words(-r));
		prober_stop_attempt(p);
		return;
	}
	prober_connected(p);
}

static void prober_attempt(struct prober *p)
{
	if (p->fd >= 0 && p->talking) {
		/* The tick ends the answer's wait. */
		prober_note(p, "%s: %s within %llu ms", settings_probe_kind_name(p->kind),
			    p->answer_len ? "no whole answer" : "no answer",
			    (unsigned long long)(answer_timeout_us(p) / 1000));
	} else if (p->fd >= 0) {
		/* The tick may come before the connect's own event in a busy loop. */
		int r = socket_connect_result(p->fd);
		if (r == 0) {
			prober_connected(p);
			return;
		}
		/* Still connecting: given up only after a whole interval, as a SYN
		 * sent before the container's network existed may never be answered. */
		if (r == -EINPROGRESS && clock_monotonic_us() - p->attempt_us < p->interval_us) {
			prober_schedule(p, 0);
			return;
		}
		prober_note(p, "%s", errno_words(-r));
	}
	prober_stop_attempt(p);
	prober_schedule(p, 0);
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
		prober_note(p, "%s", errno_words(-fd));
		return;
	}
	p->fd = fd;
	p->writable = event_new(p->base, fd, EV_WRITE, on_writable, p);
	if (!p->writable || event_add(p->writable, NULL) < 0)
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
	/* Nothing ended yet: what the one in flight is at. */
	if (!p->last_answer[0] && p->fd >= 0 && p->talking)
		prober_note(p, "%s: no answer", settings_probe_kind_name(p->kind));
	else if (!p->last_answer[0] && p->fd >= 0)
		prober_note(p, "connect timed out");
	prober_stop_attempt(p);
	event_del(p->tick);
	p->done(p->arg, -ETIMEDOUT, p->last_answer);
}

int prober_start(struct event_base *base, const struct prober_target *target, uint32_t mark,
		 uint64_t interval_us, uint64_t timeout_us, uint64_t *attempts, prober_done_fn done,
		 void *arg, struct prober **out)
{
	struct probe_spec tcp = {.kind = PROBE_TCP};
	const struct probe_spec *spec = target->spec ? target->spec : &tcp;
	struct prober *p = calloc(1, sizeof(*p));
	if (!p)
		return log_error_errno(ENOMEM, "Failed to allocate a prober");
	*p = (struct prober){.base = base,
			     .dst = target->dst,
			     .netns_fd = -1,
			     .home_netns_fd = -1,
			     .kind = spec->kind,
			     .interval_us = interval_us,
			     .started_us = clock_monotonic_us(),
			     .mark = mark,
			     .attempts = attempts,
			     .done = done,
			     .arg = arg,
			     .fd = -1};
	int r = probe_request_build(spec, p->request, sizeof(p->request), &p->request_len);
	if (r < 0) {
		free(p);
		return log_error_errno(r, "Cannot probe with \"%s\": not a probe of the activator",
				       settings_probe_kind_name(spec->kind));
	}
	if (target->netns_fd >= 0) {
		p->netns_fd = fcntl(target->netns_fd, F_DUPFD_CLOEXEC, 3);
		p->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (p->netns_fd < 0 || p->home_netns_fd < 0) {
			r = -errno;
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
