// SPDX-License-Identifier: MIT
/* The runtime's event stream: GET /events, one JSON object per line, reconnected with backoff. */
#include "dozed/runtime.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/clock.h"
#include "dozed/http_unix.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "runtime_internal.h"

/* An event is well under 4 KiB; a longer line is dropped, not buffered. */
#define EVENT_LINE_MAX (64 * 1024)

/* filters={"type":["container"]}: Podman 4.3 drops die events when the
 * "event" filter is used too, so actions are filtered here. */
#define EVENTS_TARGET                                                                              \
	"/" RUNTIME_API_VERSION "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"

struct runtime_events {
	struct runtime *rt; /* NULL once closed */
	LIST_FIELDS(struct runtime_events, streams);
	struct runtime_events_ops ops;
	void *userdata;
	struct http_unix_request *req;
	struct event *ev_retry;
	uint64_t backoff_us;
	unsigned failures; /* consecutive breaks and failed attempts */
	bool up;	   /* the current connection answered 200 */
	char *line;	   /* the event being received; before "up", the error body */
	size_t line_len;
	bool discarding; /* the rest of an oversized line */
	struct runtime_events_counters counters;
	/* The owner's reference, plus one held by each of our callbacks while it
	 * runs: a free from user code then ends the stream (closed) but leaves
	 * the memory to the callback still on the stack. */
	unsigned n_ref;
	bool closed;
};

/* rt->streams is this file's alone: a stream is linked while open. */
static void streams_link(struct runtime *rt, struct runtime_events *ev)
{
	ev->rt = rt;
	LIST_PREPEND(streams, rt->streams, ev);
}

static void streams_unlink(struct runtime_events *ev)
{
	LIST_REMOVE(streams, ev->rt->streams, ev);
	ev->rt = NULL;
}

static void events_release(struct runtime_events *ev)
{
	if (ev->ev_retry)
		event_free(ev->ev_retry);
	free(ev->line);
	free(ev);
}

static struct runtime_events *runtime_events_ref(struct runtime_events *ev)
{
	ev->n_ref++;
	return ev;
}

static void runtime_events_unref(struct runtime_events *ev)
{
	if (--ev->n_ref == 0)
		events_release(ev);
}

void runtime_events_free(struct runtime_events *ev)
{
	if (!ev || ev->closed)
		return;
	ev->closed = true;
	streams_unlink(ev);
	http_unix_request_free(TAKE_PTR(ev->req));
	event_del(ev->ev_retry);
	runtime_events_unref(ev);
}

void runtime_events_free_all(struct runtime *rt)
{
	while (rt->streams)
		runtime_events_free(rt->streams);
}

void runtime_events_get_counters(const struct runtime_events *ev,
				 struct runtime_events_counters *out)
{
	*out = ev->counters;
}

static void on_stream_headers(void *userdata, int status)
{
	struct runtime_events *ev = userdata;
	if (status != 200)
		return; /* the body is the error; on_stream_done reports it */
	runtime_events_ref(ev);
	ev->up = true;
	ev->counters.connects++;
	if (ev->failures > 0)
		log_info("The event stream of the container runtime at %s is back, after %u failed "
			 "attempt%s",
			 ev->rt->socket_path, ev->failures, ev->failures == 1 ? "" : "s");
	ev->failures = 0;
	ev->backoff_us = ev->rt->cfg.reconnect_min_us;
	if (ev->ops.connected)
		ev->ops.connected(ev->userdata);
	runtime_events_unref(ev);
}

static void handle_line(struct runtime_events *ev)
{
	size_t len = ev->line_len;
	while (len > 0 && (ev->line[len - 1] == '\r' || ev->line[len - 1] == ' '))
		len--;
	ev->line_len = 0;
	if (len == 0)
		return;
	struct runtime_event e;
	int r = runtime_parse_event(ev->line, len, &e);
	if (r < 0) {
		ev->counters.malformed++;
		log_debug("Dropped a line of the runtime's event stream that is not an event");
		return;
	}
	if (r == 0) {
		ev->counters.ignored++;
		return;
	}
	ev->counters.events++;
	ev->ops.event(&e, ev->userdata);
	runtime_event_clear(&e);
}

static int append(struct runtime_events *ev, const char *data, size_t len)
{
	if (ev->discarding)
		return 0;
	if (len > EVENT_LINE_MAX - ev->line_len) {
		ev->counters.oversized++;
		ev->discarding = true;
		ev->line_len = 0;
		return 0;
	}
	memcpy(ev->line + ev->line_len, data, len);
	ev->line_len += len;
	return 0;
}

