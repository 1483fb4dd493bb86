// SPDX-License-Identifier: MIT
/*
 * The stop of a sleep, done here rather than by the runtime's stop call, so
 * that dozed decides when SIGKILL goes: the container's own stop signal, a
 * wait for its exit, then SIGKILL at the end of its own grace period (or
 * --stop-timeout when the user set one). Until the kill, the stop can be
 * cancelled: a client that comes meanwhile is relayed to the container that
 * still serves instead of waiting for the grace and a restart. Before the
 * signal, a request already in the container (it came before the ports were
 * redirected, or a command put the service to sleep) is answered first.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "daemon_internal.h"
#include "dozed/activator.h"
#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/proc_signal.h"
#include "dozed/runtime.h"

/* The wait outlives the grace by the kill and the exit it causes. */
#define STOP_AFTER_KILL_US (30 * 1000000ull)
static void stop_finish(struct dozed *d, struct service *s, int err, const char *msg)
{
	struct svc_extra *x = svc_extra_of(s);
	x->stopping = false;
	x->stop_draining = false;
	evtimer_del(x->stop_grace);
	evtimer_del(x->stop_drain);
	if (err < 0 && s->state == SERVICE_SLEEPING)
		log_warning("%s: stop failed (%s); it stays awake%s", s->name, msg ? msg : "",
			    activator_service_held(d->activator, s->id) > 0
				? ", and the clients held meanwhile go to it"
				: "");
	service_on_stop_done(d->services, s->id, err, msg);
}

/* The stop's next call went out (r 0: op is the one out now), or the stop
 * ends with r. */
static int stop_call_sent(struct dozed *d, struct service *s, struct pending_op *op, int r)
{
	if (r < 0) {
		pending_op_free(op);
		stop_finish(d, s, r, strerror(-r));
		return r;
	}
	svc_extra_of(s)->stop_op = op;
	return 0;
}

static void stop_waited(int err, const struct runtime_error *error, int exit_code, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	struct svc_extra *x = svc_extra_of(s);
	x->stop_op = NULL;
	if (err >= 0)
		log_debug("%s: exited with %d%s", s->name, exit_code,
			  x->stop_killed ? " after SIGKILL" : "");
	stop_finish(d, s, err, err < 0 ? error->message : NULL);
}

static void stop_wait(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	struct pending_op *op = pending_op_new(d, PENDING_STOP, s->id);
	uint64_t bound = (uint64_t)x->stop_grace_s * 1000000ull + STOP_AFTER_KILL_US;
	int r = op ? runtime_wait(d->runtime, s->container_id, bound, stop_waited, op) : -ENOMEM;
	if (stop_call_sent(d, s, op, r) < 0)
		return;
	struct timeval tv = timeval_from_us((uint64_t)x->stop_grace_s * 1000000ull);
	evtimer_add(x->stop_grace, &tv);
}

static void stop_signal(struct dozed *d, struct service *s);

/* A stop signal that cannot be sent: the runtime's default, said once. */
static void stop_signal_fallback(struct service *s, const char *why, const char *detail)
{
	struct svc_extra *x = svc_extra_of(s);
	log_warning("%s: cannot stop it with its stop signal %s (%s%s%s); using SIGTERM", s->name,
		    x->stop_signal, why, detail ? ": " : "", detail ? detail : "");
	snprintf(x->stop_signal, sizeof(x->stop_signal), "SIGTERM");
}

static void stop_signalled(int err, const struct runtime_error *error, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	struct svc_extra *x = svc_extra_of(s);
	x->stop_op = NULL;
	if (err == -ESRCH) { /* not running: stopped already */
		stop_finish(d, s, 0, NULL);
	} else if (err < 0 && error->http_status >= 400 && strcmp(x->stop_signal, "SIGTERM") != 0) {
		/* The runtime refused its stop signal: every stop would fail. */
		stop_signal_fallback(s, "the runtime refused it", error->message);
		stop_signal(d, s);
	} else if (err < 0) {
		stop_finish(d, s, err, error->message);
	} else {
		stop_wait(d, s);
	}
}

