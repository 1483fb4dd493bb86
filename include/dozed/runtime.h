/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The container runtime client: the Docker Engine API (v1.41) over a unix
 * socket, spoken by dockerd and by `podman system service` alike. Every call
 * is asynchronous on the daemon's libevent base; nothing here blocks the loop.
 *
 * The contract of every call (runtime_start, _stop, _kill, _wait, _exec, _inspect,
 * _list, _logs):
 *  - it returns < 0 (-EINVAL, -ENOMEM) and never calls its callback, or
 *  - it returns 0 and its callback runs exactly once, from the loop (never
 *    from inside the call), unless the call is cancelled (runtime_cancel) or
 *    the runtime freed first: then the callback is never called.
 *  - it ends within its timeout (config timeout_us; a stop adds its grace).
 *
 * Errors reach callbacks as err (-errno) plus a struct runtime_error:
 *   -ENOENT      HTTP 404: no such container (message names it), or no socket
 *   -EBUSY       HTTP 409: conflict (e.g. the container is being removed)
 *   -EINVAL      HTTP 400 and other 4xx; -EACCES: 401/403; -EIO: 5xx
 *   -ESRCH       runtime_kill, runtime_exec: the container is not running (Docker:
 *                409; Podman 4.3: 500 "container state improper")
 *   -ETIMEDOUT   no complete answer within the timeout
 *   -ECONNRESET  the runtime closed the connection before a complete answer
 *   -ECONNREFUSED, -EACCES...: the socket could not be connected (http_status 0)
 *   -EPROTO, -EBADMSG, -EMSGSIZE: the answer was malformed, not the JSON
 *                expected, or larger than max_response_bytes
 * Success covers the runtimes' "already done" answers: starting a running or
 * stopping a stopped container is 304 on Docker and on Podman, except that
 * Podman answers 204 to a stop of a container that never ran.
 *
 * Calls log nothing: the callback knows what the call was for, so it logs
 * error->message. The event stream, which handles its own breaks, logs the
 * first of a series (warning) and its return (info).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct runtime;
struct runtime_events;

#define RUNTIME_API_VERSION "v1.41"

struct runtime_config {
	/* NULL: DOZED_RUNTIME_SOCKET_DEFAULT. DOCKER_HOST is not read here: the
	 * config (config.c) reads it and passes its socket. */
	const char *socket_path;
	uint64_t timeout_us;	   /* per call, stop adds its grace; default 30 s */
	uint64_t reconnect_min_us; /* events: first retry after a break; default 100 ms */
	uint64_t reconnect_max_us; /* events: retries back off up to this; default 5 s */
	size_t max_response_bytes; /* a larger answer fails with -EMSGSIZE; default 8 MiB */
};

void runtime_config_defaults(struct runtime_config *cfg);

/* Why a call failed. Both fields are valid only during the callback. */
struct runtime_error {
	int http_status; /* of the answer; 0 when none came (connect failed, timeout) */
	/* A complete sentence for the log, cause included: the runtime's own
	 * words for an HTTP error ("No such container: web"), else what failed
	 * and where ("Cannot connect to the container runtime at /x.sock: ...").
	 * "" on success. */
	const char *message;
};

/* A published TCP port. UDP and SCTP ports are left out. */
struct runtime_port {
	char host_ip[46];   /* "0.0.0.0", "::", "127.0.0.1"; "" from the runtime reads "0.0.0.0" */
	uint16_t host_port; /* never 0 */
	uint16_t container_port; /* never 0 */
};

struct runtime_label {
	char *key;
	char *value;
};

