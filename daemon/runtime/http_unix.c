// SPDX-License-Identifier: MIT
#include "dozed/http_unix.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/macro.h"

/* A full accept backlog makes a non-blocking unix connect fail with EAGAIN
 * and no connection in progress: try again this soon. */
#define CONNECT_RETRY_US 5000
/* Bytes read per readiness callback, so one busy stream cannot starve the loop. */
#define READ_BUDGET (64 * 1024)

enum phase {
	PHASE_CONNECTING, /* connect() in progress or to be retried */
	PHASE_FAILING,	  /* connect() failed; reported from the loop */
	PHASE_SENDING,
	PHASE_RECEIVING,
	PHASE_FINISHED,
};

struct http_unix_request {
	struct event_base *base;
	int fd;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_deadline;
	struct event *ev_soon; /* connect retries and deferred failures */
	struct sockaddr_un addr;
	socklen_t addr_len;

	char *out;
	size_t out_len, out_off;
	struct http_response_parser parser;
	struct http_unix_callbacks cb;
	void *userdata;
	bool stream;
	bool headers_reported;

	enum phase phase;
	int fail_err;
	/* The owner's reference, plus one held by each of our libevent callbacks
	 * while it runs: a free from a user callback then ends the request
	 * (closed) but leaves the memory to the callback still on the stack. */
	unsigned n_ref;
	bool closed;
};

static void request_release(struct http_unix_request *r)
{
	if (r->ev_read)
		event_free(r->ev_read);
	if (r->ev_write)
		event_free(r->ev_write);
	if (r->ev_deadline)
		event_free(r->ev_deadline);
	if (r->ev_soon)
		event_free(r->ev_soon);
	if (r->fd >= 0)
		close(r->fd);
	free(r->out);
	free(r);
}

static void stop_io(struct http_unix_request *r)
{
	if (r->ev_read)
		event_del(r->ev_read);
	if (r->ev_write)
		event_del(r->ev_write);
	if (r->ev_deadline)
		event_del(r->ev_deadline);
	if (r->ev_soon)
		event_del(r->ev_soon);
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
}

static struct http_unix_request *http_unix_request_ref(struct http_unix_request *r)
{
	r->n_ref++;
	return r;
}

static void http_unix_request_unref(struct http_unix_request *r)
{
	if (--r->n_ref == 0)
		request_release(r);
}

/* Ends the request at once and drops the owner's reference; one of our
 * callbacks that is still running keeps the memory until it returns. */
void http_unix_request_free(struct http_unix_request *r)
{
	if (!r || r->closed)
		return;
	stop_io(r);
	r->closed = true;
	http_unix_request_unref(r);
}

static void finish(struct http_unix_request *r, int err)
{
	if (r->phase == PHASE_FINISHED || r->closed)
		return;
	r->phase = PHASE_FINISHED;
	stop_io(r);
	if (r->cb.on_done)
		r->cb.on_done(r->userdata, err, err < 0 ? 0 : r->parser.status);
}

static void report_headers(struct http_unix_request *r)
{
	if (r->headers_reported || !r->parser.head_done)
		return;
	r->headers_reported = true;
	/* A stream may then stay quiet for as long as it likes. */
	if (r->stream && r->ev_deadline)
		event_del(r->ev_deadline);
	if (r->cb.on_headers)
		r->cb.on_headers(r->userdata, r->parser.status);
}

static int on_parser_body(void *userdata, const char *data, size_t len)
{
	struct http_unix_request *r = userdata;
	report_headers(r);
	if (r->closed)
		return -ECANCELED;
	if (!r->cb.on_body)
		return 0;
	int ret = r->cb.on_body(r->userdata, data, len);
	if (r->closed)
		return -ECANCELED;
	return ret;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct http_unix_request *r = arg;
	char buf[16384];
	size_t budget = READ_BUDGET;

	http_unix_request_ref(r);
	while (budget > 0 && r->phase == PHASE_RECEIVING && !r->closed) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			finish(r, -errno);
			break;
		}
		int ret = n == 0 ? http_response_parser_eof(&r->parser)
				 : http_response_parser_feed(&r->parser, buf, (size_t)n, NULL);
		if (r->closed)
			break;
		if (ret >= 0)
			report_headers(r);
		if (r->closed)
			break;
		if (ret != 0) {
			/* Complete (1), or a parse or callback error: either way the
			 * connection is done with; extra bytes after a complete
			 * response have no meaning under "Connection: close". */
			finish(r, ret > 0 ? 0 : ret);
			break;
		}
		budget -= (size_t)n < budget ? (size_t)n : budget;
	}
	http_unix_request_unref(r);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct http_unix_request *r = arg;

	http_unix_request_ref(r);
	if (r->phase == PHASE_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr != 0) {
			finish(r, -soerr);
			goto out;
		}
		r->phase = PHASE_SENDING;
	}
	while (r->out_off < r->out_len) {
		ssize_t n = send(fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			goto out;
		if (n < 0) {
			finish(r, -errno);
			goto out;
		}
		r->out_off += (size_t)n;
	}
	/* No shutdown(SHUT_WR): the runtimes' Go servers take a half-closed
	 * connection for a client that left and end an event stream. */
	event_del(r->ev_write);
	r->phase = PHASE_RECEIVING;
	if (event_add(r->ev_read, NULL) < 0)
		finish(r, -ENOMEM);
out:
	http_unix_request_unref(r);
}

