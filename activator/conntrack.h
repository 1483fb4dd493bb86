/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Forgetting the conntrack entry of a client the activator reset: internal
 * to activator/. The entry keeps the redirect for its 5-tuple; a later
 * connection of ours (probe or relay, which bypass the redirect by their
 * mark) that happens to reuse the client's source port would match it and be
 * sent back to the activator, because a reset from the reply side does not
 * let conntrack reopen the entry.
 *
 * The entry is found by its reply tuple, which is what the activator's
 * socket sees (its own address, and the peer's): when the redirect clashed
 * with another entry's reply tuple, NAT also changed the client's source
 * port, and the original tuple is not known from the socket.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conntrack;

int conntrack_new(struct conntrack **out);
void conntrack_free(struct conntrack *ct); /* accepts NULL */

/* Resets a redirected client (SO_LINGER 0) and deletes its entry. Best
 * effort: failures are logged at debug level. Never blocks. */
void conntrack_reset_client(struct conntrack *ct, int fd);

/*
 * A client whose SYN the runtime NATed to a container that did not answer
 * (a full backlog) leaves a SYN_SENT entry; a later client that gets the
 * same source port would have its SYN taken as that connection's and sent to
 * the stopped container instead of the redirect, which NAT rules decide only
 * for a new entry: refused. Called once ports enter the redirect set, this
 * deletes the entries to those ports still in their handshake that were not
 * redirected (their reply does not come from activator_port). Returns how
 * many, or -errno (logged). Never blocks: the kernel answers as it is read.
 */
int conntrack_forget_unredirected(struct conntrack *ct, const uint16_t *ports, size_t n_ports,
				  uint16_t activator_port);