struct runtime_container {
	char *id;      /* full id */
	char *name;    /* without Docker's leading '/' */
	char *state;   /* "running", "exited", "created", "paused"... */
	bool running;  /* also while paused (State.Running, as both runtimes say it) */
	bool paused;   /* State.Paused: frozen through the runtime's pause */
	int exit_code; /* State.ExitCode: of its last run when it is not running */
	pid_t pid;     /* init process in the host's PID namespace; 0 when not running; list: 0 */
	/* cgroup v2 directory of pid (inspect of a running container), else NULL
	 * (also when the container died before /proc could be read). It is a new
	 * directory on every start, often at the same path: attach again after
	 * each start. */
	char *cgroup_dir;
	/* Its address on its network (NetworkSettings: IPAddress, else the first
	 * network's), "" when it has none: a stopped container, host networking. */
	char ip[46];
	struct runtime_label *labels;
	size_t n_labels;
	/* Published ports. While the container is stopped Docker reports none in
	 * NetworkSettings; inspect then falls back to its configured bindings, so
	 * a sleeping container's ports are known. */
	struct runtime_port *ports;
	size_t n_ports;
	/* Config.StopSignal as the runtime says it, NULL when unset: Docker
	 * gives the name the user gave ("SIGINT") and omits it unless set;
	 * Podman 4.3 always gives a number ("15", "2"). runtime_kill takes
	 * either form. */
	char *stop_signal;
	/* Config.StopTimeout in seconds, -1 when unset. Docker omits it unless
	 * set; Podman 4.3 always gives one: 10 unless --stop-timeout for a
	 * container made by its CLI (a 10 cannot be told from the default),
	 * 0 for one created through the compat API without StopTimeout (Podman's
	 * own stop then kills at once). */
	int stop_timeout_s;
	/* Config.Healthcheck.Test as the argv to exec: ["CMD-SHELL", s] gives
	 * {"/bin/sh", "-c", s}; ["CMD", a, b...] gives {a, b...}; any other
	 * first word is taken as the command itself (Podman's reading);
	 * ["NONE"], [] or none: NULL and 0. */
	char **health_cmd;
	size_t n_health_cmd;
	uint64_t health_timeout_us; /* Healthcheck.Timeout; 0 when unset (both mean 30 s) */
	/* State.Health.Status: "starting", "healthy", "unhealthy"; "" when none
	 * (Podman reports "" for a container without a healthcheck). Podman
	 * without systemd never runs the check: it stays "starting" there. */
	char health_status[16];
};

/* The label's value, or NULL. */
const char *runtime_container_label(const struct runtime_container *c, const char *key);
/* Deep copy, for keeping a container beyond its callback. */
int runtime_container_dup(const struct runtime_container *c, struct runtime_container **out);
/* Frees a runtime_container_dup() or runtime_parse_inspect() result; accepts NULL. */
void runtime_container_free(struct runtime_container *c);

/*
 * Connects to nothing yet: every call opens its own connection. Errors in the
 * configuration (a path too long for a unix socket, a zero timeout) are
 * logged and returned.
 */
int runtime_new(struct event_base *base, const struct runtime_config *cfg, struct runtime **out);
/* Cancels every pending call without calling its callback, and frees every
 * event stream still open. Accepts NULL. Safe to call from a callback. */
void runtime_free(struct runtime *rt);
const char *runtime_socket_path(const struct runtime *rt);

/* The client's calls by kind, for the metrics: a fixed set. Exec is each of
 * an exec's steps (create, start, inspect); events each connect of the
 * event stream. */
enum runtime_call_id {
	RUNTIME_CALL_START,
	RUNTIME_CALL_STOP,
	RUNTIME_CALL_INSPECT,
	RUNTIME_CALL_LIST,
	RUNTIME_CALL_LOGS,
	RUNTIME_CALL_KILL,
	RUNTIME_CALL_WAIT,
	RUNTIME_CALL_PAUSE,
	RUNTIME_CALL_UNPAUSE,
	RUNTIME_CALL_EXEC,
	RUNTIME_CALL_EVENTS,
	RUNTIME_CALL_COUNT,
};
/* "start", "stop", ..., "events". */
const char *runtime_call_name(enum runtime_call_id id);

struct runtime_counters {
	/* Calls sent (or that could not be: those are errors too), and those
	 * that ended in an error; a cancelled call is neither. For events: a
	 * connect of the stream, and a break of it or a failed connect. */
	uint64_t calls[RUNTIME_CALL_COUNT];
	uint64_t errors[RUNTIME_CALL_COUNT];
};
void runtime_get_counters(const struct runtime *rt, struct runtime_counters *out);

typedef void (*runtime_done_cb)(int err, const struct runtime_error *error, void *userdata);
/* exit_code: the container's (wait) or the command's (exec); -1 when err < 0. */
typedef void (*runtime_wait_cb)(int err, const struct runtime_error *error, int exit_code,
				void *userdata);
