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
 * Connects to dst with SO_MARK (bypassing the redirect) and relays client_fd
 * to it both ways, on behalf of service_id. Takes ownership of client_fd in
 * every case: on failure the client is reset.
 */
int relay_start(struct relay_set *set, uint64_t service_id, int client_fd,
		const struct sockaddr_storage *dst);
/* Relays of service_id still connecting, or whose client's last bytes the
 * backend has not answered yet. */
size_t relay_set_count_waiting(const struct relay_set *set, uint64_t service_id);
