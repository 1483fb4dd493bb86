// SPDX-License-Identifier: MIT
/*
 * Light sleep's effects (docs/design.md, "Light sleep"): the pause through
 * the runtime with the wake hook armed first, the thaw by the freezer itself
 * (freezer.h) with the runtime's own unpause after it so that its view stays
 * true, the wake ring's reader, and the stop of a frozen container.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon_internal.h"
#include "dozed/clock.h"
#include "dozed/flow_counter.h"
#include "dozed/freezer.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/net_queued.h"
#include "dozed/runtime.h"

#define CATCHUP_RETRY_FIRST_S 1
#define CATCHUP_RETRY_MAX_S   30
/* After the runtime's unpause, before its processes go back into their
 * cgroup: moving them holds up every fork for a grace period, which must not
 * fall on the requests that thawed it. */
#define SETTLE_DELAY_S 2

/* The sibling freezer_release moves processes into (freezer.c's name). */
static int sibling_of(const struct freezer *f, struct freezer *sib)
{
	sib->v1 = f->v1;
	int n = snprintf(sib->dir, sizeof(sib->dir), "%s" FREEZER_SIBLING_SUFFIX, f->dir);
	return n < 0 || (size_t)n >= sizeof(sib->dir) ? -ENAMETOOLONG : 0;
}

/* The freezer of pid's container (freezer_find gives the container's cgroup
 * for a process parked in its sibling, too). Both runtimes name
 * a container's cgroup after its id ("<id>", "docker-<id>.scope",
 * "libpod-<id>"): a process that moved itself elsewhere (a privileged
 * container can) must not make dozed park the processes of another cgroup. */
static int find_freezer(pid_t pid, const char *container_id, struct freezer *f)
{
	int r = freezer_find(pid, f);
	if (r < 0)
		return r;
	const char *base = strrchr(f->dir, '/');
	if (!container_id || strlen(container_id) < 12 || !base || !strstr(base, container_id))
		return -EXDEV;
	return 0;
}

/*
 * Parks the frozen cgroup's processes: frozen by dozed through cgroup v2's
 * cgroup.freeze of the container's v2 directory (x->fz2: the one the flow
 * counter is attached to), then moved out of the runtime's v1 freezer cgroup
 * into a sibling that is not frozen. The container's v1 cgroup stays frozen
 * (and empty), so that the runtime's own unpause, which requires it frozen,
 * can follow a thaw; a thaw is one write of 0 to cgroup.freeze, no process
 * moved. Moving a process takes the kernel's cgroup_threadgroup_rwsem for
 * writing, an RCU grace period (9 ms here): paid now, not when a client
 * waits. A v2-frozen process still dies of SIGKILL, so the runtime's kill
 * and rm -f work on a parked container (a v1-frozen one would never die).
 * Only with the v1 freezer: moving processes out of a v2 cgroup would leave
 * it "unpopulated", which systemd takes as a finished scope.
 */
/* Every process of dir shares the PID namespace of pid, the container's init:
 * a privileged container that renamed another's freezer cgroup after itself
 * (v1 allows it) must not make dozed move that one's processes. */
static int procs_of_container(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 32];
	struct stat own, st;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &own) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int p;
	while (fscanf(f, "%d", &p) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", p);
		if (stat(path, &st) < 0)
			continue; /* gone */
		if (st.st_ino != own.st_ino || st.st_dev != own.st_dev)
			return -EXDEV;
	}
	return 0;
}

