/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The HTTP clients bench_http_client compares, behind one small interface:
 * a request to the runtime's unix socket, its status and headers, its body as
 * it arrives (de-chunked), its end. Each client runs on the bench's libevent
 * base. Today's client (http_unix, linked from libdozed.a) is here; libcurl's
 * multi interface is in bench_http_curl.h, libevent's evhttp in
 * bench_http_evhttp.h.
 */

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "dozed/http_unix.h"

/* Per request, from the loop; on_done exactly once unless released first. */
struct peer_cb {
	void (*on_headers)(void *ud, int status);
	void (*on_body)(void *ud, const char *data, size_t len);
	void (*on_done)(void *ud, int err, int status);
};

struct peer {
	const char *name;
	int (*setup)(struct event_base *base, const char *socket_path);
	/* target: "/v1.41/..."; stream: no timeout once the headers came. */
	int (*request)(const char *method, const char *target, bool stream,
		       const struct peer_cb *cb, void *ud, void **req);
	/* Ends the request (done or not) and frees it; no callback after it.
	 * Called from the bench's main flow, never from a peer's callback. */
	void (*release)(void *req);
	void (*teardown)(void);
};

#define PEER_TIMEOUT_US (30 * 1000000ull)

/* --- today's client: http_unix ------------------------------------------------------ */

static struct event_base *today_base;
static char today_socket[108];

struct today_req {
	struct http_unix_request *r;
	struct peer_cb cb;
	void *ud;
};

static int today_setup(struct event_base *base, const char *socket_path)
{
	today_base = base;
	snprintf(today_socket, sizeof(today_socket), "%s", socket_path);
	return 0;
}

static void today_on_headers(void *ud, int status)
{
	struct today_req *t = ud;
	if (t->cb.on_headers)
		t->cb.on_headers(t->ud, status);
}

static int today_on_body(void *ud, const char *data, size_t len)
{
	struct today_req *t = ud;
	if (t->cb.on_body)
		t->cb.on_body(t->ud, data, len);
	return 0;
}

static void today_on_done(void *ud, int err, int status)
{
	struct today_req *t = ud;
	t->cb.on_done(t->ud, err, status);
}

static int today_request(const char *method, const char *target, bool stream,
			 const struct peer_cb *cb, void *ud, void **req)
{
	struct today_req *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cb = *cb;
	t->ud = ud;
	struct http_unix_options opt = {
	    .method = method,
	    .target = target,
	    .timeout_us = PEER_TIMEOUT_US,
	    .stream = stream,
	};
	struct http_unix_callbacks hcb = {
	    .on_headers = today_on_headers,
	    .on_body = today_on_body,
	    .on_done = today_on_done,
	};
	int r = http_unix_request_new(today_base, today_socket, &opt, &hcb, t, &t->r);
	if (r < 0) {
		free(t);
		return r;
	}
	*req = t;
	return 0;
}

static void today_release(void *req)
{
	struct today_req *t = req;
	if (!t)
		return;
	http_unix_request_free(t->r);
	free(t);
}

static void today_teardown(void)
{
}

static const struct peer peer_today = {
    .name = "today (http_unix)",
    .setup = today_setup,
    .request = today_request,
    .release = today_release,
    .teardown = today_teardown,
};
