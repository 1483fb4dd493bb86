/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Forgetting the conntrack entry of a client the activator reset: internal
 * to activator/. The entry keeps the redirect for its 5-tuple; a later
 * connection of ours (probe or relay, which bypass the redirect by their
 * mark) that happens to reuse the client's source port would match it and be
 * sent back to the activator, because a reset from the reply side does not
 * let conntrack reopen the entry.
 */

#include <sys/socket.h>

struct conntrack;

int conntrack_new(struct conntrack **out);
void conntrack_free(struct conntrack *ct); /* accepts NULL */

/* Deletes the entry client -> orig_dst (TCP). Best effort: an entry already
 * gone is fine, failures are logged at debug level. Never blocks. */
void conntrack_forget(struct conntrack *ct, const struct sockaddr_storage *client,
		      const struct sockaddr_storage *orig_dst);

/* Resets a redirected client (SO_LINGER 0) and forgets its entry; orig_dst
 * NULL: just the reset. */
void conntrack_reset_client(struct conntrack *ct, int fd, const struct sockaddr_storage *orig_dst);
