/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics listener: libevent's evhttp serving GET /metrics (and HEAD) in
 * the Prometheus text format on one TCP address. Anything else gets 404 or
 * 405. The text is rendered afresh for each scrape by the caller's function,
 * on the daemon's loop; a scraper that is slow or leaves mid-answer costs one
 * buffered answer until its connection times out, never a blocked loop.
 */

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct metrics_text;
struct metrics_http;

/* Writes the whole exposition into out (see metrics.h); 0 or -errno. */
typedef int (*metrics_render_fn)(void *userdata, struct metrics_text *out);

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
