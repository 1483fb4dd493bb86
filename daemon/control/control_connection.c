// SPDX-License-Identifier: MIT
/* One control connection: request lines in, reply and event lines out, all bounded. */
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control_internal.h"
#include "dozed/clock.h"
#include "dozed/control_request.h"
#include "dozed/duration.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"

static void conn_process_input(struct control_connection *cl);
static void on_idle(evutil_socket_t fd, short what, void *arg);

static struct control_connection *conn_find(struct control *c, uint64_t id)
{
	struct control_connection *cl;
	LIST_FOREACH (clients, cl, c->clients)
		if (cl->id == id)
			return cl;
	return NULL;
}

/*
 * A connection is closed inside its own callbacks (a request whose handler
 * drops it, a broadcast that drops a subscriber mid-request), while they still
 * use the struct: each callback holds a reference, and the struct goes with
 * the last one.
 */
static struct control_connection *conn_ref(struct control_connection *cl)
{
	assert(cl->n_ref > 0);
	cl->n_ref++;
	return cl;
}

static void conn_unref(struct control_connection *cl)
{
	assert(cl->n_ref > 0);
	if (--cl->n_ref > 0)
		return;
	assert(cl->closed);
	free(cl);
}

/* Closes the connection now and drops the list's reference. */
static void conn_close(struct control_connection *cl)
{
	struct control *c = cl->control;
	if (cl->closed)
		return;
	cl->closed = true;
	event_free(cl->idle_timer);
	cl->idle_timer = NULL;
	bufferevent_free(cl->bev);
	cl->bev = NULL;
	LIST_REMOVE(clients, c->clients, cl);
	c->counters.clients_now--;
	if (cl->subscriber)
		c->counters.subscribers_now--;
	conn_unref(cl);
}

void control_connection_free_all(struct control *c)
{
	while (c->clients)
		conn_close(c->clients);
}

/* Something happened: the idle deadline starts again (never for subscribers). */
static void conn_touch(struct control_connection *cl)
{
	if (cl->closed)
		return;
	cl->last_active_us = clock_monotonic_us();
	if (cl->subscriber)
		return;
	struct timeval tv = timeval_from_us(cl->control->cfg.idle_timeout_us);
	evtimer_add(cl->idle_timer, &tv);
}

static void conn_close_after_flush(struct control_connection *cl)
{
	if (cl->closed || cl->closing)
		return;
	cl->closing = true;
	/* A peer that never reads has an idle timeout to take its last lines. */
	conn_touch(cl);
	bufferevent_disable(cl->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
		conn_close(cl);
}

/* A client that stopped sending is done once it has had every answer, unless it follows events. */
static void conn_maybe_finish(struct control_connection *cl)
{
	if (cl->closed || cl->closing || !cl->read_eof || cl->subscriber || cl->pending > 0 ||
	    cl->paused || evbuffer_get_length(bufferevent_get_input(cl->bev)) > 0)
		return;
	conn_close_after_flush(cl);
}

static int conn_send_line(struct control_connection *cl, const char *line, size_t len)
{
	struct control *c = cl->control;
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	if (evbuffer_add(out, line, len) < 0 || evbuffer_add(out, "\n", 1) < 0)
		return log_error_errno(ENOMEM, "Failed to queue a reply to control client %llu",
				       (unsigned long long)cl->id);
	/* Answers are bounded by the requests read: stop reading more until it drains. */
	if (!cl->paused && evbuffer_get_length(out) > c->cfg.max_backlog) {
		cl->paused = true;
		bufferevent_disable(cl->bev, EV_READ);
	}
	return 0;
}

static int conn_send_json(struct control_connection *cl, struct json_object *obj)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return log_error_errno(ENOMEM, "Failed to serialize a reply to control client %llu",
				       (unsigned long long)cl->id);
	return conn_send_line(cl, s, len);
}

