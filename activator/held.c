// SPDX-License-Identifier: MIT
/*
 * Held connections: their queue, what is watched on each while it waits, and
 * the bounds that keep silent ones from locking real clients out.
 */
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "activator_internal.h"
#include "client_count.h"
#include "conntrack.h"

/* A client that sent part of the wake threshold is looked at again after this. */
#define PARTIAL_DATA_RECHECK_US 10000
/* Bytes peeked at most to tell whether a client sent what its wake needs. */
#define PEEK_MAX 256
/* Held clients looked at, at most, for a silent one to make room. */
#define EVICT_SCAN_MAX 64

/* Takes h out of its wake's list, and nothing else. */
static void held_list_remove(struct held_conn *h)
{
	struct waking *w = h->w;
	if (w->last_counted == h)
		w->last_counted = h->held_prev; /* counted too: they come first */
	LIST_REMOVE_TAILED(held, w->head, w->tail, h);
}

/* After the last of those that sent their first bytes, before the silent ones. */
static void held_list_insert_counted(struct held_conn *h)
{
	struct waking *w = h->w;
	LIST_INSERT_AFTER_TAILED(held, w->head, w->tail, w->last_counted, h);
	w->last_counted = h;
}

void held_unlink(struct held_conn *h)
{
	struct waking *w = h->w;
	held_list_remove(h);
	w->n_held--;
	w->a->counters.held_now--;
	client_count_remove(w->clients, &h->peer);
	if (h->watch)
		event_free(h->watch);
	if (h->silent_deadline)
		event_free(h->silent_deadline);
	free(h);
}

static void held_watch_arm(struct held_conn *h);

/* What a wake needs a client to send: wake on connect counts its first byte. */
static size_t held_want(const struct waking *w)
{
	return w->route.wake_min_bytes ? w->route.wake_min_bytes : 1;
}

/* The bytes h sent so far (up to want or a small buffer, left queued), 0 on
 * its FIN with nothing sent, or -errno (-EAGAIN: nothing yet). */
