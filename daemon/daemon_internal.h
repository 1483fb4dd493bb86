/* SPDX-License-Identifier: MIT */
#pragma once

/* What the daemon's modules (daemon*.c) share; nothing outside daemon/ sees it. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon_flows.h"
#include "daemon_metrics.h"
#include "dozed/metrics.h"
#include "dozed/config.h"
#include "dozed/freezer.h"
#include "dozed/daemon.h"
#include "dozed/list.h"
#include "dozed/service.h"
#include "dozed/settings.h"
#include "dozed/state_store.h"

struct event;
struct json_object;
struct activator;
struct control;
struct flow_attachment;
struct flow_counter;
struct feed;
struct metrics_http;
struct nft_ctx;
struct runtime;
struct runtime_container;
struct runtime_events;

struct dozed {
	struct event_base *base;
	struct dozed_config cfg; /* a copy; strings borrowed from the caller's */
	struct flow_counter *flows;
	struct nft_ctx *nft;
	struct activator *activator;
	struct runtime *runtime;
	struct runtime_events *events;
	struct control *control;
	struct feed *feed;
	struct service_registry *services;
	struct pending_op *ops; /* runtime calls in flight (LIST_FIELDS ops) */
	unsigned loading;	/* start-up inspections still out */
	bool ready;
	/* services.json had entries that could not be read (now, or before: a
	 * corrupt copy is still there): redirected ports no service owns may be
	 * theirs, so none is removed. */
	bool state_incomplete;
	struct state_aside aside; /* those entries, written back with every save */
	bool stale_ports_checked;
	struct event *reconcile_timer; /* retries UNKNOWN services */
	unsigned reconcile_retry_s;    /* the next retry's delay; 0: the first */
	unsigned reconcile_in_flight;  /* reconciling inspects out */
	size_t reconcile_waiting;      /* services waiting for room to be inspected */
	bool relist;		       /* the labelled containers must be listed again */
	struct event *trim_timer;      /* daemon_trim.c */
	/* flow_snapshot.c: the last walk of the flow map, and its expiry. */
	struct flows_snapshot snapshot;
	struct event *snapshot_timer;
	struct event *purge_timer;
	struct event *wake_event;	   /* daemon_freeze.c: the wake ring's fd */
	struct metrics_http *metrics_http; /* daemon.c: --metrics-listen; NULL when off */
	/* The flow map's evictions at its last walk, never going back
	 * (dozed_metrics_note_map_stats). */
	uint64_t metrics_flow_evictions;
	/* daemon_metrics.c: the last exposition, reused by the scrapes of the
	 * next METRICS_REUSE_US unless an event came; at 0 when there is none. */
	struct metrics_blob *metrics_last;
	uint64_t metrics_last_us;
	uint64_t trim_seen, trim_done;
	void (*ready_cb)(void *userdata);
	void *ready_ud;
};

/* A runtime call in flight, for one service (by id) or for the daemon. */
enum pending_kind {
	PENDING_START,
	PENDING_STOP,
	PENDING_REATTACH,
	PENDING_PROBE,	 /* inspect for the container's namespace, then probe */
	PENDING_LOAD,	 /* start-up: a saved or labelled container */
	PENDING_ENABLE,	 /* control: enable, reply to client */
	PENDING_LABELED, /* a labelled container seen in an event */
	PENDING_LIST,
	PENDING_RESYNC,
	PENDING_EXITED,	      /* inspect and logs of a container that died while waking */
	PENDING_PAUSE,	      /* light sleep: the freeze */
	PENDING_THAW,	      /* a thaw through the runtime's unpause */
	PENDING_CATCHUP,      /* the runtime's unpause after dozed released the freezer */
	PENDING_STOP_UNPAUSE, /* the unpause before a frozen container's stop */
};

/* What the daemon keeps beside each service (service->userdata), owned by
 * svc_extra.c: made with svc_extra_create, freed when the registry forgets
 * the service (daemon.c's forget op), reached with svc_extra_of. */
