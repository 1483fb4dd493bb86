// SPDX-License-Identifier: MIT
#include "client_count.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define FIRST_CAPACITY 16 /* a power of two */

struct slot {
	struct client_key key;
	uint32_t count; /* 0: empty */
};

struct client_count {
	struct slot *slots;
	size_t capacity; /* a power of two */
	size_t used;
	uint64_t seed[2];
};

void client_key_from(struct client_key *k, const struct sockaddr_storage *sa)
{
	memset(k, 0, sizeof(*k));
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		/* One client is its /64: a host is handed a /64 and may take
		 * any of its 2^64 addresses (SLAAC privacy addresses do). */
		memcpy(k->b, a6, IN6_IS_ADDR_V4MAPPED(a6) ? 16 : 8);
	} else if (sa->ss_family == AF_INET) {
		k->b[10] = k->b[11] = 0xff;
		memcpy(&k->b[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* splitmix64's finaliser: every key bit reaches every hash bit. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t slot_of(const struct client_count *cc, const struct client_key *k)
{
	uint64_t lo, hi;
	memcpy(&lo, k->b, 8);
	memcpy(&hi, k->b + 8, 8);
	return (size_t)(mix(mix(lo ^ cc->seed[0]) ^ hi ^ cc->seed[1])) & (cc->capacity - 1);
}

int client_count_new(struct client_count **out)
{
	struct client_count *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	cc->capacity = FIRST_CAPACITY;
	cc->slots = calloc(cc->capacity, sizeof(*cc->slots));
	if (!cc->slots) {
		free(cc);
		return -ENOMEM;
	}
	if (getrandom(cc->seed, sizeof(cc->seed), GRND_NONBLOCK) != sizeof(cc->seed)) {
		/* Early boot: a weaker seed still differs per table. */
		cc->seed[0] = mix((uint64_t)time(NULL) ^ (uintptr_t)cc);
		cc->seed[1] = mix(cc->seed[0]);
	}
	*out = cc;
	return 0;
}

void client_count_free(struct client_count *cc)
{
	if (!cc)
		return;
	free(cc->slots);
	free(cc);
}

static struct slot *slot_find(const struct client_count *cc, const struct client_key *k)
{
	for (size_t i = slot_of(cc, k);; i = (i + 1) & (cc->capacity - 1)) {
		struct slot *s = &cc->slots[i];
		if (s->count == 0 || memcmp(&s->key, k, sizeof(*k)) == 0)
			return s;
	}
}

size_t client_count_get(const struct client_count *cc, const struct client_key *k)
{
	return slot_find(cc, k)->count;
}

static int table_grow(struct client_count *cc)
{
	struct slot *old = cc->slots;
	size_t old_capacity = cc->capacity;
	struct slot *slots = calloc(old_capacity * 2, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	cc->slots = slots;
	cc->capacity = old_capacity * 2;
	for (size_t i = 0; i < old_capacity; i++)
		if (old[i].count > 0)
			*slot_find(cc, &old[i].key) = old[i];
	free(old);
	return 0;
}

int client_count_add(struct client_count *cc, const struct client_key *k)
{
	struct slot *s = slot_find(cc, k);
	if (s->count > 0) {
		s->count++;
		return 0;
	}
	/* Half full at most: probe chains stay short. */
	if ((cc->used + 1) * 2 > cc->capacity) {
		int r = table_grow(cc);
		if (r < 0)
			return r;
		s = slot_find(cc, k);
	}
	s->key = *k;
	s->count = 1;
	cc->used++;
	return 0;
}

void client_count_remove(struct client_count *cc, const struct client_key *k)
{
	struct slot *s = slot_find(cc, k);
	if (s->count == 0 || --s->count > 0)
		return;
	cc->used--;
	/* Backward shift: move later entries of the chain into the hole, so
	 * every entry stays reachable from its home slot without tombstones. */
	size_t mask = cc->capacity - 1, hole = (size_t)(s - cc->slots);
	for (size_t j = (hole + 1) & mask; cc->slots[j].count > 0; j = (j + 1) & mask) {
		size_t home = slot_of(cc, &cc->slots[j].key);
		/* j's entry may move to the hole if its home is not in (hole, j]. */
		bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (stays)
			continue;
		cc->slots[hole] = cc->slots[j];
		hole = j;
	}
	cc->slots[hole].count = 0;
}
