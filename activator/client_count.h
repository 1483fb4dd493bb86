/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Connections held per client address, for the activator's per-client bound:
 * internal to activator/. A small open-addressing hash table (linear probing,
 * deletion by backward shift, so no tombstones pile up under churn), keyed
 * with a random seed so that a client choosing its addresses (an IPv6 /64
 * holds plenty) cannot aim them all at one chain.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 address or an IPv6 /64 as 16 bytes; IPv4 as v4-mapped, so a client
 * seen on a dual-stack socket and on an IPv4 one is the same client; IPv6 with
 * its last 64 bits zero, so one host choosing addresses in its /64 is one. */
struct client_key {
	unsigned char b[16];
};

void client_key_from(struct client_key *k, const struct sockaddr_storage *sa);

struct client_count;

int client_count_new(struct client_count **out);
void client_count_free(struct client_count *cc); /* accepts NULL */

size_t client_count_get(const struct client_count *cc, const struct client_key *k);
/* 0, or -ENOMEM (the count is unchanged then). */
int client_count_add(struct client_count *cc, const struct client_key *k);
/* k must have been added. */
void client_count_remove(struct client_count *cc, const struct client_key *k);