struct svc_extra {
	struct dozed *d;
	uint64_t id;
	struct event *timer;
	struct flow_attachment *attachment;
	bool idle_explicit;		 /* idle set for this service, not the default */
	bool reattach_pending;		 /* an inspect for the cgroup is out */
	bool inspect_pending;		 /* a reconciling inspect is out */
	bool reinspect;			 /* asked again meanwhile: inspect once more after it */
	uint64_t inspect_state_since_us; /* the service's state_since_us when it was asked */
	bool reconcile_waiting;		 /* to be inspected once fewer are in flight */
	enum pending_kind reconcile_kind;
	bool exit_check_pending;
	/* Times this wake's container vanished under the probe (its pid gone
	 * while the runtime still says running), and the timer that asks again. */
	unsigned probe_vanished;
	struct event *probe_retry;
	struct health_check *health; /* a healthcheck probe under way */
	pid_t health_pid;	     /* of the container it runs in, for the connect after */
	char health_ip[46];
	bool health_passed;	    /* probing once more, by connect, after it passed */
	uint64_t health_started_us; /* this wake's health command, for its probe time */
	/* daemon_stop.c: the stop under way, its call out (inspect, signal, then
	 * the wait for its exit), the SIGKILL at the end of its grace. Before
	 * the signal, its drain: looks at the container's requests in flight,
	 * DOZED_STOP_DRAIN_LOOK_US apart then longer, until none or
	 * stop_drain_until_us. */
	bool stopping, stop_killed, stop_draining;
	unsigned stop_drain_looks;
	struct pending_op *stop_op, *kill_op;
	struct event *stop_grace, *stop_drain;
	uint64_t stop_drain_until_us;
	unsigned stop_grace_s;
	char stop_signal[24];
	pid_t stop_pid;		    /* its init, as the stop's inspect saw it */
	bool stop_signalled;	    /* the stop signal was asked for */
	bool stop_signal_noop;	    /* that signal can do nothing to its init */
	char last_unknown_why[512]; /* logged once per distinct cause */
	/* Of its container when last attached: its address ("" without one)
	 * and its init (0: not known). */
	char ip[46];
	pid_t pid;
	/* The peer of the connection that last kept it awake, for the event. */
	struct sockaddr_storage kept_peer;
	bool kept_peer_set;
	/* daemon_freeze.c: its freezer (fz_ok: found, and frozen by the pause,
	 * so a release thaws it), the pause's start, the runtime's view catching
	 * up after a release (its last error, its retry), a stop waiting for
	 * the unpause. */
	struct freezer fz;
	struct freezer fz2; /* its v2 directory's cgroup.freeze: dozed's own freeze */
	bool fz_ok;
	/* Its processes wait in the frozen sibling (freezer.h's park): a
	 * thaw is one write. */
	bool parked;
	uint64_t pause_started_us;
	bool catchup_pending;
	char catchup_error[256];
	unsigned catchup_retry_s;
	struct event *catchup_timer;
	bool stop_after_unpause;
	char freeze_error[160];	    /* the pause's last unanswered error, logged once */
	bool wake_armed;	    /* the wake hook is armed for it */
	struct svc_metrics metrics; /* daemon_metrics.c: its series' own counts */
};

struct pending_op {
	LIST_FIELDS(struct pending_op, ops); /* on dozed->ops */
	struct dozed *d;
	enum pending_kind kind;
	uint64_t service_id;
	uint64_t client_id;
	/* enable: the settings asked for */
	struct service_settings settings;
	uint64_t exit_code; /* PENDING_EXITED: the code the logs are read for */
	bool from_label;    /* settings come from the container's labels */
	char *container;    /* as the user named it */
	/* PENDING_CATCHUP: the freezer to settle, even if the service is gone. */
	struct freezer fz;
};

struct pending_op *pending_op_new(struct dozed *d, enum pending_kind kind, uint64_t service_id);
void pending_op_free(struct pending_op *op);
/* Cancels service_id's calls of kind still out: no callback comes for them.
 * Returns how many. */
size_t pending_ops_cancel(struct dozed *d, enum pending_kind kind, uint64_t service_id);
/* Frees a completed op; the service it was for, or NULL when that is gone. */
struct service *pending_op_finish(struct pending_op *op);
/* The same for a runtime callback's userdata (an op), with the daemon in *d. */
static inline struct service *pending_op_done(void *userdata, struct dozed **d)
{
	struct pending_op *op = userdata;
	*d = op->d;
	return pending_op_finish(op);
}

/* svc_extra.c: x->id is set once the service is added. NULL when out of
 * memory (logged). destroy detaches its counter too; it accepts NULL. */
struct svc_extra *svc_extra_create(struct dozed *d);
void svc_extra_destroy(struct svc_extra *x);
static inline struct svc_extra *svc_extra_of(const struct service *s)
{
	return s->userdata;
}

/* daemon.c: a service's event, to the feed (which takes facts) and the metrics. */
void dozed_emit(struct dozed *d, struct service *s, const char *event, struct json_object *facts);

/* daemon_stop.c: the machine's runtime_stop and runtime_stop_cancel ops. */
void dozed_stop_begin(struct dozed *d, struct service *s);
bool dozed_stop_cancel(struct dozed *d, struct service *s);
/* Whether a stop's probe may relay clients to the container: before its
 * signal is asked for, or when that signal can do nothing to its init. */
bool dozed_stop_may_probe(const struct service *s);
/* Its grace is over: SIGKILL, and no more cancelling. */
void dozed_stop_grace_over(struct dozed *d, struct service *s);
/* The drain's next look: the signal once no request is in flight. */
void dozed_stop_drain_look(struct dozed *d, struct service *s);
/* The service goes: its calls out are cancelled. */
void dozed_stop_forget(struct dozed *d, struct svc_extra *x);

/* daemon.c */
extern const struct service_ops dozed_service_ops;
void dozed_attach_counter(struct dozed *d, struct service *s, const struct runtime_container *c);