typedef void (*runtime_exec_cb)(int err, const struct runtime_error *error, int exit_code,
				void *userdata);
/* c is valid during the callback only (NULL when err < 0). */
typedef void (*runtime_inspect_cb)(int err, const struct runtime_error *error,
				   const struct runtime_container *c, void *userdata);
typedef void (*runtime_list_cb)(int err, const struct runtime_error *error,
				const struct runtime_container *cs, size_t n, void *userdata);

/* text: the raw body (a multiplexed stream, see runtime_logs_tail), valid
 * during the callback only; NULL when err < 0. */
typedef void (*runtime_logs_cb)(int err, const struct runtime_error *error, const char *text,
				size_t len, void *userdata);

/* id: a container's id, id prefix or name. */
int runtime_start(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata);
/* SIGTERM (the image's stop signal), then SIGKILL after grace_seconds. */
int runtime_stop(struct runtime *rt, const char *id, unsigned grace_seconds, runtime_done_cb cb,
		 void *userdata);
/* POST .../pause and .../unpause. unpause of a container that is not paused
 * (the runtime says "not paused") succeeds: it runs, as asked. */
int runtime_pause(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata);
int runtime_unpause(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata);
/*
 * Sends signal to the container's init (POST .../kill?signal=S) and reports
 * as soon as it is sent: the container may well go on running (an init that
 * ignores it). signal: a name with or without "SIG", in either case
 * ("SIGTERM", "TERM", "sigterm") or a number 1-64 ("15"), as inspect's
 * stop_signal gives it; anything else is -EINVAL at once. A container that
 * is not running (exited or never started) gives -ESRCH: treat it as
 * stopped already.
 */
int runtime_kill(struct runtime *rt, const char *id, const char *signal, runtime_done_cb cb,
		 void *userdata);
/*
 * Reports once the container is not running (POST .../wait?condition=not-running),
 * with its exit code: at once when it is not running already (a container
 * that never ran: 0; Podman 4.3 has also said -1). -ETIMEDOUT after timeout_us
 * (this call's own bound, which may exceed the configured timeout; 0: that).
 */
int runtime_wait(struct runtime *rt, const char *id, uint64_t timeout_us, runtime_wait_cb cb,
		 void *userdata);
/*
 * Runs argv (argc >= 1) in the running container, as its configured user,
 * and reports its exit code. A command the container does not have (or may
 * not run) is an exit code, not an error: 127 on Podman 4.3, 126 on Docker
 * 20.10 (both: 126 for one that is not executable). -ESRCH: the container is
 * not running (or paused, on Docker). -ETIMEDOUT after timeout_us (0: the
 * configured timeout); the command is then left to run (the API cannot kill
 * an exec). Its output is read and dropped.
 */
int runtime_exec(struct runtime *rt, const char *id, const char *const *argv, size_t argc,
		 uint64_t timeout_us, runtime_exec_cb cb, void *userdata);
int runtime_inspect(struct runtime *rt, const char *id, runtime_inspect_cb cb, void *userdata);
/*
 * All containers, running or not, carrying label ("key" or "key=value"; NULL:
 * every container). Listed containers have no pid and no cgroup_dir: inspect
 * the ones that matter.
 */
int runtime_list(struct runtime *rt, const char *label, runtime_list_cb cb, void *userdata);

/* The last tail_lines lines of its stdout and stderr (GET .../logs?tail=N),
 * within timeout_us (0 or more than the configured timeout: that one). A
 * runtime may read a whole huge log to find its last lines. */
int runtime_logs(struct runtime *rt, const char *id, unsigned tail_lines, uint64_t timeout_us,
		 runtime_logs_cb cb, void *userdata);
/* Cancels the pending calls made with userdata: their callbacks will not be
 * called. Returns how many were cancelled. Safe to call from a callback. */
size_t runtime_cancel(struct runtime *rt, const void *userdata);

/* --- the event stream --------------------------------------------------------------- */

