// SPDX-License-Identifier: MIT
/* The runtime's calls: start, stop, inspect, list, logs, and the machinery of
 * kill and wait (runtime_ops.c) and exec (runtime_exec.c). The event stream is
 * in runtime_events.c. */
#include "dozed/runtime.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "dozed/cgroup.h"
#include "dozed/http_unix.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "runtime_internal.h"

/* The built-in calls are counted as their own ids; the others as their kind says. */
enum call_kind {
	CALL_START = RUNTIME_CALL_START,
	CALL_STOP = RUNTIME_CALL_STOP,
	CALL_INSPECT = RUNTIME_CALL_INSPECT,
	CALL_LIST = RUNTIME_CALL_LIST,
	CALL_LOGS = RUNTIME_CALL_LOGS,
	CALL_OTHER = RUNTIME_CALL_COUNT,
};

struct runtime_call {
	struct runtime *rt; /* NULL once closed */
	LIST_FIELDS(struct runtime_call, calls);
	/* The owner's (rt's list) reference, plus one held while the answer is
	 * delivered: the callback's data lives here. */
	unsigned n_ref;
	bool closed;
	enum call_kind kind;
	enum runtime_call_id id;
	const struct runtime_call_kind *other; /* CALL_OTHER */
	int status;			       /* once the headers came */
	union {
		runtime_done_cb done;
		runtime_inspect_cb inspect;
		runtime_list_cb list;
		runtime_logs_cb logs;
		void (*other)(void);
	} cb;
	void *userdata;
	struct http_unix_request *req;
	const char *method;
	char *target;
	char *request_body;
	uint64_t timeout_us;
	char *body;
	size_t body_len, body_cap;
};

void runtime_config_defaults(struct runtime_config *cfg)
{
	*cfg = (struct runtime_config){
	    .socket_path = NULL,
	    .timeout_us = 30 * 1000000ull,
	    .reconnect_min_us = 100 * 1000ull,
	    .reconnect_max_us = 5 * 1000000ull,
	    .max_response_bytes = 8 << 20,
	};
}

int runtime_new(struct event_base *base, const struct runtime_config *cfg, struct runtime **out)
{
	struct runtime_config c;
	if (cfg)
		c = *cfg;
	else
		runtime_config_defaults(&c);

	/* DOCKER_HOST is the config's to read (config.c), not ours. */
	_cleanup_free_ char *path =
	    strdup(c.socket_path ? c.socket_path : DOZED_RUNTIME_SOCKET_DEFAULT);
	if (!path)
		return log_error_errno(ENOMEM, "Failed to allocate the runtime's socket path");
	if (*path == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
		return log_error_errno(SYNTHETIC_ERRNO(ENAMETOOLONG),
				       "The container runtime's socket path \"%s\" is empty or "
				       "longer than a unix socket address allows",
				       path);
	if (c.timeout_us == 0 || c.reconnect_min_us == 0 ||
	    c.reconnect_max_us < c.reconnect_min_us || c.max_response_bytes == 0)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "Invalid runtime client configuration: timeouts "
				       "and bounds must be positive");

	struct runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return log_error_errno(ENOMEM, "Failed to allocate the runtime client");
	rt->base = base;
	rt->cfg = c;
	rt->cfg.socket_path = NULL;
	rt->socket_path = TAKE_PTR(path);
	*out = rt;
	return 0;
}

static const char *const call_names[RUNTIME_CALL_COUNT] = {
    [RUNTIME_CALL_START] = "start",	[RUNTIME_CALL_STOP] = "stop",
    [RUNTIME_CALL_INSPECT] = "inspect", [RUNTIME_CALL_LIST] = "list",
    [RUNTIME_CALL_LOGS] = "logs",	[RUNTIME_CALL_KILL] = "kill",
    [RUNTIME_CALL_WAIT] = "wait",	[RUNTIME_CALL_PAUSE] = "pause",
    [RUNTIME_CALL_UNPAUSE] = "unpause", [RUNTIME_CALL_EXEC] = "exec",
    [RUNTIME_CALL_EVENTS] = "events",
};

const char *runtime_call_name(enum runtime_call_id id)
{
	return (size_t)id < RUNTIME_CALL_COUNT ? call_names[id] : "other";
}

void runtime_get_counters(const struct runtime *rt, struct runtime_counters *out)
{
	*out = rt->counters;
}