static struct json_object *error_object(const char *msg)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ok = json_object_new_boolean(0);
	struct json_object *err = json_object_new_string(msg);
	if (!o || !ok || !err) {
		json_object_put(o);
		json_object_put(ok);
		json_object_put(err);
		return NULL;
	}
	json_object_object_add(o, "ok", ok);
	json_object_object_add(o, "error", err);
	return o;
}

static int conn_send_error(struct control_connection *cl, const char *msg)
{
	struct json_object *o = error_object(msg);
	if (!o)
		return log_error_errno(ENOMEM, "Failed to build an error reply");
	int r = conn_send_json(cl, o);
	json_object_put(o);
	return r;
}

static bool all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static void conn_handle_line(struct control_connection *cl, const char *line, size_t len)
{
	struct control *c = cl->control;
	char err[160];

	if (all_space(line, len))
		return;
	/* A complete line is a request, even a bad one: the client is not idle. */
	conn_touch(cl);
	struct json_object *req = NULL;
	int r = control_request_parse(line, len, &req, err, sizeof(err));
	if (r < 0) {
		c->counters.bad_requests++;
		log_debug("Control client %llu: %s", (unsigned long long)cl->id, err);
		conn_send_error(cl, err);
		return;
	}
	struct json_object *cmd = NULL;
	json_object_object_get_ex(req, "cmd", &cmd);
	c->counters.requests++;
	cl->pending++;
	c->handler(c->userdata, cl->id, json_object_get_string(cmd), req);
	json_object_put(req);
}

static void conn_too_long(struct control_connection *cl)
{
	struct control *c = cl->control;
	char msg[80];
	c->counters.too_long++;
	log_warning("Control client %llu sent a request over %zu bytes; closing it",
		    (unsigned long long)cl->id, c->cfg.max_request);
	snprintf(msg, sizeof(msg), "request too long (limit %zu bytes)", c->cfg.max_request);
	conn_send_error(cl, msg);
	conn_close_after_flush(cl);
}

