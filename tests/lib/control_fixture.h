/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control server in the test's own process, on a socket in a temporary
 * directory, driven by the test's libevent base (clients: lineclient.h).
 * Everything is freed when the test ends.
 *
 * Its own handler plays the daemon: "echo" answers with the request, "later"
 * is left for the test to answer (later_client), "follow" subscribes, any
 * other command gets "unknown command: CMD".
 */

#include <stdbool.h>
#include <stdint.h>

#include "dozed/control.h"

struct event_base;
struct json_object;
struct lineclient;

struct control_fixture {
	struct event_base *base;
	struct control *ctl;	   /* NULL until started */
	struct control_config cfg; /* for control_fixture_start(); cfg.path is path */
	char dir[64];		   /* the temporary directory */
	char path[128];		   /* dir/control.sock */
	unsigned requests;	   /* seen by the fixture's own handler */
	uint64_t later_client;	   /* the client of the last "later", 0: none */
};

/* A temporary directory (/tmp/PREFIX.XXXXXX) and a base; no server yet. */
struct control_fixture *control_fixture_bare(const char *prefix);
/* Starts the server with f->cfg; handler NULL: the fixture's own. Fails the test on error. */
void control_fixture_start(struct control_fixture *f, control_handler_fn handler, void *userdata);
/* Bare, then started with the fixture's own handler. */
struct control_fixture *control_fixture_new(void);

/* The fixture's own handler; userdata is the fixture. */
void control_fixture_handler(void *userdata, uint64_t client_id, const char *cmd,
			     struct json_object *req);

struct control_counters control_fixture_counters(struct control_fixture *f);
/* A new client connection (closed when the test ends). */
struct lineclient *control_fixture_connect(struct control_fixture *f);
/* Runs the base until clients_now is n; fails the test after 5 s naming what. */
void control_fixture_wait_clients(struct control_fixture *f, uint64_t n, const char *what);
/* The server answers an echo on a new connection. */
void control_fixture_assert_serves(struct control_fixture *f);