static void stop_killed(int err, const struct runtime_error *error, void *userdata)
{
	struct pending_op *op = userdata;
	struct service *s = pending_op_finish(op);
	if (!s)
		return;
	svc_extra_of(s)->kill_op = NULL;
	/* The wait still out reports the exit, or its own bound. */
	if (err < 0 && err != -ESRCH)
		log_warning("%s: SIGKILL at the end of its stop failed: %s", s->name,
			    error->message);
}

bool dozed_stop_may_probe(const struct service *s)
{
	const struct svc_extra *x = s->userdata;
	return !x->stopping || !x->stop_signalled || x->stop_signal_noop;
}

void dozed_stop_grace_over(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!x->stopping || x->stop_killed || !x->stop_op)
		return;
	x->stop_killed = true;
	/* From here the stop cannot be cancelled: no probe may relay clients
	 * to a container about to die. They stay held for the restart. */
	dozed_probe_cancel(d, s);
	log_notice("%s: still running %us after %s: sending SIGKILL", s->name, x->stop_grace_s,
		   x->stop_signal);
	struct pending_op *op = pending_op_new(d, PENDING_STOP, s->id);
	int r =
	    op ? runtime_kill(d->runtime, s->container_id, "SIGKILL", stop_killed, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		log_warning_errno(r, "%s: cannot send SIGKILL", s->name);
		return;
	}
	x->kill_op = op;
}

static void stop_signal(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	log_debug("%s: stopping with %s, SIGKILL after %us", s->name, x->stop_signal,
		  x->stop_grace_s);
	/* From the ask on: the signal may arrive before the answer. Only a
	 * signal that can do nothing (its init ignores it, or does not catch it
	 * and the kernel drops it) leaves the stop cancellable: one it catches
	 * may be a shutdown that still serves a while, then cuts the clients
	 * relayed to it. */
	x->stop_signalled = true;
	int signo = proc_signal_parse(x->stop_signal);
	x->stop_signal_noop =
	    signo > 0 && x->stop_pid > 0 && proc_signal_noop(x->stop_pid, signo) == 1;
	if (!x->stop_signal_noop && s->stop_probing)
		dozed_probe_cancel(d, s); /* its clients stay held for the restart */
	struct pending_op *op = pending_op_new(d, PENDING_STOP, s->id);
	int r = op ? runtime_kill(d->runtime, s->container_id, x->stop_signal, stop_signalled, op)
		   : -ENOMEM;
	if (r == -EINVAL) {
		/* A stop signal the API does not take: the runtime's default. */
		stop_signal_fallback(s, "dozed cannot send it", NULL);
		r = runtime_kill(d->runtime, s->container_id, x->stop_signal, stop_signalled, op);
	}
	if (stop_call_sent(d, s, op, r) < 0)
		return;
}

/*
 * Its requests in flight first, for up to DOZED_STOP_DRAIN_MAX_US (its grace
 * period when shorter): the ports are in the set, so no new one reaches it,
 * and a client that comes meanwhile is held and probes it (it still serves,
 * so the stop is cancelled).
 */
static void stop_drain(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	char what[160];
	/* A sleep's stop only. A failed wake's (ASLEEP, FAILED) has no client
	 * of its own to answer, and a wake meanwhile would find the container
	 * serving, then meet the signal. */
	bool busy =
	    s->state == SERVICE_SLEEPING && dozed_flows_request_in_flight(d, s, what, sizeof(what));
	uint64_t now = clock_monotonic_us();
	if (busy && now < x->stop_drain_until_us) {
		if (!x->stop_draining)
			log_info("%s: %s: the stop signal waits for its answer, %.1fs at most",
				 s->name, what, (double)(x->stop_drain_until_us - now) / 1e6);
		x->stop_draining = true;
		/* Most answers come within the first looks; a long one is not
		 * worth a socket dump every 20 ms. */
		unsigned shift = x->stop_drain_looks < 4 ? x->stop_drain_looks : 4;
		x->stop_drain_looks++;
		struct timeval tv = timeval_from_us(DOZED_STOP_DRAIN_LOOK_US << shift);
		evtimer_add(x->stop_drain, &tv);
		return;
	}
	if (busy)
		log_notice("%s: %s still unanswered at the end of its drain: stopping it anyway",
			   s->name, what);
	x->stop_draining = false;
	stop_signal(d, s);
}

