/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics listener: libevent's evhttp serving GET /metrics (and HEAD) in
 * the Prometheus text format on one TCP address. Anything else gets 404 or
 * 405. Each scrape asks the caller's function for the text, on the daemon's
 * loop, and is answered with a reference to it, not a copy: scrapers that
 * are slow or leave mid-answer cost a reference each to the text they were
 * given (one text for all of them when the caller shares one) until their
 * connections time out, never a blocked loop.
 * Open connections are capped at accept (METRICS_HTTP_MAX_CONNS), silent
 * ones included: at the cap the listener stops accepting, so further
 * connections wait in the kernel's backlog (or are refused when it is full)
 * and cost dozed no fd; each close resumes accepting. Many scrapers or idle
 * connections cost at most that many fds and buffered answers. Should a
 * connection escape the count (out of memory at its accept), its request
 * over the cap is answered 503 and closed.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A connection that neither sends its request nor reads its answer for this
 * long is closed: Prometheus' own default scrape timeout. */
#define METRICS_HTTP_TIMEOUT_S	  10
#define METRICS_HTTP_MAX_CONNS	  256
#define METRICS_HTTP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* "[ADDR]:PORT" of any address, with its NUL. */
#define METRICS_LISTEN_TEXT_MAX 64

struct event_base;
struct metrics_blob;
struct metrics_http;

/* The whole exposition (see metrics.h) in *out: a reference, which the
 * listener drops once the answer is written or its connection gone; 0 or
 * -errno (then *out is not set). */
typedef int (*metrics_render_fn)(void *userdata, struct metrics_blob **out);

/*
 * Listens on addr (an IPv4 or IPv6 address and port, as metrics_listen_parse
 * gives). -errno when it cannot bind or listen, with the address and the
 * reason in why ("cannot listen on 127.0.0.1:9321: Address already in use").
 */
int metrics_http_new(struct event_base *base, const struct sockaddr_storage *addr,
		     metrics_render_fn render, void *userdata, struct metrics_http **out, char *why,
		     size_t why_len);
/* Closes the listener and every scrape in progress. Accepts NULL. */
void metrics_http_free(struct metrics_http *h);

/*
 * Parses "ADDR:PORT" ("127.0.0.1:9321", "[::1]:9321", "0.0.0.0:9321"); port
 * 1-65535, numeric addresses only. -EINVAL with what is wrong in why.
 */
int metrics_listen_parse(const char *text, struct sockaddr_storage *out, char *why, size_t why_len);
/* sockaddr_to_string (socket_util.h) writes what it reads back. */

/* What the listener has done since it started (for tests and the metrics). */
struct metrics_http_counters {
	uint64_t scrapes; /* answered 200 */
	uint64_t refused; /* 404, 405, or 503 over the cap */
	size_t conns_now; /* connections accepted and open now, silent ones too */
};
struct metrics_http_counters metrics_http_counters(const struct metrics_http *h);
