/* SPDX-License-Identifier: MIT */
#pragma once

/* The splice relay of the activator: internal to activator/. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conntrack;
struct event_base;
struct relay;
struct relay_set;

/* Counters the relays of one activator add to. */
struct relay_stats {
	uint64_t relayed_now;
	uint64_t relayed_total;
	uint64_t bytes_to_backend;
	uint64_t bytes_to_client;
	uint64_t backend_connect_failed;
	uint64_t backend_connect_retries; /* SYNs sent again by a new connect */
	uint64_t reset;
};

/* A set of relays sharing one pool of pipes; freeing it ends every relay.
 * A client it resets has its conntrack entry forgotten through ct (may be NULL). */
int relay_set_new(struct event_base *base, uint32_t mark, uint64_t max_lifetime_us,
		  struct relay_stats *stats, struct conntrack *ct, struct relay_set **out);
void relay_set_free(struct relay_set *set);

/*
 * A wake's first answer, shared by the relays of the clients held through it:
 * the first of them to pass a backend byte to its client reports it, through
 * the set's first_response, once. Freed with its last reference.
 */
struct relay_wake;
/* One reference, the caller's; NULL when out of memory (logged). */
struct relay_wake *relay_wake_new(void);
void relay_wake_unref(struct relay_wake *wake);
/* Called with a wake's first answer; fn NULL (the default): never. */
void relay_set_on_first_response(struct relay_set *set,
				 void (*fn)(void *ud, uint64_t service_id, uint64_t us), void *ud);

/*
 * Connects to dst with SO_MARK (bypassing the redirect) and relays client_fd
 * to it both ways, on behalf of service_id. Takes ownership of client_fd in
 * every case: on failure the client is reset. wake (may be NULL: the relay
 * reports nothing) gets a reference of the relay's; accepted_us is when the
 * client was accepted, what its first answer is measured from.
 */
int relay_start(struct relay_set *set, uint64_t service_id, int client_fd,
		const struct sockaddr_storage *dst, struct relay_wake *wake, uint64_t accepted_us);
/* Relays of service_id still connecting, or whose client's last bytes the
 * backend has not answered yet. */
size_t relay_set_count_waiting(const struct relay_set *set, uint64_t service_id);
