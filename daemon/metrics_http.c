// SPDX-License-Identifier: MIT
/* The metrics listener on libevent's evhttp (metrics_http.h). */
#include "dozed/metrics_http.h"
#include "dozed/socket_util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics.h"

/* One accepted connection, until evhttp closes it. From its accept to the
 * adopt event it is known by its bufferevent only (evcon NULL, in pending). */
struct scrape_conn {
	struct metrics_http *h;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	LIST_FIELDS(struct scrape_conn, conns);
};

struct metrics_http {
	struct evhttp *http;
	struct evconnlistener *listener; /* NULL once evhttp_free has begun */
	struct event *adopt;
	bool paused; /* the listener is disabled: at the cap */
	metrics_render_fn render;
	void *userdata;
	struct scrape_conn *pending;
	struct scrape_conn *conns;
	struct metrics_http_counters counters;
	char addr[METRICS_LISTEN_TEXT_MAX];
};

/* Under the cap again: the kernel's backlog is accepted from anew. */
static void listener_resume(struct metrics_http *h)
{
	if (!h->paused || !h->listener || h->counters.conns_now >= METRICS_HTTP_MAX_CONNS)
		return;
	if (evconnlistener_enable(h->listener) < 0) {
		log_warning("Failed to resume accepting scrapes on %s", h->addr);
		return;
	}
	h->paused = false;
}

/* evhttp closes a connection: on the client's leaving, its timeout, or evhttp_free. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct scrape_conn *sc = arg;
	struct metrics_http *h = sc->h;
	(void)evcon;
	LIST_REMOVE(conns, h->conns, sc);
	h->counters.conns_now--;
	free(sc);
	listener_resume(h);
}

/*
 * evhttp's bevcb, called for each accepted connection before evhttp makes its
 * evhttp_connection: every connection counts from here, silent ones too. At
 * the cap the listener is disabled (libevent's accept loop stops at once), so
 * further connections wait in the kernel's backlog and cost no fd. Our
 * reference keeps the bufferevent valid until adopt_pending finds its
 * connection. NULL (out of memory) lets evhttp make one untracked.
 */
static struct bufferevent *conn_accepted(struct event_base *base, void *arg)
{
	struct metrics_http *h = arg;
	struct scrape_conn *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	sc->h = h;
	sc->bev = bufferevent_socket_new(base, -1, 0);
	if (!sc->bev) {
		free(sc);
		return NULL;
	}
	bufferevent_incref(sc->bev);
	LIST_PREPEND(conns, h->pending, sc);
	h->counters.conns_now++;
	if (h->counters.conns_now >= METRICS_HTTP_MAX_CONNS && !h->paused && h->listener) {
		if (evconnlistener_disable(h->listener) < 0)
			log_warning("Failed to pause accepting scrapes on %s", h->addr);
		else
			h->paused = true;
	}
	event_active(h->adopt, EV_TIMEOUT, 0);
	return sc->bev;
}

/*
 * Runs just after the accepts: evhttp 2.1 sets each connection's bufferevent
 * callbacks with the evhttp_connection as their argument, so it is found
 * through public calls and gets a close callback. A bufferevent whose
 * callbacks are gone was freed by evhttp already (it failed at once).
 */
static void adopt_pending(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *h = arg;
	(void)fd;
	(void)what;
	while (h->pending) {
		struct scrape_conn *sc = h->pending;
		LIST_REMOVE(conns, h->pending, sc);
		struct bufferevent *bev = sc->bev;
		bufferevent_event_cb eventcb = NULL;
		void *cbarg = NULL;
		bufferevent_getcb(bev, NULL, NULL, &eventcb, &cbarg);
		struct evhttp_connection *evcon = cbarg;
		if (eventcb && evcon && evhttp_connection_get_bufferevent(evcon) == bev) {
			sc->evcon = evcon;
			LIST_PREPEND(conns, h->conns, sc);
			evhttp_connection_set_closecb(evcon, conn_closed, sc);
		} else {
			h->counters.conns_now--;
			free(sc);
		}
		bufferevent_decref(bev);
	}
	listener_resume(h);
}

/* Its entry, made at its accept (or at its first request when that failed);
 * NULL when over the cap or out of memory. */
static struct scrape_conn *conn_track(struct metrics_http *h, struct evhttp_connection *evcon)
{
	struct scrape_conn *sc;
	LIST_FOREACH (conns, sc, h->conns)
		if (sc->evcon == evcon)
			return sc;
	if (h->counters.conns_now >= METRICS_HTTP_MAX_CONNS)
		return NULL;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	sc->h = h;
	sc->evcon = evcon;
	LIST_PREPEND(conns, h->conns, sc);
	h->counters.conns_now++;
	evhttp_connection_set_closecb(evcon, conn_closed, sc);
	return sc;
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
	struct evbuffer *body = evbuffer_new();
	if (body)
		evbuffer_add(body, text, strlen(text));
	evhttp_send_reply(req, code, reason, body);
	if (body)
		evbuffer_free(body);
}

static void blob_unref_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	metrics_blob_unref(arg);
}

