/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How a waking service is judged ready: the probe kinds of `--probe KIND`,
 * the label dozed.probe and the control key "probe". Types only: settings.h
 * parses and prints them, the activator runs the socket kinds, the daemon
 * resolves auto and runs healthcheck.
 */

enum probe_kind {
	PROBE_AUTO,	   /* healthcheck if the container has one, else by port, else tcp */
	PROBE_TCP,	   /* a connect succeeds */
	PROBE_HTTP,	   /* any HTTP status line answers GET path */
	PROBE_POSTGRES,	   /* a startup message gets anything but 57P03 */
	PROBE_REDIS,	   /* PING gets +PONG or an auth error, not -LOADING/-BUSY/-MASTERDOWN */
	PROBE_MYSQL,	   /* the server greets with protocol 10, not an error packet */
	PROBE_HEALTHCHECK, /* the container's own health command exits 0 */
};

/* At most this many bytes, the leading "/" included; printable ASCII, no space. */
#define PROBE_HTTP_PATH_MAX 200

struct probe_spec {
	enum probe_kind kind;
	char http_path[PROBE_HTTP_PATH_MAX + 1]; /* PROBE_HTTP: "/" when not given */
};
