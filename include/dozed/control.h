/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control socket server: a unix stream socket speaking one JSON object per
 * line each way. It knows no commands: each request object with a string "cmd"
 * goes to the daemon's handler, which answers now or later with control_reply()
 * or control_reply_error(), addressed by a client id that is never reused, so
 * a late answer to a client that left is harmless (-ENOENT).
 *
 * Malformed requests (see control_request.h) get {"ok":false,"error":"..."}
 * and the connection stays usable; a request longer than max_request gets that
 * error and the connection is closed. Peers are checked with SO_PEERCRED:
 * allowed when uid 0, the daemon's effective uid, or in the socket's group
 * (primary or supplementary); others get one permission error line and are
 * closed.
 *
 * No one can lock root out: other peers get at most max_clients connections,
 * root and dozed's user CONTROL_ROOT_RESERVE more, and past that a root
 * connection closes the client idle longest, telling it why. Clients
 * with nothing in flight are closed after idle_timeout_us without a request.
 *
 * Subscribers (control_subscribe) get every control_broadcast() line; one
 * whose unsent output passes max_backlog is dropped and counted. Runs on the
 * daemon's libevent base and never blocks it. The process must ignore SIGPIPE.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dozed/settings.h"

struct event_base;
struct json_object;
struct control;

#define CONTROL_MAX_REQUEST_DEFAULT (64 * 1024)
#define CONTROL_MAX_BACKLOG_DEFAULT (1024 * 1024)
#define CONTROL_MAX_CLIENTS_DEFAULT 256
/* Connections root (and dozed's own user) may open beyond max_clients. */
#define CONTROL_ROOT_RESERVE 4

struct control_config {
	const char *path;   /* control_new: where to listen; default DOZED_CONTROL_PATH_DEFAULT */
	mode_t mode;	    /* of the socket file; default 0660 */
	gid_t gid;	    /* the socket's group, allowed to connect; (gid_t)-1: none */
	size_t max_request; /* bytes in one request line, newline excluded; at most
			       CONTROL_REQUEST_MAX */
	size_t max_backlog; /* unsent bytes to one client before it is dropped or paused */
	size_t max_clients; /* connected at once; more get an error and are closed */
	/* A client with no request in flight that sends no complete request for
	 * this long is closed, with a line saying why (subscribers excepted:
	 * their backlog bounds them). 0: DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US. */
	uint64_t idle_timeout_us;
};

void control_config_defaults(struct control_config *cfg);

/*
 * One request: cmd is the string "cmd" of req; req is borrowed for the call
 * (json_object_get() to keep it). The handler must answer every request with
 * exactly one control_reply() or control_reply_error(), now or later. It must
 * not call control_free().
 */
typedef void (*control_handler_fn)(void *userdata, uint64_t client_id, const char *cmd,
				   struct json_object *req);

/*
 * Listens on cfg->path: creates its parent directory (0755) if missing,
 * replaces a stale socket file nothing answers on, and refuses (-EADDRINUSE)
 * when something listens there already, or (-EEXIST) when the path is not a
 * socket. Sets cfg->mode and, unless (gid_t)-1, the group cfg->gid.
 */
int control_new(struct event_base *base, const struct control_config *cfg,
		control_handler_fn handler, void *userdata, struct control **out);
/*
 * The same on an already-listening unix stream socket (socket activation),
 * which it takes, even on error. The socket file is neither changed nor
 * removed. The allowed group is cfg->gid, or the socket file's group when
 * (gid_t)-1 and the socket has a path.
 */
int control_new_from_fd(struct event_base *base, int fd, const struct control_config *cfg,
			control_handler_fn handler, void *userdata, struct control **out);
/* Closes every client and the listener, and removes the socket file control_new
 * made (if it is still the same file). Accepts NULL. */
void control_free(struct control *c);

/*
 * Sends reply, a JSON object, as one line to client_id; reply is taken, even on
 * error. -ENOENT when that client is gone (or is being closed), -ENOMEM.
 */
int control_reply(struct control *c, uint64_t client_id, struct json_object *reply);
/* Sends {"ok":false,"error":MESSAGE}. Same returns as control_reply(). */
int control_reply_error(struct control *c, uint64_t client_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes client_id an events follower. -ENOENT when it is gone. */
int control_subscribe(struct control *c, uint64_t client_id);
/* Sends event as one line to every subscriber; event is borrowed. */
void control_broadcast(struct control *c, const struct json_object *event);

struct control_counters {
	uint64_t accepted;    /* connections accepted, including rejected ones */
	uint64_t clients_now; /* allowed clients connected now */
	uint64_t subscribers_now;
	uint64_t rejected_peer;	      /* failed the SO_PEERCRED check */
	uint64_t rejected_full;	      /* over max_clients */
	uint64_t idle_closed;	      /* closed after idle_timeout_us */
	uint64_t evicted;	      /* closed to make room for root */
	uint64_t requests;	      /* handed to the handler */
	uint64_t bad_requests;	      /* not JSON, not an object, no "cmd" */
	uint64_t too_long;	      /* over max_request: closed */
	uint64_t subscribers_dropped; /* over max_backlog: closed */
	uint64_t broadcasts;
};

void control_get_counters(const struct control *c, struct control_counters *out);