static int park(struct svc_extra *x)
{
	struct freezer sib;
	int r = sibling_of(&x->fz, &sib);
	if (r < 0)
		return r;
	r = procs_of_container(x->fz.dir, x->pid);
	if (r < 0)
		return r;
	if (mkdir(sib.dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	r = freezer_set(&sib, false); /* one left from before may be frozen */
	if (r >= 0)
		r = freezer_set(&x->fz2, true);
	if (r >= 0)
		r = freezer_release(&x->fz);
	if (r < 0) {
		(void)freezer_settle(&x->fz);
		(void)freezer_set(&x->fz2, false);
		return r;
	}
	x->parked = true;
	return r;
}

/* Lets the parked processes run: one write, no process moved. */
static int unpark(struct svc_extra *x)
{
	return freezer_set(&x->fz2, false);
}

/* The container's v2 directory, as the flow counter is attached to it. */
static int find_v2_freezer(struct svc_extra *x)
{
	const char *dir = x->attachment ? flow_attachment_path(x->attachment) : NULL;
	if (!dir)
		return -ENOTCONN;
	int n = snprintf(x->fz2.dir, sizeof(x->fz2.dir), "%s", dir);
	x->fz2.v1 = false;
	return n < 0 || (size_t)n >= sizeof(x->fz2.dir) ? -ENAMETOOLONG : 0;
}

static void wake_disarm(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!x->wake_armed || !x->attachment)
		return;
	/* A failure is logged by the flow counter; a stray record of it finds
	 * the service no longer frozen. */
	(void)flow_counter_set_frozen(d->flows, x->attachment, false, s->wake_on_data);
	x->wake_armed = false;
}

static int wake_arm(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!x->attachment)
		return -ENOTCONN;
	int r = flow_counter_set_frozen(d->flows, x->attachment, true, s->wake_on_data);
	if (r >= 0)
		x->wake_armed = true;
	return r;
}

/* Its processes back into their cgroup, the sibling removed. */
static void settle(struct service *s, struct svc_extra *x)
{
	int r = freezer_settle(&x->fz);
	if (r < 0)
		log_warning_errno(r, "%s: could not move its processes back into %s: %m", s->name,
				  x->fz.dir);
	else
		x->parked = false;
}

/* --- freeze ------------------------------------------------------------------------ */

static void add_memory_facts(struct dozed *d, struct service *s, struct json_object *facts)
{
	struct svc_extra *x = svc_extra_of(s);
	uint64_t bytes;
	(void)d;
	if (!s->reclaim_frozen) {
		if (freezer_memory_bytes(x->pid, &bytes) == 0)
			json_object_object_add(facts, "memory_bytes",
					       json_object_new_int64((int64_t)bytes));
		return;
	}
	uint64_t before = 0, after = 0, t0 = clock_monotonic_us();
	const char *why = NULL;
	int r = freezer_reclaim(x->pid, &before, &after, &why);
	if (r < 0) {
		const char *text = why ? why : strerror(-r);
		log_warning("%s: its memory was not reclaimed: %s", s->name, text);
		json_object_object_add(facts, "reclaim_error", json_object_new_string(text));
		return;
	}
	json_object_object_add(facts, "memory_before", json_object_new_int64((int64_t)before));
	json_object_object_add(facts, "memory_after", json_object_new_int64((int64_t)after));
	json_object_object_add(facts, "memory_bytes", json_object_new_int64((int64_t)after));
	json_object_object_add(facts, "reclaim_ms",
			       json_object_new_int64((int64_t)(clock_monotonic_us() - t0) / 1000));
}

static void pause_done(int err, const struct runtime_error *error, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	struct svc_extra *x = svc_extra_of(s);
	if (err < 0 && error->http_status == 0) {
		/* No answer: the runtime is down or hangs, which is no refusal. */
		wake_disarm(d, s);
		if (strcmp(x->freeze_error, error->message) != 0)
			log_warning("%s: not frozen yet: the runtime did not answer its pause: %s; "
				    "trying again",
				    s->name, error->message);
		snprintf(x->freeze_error, sizeof(x->freeze_error), "%s", error->message);
		service_on_freeze_done(d->services, s->id, -EAGAIN, error->message, NULL);
		return;
	}
	x->freeze_error[0] = '\0';
	if (err < 0) {
		wake_disarm(d, s);
		log_warning("%s: not frozen: the runtime refused to pause it: %s; it stays on the "
			    "stop tier",
			    s->name, error->message);
		char why[320];
		snprintf(why, sizeof(why), "the runtime refused to pause it: %s", error->message);
		service_on_freeze_done(d->services, s->id, err, why, NULL);
		return;
	}
	struct json_object *facts = json_object_new_object();
	json_object_object_add(
	    facts, "pause_ms",
	    json_object_new_int64((int64_t)(clock_monotonic_us() - x->pause_started_us) / 1000));
	/* Parked in a sibling of the cgroup the pause froze, so that a thaw
	 * is one write. */
	int r = find_freezer(x->pid, s->container_id, &x->fz);
	if (r == 0)
		r = find_v2_freezer(x);
	const char *why = r == -EXDEV ? "its freezer cgroup is not the container's"
			  : r < 0     ? strerror(-r)
			  : !x->fz.v1 ? "a cgroup v2 freezer"
			  : freezer_is_frozen(&x->fz) != 1 ? "not frozen after the pause"
							   : NULL;
	if (!why && (r = park(x)) < 0)
		why = r == -EXDEV ? "its freezer cgroup holds processes of another PID namespace"
				  : strerror(-r);
	x->fz_ok = !why;
	if (why)
		log_info("%s: it thaws through the runtime's unpause, slower: its freezer cannot "
			 "be parked (%s)",
			 s->name, why);
	json_object_object_add(facts, "thaw_by",
			       json_object_new_string(x->fz_ok ? "freezer" : "runtime"));
	add_memory_facts(d, s, facts);
	service_on_freeze_done(d->services, s->id, 0, NULL, facts);
}