/* daemon_freeze.c: light sleep's ops (the machine's runtime_freeze and
 * runtime_thaw), the wake hook's reader, the stop of a frozen container. */
void dozed_freeze_begin(struct dozed *d, struct service *s);
int dozed_thaw_begin(struct dozed *d, struct service *s, char *why, size_t len);
/* daemon_wake.c: watches the flow counter's wake ring; 0 or -errno (logged). */
int dozed_wake_watch_start(struct dozed *d);
void dozed_wake_watch_stop(struct dozed *d);
/* c was inspected for s: paused -> FROZEN (or the runtime's unpause when
 * dozed was killed between a release and its catch-up). */
void dozed_freeze_found(struct dozed *d, struct service *s, const struct runtime_container *c);
/* The machine's runtime_stop: unpauses a paused s first. */
void dozed_stop_frozen_or_begin(struct dozed *d, struct service *s);
void dozed_freeze_forget(struct dozed *d, struct svc_extra *x);
/* s's settings changed (wake_on): a frozen s's wake hook follows them. */
void dozed_freeze_settings_changed(struct dozed *d, struct service *s);
/* daemon_explain.c: an fd of s's container's network namespace, checked to
 * be its (the pid read is in its cgroup) and not the host's; -errno
 * (-EOPNOTSUPP for host networking). The caller closes it. */
int dozed_container_netns(const struct service *s);
/* Into a SERVICE object: "thaw_by" (freezer or runtime) of a frozen s, and
 * "runtime_lags" when a thaw's unpause has not gone through (why). */
void dozed_freeze_json_add(const struct service *s, struct json_object *o);
void dozed_reattach(struct dozed *d, struct service *s);
int dozed_save_state(struct dozed *d);
void dozed_check_ready(struct dozed *d);
/* Removes redirected ports that no service owns, once nothing is UNKNOWN and
 * services.json was read whole (else they may be a sleeping service's). */
void dozed_remove_stale_ports(struct dozed *d);

/* daemon_probe.c: the service runs; probe it (inspect first, for its namespace) */
void dozed_probe_start(struct dozed *d, struct service *s);
/* Ends the probe under way (its inspect and a health command too); held clients stay held. */
void dozed_probe_cancel(struct dozed *d, struct service *s);
/* Only the runtime's part: the inspect out for a probe, its retry, a health
 * command. A wake drops those of the phases before it (they are not its start's). */
void dozed_probe_drop_asks(struct dozed *d, struct service *s);
/* The container of a WAKING service may have died: inspect it, and if it
 * did, fail the wake at once with its exit code and last log lines. */
void dozed_check_exited(struct dozed *d, struct service *s);

/* daemon_trim.c: freed heap back to the kernel once a burst is over */
int dozed_trim_start(struct dozed *d);
void dozed_trim_stop(struct dozed *d);

/* daemon_sync.c: start-up, labels, runtime events */
int dozed_sync_start(struct dozed *d);
/* Asks the runtime about s again (UNKNOWN: to reconcile it). */
void dozed_reconcile(struct dozed *d, struct service *s, enum pending_kind kind);
/* Adds c as a service (or updates its settings); 0 and *out, or -errno with
 * *why set to a message for the user. */
int dozed_enable_container(struct dozed *d, const struct runtime_container *c,
			   const struct service_settings *set, struct service **out, char *why,
			   size_t why_len);
extern const struct runtime_events_ops dozed_events_ops;

/* daemon_control.c */
void dozed_control_handler(void *userdata, uint64_t client_id, const char *cmd,
			   struct json_object *req);

/* daemon_flows.c: the explainer. The "flows" control command. */
void dozed_cmd_flows(struct dozed *d, uint64_t client, struct json_object *req);
/* Adds the flow facts to a SERVICE object: its activity, and for status
 * (detailed) its open connections and the flow table. */
void dozed_service_json_add_flows(struct dozed *d, struct service *s, struct json_object *o,
				  bool detailed);
/* What keeps s awake past its idle time (service_ops.sleep_blocker): its
 * open connections, read in its network namespace. */
/* The kept_awake event's "peer" (and "peer_service"): the last counted
 * flow's for by=traffic, else the connection that kept s awake. */
void dozed_flows_add_kept_peer(struct dozed *d, struct service *s, struct json_object *facts);
/* Gives the flow counter s's rules in force (its own, else the default). */
void dozed_flows_apply_rules(struct dozed *d, struct service *s);
enum service_kept dozed_flows_blocker(struct dozed *d, struct service *s, char *what, size_t len);
/* Whether a request is in flight in s's container (what: which): a peer's
 * unanswered request, or a connection opened within DOZED_STOP_DRAIN_FRESH_MS
 * that has sent nothing yet (its request is on its way: a proxy in front,
 * such as docker-proxy, connects first); dozed's own probes left out. false
 * when its connections cannot be read. */
bool dozed_flows_request_in_flight(struct dozed *d, struct service *s, char *what, size_t len);