static void serve_metrics(struct metrics_http *h, struct evhttp_request *req)
{
	struct metrics_blob *b = NULL;
	int r = h->render(h->userdata, &b);
	if (r >= 0 && !b)
		r = -ENOMEM;
	bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	size_t len = r >= 0 ? b->len : 0;
	struct evbuffer *body = r >= 0 && !head ? evbuffer_new() : NULL;
	/* The text goes out by reference, the blob's reference with it (dropped
	 * once written or the connection gone): any number of scrapes of one
	 * render hold one copy of it. */
	bool handed = false;
	if (r >= 0 && !head && !body)
		r = -ENOMEM;
	else if (r >= 0 && !head && len > 0) {
		if (evbuffer_add_reference(body, b->text, len, blob_unref_cb, b) < 0)
			r = -ENOMEM;
		else
			handed = true;
	}
	if (!handed && r >= 0)
		metrics_blob_unref(b);
	if (r < 0) {
		if (body)
			evbuffer_free(body);
		log_warning_errno(r, "Failed to render the metrics for a scrape on %s", h->addr);
		char text[128];
		snprintf(text, sizeof(text), "cannot render the metrics: %s\n", strerror(-r));
		reply_text(req, 500, "Internal Server Error", text);
		return;
	}
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	evhttp_add_header(headers, "Content-Type", METRICS_HTTP_CONTENT_TYPE);
	/* Said for HTTP/1.0 too (evhttp says it for 1.1 only), and for HEAD,
	 * whose body evhttp 2.1 would send: it gets none. */
	char length[24];
	snprintf(length, sizeof(length), "%zu", len);
	evhttp_add_header(headers, "Content-Length", length);
	h->counters.scrapes++;
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	if (body)
		evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!conn_track(h, evcon)) {
		h->counters.refused++;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_text(req, 503, "Service Unavailable",
			   "too many scrapes at once; try again later\n");
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path || strcmp(path, "/metrics") != 0) {
		h->counters.refused++;
		reply_text(req, HTTP_NOTFOUND, "Not Found",
			   "not found: the metrics are at /metrics\n");
		return;
	}
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
		h->counters.refused++;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "only GET and HEAD\n");
		return;
	}
	serve_metrics(h, req);
}

/* A listening socket on addr, or -errno with why naming the address and the reason. */
static int listen_on(const struct sockaddr_storage *addr, const char *text, char *why,
		     size_t why_len)
{
	socklen_t len =
	    addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	_cleanup_close_ int fd =
	    socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/* A restart is not refused for the last run's connections in TIME_WAIT;
	 * another listener on the port still is. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 128) < 0) {
		int r = -errno;
		const char *hint =
		    r == -EADDRINUSE	  ? " (another process listens there: stop it, or give "
					    "metrics-listen another port)"
		    : r == -EADDRNOTAVAIL ? " (no interface of this host has that address: "
					    "give metrics-listen one of its addresses, like "
					    "127.0.0.1)"
		    : r == -EACCES	  ? " (a port below 1024 needs CAP_NET_BIND_SERVICE)"
					  : "";
		snprintf(why, why_len, "cannot listen on %s for the metrics: %s%s", text,
			 strerror(-r), hint);
		return r;
	}
	return TAKE_FD(fd);
}

int metrics_http_new(struct event_base *base, const struct sockaddr_storage *addr,
		     metrics_render_fn render, void *userdata, struct metrics_http **out, char *why,
		     size_t why_len)
{
	struct metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	h->render = render;
	h->userdata = userdata;
	sockaddr_to_string(addr, h->addr, sizeof(h->addr));
	int fd = listen_on(addr, h->addr, why, why_len);
	if (fd < 0) {
		free(h);
		return fd;
	}
	h->adopt = event_new(base, -1, 0, adopt_pending, h);
	h->http = h->adopt ? evhttp_new(base) : NULL;
	struct evhttp_bound_socket *bound =
	    h->http ? evhttp_accept_socket_with_handle(h->http, fd) : NULL;
	h->listener = bound ? evhttp_bound_socket_get_listener(bound) : NULL;
	if (!h->listener) {
		if (!bound)
			close(fd);
		snprintf(why, why_len, "cannot serve the metrics on %s: out of memory", h->addr);
		metrics_http_free(h);
		return -ENOMEM;
	}
	/* Every method reaches on_request, which answers 405 itself with Allow. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
						EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_timeout(h->http, METRICS_HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 4096);
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_bevcb(h->http, conn_accepted, h);
	*out = h;
	return 0;
}

void metrics_http_free(struct metrics_http *h)
{
	if (!h)
		return;
	/* evhttp_free frees the listener first: conn_closed must not resume it. */
	h->listener = NULL;
	/* Closes every connection, each through conn_closed. */
	if (h->http)
		evhttp_free(h->http);
	/* Accepted, not adopted: evhttp freed them, our reference goes now. */
	while (h->pending) {
		struct scrape_conn *sc = h->pending;
		LIST_REMOVE(conns, h->pending, sc);
		bufferevent_decref(sc->bev);
		free(sc);
	}
	if (h->adopt)
		event_free(h->adopt);
	while (h->conns) {
		struct scrape_conn *sc = h->conns;
		LIST_REMOVE(conns, h->conns, sc);
		free(sc);
	}
	free(h);
}

struct metrics_http_counters metrics_http_counters(const struct metrics_http *h)
{
	return h->counters;
}