void dozed_freeze_begin(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	/* Its last thaw's unpause has not gone through (the runtime is down):
	 * a pause now would find it paused still, and the late unpause would
	 * make the runtime say running while it is frozen. */
	if (x->catchup_pending) {
		service_on_freeze_done(d->services, s->id, -EAGAIN,
				       "the runtime has not unpaused it since its last thaw", NULL);
		return;
	}
	/* Armed before the pause: a packet meanwhile thaws it once paused. */
	int r = wake_arm(d, s);
	if (r < 0) {
		/* The flow counter logged why it could not arm it. */
		const char *why = r == -ENOTCONN
				      ? "its traffic is not counted, so no packet could thaw it"
				      : "its wake hook could not be armed";
		if (r == -ENOTCONN)
			log_warning("%s: not frozen: %s", s->name, why);
		service_on_freeze_done(d->services, s->id, r, why, NULL);
		return;
	}
	/* Thawed before, not settled yet: back in their cgroup for the pause. */
	if (x->parked && !x->catchup_pending)
		settle(s, x);
	x->pause_started_us = clock_monotonic_us();
	struct pending_op *op = pending_op_new(d, PENDING_PAUSE, s->id);
	r = op ? runtime_pause(d->runtime, s->container_id, pause_done, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		wake_disarm(d, s);
		log_warning_errno(r, "%s: not frozen: cannot ask the runtime to pause it: %m",
				  s->name);
		service_on_freeze_done(d->services, s->id, r, "cannot ask the runtime", NULL);
	}
}

/* --- thaw --------------------------------------------------------------------------- */

static void catchup_send(struct dozed *d, struct service *s);

static void catchup_done(int err, const struct runtime_error *error, void *userdata)
{
	struct pending_op *op = userdata;
	struct freezer fz = op->fz;
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s) {
		/* Gone meanwhile: its processes go back where the runtime put them. */
		if (err >= 0 && freezer_settle(&fz) < 0)
			log_warning("Could not move a container's processes back into %s", fz.dir);
		return;
	}
	struct svc_extra *x = svc_extra_of(s);
	/* Stopped meanwhile (by hand, or its stop tier): nothing to unpause. */
	if (err < 0 && s->state != SERVICE_AWAKE && s->state != SERVICE_FROZEN)
		err = 0;
	if (err >= 0) {
		struct timeval later = {.tv_sec = SETTLE_DELAY_S};
		evtimer_add(x->catchup_timer, &later);
		if (x->catchup_error[0])
			log_info("%s: the runtime unpaused it: its view is right again", s->name);
		x->catchup_pending = false;
		x->catchup_error[0] = '\0';
		x->catchup_retry_s = 0;
		return;
	}
	if (strcmp(x->catchup_error, error->message) != 0)
		log_warning("%s: thawed and serving, but the runtime still says paused: its "
			    "unpause failed: %s; trying again",
			    s->name, error->message);
	snprintf(x->catchup_error, sizeof(x->catchup_error), "%s", error->message);
	unsigned t = x->catchup_retry_s ? x->catchup_retry_s : CATCHUP_RETRY_FIRST_S;
	x->catchup_retry_s = t * 2 < CATCHUP_RETRY_MAX_S ? t * 2 : CATCHUP_RETRY_MAX_S;
	struct timeval tv = {.tv_sec = t};
	evtimer_add(x->catchup_timer, &tv);
}