const char *runtime_socket_path(const struct runtime *rt)
{
	return rt->socket_path;
}

static void call_release(struct runtime_call *call)
{
	free(call->target);
	free(call->request_body);
	free(call->body);
	free(call);
}

static struct runtime_call *call_ref(struct runtime_call *call)
{
	call->n_ref++;
	return call;
}

static void call_unref(struct runtime_call *call)
{
	if (--call->n_ref == 0)
		call_release(call);
}

/* rt->calls is this file's alone: a call is linked while pending. */
static void call_link(struct runtime *rt, struct runtime_call *call)
{
	call->rt = rt;
	LIST_PREPEND(calls, rt->calls, call);
}

/* Ends the call: unlinked, its connection closed, no callback from now on
 * (but the one being delivered), the owner's reference dropped. */
static void call_close(struct runtime_call *call)
{
	if (call->closed)
		return;
	call->closed = true;
	LIST_REMOVE(calls, call->rt->calls, call);
	call->rt = NULL;
	http_unix_request_free(TAKE_PTR(call->req));
	call_unref(call);
}

size_t runtime_cancel(struct runtime *rt, const void *userdata)
{
	size_t n = 0;
	struct runtime_call *call, *next;
	LIST_FOREACH_SAFE (calls, call, next, rt->calls) {
		if (call->userdata == userdata) {
			call_close(call);
			n++;
		}
	}
	return n + runtime_exec_cancel(rt, userdata);
}

void runtime_call_abort(struct runtime_call *call)
{
	call_close(call);
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	/* Execs first: each owns a pending call of its own. */
	runtime_exec_free_all(rt);
	while (rt->calls)
		call_close(rt->calls);
	runtime_events_free_all(rt);
	free(rt->socket_path);
	free(rt);
}

static void on_call_headers(void *userdata, int status)
{
	struct runtime_call *call = userdata;
	call->status = status;
}

static bool status_ok(const struct runtime_call *call, int status);

static int on_call_body(void *userdata, const char *data, size_t len)
{
	struct runtime_call *call = userdata;
	if (call->kind == CALL_OTHER && call->other->discard_body && status_ok(call, call->status))
		return 0;
	size_t max = call->rt->cfg.max_response_bytes;
	if (len > max - call->body_len)
		return -EMSGSIZE;
	if (call->body_len + len + 1 > call->body_cap) {
		size_t cap = call->body_cap ? call->body_cap : 4096;
		while (cap < call->body_len + len + 1)
			cap *= 2;
		char *b = realloc(call->body, cap);
		if (!b)
			return -ENOMEM;
		call->body = b;
		call->body_cap = cap;
	}
	memcpy(call->body + call->body_len, data, len);
	call->body_len += len;
	call->body[call->body_len] = '\0';
	return 0;
}

static bool status_ok(const struct runtime_call *call, int status)
{
	enum call_kind kind = call->kind;
	if (kind == CALL_OTHER)
		return call->other->status_ok ? call->other->status_ok(status) : status == 200;
	if (kind == CALL_START || kind == CALL_STOP)
		/* 304: already started or stopped (Docker; Podman for start).
		 * Podman answers a stop of a stopped container with 204. */
		return status == 204 || status == 304 || status == 200;
	return status == 200;
}

static void call_deliver(struct runtime_call *call, int err, const struct runtime_error *error,
			 const struct runtime_container *cs, size_t n,
			 const struct runtime_answer *answer)
{
	switch (call->kind) {
	case CALL_OTHER:
		call->other->deliver(call->cb.other, err, error, answer, call->userdata);
		break;
	case CALL_START:
	case CALL_STOP:
		call->cb.done(err, error, call->userdata);
		break;
	case CALL_INSPECT:
		call->cb.inspect(err, error, err < 0 ? NULL : cs, call->userdata);
		break;
	case CALL_LIST:
		call->cb.list(err, error, err < 0 ? NULL : cs, err < 0 ? 0 : n, call->userdata);
		break;
	case CALL_LOGS:
		call->cb.logs(err, error, err < 0 ? NULL : (call->body ? call->body : ""),
			      err < 0 ? 0 : call->body_len, call->userdata);
		break;
	}
}

/* The cgroup is resolved now, while the PID is fresh. A container that died
 * since the runtime answered simply has none: that is no error to log. */
