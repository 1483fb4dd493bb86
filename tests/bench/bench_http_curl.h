/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libcurl's multi interface driven from the bench's libevent loop, the way
 * curl documents it for event loops (its hiperfifo example): curl says which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
 * (CURLMOPT_TIMERFUNCTION); the loop hands readiness back through
 * curl_multi_socket_action. The runtime's socket is CURLOPT_UNIX_SOCKET_PATH.
 * One connection per request (CURLOPT_FORBID_REUSE), as today's client does,
 * so that both do the same work.
 */

#include <curl/curl.h>
#include <string.h>

#include "bench_http_peer.h"

static struct {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct curl_slist *headers;
	char socket_path[108];
} cpeer;

struct curl_req {
	CURL *easy;
	struct peer_cb cb;
	void *ud;
	bool done;
	bool headers_seen;
};

static void curl_check_done(void)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(cpeer.multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode res = msg->data.result;
		struct curl_req *c = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
		long code = 0;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
		/* msg points into the handle: read it all before removing it. */
		curl_multi_remove_handle(cpeer.multi, easy);
		if (!c || c->done)
			continue;
		c->done = true;
		int err = res == CURLE_OK		    ? 0
			  : res == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
			  : res == CURLE_COULDNT_CONNECT    ? -ECONNREFUSED
							    : -EIO;
		c->cb.on_done(c->ud, err, err < 0 ? 0 : (int)code);
	}
}

static void curl_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	int action =
	    ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(cpeer.multi, fd, action, &running);
	curl_check_done();
}

static void curl_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	int running;
	curl_multi_socket_action(cpeer.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_check_done();
}

/* curl's CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	(void)userp;
	struct event *ev = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (ev)
			event_free(ev);
		curl_multi_assign(cpeer.multi, s, NULL);
		return 0;
	}
	short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
		     ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (ev) {
		event_del(ev);
		if (event_assign(ev, cpeer.base, s, kind, curl_on_socket_event, NULL) < 0)
			return -1;
	} else {
		ev = event_new(cpeer.base, s, kind, curl_on_socket_event, NULL);
		if (!ev)
			return -1;
		curl_multi_assign(cpeer.multi, s, ev);
	}
	return event_add(ev, NULL) < 0 ? -1 : 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	(void)userp;
	if (timeout_ms < 0) {
		evtimer_del(cpeer.timer);
		return 0;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	return evtimer_add(cpeer.timer, &tv) < 0 ? -1 : 0;
}

static size_t curl_on_header(char *data, size_t size, size_t n, void *ud)
{
	struct curl_req *c = ud;
	size_t len = size * n;
	/* The empty line ends a header block; a 1xx block is followed by another. */
	if (!c->headers_seen && len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
		long code = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			c->headers_seen = true;
			if (c->cb.on_headers)
				c->cb.on_headers(c->ud, (int)code);
		}
	}
	return len;
}

static size_t curl_on_write(char *data, size_t size, size_t n, void *ud)
{
	struct curl_req *c = ud;
	if (c->cb.on_body && size * n > 0)
		c->cb.on_body(c->ud, data, size * n);
	return size * n;
}

static int curl_setup(struct event_base *base, const char *socket_path)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	cpeer.base = base;
	snprintf(cpeer.socket_path, sizeof(cpeer.socket_path), "%s", socket_path);
	cpeer.multi = curl_multi_init();
	cpeer.timer = evtimer_new(base, curl_on_timer, NULL);
	/* As today's client asks; "Expect:" keeps curl from waiting on 100-continue. */
	cpeer.headers = curl_slist_append(NULL, "Accept: application/json");
	cpeer.headers = curl_slist_append(cpeer.headers, "Expect:");
	if (!cpeer.multi || !cpeer.timer || !cpeer.headers)
		return -ENOMEM;
	curl_multi_setopt(cpeer.multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(cpeer.multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	return 0;
}

static int curl_request(const char *method, const char *target, bool stream,
			const struct peer_cb *cb, void *ud, void **req)
{
	struct curl_req *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cb = *cb;
	c->ud = ud;
	c->easy = curl_easy_init();
	if (!c->easy) {
		free(c);
		return -ENOMEM;
	}
	char url[1024];
	snprintf(url, sizeof(url), "http://docker%s", target);
	CURL *e = c->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, cpeer.socket_path);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, cpeer.headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "dozed");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, curl_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	/* A stream may stay quiet for hours: bound only the connect. */
	if (stream)
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(PEER_TIMEOUT_US / 1000));
	else
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(PEER_TIMEOUT_US / 1000));
	if (curl_multi_add_handle(cpeer.multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		free(c);
		return -EIO;
	}
	*req = c;
	return 0;
}

static void curl_release(void *req)
{
	struct curl_req *c = req;
	if (!c)
		return;
	if (!c->done)
		curl_multi_remove_handle(cpeer.multi, c->easy);
	curl_easy_cleanup(c->easy);
	free(c);
}

static void curl_teardown(void)
{
	if (cpeer.multi)
		curl_multi_cleanup(cpeer.multi);
	if (cpeer.timer)
		event_free(cpeer.timer);
	curl_slist_free_all(cpeer.headers);
	memset(&cpeer, 0, sizeof(cpeer));
	curl_global_cleanup();
}

static const struct peer peer_curl = {
    .name = "libcurl multi",
    .setup = curl_setup,
    .request = curl_request,
    .release = curl_release,
    .teardown = curl_teardown,
};
