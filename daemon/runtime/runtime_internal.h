/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by runtime.c (calls), runtime_events.c (the event stream),
 * runtime_error.c (failures), runtime_ops.c (kill, wait), runtime_exec.c and
 * the parsers only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/runtime.h"

struct json_object;

struct runtime_call;
struct runtime_exec;

struct runtime {
	struct event_base *base;
	char *socket_path;
	struct runtime_config cfg;
	/* Pending calls: linked and unlinked by runtime.c alone. */
	struct runtime_call *calls;
	/* Open event streams: linked and unlinked by runtime_events.c alone. */
	struct runtime_events *streams;
	/* Pending execs: linked and unlinked by runtime_exec.c alone. */
	struct runtime_exec *execs;
	struct runtime_counters counters; /* runtime_get_counters */
};

/* Ends every event stream of rt still open, as runtime_events_free does
 * (for runtime_free). */
void runtime_events_free_all(struct runtime *rt);

/*
 * The error of an exchange with the runtime, for err and error.message:
 * transport failures (status 0) in our words, HTTP errors in the runtime's
 * (from the JSON body, else the body's text, else "HTTP N"). Returns the
 * -errno and sets *message (malloc'd; NULL only when out of memory).
 */
int runtime_describe_failure(const struct runtime *rt, const char *method, const char *target,
			     uint64_t timeout_us, int err, int status, const char *body,
			     size_t body_len, char **message);

/* What a call of runtime_ops.c or runtime_exec.c got from its answer. */
struct runtime_answer {
	int exit_code; /* wait, exec inspect; -1 if none */
	bool running;  /* exec inspect */
	char *id;      /* exec create; owned by the call */
};

/* How the answer of such a call becomes its callback. */
struct runtime_call_kind {
	enum runtime_call_id id; /* what it is counted as */
	/* The statuses that are an answer; NULL: 200 only. */
	bool (*status_ok)(int status);
	/* The -errno of a failed answer, given the one runtime_describe_failure
	 * chose and its message; NULL: that one. */
	int (*failure_errno)(int err, int status, const char *message);
	/* Reads a successful body into a; NULL: the body is not looked at. */
	int (*parse)(const char *body, size_t len, struct runtime_answer *a);
	/* A successful body is read and dropped, not kept (exec output). */
	bool discard_body;
	/* Calls cb; a is valid (exit_code -1, id NULL) when err < 0 as well. */
	void (*deliver)(void (*cb)(void), int err, const struct runtime_error *error,
			const struct runtime_answer *a, void *userdata);
};

/*
 * Starts a call as runtime.c's own are (the contract of runtime.h; cancelled
 * by runtime_cancel(rt, userdata)), answered through kind. target is taken
 * (freed on failure too; NULL: -ENOMEM); json_body may be NULL. *out, when
 * out is given, is the pending call, for runtime_call_abort.
 */
int runtime_call_begin(struct runtime *rt, const struct runtime_call_kind *kind, const char *method,
		       char *target, const char *json_body, uint64_t timeout_us, void (*cb)(void),
		       void *userdata, struct runtime_call **out);
/* Ends a pending call without its callback. Not from inside its own callback
 * (it is no longer pending then). */
void runtime_call_abort(struct runtime_call *call);
/* "/v1.41/containers/ID/suffix" with id percent-encoded; NULL when out of memory. */
char *runtime_container_target(const char *id, const char *suffix);
/* Percent-encodes everything but RFC 3986's unreserved characters. */
char *runtime_url_escape(const char *s);

/* Cancels the execs pending with userdata (for runtime_cancel); returns how many. */
size_t runtime_exec_cancel(struct runtime *rt, const void *userdata);
/* Cancels every exec pending (for runtime_free). */
void runtime_exec_free_all(struct runtime *rt);

/* --- JSON, for the parsers (runtime_parse.c, runtime_parse_health.c) ---------------- */

/* One JSON text, whole: -EBADMSG if it is not, -EMSGSIZE past INT32_MAX. */
int runtime_json_parse(const char *text, size_t len, struct json_object **out);
/* o[key] when o is an object and it has that type (json_type), else NULL. */
struct json_object *runtime_json_get(struct json_object *o, const char *key, int type);
const char *runtime_json_get_str(struct json_object *o, const char *key);
/* Config.StopSignal, Config.StopTimeout, Config.Healthcheck, State.Health of
 * an inspect answer into c. */
int runtime_parse_inspect_stop_and_health(struct json_object *root, struct runtime_container *c);
/* A copy of n strings (none NULL); *out NULL when n is 0. */
int runtime_strv_dup(char *const *v, size_t n, char ***out);
void runtime_strv_free(char **v, size_t n);
