/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libevent's own HTTP client, evhttp, on the bench's loop.
 *
 * libevent 2.1.12 (Debian 12's) cannot connect an evhttp client to a unix
 * socket: evhttp_connection_base_new takes a host name and a port, and
 * evhttp_connection_connect_ (http.c) always resolves them and calls
 * bufferevent_socket_connect_hostname, after resetting the bufferevent's fd
 * to -1 — so a bufferevent already connected to the unix socket and given to
 * evhttp_connection_base_bufferevent_new is disconnected before use ("It must
 * have no fd set on it"). Unix sockets came in libevent 2.2.1-alpha
 * (evhttp_connection_base_bufferevent_unix_new, commit f446229b).
 *
 * To measure evhttp's HTTP code anyway, the bench defines connect(2) itself:
 * a connect to 127.0.0.1:EVHTTP_SHIM_PORT is made on a new unix socket to the
 * runtime, which then replaces the TCP socket under the same fd (dup3). Every
 * other connect passes through unchanged. That costs evhttp a numeric
 * getaddrinfo, a TCP socket and three syscalls more per request than a native
 * unix connect would: small against the rest, and said in the table. The
 * daemon could not use evhttp on 2.1 without such a shim.
 */

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench_http_peer.h"

#define EVHTTP_SHIM_PORT 1 /* tcpmux: nothing of ours listens there */

static struct {
	struct event_base *base;
	char socket_path[108];
} epeer;

/* The shim: see above. Interposes libevent's connect() calls (the executable's
 * symbol comes first) and today's client's, which pass through. */
int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	if (!sa || sa->sa_family != AF_INET || len < sizeof(*in) ||
	    in->sin_port != htons(EVHTTP_SHIM_PORT) ||
	    in->sin_addr.s_addr != htonl(INADDR_LOOPBACK) || !epeer.socket_path[0])
		return (int)syscall(SYS_connect, fd, sa, len);
	int flags = fcntl(fd, F_GETFL);
	int u = socket(AF_UNIX,
		       SOCK_STREAM | SOCK_CLOEXEC | ((flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	if (u < 0)
		return -1;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, epeer.socket_path, strlen(epeer.socket_path) + 1);
	int r = (int)syscall(SYS_connect, u, (struct sockaddr *)&sun, (socklen_t)sizeof(sun));
	int saved = errno;
	if (dup3(u, fd, O_CLOEXEC) < 0) {
		saved = errno;
		r = -1;
	}
	close(u);
	errno = saved;
	return r;
}

struct ev_req {
	struct evhttp_connection *evcon;
	struct peer_cb cb;
	void *ud;
	bool done;
	int err;
};

static int evhttp_on_header(struct evhttp_request *req, void *arg)
{
	struct ev_req *e = arg;
	int code = evhttp_request_get_response_code(req);
	if (code >= 200 && e->cb.on_headers)
		e->cb.on_headers(e->ud, code);
	return 0;
}

static void evhttp_on_chunk(struct evhttp_request *req, void *arg)
{
	struct ev_req *e = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return;
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (e->cb.on_body)
		e->cb.on_body(e->ud, data, len);
	evbuffer_drain(in, len);
}

static void evhttp_on_error(enum evhttp_request_error what, void *arg)
{
	struct ev_req *e = arg;
	e->err = what == EVREQ_HTTP_TIMEOUT	     ? -ETIMEDOUT
		 : what == EVREQ_HTTP_EOF	     ? -ECONNRESET
		 : what == EVREQ_HTTP_INVALID_HEADER ? -EPROTO
						     : -EIO;
}

static void evhttp_on_done(struct evhttp_request *req, void *arg)
{
	struct ev_req *e = arg;
	if (e->done)
		return;
	e->done = true;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	/* Without a chunked callback left to run, the last bytes are here. */
	if (req && code >= 200)
		evhttp_on_chunk(req, arg);
	int err = e->err;
	if (err == 0 && code == 0)
		err = -EIO;
	e->cb.on_done(e->ud, err, err < 0 ? 0 : code);
}

static int evhttp_setup(struct event_base *base, const char *socket_path)
{
	epeer.base = base;
	snprintf(epeer.socket_path, sizeof(epeer.socket_path), "%s", socket_path);
	return 0;
}

static int evhttp_request_start(const char *method, const char *target, bool stream,
				const struct peer_cb *cb, void *ud, void **out)
{
	struct ev_req *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cb = *cb;
	e->ud = ud;
	e->evcon = evhttp_connection_base_new(epeer.base, NULL, "127.0.0.1", EVHTTP_SHIM_PORT);
	if (!e->evcon) {
		free(e);
		return -ENOMEM;
	}
	/* evhttp's timeout covers every read: a quiet stream must not end. */
	if (!stream)
		evhttp_connection_set_timeout_tv(e->evcon,
						 &(struct timeval){PEER_TIMEOUT_US / 1000000, 0});
	evhttp_connection_set_retries(e->evcon, 0);
	struct evhttp_request *req = evhttp_request_new(evhttp_on_done, e);
	if (!req) {
		evhttp_connection_free(e->evcon);
		free(e);
		return -ENOMEM;
	}
	evhttp_request_set_header_cb(req, evhttp_on_header);
	evhttp_request_set_chunked_cb(req, evhttp_on_chunk);
	evhttp_request_set_error_cb(req, evhttp_on_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	/* The same request as today's client's. */
	evhttp_add_header(h, "Host", "docker");
	evhttp_add_header(h, "User-Agent", "dozed");
	evhttp_add_header(h, "Accept", "application/json");
	evhttp_add_header(h, "Connection", "close");
	enum evhttp_cmd_type type = strcmp(method, "POST") == 0	    ? EVHTTP_REQ_POST
				    : strcmp(method, "DELETE") == 0 ? EVHTTP_REQ_DELETE
								    : EVHTTP_REQ_GET;
	/* On failure evhttp_make_request frees the request itself. */
	if (evhttp_make_request(e->evcon, req, type, target) < 0) {
		evhttp_connection_free(e->evcon);
		free(e);
		return -EIO;
	}
	*out = e;
	return 0;
}

static void evhttp_release(void *req)
{
	struct ev_req *e = req;
	if (!e)
		return;
	/* Frees a request still pending with it, without its callbacks. */
	evhttp_connection_free(e->evcon);
	free(e);
}

static void evhttp_teardown(void)
{
	memset(&epeer, 0, sizeof(epeer));
}

static const struct peer peer_evhttp = {
    .name = "evhttp (2.1, connect shim)",
    .setup = evhttp_setup,
    .request = evhttp_request_start,
    .release = evhttp_release,
    .teardown = evhttp_teardown,
};