static int on_stream_body(void *userdata, const char *data, size_t len)
{
	struct runtime_events *ev = userdata;
	if (!ev->up)
		return append(ev, data, len); /* an error answer, kept for its message */

	int r = 0;
	runtime_events_ref(ev);
	while (len > 0 && !ev->closed) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		append(ev, data, n);
		data += n;
		len -= n;
		if (!nl)
			break;
		data++;
		len--;
		if (ev->discarding)
			ev->discarding = false;
		else
			handle_line(ev);
	}
	if (ev->closed)
		r = -ECANCELED;
	runtime_events_unref(ev);
	return r;
}

static void on_stream_done(void *userdata, int err, int status)
{
	struct runtime_events *ev = userdata;
	struct runtime *rt = ev->rt;
	_cleanup_free_ char *message = NULL;

	runtime_events_ref(ev);
	http_unix_request_free(TAKE_PTR(ev->req));
	int http_status = 0;
	if (ev->up) {
		/* A stream that was up ends when the runtime stops, whether it
		 * closes cleanly (a last chunk) or not. */
		err = err < 0 ? err : -ECONNRESET;
		int n =
		    err == -ECONNRESET
			? asprintf(&message,
				   "The container runtime at %s ended its event stream (stopped "
				   "or restarted?)",
				   rt->socket_path)
			: asprintf(&message,
				   "The event stream of the container runtime at %s broke: %s",
				   rt->socket_path, strerror(-err));
		if (n < 0)
			message = NULL;
	} else {
		if (err == 0)
			http_status = status;
		err = runtime_describe_failure(rt, "GET", EVENTS_TARGET, rt->cfg.timeout_us, err,
					       status, ev->line, ev->line_len, &message);
	}
	ev->up = false;
	ev->line_len = 0;
	ev->discarding = false;
	rt->counters.errors[RUNTIME_CALL_EVENTS]++;

	uint64_t retry = ev->backoff_us;
	ev->backoff_us =
	    retry * 2 < rt->cfg.reconnect_max_us ? retry * 2 : rt->cfg.reconnect_max_us;
	const char *text = message ? message : "the event stream broke";
	if (ev->failures++ == 0)
		log_warning("%s; reconnecting", text);
	else
		log_debug("%s; retrying in %llu ms", text, (unsigned long long)(retry / 1000));

	struct timeval tv = timeval_from_us(retry);
	if (event_add(ev->ev_retry, &tv) < 0)
		log_error("Cannot schedule the reconnection of the runtime's event stream");
	if (ev->ops.disconnected) {
		struct runtime_error error = {.http_status = http_status, .message = text};
		ev->ops.disconnected(err, &error, retry, ev->userdata);
	}
	runtime_events_unref(ev);
}

static int start_request(struct runtime_events *ev)
{
	static const struct http_unix_callbacks cb = {
	    .on_headers = on_stream_headers,
	    .on_body = on_stream_body,
	    .on_done = on_stream_done,
	};
	struct http_unix_options opt = {
	    .method = "GET",
	    .target = EVENTS_TARGET,
	    .timeout_us = ev->rt->cfg.timeout_us,
	    .stream = true,
	};
	/* A connect that cannot start is an error in on_stream_done. */
	ev->rt->counters.calls[RUNTIME_CALL_EVENTS]++;
	return http_unix_request_new(ev->rt->base, ev->rt->socket_path, &opt, &cb, ev, &ev->req);
}

static void connect_stream(struct runtime_events *ev)
{
	int r = start_request(ev);
	if (r < 0)
		/* Out of memory: report it like any failed attempt, and retry. */
		on_stream_done(ev, r, 0);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct runtime_events *ev = arg;
	runtime_events_ref(ev);
	connect_stream(ev);
	runtime_events_unref(ev);
}

int runtime_events_new(struct runtime *rt, const struct runtime_events_ops *ops, void *userdata,
		       struct runtime_events **out)
{
	if (!ops || !ops->event)
		return -EINVAL;
	struct runtime_events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->ops = *ops;
	ev->userdata = userdata;
	ev->backoff_us = rt->cfg.reconnect_min_us;
	ev->line = malloc(EVENT_LINE_MAX);
	ev->ev_retry = event_new(rt->base, -1, 0, on_retry, ev);
	if (!ev->line || !ev->ev_retry) {
		events_release(ev);
		return -ENOMEM;
	}
	ev->n_ref = 1;
	ev->rt = rt;
	/* Failing to connect is reported from the loop, like every later break. */
	int r = start_request(ev);
	if (r < 0) {
		rt->counters.errors[RUNTIME_CALL_EVENTS]++;
		events_release(ev);
		return r;
	}
	streams_link(rt, ev);
	*out = ev;
	return 0;
}