static void catchup_send(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	struct pending_op *op = pending_op_new(d, PENDING_CATCHUP, s->id);
	if (!op)
		return;
	op->fz = x->fz;
	int r = runtime_unpause(d->runtime, s->container_id, catchup_done, op);
	if (r < 0) {
		pending_op_free(op);
		log_warning_errno(r, "%s: cannot ask the runtime to unpause it: %m", s->name);
		struct timeval tv = {.tv_sec = CATCHUP_RETRY_MAX_S};
		evtimer_add(x->catchup_timer, &tv);
	}
}

static void catchup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct svc_extra *x = arg;
	struct service *s = service_find_by_id(x->d->services, x->id);
	if (!s)
		return;
	if (x->catchup_pending)
		catchup_send(x->d, s);
	else if (x->parked && s->state != SERVICE_FROZEN)
		settle(s, x);
}

static void catchup_begin(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!x->catchup_timer) {
		x->catchup_timer = evtimer_new(d->base, catchup_timer_cb, x);
		if (!x->catchup_timer) {
			log_error_errno(ENOMEM, "%s: cannot ask the runtime to unpause it",
					s->name);
			return;
		}
	}
	x->catchup_pending = true;
	x->catchup_retry_s = 0;
	catchup_send(d, s);
}

static void thaw_done(int err, const struct runtime_error *error, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	if (err < 0) {
		log_warning("%s: the runtime refused to unpause it: %s; restarting it", s->name,
			    error->message);
	} else {
		wake_disarm(d, s);
	}
	service_on_thaw_done(d->services, s->id, err, err < 0 ? error->message : NULL);
}

