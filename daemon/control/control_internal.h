/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by control.c (the listening socket) and control_connection.c (connections). */

#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dozed/control.h"

struct bufferevent;
struct evconnlistener;
struct event;

struct control_connection {
	struct control *control;
	struct control_connection *prev, *next; /* in control.clients, or control.dead */
	uint64_t id;
	uid_t uid;		 /* of the peer, from SO_PEERCRED */
	struct bufferevent *bev; /* NULL once dead */
	/* Closes a client that has no request in flight and sent no complete
	 * request for cfg.idle_timeout_us; never armed for subscribers. */
	struct event *idle_timer;
	uint64_t last_active_us; /* monotonic: its last request, reply or drained output */
	uint64_t pending;	 /* requests handed to the handler, not answered yet */
	size_t scanned;		 /* input bytes known to hold no newline */
	bool subscriber;
	bool read_eof; /* the peer shut down its sending side; it may still read */
	bool paused;   /* not reading requests until its output drains */
	bool closing;  /* closes once its output is flushed */
	bool dead;     /* closed; the struct waits on control.dead for the reaper */
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
	/* Clients are closed inside their own callbacks, where the caller still
	 * holds the struct: it is freed later, from this event. */
	struct event *reaper;

	struct control_connection *clients;
	struct control_connection *dead;
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
/* Closes and frees every client. */
void control_connection_free_all(struct control *c);
/* The reaper event's callback. */
void control_connection_reap(evutil_socket_t fd, short what, void *arg);
/*
 * True when a warning about a refused or evicted client may be logged now;
 * note is then "" or " (N more since the last warning)". A thousand clients
 * turned away make one line a second, not a thousand (the counters keep all).
 */
bool control_warn_allowed(struct control *c, char *note, size_t len);
/* Best effort, for a connection that is refused before it becomes a client. */
void control_send_error_and_close(int fd, const char *msg);