static void conn_process_input(struct control_connection *cl)
{
	struct control *c = cl->control;

	while (!cl->closed && !cl->closing && !cl->paused) {
		struct evbuffer *in = bufferevent_get_input(cl->bev);
		size_t avail = evbuffer_get_length(in), eol_len = 0, len;
		/* Bytes already searched hold no newline: a request trickling in
		 * byte by byte costs a linear scan, not a quadratic one. */
		struct evbuffer_ptr start;
		evbuffer_ptr_set(in, &start, cl->scanned <= avail ? cl->scanned : 0,
				 EVBUFFER_PTR_SET);
		struct evbuffer_ptr p = evbuffer_search_eol(in, &start, &eol_len, EVBUFFER_EOL_LF);
		if (p.pos >= 0) {
			len = (size_t)p.pos;
		} else if (avail > c->cfg.max_request) {
			conn_too_long(cl);
			return;
		} else if (cl->read_eof && avail > 0) {
			/* The last request may come without its newline. */
			len = avail;
		} else {
			cl->scanned = avail;
			return;
		}
		cl->scanned = 0;
		if (len > c->cfg.max_request) {
			conn_too_long(cl);
			return;
		}
		_cleanup_free_ char *line = malloc(len + 1);
		if (!line) {
			log_error_errno(ENOMEM, "Failed to read a control request");
			conn_close(cl);
			return;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		conn_handle_line(cl, line, len);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct control_connection *cl = conn_ref(arg);
	conn_process_input(cl);
	conn_unref(cl);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct control_connection *cl = conn_ref(arg);
	/* Called once the output has drained completely (low watermark 0). */
	if (cl->closing)
		conn_close(cl);
	else if (cl->paused) {
		conn_touch(cl);
		cl->paused = false;
		if (!cl->read_eof)
			bufferevent_enable(cl->bev, EV_READ);
		conn_process_input(cl);
		conn_maybe_finish(cl);
	}
	conn_unref(cl);
}

/* After EOF: has the peer closed both ways (POLLHUP), or only its sending side? */
static bool peer_gone(struct control_connection *cl)
{
	struct pollfd p = {.fd = bufferevent_getfd(cl->bev), .events = POLLOUT};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct control_connection *cl = conn_ref(arg);
	if (what & BEV_EVENT_ERROR) {
		log_debug("Control client %llu: connection error", (unsigned long long)cl->id);
		conn_close(cl);
	} else if ((what & BEV_EVENT_EOF) && peer_gone(cl)) {
		conn_close(cl);
	} else if (what & BEV_EVENT_EOF) {
		cl->read_eof = true;
		conn_process_input(cl);
		conn_maybe_finish(cl);
	}
	conn_unref(cl);
}

int control_connection_add(struct control *c, int fd, uid_t uid)
{
	_cleanup_free_ struct control_connection *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return log_error_errno(ENOMEM, "Failed to allocate a control client");
	}
	cl->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cl->bev) {
		close(fd);
		return log_error_errno(ENOMEM, "Failed to set up a control client");
	}
	cl->idle_timer = evtimer_new(c->base, on_idle, cl);
	if (!cl->idle_timer) {
		bufferevent_free(cl->bev);
		return log_error_errno(ENOMEM, "Failed to set up a control client");
	}
	cl->n_ref = 1; /* the list's, dropped by conn_close() */
	cl->control = c;
	cl->uid = uid;
	cl->id = c->next_id++;
	bufferevent_setcb(cl->bev, on_read, on_write, on_event, cl);
	/* Never read more than one request of the longest allowed (and its newline). */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, c->cfg.max_request + 1);
	bufferevent_setwatermark(cl->bev, EV_WRITE, 0, 0);
	if (bufferevent_enable(cl->bev, EV_READ | EV_WRITE) < 0) {
		bufferevent_free(cl->bev);
		event_free(cl->idle_timer);
		return log_error_errno(SYNTHETIC_ERRNO(EIO), "Failed to watch a control client");
	}
	conn_touch(cl);
	c->counters.clients_now++;
	log_debug("Control client %llu connected", (unsigned long long)cl->id);
	LIST_PREPEND(clients, c->clients, TAKE_PTR(cl));
	return 0;
}

/* Best effort and never blocking: an empty socket buffer takes one short line. */
static void send_error_now(int fd, const char *msg)
{
	struct json_object *o = error_object(msg);
	size_t len = 0;
	const char *s =
	    o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len) : NULL;
	if (s) {
		struct iovec iov[2] = {{(void *)s, len}, {(void *)"\n", 1}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug_errno(errno, "Failed to tell a control client why it is closed");
	}
	json_object_put(o);
}

void control_send_error_and_close(int fd, const char *msg)
{
	send_error_now(fd, msg);
	close(fd);
}

/* Closes now, not after a flush that a peer which does not read would never let happen;
 * the reason goes out only when nothing else is queued before it. */
static void conn_close_now(struct control_connection *cl, const char *why)
{
	if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
		send_error_now(bufferevent_getfd(cl->bev), why);
	conn_close(cl);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control_connection *cl = arg;
	struct control *c = cl->control;
	char msg[96], idle[DURATION_FORMAT_MAX];

	/* Closing frees this timer within its own callback, which libevent allows:
	 * nothing here runs after it. */
	if (cl->subscriber)
		return;
	if (cl->closing) {
		conn_close(cl);
		return;
	}
	/* Waiting for the daemon's answer is not idling: wait another round. */
	if (cl->pending > 0) {
		conn_touch(cl);
		return;
	}
	c->counters.idle_closed++;
	duration_format(c->cfg.idle_timeout_us, idle, sizeof(idle));
	log_debug("Closing control client %llu: no request for %s", (unsigned long long)cl->id,
		  idle);
	snprintf(msg, sizeof(msg), "closed: no request for %s", idle);
	conn_close_now(cl, msg);
}