int dozed_thaw_begin(struct dozed *d, struct service *s, char *why, size_t len)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->parked) {
		int r = unpark(x);
		if (r >= 0) {
			wake_disarm(d, s);
			catchup_begin(d, s);
			return 1;
		}
		log_warning_errno(r,
				  "%s: could not thaw its parked processes (%m): thawing "
				  "through the runtime",
				  s->name);
	}
	struct pending_op *op = pending_op_new(d, PENDING_THAW, s->id);
	int r = op ? runtime_unpause(d->runtime, s->container_id, thaw_done, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		snprintf(why, len, "cannot ask the runtime to unpause it: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* --- found paused, stop, forget -------------------------------------------------------- */

void dozed_freeze_found(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	struct svc_extra *x = svc_extra_of(s);
	if (s->state != SERVICE_AWAKE || s->freeze_pending || x->catchup_pending || x->parked)
		return;
	bool v1 = find_freezer(c->pid, s->container_id, &x->fz) == 0 && x->fz.v1 &&
		  find_v2_freezer(x) == 0;
	if (!v1)
		x->fz2.dir[0] = '\0';
	bool out = v1 && freezer_released(&x->fz) > 0;
	bool ours = v1 && freezer_is_frozen(&x->fz2) == 1;
	if ((out || ours) && (!c->paused || !out || !ours)) {
		/* dozed was killed between a thaw and the runtime's unpause, or
		 * in the middle of a park, or the runtime unpaused it while
		 * dozed was away: it serves, or is to, and the runtime's view
		 * catches up now. */
		log_info("%s: found with its processes out of its freezer: thawing them", s->name);
		x->parked = true;
		(void)unpark(x);
		catchup_begin(d, s);
		return;
	}
	/* An empty sibling left by a container stopped while dozed was away. */
	if (v1 && !out)
		(void)freezer_settle(&x->fz);
	if (!c->paused)
		return;
	x->parked = out;
	int r = wake_arm(d, s);
	if (r < 0) {
		log_warning("%s: found paused, but no packet could thaw it (%s): unpausing it",
			    s->name, r == -ENOTCONN ? "its traffic is not counted" : strerror(-r));
		(void)unpark(x);
		catchup_begin(d, s);
		return;
	}
	x->fz_ok = v1 && (x->parked || (freezer_is_frozen(&x->fz) == 1 && park(x) >= 0));
	log_info("%s: found paused: frozen, thawed by the first packet", s->name);
	service_found_paused(d->services, s);
	/* A client that came while dozed was away sent its packets already:
	 * what it left queued thaws it now. */
	char who[96] = "";
	if (s->state == SERVICE_FROZEN &&
	    net_queued(c->pid, s->wake_on_data, who, sizeof(who)) > 0) {
		log_info("%s: %s waits for it: thawing it", s->name, who);
		service_wake_now(d->services, s, "queued");
	}
}

static void stop_unpaused(int err, const struct runtime_error *error, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	struct svc_extra *x = svc_extra_of(s);
	if (!x->stop_after_unpause)
		return; /* cancelled meanwhile */
	x->stop_after_unpause = false;
	if (x->parked)
		settle(s, x);
	if (err < 0) {
		/* Signals reach no frozen process: thaw it ourselves. */
		log_warning("%s: the runtime did not unpause it for its stop (%s): thawing its "
			    "freezer",
			    s->name, error->message);
		if (x->fz_ok && freezer_set(&x->fz, false) < 0)
			log_warning("%s: could not thaw %s either", s->name, x->fz.dir);
	}
	wake_disarm(d, s);
	s->paused = false;
	dozed_stop_begin(d, s);
}

void dozed_stop_frozen_or_begin(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!s->paused) {
		if (x->parked && !x->catchup_pending)
			settle(s, x);
		dozed_stop_begin(d, s);
		return;
	}
	if (x->stop_after_unpause)
		return;
	/* Signals reach no frozen process: the parked ones run first. */
	if (x->parked)
		(void)unpark(x);
	struct pending_op *op = pending_op_new(d, PENDING_STOP_UNPAUSE, s->id);
	int r = op ? runtime_unpause(d->runtime, s->container_id, stop_unpaused, op) : -ENOMEM;
	if (r < 0) {
		pending_op_free(op);
		log_warning_errno(r, "%s: cannot ask the runtime to unpause it: %m", s->name);
		dozed_stop_begin(d, s);
		return;
	}
	x->stop_after_unpause = true;
}

void dozed_freeze_forget(struct dozed *d, struct svc_extra *x)
{
	(void)d;
	/* dozed stops, or lets the service go: its processes go back into
	 * their cgroup, which the runtime's pause keeps frozen (a paused
	 * container as any other); found paused at the next start. */
	/* Thawed, with the runtime's unpause not through (it is down): back
	 * into a frozen cgroup they would stop serving; it is thawed first,
	 * the runtime saying paused until it is asked again. */
	if (x->parked && x->catchup_pending && freezer_set(&x->fz, false) < 0)
		log_warning("Could not thaw %s", x->fz.dir);
	if (x->parked && freezer_settle(&x->fz) < 0)
		log_warning("Could not move a frozen container's processes back into %s",
			    x->fz.dir);
	/* Back in a cgroup the runtime's pause keeps frozen, or thawed: ours
	 * is not needed either way. */
	if (x->parked && x->fz2.dir[0] && freezer_set(&x->fz2, false) < 0)
		log_warning("Could not thaw %s", x->fz2.dir);
	if (x->catchup_timer)
		event_free(x->catchup_timer);
	x->catchup_timer = NULL;
}

void dozed_freeze_json_add(const struct service *s, struct json_object *o)
{
	const struct svc_extra *x = svc_extra_of(s);
	if (s->state == SERVICE_FROZEN)
		json_object_object_add(o, "thaw_by",
				       json_object_new_string(x->fz_ok ? "freezer" : "runtime"));
	if (x->catchup_pending && x->catchup_error[0]) {
		char text[384];
		snprintf(text, sizeof(text),
			 "thawed and serving, but the runtime still says paused: its unpause "
			 "failed (%s); dozed tries again",
			 x->catchup_error);
		json_object_object_add(o, "runtime_lags", json_object_new_string(text));
	}
}

void dozed_freeze_settings_changed(struct dozed *d, struct service *s)
{
	/* Frozen, or a pause out: what wakes it is armed as its settings say. */
	if (svc_extra_of(s)->wake_armed)
		(void)wake_arm(d, s);
}