static void try_connect(struct http_unix_request *r)
{
	if (connect(r->fd, (struct sockaddr *)&r->addr, r->addr_len) == 0 || errno == EINPROGRESS) {
		if (event_add(r->ev_write, NULL) < 0)
			goto fail_enomem;
		return;
	}
	struct timeval tv = {0, 0};
	if (errno == EAGAIN) {
		tv.tv_usec = CONNECT_RETRY_US;
	} else {
		r->phase = PHASE_FAILING;
		r->fail_err = -errno;
	}
	if (event_add(r->ev_soon, &tv) < 0)
		goto fail_enomem;
	return;
fail_enomem:
	/* Not even a timer could be added: report from the deadline, if any. */
	r->phase = PHASE_FAILING;
	r->fail_err = -ENOMEM;
}

static void on_soon(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_unix_request *r = arg;
	http_unix_request_ref(r);
	if (r->phase == PHASE_FAILING)
		finish(r, r->fail_err);
	else if (r->phase == PHASE_CONNECTING)
		try_connect(r);
	http_unix_request_unref(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_unix_request *r = arg;
	http_unix_request_ref(r);
	finish(r, r->phase == PHASE_FAILING ? r->fail_err : -ETIMEDOUT);
	http_unix_request_unref(r);
}

static int build_request(struct http_unix_request *r, const struct http_unix_options *opt)
{
	char *head = NULL;
	bool has_body =
	    opt->body || strcmp(opt->method, "POST") == 0 || strcmp(opt->method, "PUT") == 0;
	size_t body_len = opt->body ? opt->body_len : 0;
	char ctype[256] = "";
	if (opt->content_type)
		snprintf(ctype, sizeof(ctype), "Content-Type: %s\r\n", opt->content_type);
	char clen[64] = "";
	if (has_body)
		snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", body_len);
	/* Go's HTTP server refuses HTTP/1.1 requests without a Host header. */
	int n = asprintf(&head,
			 "%s %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: dozed\r\n"
			 "Accept: application/json\r\nConnection: close\r\n%s%s\r\n",
			 opt->method, opt->target, ctype, clen);
	if (n < 0)
		return -ENOMEM;
	r->out = realloc(head, (size_t)n + body_len);
	if (!r->out) {
		free(head);
		return -ENOMEM;
	}
	if (body_len > 0)
		memcpy(r->out + n, opt->body, body_len);
	r->out_len = (size_t)n + body_len;
	return 0;
}

int http_unix_request_new(struct event_base *base, const char *socket_path,
			  const struct http_unix_options *opt, const struct http_unix_callbacks *cb,
			  void *userdata, struct http_unix_request **out)
{
	size_t plen = strlen(socket_path);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (plen == 0 || plen >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	if (!opt->method || !opt->target || strpbrk(opt->target, " \r\n"))
		return -EINVAL;

	struct http_unix_request *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->n_ref = 1;
	r->fd = -1;
	r->base = base;
	r->cb = *cb;
	r->userdata = userdata;
	r->stream = opt->stream;
	r->phase = PHASE_CONNECTING;
	memcpy(sun.sun_path, socket_path, plen + 1);
	r->addr = sun;
	r->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	http_response_parser_init(&r->parser, on_parser_body, r);

	int ret = build_request(r, opt);
	if (ret < 0)
		goto fail;
	r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		ret = -errno;
		goto fail;
	}
	r->ev_read = event_new(base, r->fd, EV_READ | EV_PERSIST, on_readable, r);
	r->ev_write = event_new(base, r->fd, EV_WRITE | EV_PERSIST, on_writable, r);
	r->ev_deadline = event_new(base, -1, 0, on_deadline, r);
	r->ev_soon = event_new(base, -1, 0, on_soon, r);
	ret = -ENOMEM;
	if (!r->ev_read || !r->ev_write || !r->ev_deadline || !r->ev_soon)
		goto fail;
	if (opt->timeout_us > 0) {
		struct timeval tv = timeval_from_us(opt->timeout_us);
		if (event_add(r->ev_deadline, &tv) < 0)
			goto fail;
	}
	try_connect(r);
	*out = r;
	return 0;
fail:
	request_release(r);
	return ret;
}