bool control_connection_evict(struct control *c)
{
	struct control_connection *victim = NULL, *cl;
	LIST_FOREACH (clients, cl, c->clients) {
		if (cl->pending > 0 && !cl->closing)
			continue;
		/* Leaving anyway first, then plain clients, then subscribers; the oldest of each.
		 */
		int rank = cl->closing ? 0 : cl->subscriber ? 2 : 1;
		int best = !victim ? 3 : victim->closing ? 0 : victim->subscriber ? 2 : 1;
		if (rank < best || (rank == best && cl->last_active_us < victim->last_active_us))
			victim = cl;
	}
	if (!victim)
		return false;
	c->counters.evicted++;
	char note[80];
	if (control_warn_allowed(c, note, sizeof(note)))
		log_warning("Closed control client %llu (uid %u) to make room for root: %zu "
			    "clients are connected%s",
			    (unsigned long long)victim->id, (unsigned)victim->uid,
			    (size_t)c->counters.clients_now, note);
	conn_close_now(victim, "closed: the control socket is full and root needed a slot");
	return true;
}

int control_reply(struct control *c, uint64_t client_id, struct json_object *reply)
{
	struct control_connection *cl = conn_find(c, client_id);
	int r;

	if (!cl || cl->closing) {
		r = -ENOENT;
		goto out;
	}
	if (cl->pending > 0)
		cl->pending--;
	if (!json_object_is_type(reply, json_type_object))
		r = log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				    "A reply to control client %llu is not a JSON object",
				    (unsigned long long)client_id);
	else
		r = conn_send_json(cl, reply);
	conn_touch(cl);
	conn_maybe_finish(cl);
out:
	json_object_put(reply);
	return r;
}

int control_reply_error(struct control *c, uint64_t client_id, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Cut short: end before the last character, which may be missing its tail. */
	if (n >= (int)sizeof(msg)) {
		size_t len = sizeof(msg) - 1;
		while (len > 0 && ((unsigned char)msg[len - 1] & 0xc0) == 0x80)
			len--;
		if (len > 0 && (unsigned char)msg[len - 1] >= 0xc0)
			len--;
		msg[len] = '\0';
	}

	struct json_object *o = error_object(msg);
	if (!o)
		return log_error_errno(ENOMEM, "Failed to build an error reply");
	return control_reply(c, client_id, o);
}

int control_subscribe(struct control *c, uint64_t client_id)
{
	struct control_connection *cl = conn_find(c, client_id);
	if (!cl || cl->closing)
		return -ENOENT;
	if (!cl->subscriber) {
		cl->subscriber = true;
		c->counters.subscribers_now++;
		event_del(cl->idle_timer);
	}
	return 0;
}

void control_broadcast(struct control *c, const struct json_object *event)
{
	size_t len = 0;
	/* json-c caches the text in the object, hence the cast; the event itself is unchanged. */
	const char *s = json_object_to_json_string_length(
	    (struct json_object *)event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	    &len);
	if (!s) {
		log_error_errno(ENOMEM, "Failed to serialize an event for subscribers");
		return;
	}
	c->counters.broadcasts++;

	/* Only cl itself may be closed in the body. */
	struct control_connection *cl, *next;
	LIST_FOREACH_SAFE (clients, cl, next, c->clients) {
		if (!cl->subscriber || cl->closing)
			continue;
		size_t unsent = evbuffer_get_length(bufferevent_get_output(cl->bev));
		if (unsent + len + 1 > c->cfg.max_backlog) {
			c->counters.subscribers_dropped++;
			log_warning("Dropped events subscriber %llu: it does not read (%zu bytes "
				    "unsent)",
				    (unsigned long long)cl->id, unsent);
			conn_close(cl);
			continue;
		}
		if (conn_send_line(cl, s, len) < 0)
			conn_close(cl);
	}
}