static void resolve_cgroup(struct runtime_container *c)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d/cgroup", (int)c->pid);
	if (access(proc, F_OK) < 0 || cgroup2_dir_from_pid(c->pid, &c->cgroup_dir) < 0)
		c->cgroup_dir = NULL;
}

static void on_call_done(void *userdata, int err, int status)
{
	struct runtime_call *call = userdata;
	struct runtime *rt = call->rt;
	_cleanup_free_ char *message = NULL;
	struct runtime_container *cs = NULL;
	size_t n = 0;
	struct runtime_answer answer = {.exit_code = -1};

	if (err == 0 && status_ok(call, status)) {
		if (call->kind == CALL_OTHER && call->other->parse)
			err = call->body ? call->other->parse(call->body, call->body_len, &answer)
					 : -EBADMSG;
		if (call->kind == CALL_INSPECT) {
			err = call->body ? runtime_parse_inspect(call->body, call->body_len, &cs)
					 : -EBADMSG;
			n = err < 0 ? 0 : 1;
			if (err == 0 && cs->running && cs->pid > 0)
				resolve_cgroup(cs);
		} else if (call->kind == CALL_LIST) {
			err = call->body ? runtime_parse_list(call->body, call->body_len, &cs, &n)
					 : -EBADMSG;
		}
		if (err < 0)
			err = runtime_describe_failure(rt, call->method, call->target,
						       call->timeout_us, err, 0, NULL, 0, &message);
	} else {
		err = runtime_describe_failure(rt, call->method, call->target, call->timeout_us,
					       err, status, call->body, call->body_len, &message);
		if (call->kind == CALL_OTHER && call->other->failure_errno)
			err = call->other->failure_errno(err, status, message);
	}

	if (err < 0)
		rt->counters.errors[call->id]++;
	struct runtime_error error = {
	    .http_status = err < 0 ? status : 0,
	    .message = err < 0 ? (message ? message : "out of memory describing the failure") : "",
	};
	/* Answered, the call is no longer pending: closed before its callback,
	 * which may cancel (this one is not counted), free the runtime or queue
	 * more calls. Our reference keeps it for the callback; nothing touches
	 * rt after it. */
	call_ref(call);
	call_close(call);
	call_deliver(call, err, &error, cs, n, &answer);
	free(answer.id);
	if (call->kind == CALL_INSPECT)
		runtime_container_free(cs);
	else
		runtime_containers_free(cs, n);
	call_unref(call);
}

char *runtime_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int call_start(struct runtime *rt, enum call_kind kind,
		      const struct runtime_call_kind *other, const char *method, char *target,
		      const char *json_body, uint64_t timeout_us, void (*cb)(void), void *userdata,
		      struct runtime_call **out)
{
	_cleanup_free_ char *owned_target = target;
	if (!target)
		return -ENOMEM;
	struct runtime_call *call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	if (json_body && !(call->request_body = strdup(json_body))) {
		free(call);
		return -ENOMEM;
	}
	call->kind = kind;
	call->id = kind == CALL_OTHER ? other->id : (enum runtime_call_id)kind;
	call->other = other;
	call->method = method;
	call->target = TAKE_PTR(owned_target);
	call->timeout_us = timeout_us;
	call->userdata = userdata;
	switch (kind) {
	case CALL_START:
	case CALL_STOP:
		call->cb.done = (runtime_done_cb)cb;
		break;
	case CALL_INSPECT:
		call->cb.inspect = (runtime_inspect_cb)cb;
		break;
	case CALL_LIST:
		call->cb.list = (runtime_list_cb)cb;
		break;
	case CALL_LOGS:
		call->cb.logs = (runtime_logs_cb)cb;
		break;
	case CALL_OTHER:
		call->cb.other = cb;
		break;
	}

	static const struct http_unix_callbacks hcb = {
	    .on_headers = on_call_headers,
	    .on_body = on_call_body,
	    .on_done = on_call_done,
	};
	struct http_unix_options opt = {
	    .method = method,
	    .target = call->target,
	    .content_type = call->request_body ? "application/json" : NULL,
	    .body = call->request_body,
	    .body_len = call->request_body ? strlen(call->request_body) : 0,
	    .timeout_us = timeout_us,
	};
	call->rt = rt;
	rt->counters.calls[call->id]++;
	int r = http_unix_request_new(rt->base, rt->socket_path, &opt, &hcb, call, &call->req);
	if (r < 0) {
		rt->counters.errors[call->id]++;
		call_release(call);
		return r;
	}
	call->n_ref = 1;
	call_link(rt, call);
	if (out)
		*out = call;
	return 0;
}

