/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Is an address one of this network namespace's own? Internal to activator/:
 * the activator's second wall (it relays only to original destinations that
 * are local, so it is never an open proxy, whatever the ruleset says).
 *
 * The question is put to the kernel's FIB (an RTM_GETROUTE on a netlink
 * socket opened in the activator's namespace): a route of type local is the
 * same answer the nft rule's `fib daddr type local` gets, covers every local
 * address (127.0.0.0/8, addresses added a moment ago, `ip route add local`
 * ranges) with no cache to go stale, and does not depend on
 * net.ipv4.ip_nonlocal_bind as a bind() test would. The kernel answers a
 * route lookup inside the sendmsg() call, without the RTNL lock, so the
 * reply is queued before it returns: no blocking, a few microseconds.
 */

#include <stdbool.h>
#include <sys/socket.h>

struct local_addr;

int local_addr_new(struct local_addr **out);
void local_addr_free(struct local_addr *la); /* accepts NULL */

/* 1: addr (IPv4, IPv6 or v4-mapped IPv6) is local here; 0: it is not (or
 * has no route); -errno when the kernel could not be asked. */
int local_addr_check(struct local_addr *la, const struct sockaddr_storage *addr);

/* addr is 127.0.0.0/8, ::1 or a v4-mapped 127.0.0.0/8. */
bool sockaddr_is_loopback(const struct sockaddr_storage *addr);
