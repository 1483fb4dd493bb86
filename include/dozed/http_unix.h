/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A minimal HTTP/1.1 client over a unix stream socket, for the container
 * runtime's API: one connection per request ("Connection: close"), bodies with
 * Content-Length, chunked transfer-encoding (the runtimes stream /events and
 * most answers that way) or until close. On the daemon's libevent base; it
 * never blocks, and every request ends within its timeout.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* --- the response parser: pure, incremental ------------------------------------------ */

#define HTTP_MAX_LINE	      8192
#define HTTP_MAX_HEADER_BYTES 65536

struct http_response_parser {
	int state;
	int status;
	bool head_done; /* status line and headers complete */
	bool chunked;
	bool has_length;
	bool no_body;	    /* 1xx, 204, 304 */
	uint64_t remaining; /* of the body (Content-Length) or of the current chunk */
	size_t header_bytes;
	size_t line_len;
	char line[HTTP_MAX_LINE];
	/* Body bytes, de-chunked, as they arrive. A negative return ends the
	 * parse with that error. */
	int (*on_body)(void *userdata, const char *data, size_t len);
	void *userdata;
};

void http_response_parser_init(struct http_response_parser *p,
			       int (*on_body)(void *userdata, const char *data, size_t len),
			       void *userdata);
/*
 * Consumes data. Returns 1 when the response is complete (*consumed says how
 * much of data it took), 0 when it needs more, or -EPROTO (malformed),
 * -EMSGSIZE (a line or the headers over their bound), or on_body's error.
 */
int http_response_parser_feed(struct http_response_parser *p, const char *data, size_t len,
			      size_t *consumed);
/* The peer closed: 1 if that completes the response (a body that runs until
 * close), -ECONNRESET if the response was cut short. */
int http_response_parser_eof(struct http_response_parser *p);

/* --- the client ---------------------------------------------------------------------- */

struct http_unix_request;

struct http_unix_callbacks {
	/* Optional: the status line and headers arrived. */
	void (*on_headers)(void *userdata, int status);
	/* Optional: body bytes as they arrive, de-chunked. A negative return
	 * aborts the request with that error. */
	int (*on_body)(void *userdata, const char *data, size_t len);
	/* The end, exactly once: err 0 and the status of a complete response, or
	 * -errno (the connect's, -ETIMEDOUT, -ECONNRESET, the parser's...). The
	 * request is finished but not freed: free it here or later. */
	void (*on_done)(void *userdata, int err, int status);
};

struct http_unix_options {
	const char *method; /* "GET", "POST", "DELETE" */
	const char *target; /* "/v1.41/containers/json?all=1", already percent-encoded */
	const char *content_type;
	const char *body; /* may be NULL */
	size_t body_len;
	/* The whole exchange; with stream, only until the headers arrive (an
	 * event stream may stay quiet for hours). 0: none. */
	uint64_t timeout_us;
	bool stream;
};

/*
 * Starts the request: connects, sends, reads, all from the loop. Failures to
 * connect are reported through on_done, from the loop, never from here.
 * Returns -ENAMETOOLONG when path does not fit a unix socket address.
 */
int http_unix_request_new(struct event_base *base, const char *socket_path,
			  const struct http_unix_options *opt, const struct http_unix_callbacks *cb,
			  void *userdata, struct http_unix_request **out);
/* Closes the connection; no callback runs after this. Accepts NULL; safe to
 * call from the request's own callbacks. */
void http_unix_request_free(struct http_unix_request *r);