static int call_begin(struct runtime *rt, enum call_kind kind, const char *method, char *target,
		      uint64_t timeout_us, void (*cb)(void), void *userdata)
{
	return call_start(rt, kind, NULL, method, target, NULL, timeout_us, cb, userdata, NULL);
}

int runtime_call_begin(struct runtime *rt, const struct runtime_call_kind *kind, const char *method,
		       char *target, const char *json_body, uint64_t timeout_us, void (*cb)(void),
		       void *userdata, struct runtime_call **out)
{
	return call_start(rt, CALL_OTHER, kind, method, target, json_body, timeout_us, cb, userdata,
			  out);
}

char *runtime_container_target(const char *id, const char *suffix)
{
	_cleanup_free_ char *eid = runtime_url_escape(id);
	char *t = NULL;
	if (!eid || asprintf(&t, "/" RUNTIME_API_VERSION "/containers/%s/%s", eid, suffix) < 0)
		return NULL;
	return t;
}

int runtime_start(struct runtime *rt, const char *id, runtime_done_cb cb, void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	return call_begin(rt, CALL_START, "POST", runtime_container_target(id, "start"),
			  rt->cfg.timeout_us, (void (*)(void))cb, userdata);
}

int runtime_stop(struct runtime *rt, const char *id, unsigned grace_seconds, runtime_done_cb cb,
		 void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	char suffix[32];
	snprintf(suffix, sizeof(suffix), "stop?t=%u", grace_seconds);
	/* The runtime answers only once the grace period has run out. */
	uint64_t timeout = rt->cfg.timeout_us + (uint64_t)grace_seconds * 1000000ull;
	return call_begin(rt, CALL_STOP, "POST", runtime_container_target(id, suffix), timeout,
			  (void (*)(void))cb, userdata);
}

int runtime_inspect(struct runtime *rt, const char *id, runtime_inspect_cb cb, void *userdata)
{
	if (!id || !*id || !cb)
		return -EINVAL;
	return call_begin(rt, CALL_INSPECT, "GET", runtime_container_target(id, "json"),
			  rt->cfg.timeout_us, (void (*)(void))cb, userdata);
}

int runtime_list(struct runtime *rt, const char *label, runtime_list_cb cb, void *userdata)
{
	if (!cb)
		return -EINVAL;
	char *target = NULL;
	if (!label) {
		if (asprintf(&target, "/" RUNTIME_API_VERSION "/containers/json?all=1") < 0)
			target = NULL;
		return call_begin(rt, CALL_LIST, "GET", target, rt->cfg.timeout_us,
				  (void (*)(void))cb, userdata);
	}

	/* filters={"label":["key=value"]}, built by json-c so any label is quoted right. */
	json_object *filters = json_object_new_object();
	json_object *labels = json_object_new_array();
	json_object *value = json_object_new_string(label);
	if (!filters || !labels || !value || json_object_array_add(labels, value) < 0) {
		json_object_put(filters);
		json_object_put(labels);
		json_object_put(value);
		return -ENOMEM;
	}
	json_object_object_add(filters, "label", labels);
	_cleanup_free_ char *q =
	    runtime_url_escape(json_object_to_json_string_ext(filters, JSON_C_TO_STRING_PLAIN));
	json_object_put(filters);
	if (!q ||
	    asprintf(&target, "/" RUNTIME_API_VERSION "/containers/json?all=1&filters=%s", q) < 0)
		target = NULL;
	return call_begin(rt, CALL_LIST, "GET", target, rt->cfg.timeout_us, (void (*)(void))cb,
			  userdata);
}

int runtime_logs(struct runtime *rt, const char *id, unsigned tail_lines, uint64_t timeout_us,
		 runtime_logs_cb cb, void *userdata)
{
	if (!id || !*id || !cb || tail_lines == 0)
		return -EINVAL;
	char suffix[64];
	snprintf(suffix, sizeof(suffix), "logs?stdout=1&stderr=1&tail=%u", tail_lines);
	uint64_t t =
	    timeout_us && timeout_us < rt->cfg.timeout_us ? timeout_us : rt->cfg.timeout_us;
	return call_begin(rt, CALL_LOGS, "GET", runtime_container_target(id, suffix), t,
			  (void (*)(void))cb, userdata);
}