void dozed_stop_drain_look(struct dozed *d, struct service *s)
{
	if (svc_extra_of(s)->stopping && svc_extra_of(s)->stop_draining)
		stop_drain(d, s);
}

static void stop_inspected(int err, const struct runtime_error *error,
			   const struct runtime_container *c, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	struct svc_extra *x = svc_extra_of(s);
	x->stop_op = NULL;
	if (err < 0) {
		stop_finish(d, s, err, error->message);
		return;
	}
	if (!c->running) {
		stop_finish(d, s, 0, NULL);
		return;
	}
	x->stop_pid = c->pid;
	snprintf(x->stop_signal, sizeof(x->stop_signal), "%s",
		 c->stop_signal && c->stop_signal[0] ? c->stop_signal : "SIGTERM");
	if (d->cfg.stop_timeout_set)
		x->stop_grace_s = d->cfg.stop_timeout_s;
	else if (c->stop_timeout_s > 0)
		x->stop_grace_s = (unsigned)c->stop_timeout_s;
	else
		/* Unset, or 0: a container made through Podman's compat API
		 * (docker-compose) says 0 though nobody asked for it, and a
		 * SIGKILL at once would lose what a graceful stop saves (a Redis
		 * dump). --stop-timeout 0 is there for those who want it. */
		x->stop_grace_s = DOZED_STOP_TIMEOUT_DEFAULT_S;
	uint64_t grace_us = (uint64_t)x->stop_grace_s * 1000000ull;
	x->stop_drain_until_us =
	    clock_monotonic_us() +
	    (grace_us < DOZED_STOP_DRAIN_MAX_US ? grace_us : DOZED_STOP_DRAIN_MAX_US);
	stop_drain(d, s);
}

void dozed_stop_begin(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->stopping)
		return; /* its end is reported once, for both asks */
	x->stopping = true;
	x->stop_killed = false;
	x->stop_draining = false;
	x->stop_drain_looks = 0;
	x->stop_signalled = false;
	x->stop_signal_noop = false;
	x->stop_pid = 0;
	/* Its signal and grace are the container's own, as of now. */
	struct pending_op *op = pending_op_new(d, PENDING_STOP, s->id);
	int r = op ? runtime_inspect(d->runtime, s->container_id, stop_inspected, op) : -ENOMEM;
	if (stop_call_sent(d, s, op, r) < 0)
		return;
}

static void stop_drop_call(struct dozed *d, struct pending_op **op)
{
	if (!*op)
		return;
	runtime_cancel(d->runtime, *op);
	pending_op_free(*op);
	*op = NULL;
}

bool dozed_stop_cancel(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->stop_after_unpause) {
		/* Only the unpause before it was out: it runs, and stays. */
		x->stop_after_unpause = false;
		s->paused = false;
		return true;
	}
	if (!x->stopping)
		return true; /* nothing under way: nothing will report */
	if (x->stop_killed)
		return false;
	stop_drop_call(d, &x->stop_op);
	evtimer_del(x->stop_grace);
	evtimer_del(x->stop_drain);
	x->stopping = false;
	x->stop_draining = false;
	log_info("%s: stop cancelled before SIGKILL: it still serves", s->name);
	return true;
}

void dozed_stop_forget(struct dozed *d, struct svc_extra *x)
{
	stop_drop_call(d, &x->stop_op);
	stop_drop_call(d, &x->kill_op);
}
