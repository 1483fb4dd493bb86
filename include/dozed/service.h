/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service registry and state machine (see docs/design.md, "Service states"):
 *
 *   AWAKE (-> FROZEN) -> SLEEPING -> ASLEEP -> WAKING -> AWAKE, plus FAILED, and UNKNOWN:
 *   saved, but its container could not be inspected yet (the runtime is not
 *   up); it keeps its redirect as it was, holds the clients that come, and
 *   becomes AWAKE or ASLEEP once the runtime answers (service_reconcile).
 *
 * Pure logic: every effect (nft set, runtime, activator, timers, events) goes
 * through struct service_ops, and time comes from ops->now_us, so the machine
 * is tested with fakes and driven by the daemon with the real parts. It logs
 * nothing: calls return codes (a refusal's text in service_registry_error)
 * and the caller logs once. Async
 * effects complete through the service_on_* calls, addressed by service id so
 * that a late completion for a removed service is harmless.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dozed/flow_rule.h"
#include "dozed/probe_spec.h"

struct json_object;

enum service_state {
	SERVICE_AWAKE,
	/* Ports redirected, stop under way. A client that comes while the
	 * container still runs has it probed: if it serves, the stop is
	 * cancelled and it is AWAKE again ("sleep_cancelled"). */
	SERVICE_SLEEPING,
	SERVICE_ASLEEP,
	SERVICE_WAKING,	 /* start sent, then probing */
	SERVICE_FAILED,	 /* repeated failed wakes: waits for its backoff */
	SERVICE_UNKNOWN, /* saved, not inspected yet: redirect kept as it was */
	/* Light sleep: paused through the runtime, ports not redirected; the
	 * first packet for it (the flow counter's wake hook) thaws it. */
	SERVICE_FROZEN,
};

#define SERVICE_STATE_COUNT (SERVICE_FROZEN + 1)

const char *service_state_name(enum service_state s);

#define SERVICE_MAX_PORTS 16

struct service_port {
	char host_ip[48]; /* "" or 0.0.0.0 / :: for every address */
	uint16_t host_port;
	uint16_t container_port;
};

/* What a user enables; fixed for the life of a service. */
struct service_spec {
	const char *name;	  /* unique: the container's name */
	const char *container_id; /* the runtime's id */
	uint64_t idle_us;
	bool wake_on_data;
	struct probe_spec probe; /* zeroed: auto */
	/* Its own ignore rules when ignore_set, else the daemon's default
	 * (the daemon gives them to the flow counter; the machine keeps them). */
	struct flow_rules ignore;
	bool ignore_set;
	/* An open connection from a peer keeps it awake, even silent. */
	bool keep_awake_connections;
	/* Light sleep after this much idle time; 0: none (see settings.h). */
	uint64_t freeze_after_us;
	bool reclaim_frozen;
	const struct service_port *ports;
	size_t n_ports;
	void *userdata; /* becomes service->userdata before any effect runs */
};

/* Consecutive failed wakes before FAILED, and its first backoff. */
#define SERVICE_FAILURES_BEFORE_BACKOFF 3
#define SERVICE_BACKOFF_FIRST_US	(10 * 1000000ull)
#define SERVICE_BACKOFF_MAX_US		(10 * 60 * 1000000ull)

struct service {
	uint64_t id;
	char *name;
	char *container_id;
	uint64_t idle_us;
	bool wake_on_data;
	struct probe_spec probe;  /* as set: auto is resolved at each wake */
	struct flow_rules ignore; /* its own when ignore_set (see service_spec) */
	bool ignore_set;
	bool keep_awake_connections;
	uint64_t freeze_after_us; /* 0: no light sleep */
	bool reclaim_frozen;
	/* Light sleep: the runtime has it paused (by us, or found so); a
	 * pause is out; a packet or command came while it was; a thaw through
	 * the runtime's unpause is out. */
	bool paused, freeze_pending, thaw_wanted, thaw_pending;
	/* Why its freezes are off (the runtime refused one), "" when they are
	 * not: it stays on the stop tier. */
	char freeze_refused[200];
	uint64_t freezes, thaws;
	int64_t last_thaw_us; /* packet (or command) to running; -1: never thawed */
	/* The thaw under way (thaw_pending) or wanted: what asked, and when. */
	char thaw_trigger[48];
	char thaw_client[64];
	uint64_t thaw_at_us;
	/* The probe the last wake used, as users read it ("postgres (auto:
	 * port 5432)"); set by the daemon, "" before the first wake. */
	char probe_used[PROBE_HTTP_PATH_MAX + 64];
	struct service_port ports[SERVICE_MAX_PORTS];
	size_t n_ports;

	enum service_state state;
	uint64_t state_since_us;
	/* Time spent in each state before the current one's stretch (since it
	 * was added): service_state_time_us adds the stretch under way. */
	uint64_t state_total_us[SERVICE_STATE_COUNT];
	bool running;	 /* as far as the runtime told us */
	bool redirected; /* ports are in the nft set */
	uint64_t awake_since_us;
	/* The last counted traffic (see docs/design.md, "Flows"), or a relayed
	 * client waiting; 0: none seen. */
	uint64_t last_activity_us;
	uint64_t egress_bytes, egress_packets;
	/* egress_bytes summed over its containers' runs: never goes back when
	 * a new cgroup's counter starts from zero. */
	uint64_t egress_bytes_total;
	/* What the last counted traffic was, for users ("tcp from
	 * 10.88.0.1:41234 to port 80, 412 B in"); "" when none. */
	char last_counted[192];
	/* The idle timer: last_activity_us when it was armed, and whether it
	 * was armed for the deadline itself (the last quarter of the idle time
	 * had begun) or for the look at the start of that quarter. */
	uint64_t armed_activity_us;
	bool armed_late;
	/* Past its deadline, kept awake by an open connection: what, for
	 * users; the kept_awake event of this idle window went out. */
	char kept_awake_by[224];
	bool kept_awake_sent;
	size_t clients_waiting;	 /* relayed clients waiting for its answer, when last read */
	uint64_t last_waited_us; /* when one last did: activity too */
	uint64_t wake_started_us, start_done_us;
	uint64_t retry_at_us; /* FAILED: when it may wake again */
	unsigned failures;    /* consecutive failed wakes */
	uint64_t wakes;
	int64_t last_wake_ms;  /* -1: never woken */
	bool start_after_stop; /* a client came while stopping */
	bool stop_probing;     /* SLEEPING: the still running container is probed */
	unsigned sleeps_cancelled;
	/* How its sleeps' stops ended: the container stopped (also a stop by
	 * the runtime's own hand), or the stop failed. */
	uint64_t sleeps_stopped, sleeps_failed;
	/* How the last stop of a sleep ended, for users; "" before the first. */
	char last_stop[128];
	bool disabling;	      /* woken to be disabled: let go once it answers */
	bool wake_when_known; /* UNKNOWN: a client came; wake once reconciled */
	char reason[320];     /* why it is in its state, for users */

	struct service *next;
	void *userdata; /* the daemon's per-service state */
};

struct service_registry;

/* What keeps a service awake past its idle time. */
enum service_kept {
	SERVICE_NOT_KEPT,
	SERVICE_KEPT_UNANSWERED, /* a peer waits for the answer to its request */
	SERVICE_KEPT_CONNECTION, /* an open connection, with keep_awake_connections */
};

/* A pause the runtime did not answer (it is down) is asked again after this. */
#define SERVICE_FREEZE_RETRY_US (5 * 1000000ull)

/* Between two looks at a blocked service's connections. */
#define SERVICE_KEPT_RECHECK_US (1000000ull)

struct service_ops {
	uint64_t (*now_us)(void *ud);
	/* Synchronous; < 0 when the nft change failed (already logged). */
	int (*redirect_add)(void *ud, struct service *s);
	int (*redirect_remove)(void *ud, struct service *s);
	/* Asynchronous; complete with service_on_stop_done / _start_done. */
	void (*runtime_stop)(void *ud, struct service *s);
	/* Ends the stop under way without killing the container: true when it
	 * was cancelled (service_on_stop_done will not come), false when it is
	 * too late (the kill is sent). */
	bool (*runtime_stop_cancel)(void *ud, struct service *s);
	void (*runtime_start)(void *ud, struct service *s);
	/* The container runs: probe it (and relay held clients once it answers).
	 * In SLEEPING, a probe of a container being stopped: it keeps the held
	 * clients when it does not succeed. */
	void (*activator_starting)(void *ud, struct service *s);
	/* Ends the probe under way; held clients stay held. */
	void (*activator_probe_cancel)(void *ud, struct service *s);
	/* The wake failed: reset the held clients. */
	void (*activator_failed)(void *ud, struct service *s);
	size_t (*activator_held)(void *ud, struct service *s);
	/* Relayed clients waiting for the service's answer: it is not idle. */
	size_t (*activator_waiting)(void *ud, struct service *s);
	/* Refreshes s->last_activity_us, s->last_counted and the egress totals
	 * (service_note_egress, service_note_counted). */
	void (*egress_read)(void *ud, struct service *s);
	/* The idle time is over: does an open connection keep s awake? An
	 * unanswered request always does; with keep_awake_connections, any open
	 * connection from a peer. Says what into what (for users); returns
	 * SERVICE_NOT_KEPT when nothing does (or it cannot be told). */
	enum service_kept (*sleep_blocker)(void *ud, struct service *s, char *what, size_t len);
	/* Light sleep. Asynchronous: arms the wake hook, then the runtime's
	 * pause; completes with service_on_freeze_done. */
	void (*runtime_freeze)(void *ud, struct service *s);
	/* Lets a frozen s run: 1 when it runs already (the freezer released,
	 * the runtime's view catches up by itself), 0 when under way
	 * (service_on_thaw_done follows), < 0 when it cannot be thawed (said
	 * into why). */
	int (*runtime_thaw)(void *ud, struct service *s, char *why, size_t len);
	/* Call service_on_timer for s at at_us (0: cancel). One timer per service. */
	void (*timer_set)(void *ud, struct service *s, uint64_t at_us);
	/* An activity-feed event; facts is taken (may be NULL). */
	void (*emit)(void *ud, struct service *s, const char *event, struct json_object *facts);
	/* s is about to be freed: drop what the daemon keeps for it. */
	void (*forget)(void *ud, struct service *s);
	/* s went from the state from to s->state (for the debug log). */
	void (*state_changed)(void *ud, struct service *s, enum service_state from);
};

/* Every op is required: -EINVAL when one is NULL; -ENOMEM. Logs nothing. */
int service_registry_new(const struct service_ops *ops, void *ud, struct service_registry **out);
/* Why the last service_add, service_add_unknown or service_reconcile was
 * refused, as the user reads it ("Cannot manage web: port 8080 is already
 * db's"); "" when it was not, or refused without a message of its own
 * (service_reconcile's reasons are in s->reason). For the caller to log. */
const char *service_registry_error(const struct service_registry *r);
/* What the egress counter read for s (bytes, packets, CLOCK_MONOTONIC_COARSE
 * ns of the last packet, 0: none yet), as ops->egress_read records it. */
void service_note_egress(struct service *s, uint64_t bytes, uint64_t packets, uint64_t last_ns);
/* What the last counted traffic was, in words (see struct service). */
void service_note_counted(struct service *s, const char *what);
/* A wake whose runtime start has not answered after us fails (held clients
 * reset, the reason says so); 0, the default: no bound. */
void service_registry_set_start_timeout(struct service_registry *r, uint64_t us);
/* Frees every service (ops->forget for each, no events). Accepts NULL. */
void service_registry_free(struct service_registry *r);

/*
 * Adds a service in the state its container is in: running -> AWAKE (its
 * idle clock starts now), stopped -> ASLEEP (ports redirected). -EEXIST for
 * a name already managed, -EADDRINUSE for a port another service has.
 */
int service_add(struct service_registry *r, const struct service_spec *spec, bool running,
		struct service **out);
/*
 * Adds a saved service whose container cannot be inspected yet, as UNKNOWN:
 * redirected says whether its ports are in the set now (left as they are).
 * spec->n_ports may be 0 (saved by an older version). why is shown as its
 * reason. The same errors as service_add.
 */
int service_add_unknown(struct service_registry *r, const struct service_spec *spec,
			bool redirected, const char *why, struct service **out);
/*
 * The runtime answered for an UNKNOWN service: its container (id, ports) and
 * whether it runs. Running -> AWAKE (ports leave the set), else ASLEEP (ports
 * in the set); a client held meanwhile is relayed, or wakes it. -EALREADY
 * when s is not UNKNOWN, -EADDRINUSE when a port is another service's, < 0
 * when the redirect could not change (s stays UNKNOWN, with the reason).
 */
int service_reconcile(struct service_registry *r, struct service *s, const char *container_id,
		      const struct service_port *ports, size_t n_ports, bool running);
/* UNKNOWN: why it still is (the runtime's answer), for users. */
void service_set_unknown_reason(struct service *s, const char *why);

/* New settings for a managed service: those of set (idle_us, wake_on_data,
 * probe, ignore, ignore_set, keep_awake_connections; its name, container
 * and ports are not read). An awake one gets its new deadline. */
void service_update_settings(struct service_registry *r, struct service *s,
			     const struct service_spec *set);
/*
 * Stops managing s. An awake service is let go at once; a sleeping one is
 * woken first (a "disabled" event comes once it answers, or its wake failed)
 * and s is freed then: look it up by id afterwards, not by pointer.
 */
void service_disable(struct service_registry *r, struct service *s);
/* The container is gone: held clients are reset, the service dropped. */
void service_remove(struct service_registry *r, struct service *s);

struct service *service_find_by_id(struct service_registry *r, uint64_t id);
struct service *service_find_by_name(struct service_registry *r, const char *name);
struct service *service_find_by_container(struct service_registry *r, const char *id_or_name);
struct service *service_find_by_port(struct service_registry *r, uint16_t host_port);
struct service *service_first(struct service_registry *r);
size_t service_count(const struct service_registry *r);

/* Commands. -EALREADY when it is in that state already, -EBUSY mid-transition. */
int service_sleep_now(struct service_registry *r, struct service *s, const char *why);
int service_wake_now(struct service_registry *r, struct service *s, const char *why);

/* Inputs from the daemon's parts. */
void service_on_timer(struct service_registry *r, uint64_t id);
void service_on_stop_done(struct service_registry *r, uint64_t id, int err, const char *msg);
void service_on_start_done(struct service_registry *r, uint64_t id, int err, const char *msg);
void service_on_wake_requested(struct service_registry *r, uint64_t id,
			       const struct sockaddr_storage *client);
/* The probe succeeded: WAKING -> AWAKE; SLEEPING with a client held -> the
 * stop is cancelled (if still possible) and it is AWAKE. */
void service_on_ready(struct service_registry *r, uint64_t id, uint64_t probe_us);
/* last_answer: what the probe last saw ("postgres: the database system is
 * starting up"), "" or NULL when nothing: it goes into the reason. */
void service_on_wake_failed(struct service_registry *r, uint64_t id, int reason,
			    const char *last_answer);
/* Light sleep. The pause answered: facts (taken, may be NULL) go into the
 * freeze event (pause_ms, memory). An error turns s's freezes off
 * (msg says why, in its status); it stays awake on the stop tier. -EAGAIN
 * (no answer came) does not: the pause is asked again after
 * SERVICE_FREEZE_RETRY_US. */
void service_on_freeze_done(struct service_registry *r, uint64_t id, int err, const char *msg,
			    struct json_object *facts);
/* A thaw through the runtime answered (runtime_thaw returned 0). */
void service_on_thaw_done(struct service_registry *r, uint64_t id, int err, const char *msg);
/* The wake hook saw a packet for s (at_us: when, by now_us's clock; 0: not
 * known): a frozen s thaws. */
void service_on_packet(struct service_registry *r, uint64_t id,
		       const struct sockaddr_storage *client, uint64_t at_us);
/* Its container was found paused (at start-up, or reconciled): an awake s
 * is FROZEN, its stop tier's clock running from now. The daemon arms the
 * wake hook. */
void service_found_paused(struct service_registry *r, struct service *s);

/* The runtime says the container started / died outside our own requests. */
void service_on_runtime_started(struct service_registry *r, uint64_t id);
void service_on_runtime_died(struct service_registry *r, uint64_t id);
/* The container was found exited while WAKING (its start succeeded, then it
 * died): the wake fails at once, held clients are reset, why says how. */
void service_on_wake_exited(struct service_registry *r, uint64_t id, const char *why);

/* Whether the activator should hold a client for s now (not FAILED in backoff). */
bool service_accepts_clients(struct service_registry *r, const struct service *s);

/* The host ports of s (what the redirect set holds for it) into ports[],
 * which has room for SERVICE_MAX_PORTS; returns how many. */
size_t service_host_ports(const struct service *s, uint16_t *ports);
uint64_t service_registry_now_us(struct service_registry *r);
/* Time s spent in state up to now_us, the stretch under way included. */
uint64_t service_state_time_us(const struct service *s, enum service_state state, uint64_t now_us);
/* Reads the egress counter and the waiting relayed clients into s. */
void service_refresh_activity(struct service_registry *r, struct service *s);
size_t service_held(struct service_registry *r, struct service *s);

/* The SERVICE object of the control protocol (list, status), with a reason
 * that answers "why is it awake?". */
struct json_object *service_to_json(struct service_registry *r, struct service *s);
