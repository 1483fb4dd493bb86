/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by control.c (the listening socket) and control_connection.c (connections). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dozed/control.h"
#include "dozed/list.h"

struct bufferevent;
struct evconnlistener;
struct event;

/*
 * Reference counted: control.clients holds one reference while the connection
 * is open, and each of its callbacks one while it runs, since a callback may
 * close the connection it serves (the handler's reply, a broadcast). Closing
 * ends everything at once (socket, timer, list) and drops the list's.
 */
struct control_connection {
	unsigned n_ref;
	struct control *control;
	LIST_FIELDS(struct control_connection, clients); /* in control.clients while open */
	uint64_t id;
	uid_t uid;		 /* of the peer, from SO_PEERCRED */
	struct bufferevent *bev; /* NULL once closed */
	/* Closes a client that has no request in flight and sent no complete
	 * request for cfg.idle_timeout_us; never armed for subscribers. NULL
	 * once closed. */
	struct event *idle_timer;
	uint64_t last_active_us; /* monotonic: its last request, reply or drained output */
	uint64_t pending;	 /* requests handed to the handler, not answered yet */
	size_t scanned;		 /* input bytes known to hold no newline */
	bool subscriber;
	bool read_eof; /* the peer shut down its sending side; it may still read */
	bool paused;   /* not reading requests until its output drains */
	bool closing;  /* closes once its output is flushed */
	bool closed;   /* off the list, no socket: the struct waits for its last reference */
};

struct control {
	struct event_base *base;
	struct control_config cfg;
	control_handler_fn handler;
	void *userdata;

	char *path; /* the socket file control_new made; NULL when socket-activated */
	dev_t path_dev;
	ino_t path_ino;
	gid_t gid; /* allowed group, or (gid_t)-1 */
	uid_t euid;

	struct evconnlistener *listener;
	struct event *accept_retry; /* re-enables accepting after EMFILE and friends */

	struct control_connection *clients; /* open ones, newest first */
	uint64_t next_id;
	struct control_counters counters;
	/* Refusals and evictions come in floods: one warning a second at most. */
	uint64_t warn_last_us;
	uint64_t warn_suppressed;
};

/* Takes fd, a connected and already allowed client of uid. */
int control_connection_add(struct control *c, int fd, uid_t uid);
/*
 * Makes room for a root client: closes, with a line saying why, the client
 * idle longest among those with no request in flight (other than subscribers
 * when there is one). False when every client is waiting for an answer.
 */
bool control_connection_evict(struct control *c);
/* Closes every client; each is freed with its last reference (now, outside callbacks). */
void control_connection_free_all(struct control *c);
/*
 * True when a warning about a refused or evicted client may be logged now;
 * note is then "" or " (N more since the last warning)". A thousand clients
 * turned away make one line a second, not a thousand (the counters keep all).
 */
bool control_warn_allowed(struct control *c, char *note, size_t len);
/* Best effort, for a connection that is refused before it becomes a client. */
void control_send_error_and_close(int fd, const char *msg);