static ssize_t held_peek(const struct held_conn *h, size_t want)
{
	char buf[PEEK_MAX];
	ssize_t n =
	    recv(h->fd, buf, want < sizeof(buf) ? want : sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* Did n peeked bytes reach what the wake needs? A threshold past what is
 * peeked counts on a full peek. */
static bool held_peek_counts(ssize_t n, size_t want)
{
	return n > 0 && ((size_t)n >= want || (size_t)n == PEEK_MAX);
}

/*
 * Did the client that sent bytes reset since (or close both ways)? Its bytes
 * stay queued after a reset and MSG_PEEK still returns them, and epoll reports
 * the reset once: what tells it is the socket's state. We never shut a held
 * socket down, so POLLHUP is the peer's reset, POLLERR its pending error
 * (ECONNRESET); a half-close (FIN after the request) is POLLRDHUP alone.
 */
static bool held_peer_gone(const struct held_conn *h)
{
	struct pollfd p = {.fd = h->fd, .events = POLLIN | POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

/* h sent what its wake needs: relayed before the silent ones, never evicted,
 * watched only for its hang-up. Asks for no wake (the caller does). */
static void held_mark_counted(struct held_conn *h)
{
	h->wake_counted = true;
	held_list_remove(h);
	held_list_insert_counted(h);
	if (h->silent_deadline) {
		event_free(h->silent_deadline);
		h->silent_deadline = NULL;
	}
	held_watch_arm(h);
}

/* The client gave up while held (FIN with nothing sent, or a reset). */
static void held_close(struct held_conn *h)
{
	struct activator *a = h->w->a;
	close(h->fd);
	held_unlink(h);
	a->counters.held_closed++;
}

void waking_request_if_counted(struct waking *w)
{
	if (w->wake_requested || !w->head || (w->route.wake_min_bytes > 0 && !w->last_counted))
		return;
	/* The first client that counts, or the newest with wake on connect. */
	const struct held_conn *h = w->last_counted ? w->head : w->tail;
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	if (getpeername(h->fd, (struct sockaddr *)&peer, &len) < 0)
		memset(&peer, 0, sizeof(peer));
	waking_request(w, &peer);
}

static void on_held_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what; /* the socket's state tells more: a reset is EV_READ */
	struct held_conn *h = arg;
	struct waking *w = h->w;
	struct activator *a = w->a;
	a->counters.held_events++;
	size_t want = held_want(w);
	ssize_t n = held_peek(h, want);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0 || held_peer_gone(h)) {
		held_close(h);
		if (!w->head && !w->wake_requested)
			waking_free(w);
		return;
	}
	if (!held_peek_counts(n, want)) {
		/* Part of the threshold: look again shortly, without spinning on
		 * the level-triggered readiness. */
		event_free(h->watch);
		h->watch = evtimer_new(a->base, on_held_event, h);
		struct timeval tv = timeval_from_us(PARTIAL_DATA_RECHECK_US);
		if (h->watch)
			evtimer_add(h->watch, &tv);
		return;
	}
	/* Counted, it stays watched: a half-close (EV_CLOSED) is held and
	 * relayed, the relay passes its FIN on; edge-triggered, the watch runs
	 * again only when its state changes, as on a reset after the FIN. */
	if (!h->wake_counted)
		held_mark_counted(h);
	waking_request_if_counted(w);
}

/*
 * Until a client has sent what its wake needs, its bytes are watched; after
 * that only its hang-up is (EV_CLOSED), so pending bytes never make the
 * level-triggered read readiness spin. Without EV_CLOSED support, a client that
 * sent data is not watched any more; a hang-up then shows when it is relayed.
 * EV_CLOSED comes with EV_READ, edge-triggered: libevent turns a reset
 * (EPOLLHUP, EPOLLERR) into EV_READ | EV_WRITE, never EV_CLOSED, and epoll
 * would report it without end to an EV_CLOSED-only event (a busy loop, the
 * client never dropped); edge-triggered, new bytes or a reset run the watch
 * once each; a reset after bytes is told by the socket's state (held_peer_gone).
 */
static void held_watch_arm(struct held_conn *h)
{
	struct activator *a = h->w->a;
	if (h->watch) {
		event_free(h->watch);
		h->watch = NULL;
	}
	short what;
	if (!h->wake_counted && h->w->route.wake_min_bytes > 0)
		what = EV_READ | EV_PERSIST;
	else if (a->early_close)
		what = EV_CLOSED | EV_READ | EV_ET | EV_PERSIST;
	else if (!h->wake_counted)
		what = EV_READ | EV_PERSIST;
	else
		return;
	h->watch = event_new(a->base, h->fd, what, on_held_event, h);
	if (!h->watch || event_add(h->watch, NULL) < 0)
		log_warning("Cannot watch a held client for hang-up; it is held regardless");
}

/* Wake on data, no wake under way: a held client that sent nothing in time goes. */
static void on_silent_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct held_conn *h = arg;
	struct waking *w = h->w;
	struct activator *a = w->a;
	if (h->wake_counted || w->wake_requested) {
		/* Relayed once the service is ready, like every client held then. */
		event_free(h->silent_deadline);
		h->silent_deadline = NULL;
		return;
	}
	a->counters.held_silent_closed++;
	conntrack_reset_client(a->conntrack, h->fd);
	held_unlink(h);
	if (!w->head)
		waking_free(w);
}

/*
 * Makes room in w by resetting its oldest held client that has sent nothing,
 * whatever the wake's state and its kind: when full, a silent client gives
 * way, so silent ones cannot lock a real client out, during a wake too. Each
 * candidate is peeked: one whose bytes came since is counted (and stays), one
 * that left makes room. Clients accepted in this batch are not taken: their
 * first bytes may be on the way, their watch has not run yet. Looks at
 * EVICT_SCAN_MAX clients at most. true when there is room.
 */
static bool waking_evict_silent(struct waking *w)
{
	struct activator *a = w->a;
	size_t want = held_want(w);
	struct held_conn *h = w->last_counted ? w->last_counted->held_next : w->head;
	for (int i = 0; h && i < EVICT_SCAN_MAX; i++) {
		/* In order of arrival: the rest are of this batch too. */
		if (h->batch == a->accept_batch)
			break;
		struct held_conn *next = h->held_next;
		ssize_t n = held_peek(h, want);
		if (n == -EAGAIN) {
			a->counters.held_evicted++;
			conntrack_reset_client(a->conntrack, h->fd);
			held_unlink(h);
			return true;
		}
		if (n <= 0 || held_peer_gone(h)) {
			held_close(h);
			return true;
		}
		if (held_peek_counts(n, want) && !h->wake_counted)
			held_mark_counted(h);
		h = next;
	}
	return false;
}

int waking_make_room(struct waking *w, const struct client_key *peer, int fd,
		     const struct sockaddr_storage *dst)
{
	struct activator *a = w->a;
	if (a->cfg.max_held_per_client > 0 &&
	    client_count_get(w->clients, peer) >= a->cfg.max_held_per_client) {
		a->counters.rejected_per_client++;
		activator_log_reject(a, fd, "too many clients from this address already held", dst);
		return -EUSERS;
	}
	if (w->n_held < a->cfg.max_held && a->counters.held_now < a->max_held_total)
		return 0;
	if (waking_evict_silent(w))
		return 0;
	a->counters.rejected_full++;
	activator_log_reject(a, fd,
			     w->n_held >= a->cfg.max_held
				 ? "too many clients already held for this service"
				 : "too many clients already held for all services",
			     dst);
	return -ENOBUFS;
}

int held_add(struct waking *w, int fd, const struct sockaddr_storage *dst,
	     const struct client_key *peer)
{
	struct activator *a = w->a;
	struct held_conn *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (client_count_add(w->clients, peer) < 0) {
		free(h);
		return -ENOMEM;
	}
	*h = (struct held_conn){.w = w,
				.fd = fd,
				.dst = *dst,
				.peer = *peer,
				.batch = a->accept_batch,
				.accepted_us = clock_monotonic_us()};
	LIST_APPEND_TAILED(held, w->head, w->tail, h);
	w->n_held++;
	a->counters.held_now++;
	if (!w->first_hold_us)
		w->first_hold_us = h->accepted_us;
	held_watch_arm(h);
	if (w->route.wake_min_bytes > 0 && !w->wake_requested && a->cfg.silent_timeout_us > 0) {
		h->silent_deadline = evtimer_new(a->base, on_silent_deadline, h);
		if (!h->silent_deadline || evtimer_add(h->silent_deadline, a->silent_tv) < 0)
			log_warning("Cannot arm a held client's deadline for its first bytes; it "
				    "is held regardless");
	}
	/* Its bytes may be here already (a client sends at once, and a batch
	 * of accepts runs before any watch): counted now, it is never evicted
	 * by the clients accepted after it in the batch. */
	size_t want = held_want(w);
	if (held_peek_counts(held_peek(h, want), want))
		held_mark_counted(h);
	return 0;
}
