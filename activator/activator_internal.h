/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The activator's own state, shared by activator.c (accepting, the walls,
 * the activator's life), waking.c (wakes, their probes, the public calls on
 * services) and held.c (the queue of held clients and its bounds): internal
 * to activator/.
 */

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "dozed/activator.h"
#include "dozed/list.h"
#include "client_count.h"
#include "relay.h"

struct waking;

struct held_conn {
	LIST_FIELDS(struct held_conn, held); /* in its wake's queue */
	struct waking *w;
	int fd;
	struct sockaddr_storage dst;
	struct event *watch;
	struct event *silent_deadline; /* wake on data, until it counts */
	struct client_key peer;
	bool wake_counted;    /* sent enough to count toward a wake */
	uint64_t batch;	      /* the activator's accept_batch when it was accepted */
	uint64_t accepted_us; /* its connect, as far as the activator saw it */
};

/* A service with clients waiting or a wake in progress. Gone once ready. */
struct waking {
	LIST_FIELDS(struct waking, wakings); /* the activator's */
	struct activator *a;
	struct activator_route route;
	/* In order of arrival, but with wake on data those that sent their
	 * first bytes go first (up to last_counted): they are relayed first, so
	 * a real client is not queued behind silent ones at a service that may
	 * not take them all (a forking server at its pids limit). */
	struct held_conn *head, *tail, *last_counted; /* linked by held_next */
	size_t n_held;
	struct client_count *clients; /* held per client address */
	bool wake_requested;
	struct prober *prober;
	/* The probe runs while the service is being stopped: at the wake
	 * timeout it just ends, and the held clients stay held. */
	bool during_stop;
	/* The probe's service serves already: its clients' answers are no wake's. */
	bool awake;
	struct event *hold_deadline;
	uint64_t first_hold_us, starting_us;
};

struct activator {
	struct event_base *base;
	struct activator_config cfg;
	struct activator_ops ops;
	void *userdata;
	int listen_fds[2];
	struct event *accept_events[2];
	struct event *accept_resume; /* accepting paused: out of descriptors */
	uint64_t accept_batch;	     /* on_accept calls so far */
	uint64_t last_accept_log_us;
	uint64_t accept_logs_suppressed;
	size_t max_held_total; /* cfg's, or derived from RLIMIT_NOFILE */
	size_t n_listen;
	struct waking *wakings;
	struct relay_set *relays;
	struct relay_stats relay_stats;
	struct conntrack *conntrack; /* NULL: reset clients' entries stay */
	struct local_addr *local;
	/* silent_timeout_us as libevent's common timeout: O(1) for thousands. */
	const struct timeval *silent_tv;
	struct timeval silent_tv_plain;
	struct activator_counters counters;
	bool early_close; /* EV_CLOSED and EV_ET work: watch held clients without reading */
	uint64_t last_reject_log_us;
	uint64_t reject_logs_suppressed;
};

/* The wake of service id, or NULL. */
struct waking *waking_find(const struct activator *a, uint64_t id);
/* A wake for route, linked in; NULL when out of memory (logged). */
struct waking *waking_new(struct activator *a, const struct activator_route *route);
/* Unlinks w and frees it; its held clients must be gone already. */
void waking_free(struct waking *w);
/* Resets every client held in w. */
void waking_reset_held(struct waking *w);
/* Asks the daemon to wake w's service, once. */
void waking_request(struct waking *w, const struct sockaddr_storage *client);
/* Whether dst is an address of the activator's namespace (the second wall);
 * fd is reset by the caller when not (counted and logged here). */
bool activator_dst_is_local(struct activator *a, int fd, const struct sockaddr_storage *dst);
/* A notice for a reset client, at most one per interval (the rest counted). */
void activator_log_reject(struct activator *a, int fd, const char *why,
			  const struct sockaddr_storage *dst);

/* Holds fd (its original destination dst, its client peer) in w: 0, or
 * -ENOMEM and fd is the caller's still. */
int held_add(struct waking *w, int fd, const struct sockaddr_storage *dst,
	     const struct client_key *peer);
/* Takes h out of w and frees it; its fd is the caller's. */
void held_unlink(struct held_conn *h);
/* Room for one more client of w from peer: 0, or why not (it is reset then).
 * May count held clients whose bytes came (never asks for the wake: the
 * caller does, with waking_request_if_counted(), once it is done with w). */
int waking_make_room(struct waking *w, const struct client_key *peer, int fd,
		     const struct sockaddr_storage *dst);
/* Asks for w's wake if a held client counts toward it (or none need to). */
void waking_request_if_counted(struct waking *w);