enum runtime_event_type {
	RUNTIME_EVENT_START,
	/* The container's init exited (stop, kill, crash). Docker's "stop" event
	 * is not used: Podman does not send it. */
	RUNTIME_EVENT_DIE,
	/* Removed: Docker says "destroy", Podman "remove". */
	RUNTIME_EVENT_DESTROY,
	/* Unpaused, or sent a signal: a frozen service's processes must run
	 * (dozed's own unpause and kills come when it no longer is frozen). */
	RUNTIME_EVENT_UNPAUSE,
	RUNTIME_EVENT_KILL,
	/* Paused: by hand, an awake service is frozen (dozed's own comes as
	 * it freezes one). */
	RUNTIME_EVENT_PAUSE,
};

struct runtime_event {
	enum runtime_event_type type;
	char *id;
	char *name;	  /* may be NULL */
	int exit_code;	  /* DIE: the exit status if the runtime said, else -1 */
	uint64_t time_ns; /* the runtime's wall-clock time of the event, 0 if unknown */
};

struct runtime_events_ops {
	/* A start, die or destroy of a container; ev is valid during the call only. */
	void (*event)(const struct runtime_event *ev, void *userdata);
	/* Optional. The stream is up (again). What happened while it was down is
	 * lost: resynchronize with runtime_list/runtime_inspect after this. */
	void (*connected)(void *userdata);
	/* Optional. The stream broke or could not connect; the next attempt is in
	 * retry_us. The first break of a series is also logged, as a warning. */
	void (*disconnected)(int err, const struct runtime_error *error, uint64_t retry_us,
			     void *userdata);
};

struct runtime_events_counters {
	uint64_t events;    /* delivered to ops->event */
	uint64_t ignored;   /* other kinds of events */
	uint64_t malformed; /* lines that were not an event; dropped */
	uint64_t oversized; /* lines longer than the bound; dropped */
	/* Successful (re)connections. The attempts and the breaks (a failed
	 * attempt is one) are the runtime's calls and errors of the events call. */
	uint64_t connects;
};

/*
 * Follows the runtime's container events until freed, reconnecting with
 * exponential backoff (reconnect_min_us .. reconnect_max_us) whenever the
 * stream breaks: the runtime restarted, the socket vanished. Podman 4.3's
 * server-side "event" filter drops die events, so only the type is filtered
 * there and the rest here.
 */
int runtime_events_new(struct runtime *rt, const struct runtime_events_ops *ops, void *userdata,
		       struct runtime_events **out);
/* Accepts NULL; safe to call from its own callbacks. No callback runs after it. */
void runtime_events_free(struct runtime_events *ev);
void runtime_events_get_counters(const struct runtime_events *ev,
				 struct runtime_events_counters *out);

/* --- parsers, pure: used by the client and by the unit tests ------------------------- */

/* GET /containers/{id}/json. No cgroup_dir: that needs /proc. -EBADMSG if not one
 * (no Id, State or Name). */
int runtime_parse_inspect(const char *json, size_t len, struct runtime_container **out);
/* GET /containers/json. *out is an array of *n containers, freed with runtime_containers_free. */
int runtime_parse_list(const char *json, size_t len, struct runtime_container **out, size_t *n);
void runtime_containers_free(struct runtime_container *cs, size_t n);
/* One line of GET /events: 1 and *out filled for a container start, die or
 * destroy; 0 for any other event; -EBADMSG if not an event. */
int runtime_parse_event(const char *json, size_t len, struct runtime_event *out);
void runtime_event_clear(struct runtime_event *ev);
/*
 * The last max_lines non-empty lines of a logs body, joined by " | ", into
 * out (cut to fit out_len, always terminated): the body is Docker's and
 * Podman's multiplexed stream (8-byte frame headers) for a container without
 * a TTY, raw text for one with. Control characters are shown as '?'.
 */
void runtime_logs_tail(const char *body, size_t len, size_t max_lines, char *out, size_t out_len);
/* The StatusCode of a wait answer ({"StatusCode": 137, "Error": null}); -EBADMSG if none. */
int runtime_parse_wait(const char *json, size_t len, int *exit_code);
/* The Id of an exec create answer ({"Id": "..."}), malloc'd; -EBADMSG if none. */
int runtime_parse_exec_id(const char *json, size_t len, char **id);
/* Running and ExitCode of GET /exec/{id}/json (ExitCode null while running: -1). */
int runtime_parse_exec_inspect(const char *json, size_t len, bool *running, int *exit_code);
/* The "message" of an error answer (malloc'd), or NULL when there is none. */
char *runtime_parse_error_message(const char *json, size_t len);
