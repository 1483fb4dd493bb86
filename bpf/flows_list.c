// SPDX-License-Identifier: MIT
/* Walks of the flow map: a cgroup's flows, their deletion, the map's size. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/flow_counter.h"
#include "dozed/flows.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "flows_internal.h"

/* Entries per batch: a few syscalls for a full map of 32 768, and more than
 * any hash bucket holds (a batch must take a bucket whole). */
#define FLOWS_BATCH 1024

static int foreach_one_by_one(const struct flow_counter *c, flows_map_fn fn, void *data)
{
	struct flows_key key, next;
	struct flows_value v;
	const void *prev = NULL;
	while (bpf_map_get_next_key(c->flows_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		/* Evicted between the two calls: skip it. */
		if (bpf_map_lookup_elem(c->flows_fd, &key, &v) < 0)
			continue;
		int r = fn(&key, &v, data);
		if (r)
			return r;
	}
	if (errno != ENOENT)
		return log_error_errno(errno, "Failed to walk the flow map");
	return 0;
}

int flows_map_foreach(const struct flow_counter *c, flows_map_fn fn, void *data)
{
	_cleanup_free_ struct flows_key *keys = calloc(FLOWS_BATCH, sizeof(*keys));
	_cleanup_free_ struct flows_value *values = calloc(FLOWS_BATCH, sizeof(*values));
	if (!keys || !values)
		return log_error_errno(ENOMEM, "Failed to allocate a walk of the flow map");
	uint64_t token = 0;
	for (int first = 1;; first = 0) {
		uint32_t n = FLOWS_BATCH;
		int r = bpf_map_lookup_batch(c->flows_fd, first ? NULL : &token, &token, keys,
					     values, &n, NULL);
		int err = r < 0 ? -errno : 0;
		if (err && err != -ENOENT) {
			/* A kernel without batches for this map: one at a time. */
			if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP))
				return foreach_one_by_one(c, fn, data);
			return log_error_errno(err, "Failed to read the flow map");
		}
		for (uint32_t i = 0; i < n; i++) {
			int s = fn(&keys[i], &values[i], data);
			if (s)
				return s;
		}
		if (err == -ENOENT)
			return 0;
	}
}

void flows_peer_to_sockaddr(const uint8_t addr[16], uint16_t port, struct sockaddr_storage *out)
{
	static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memset(out, 0, sizeof(*out));
	if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr + 12, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, 16);
	}
}

void flow_info_from(const struct flows_key *k, const struct flows_value *v, struct flow_info *out)
{
	*out = (struct flow_info){
	    .cgroup_id = k->cgroup_id,
	    .proto = k->proto,
	    .local_port = k->local_port,
	    .opener = (enum flows_opener)v->opener,
	    .class = (enum flows_class)v->class,
	    .rule = v->class == FLOWS_IGN_RULE ? v->rule : -1,
	    .first_ns = v->first_ns,
	    .last_ns = v->last_ns,
	    .last_counted_ns = v->last_counted_ns,
	    .last_payload_dir = v->last_payload_dir ? v->last_payload_dir - 1 : -1,
	};
	for (int d = 0; d < 2; d++) {
		out->bytes[d] = v->dir[d].bytes;
		out->packets[d] = v->dir[d].packets;
		out->payload[d] = v->dir[d].payload;
		out->last_payload_ns[d] = v->dir[d].last_payload_ns;
		out->tcp_flags[d] = v->tcp_flags[d];
	}
	flows_peer_to_sockaddr(k->peer_addr, k->peer_port, &out->peer);
}

int flow_counter_lookup(const struct flow_counter *c, const struct flow_attachment *a,
			uint8_t proto, const struct sockaddr_storage *peer, uint16_t local_port,
			struct flow_info *out)
{
	struct flows_key k = {.cgroup_id = a->cgroup_id, .local_port = local_port, .proto = proto};
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
		k.peer_addr[10] = k.peer_addr[11] = 0xff;
		memcpy(k.peer_addr + 12, &sin->sin_addr, 4);
		k.peer_port = ntohs(sin->sin_port);
	} else if (peer->ss_family == AF_INET6) {
		/* v4-mapped is the kernel's own form of an IPv4 peer. */
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
		memcpy(k.peer_addr, &sin6->sin6_addr, 16);
		k.peer_port = ntohs(sin6->sin6_port);
	} else {
		return log_debug_errno(SYNTHETIC_ERRNO(EAFNOSUPPORT),
				       "Cannot look up a flow of address family %d",
				       peer->ss_family);
	}
	struct flows_value v;
	if (bpf_map_lookup_elem(c->flows_fd, &k, &v) < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return log_error_errno(errno, "Failed to look up a flow of %s", a->path);
	}
	flow_info_from(&k, &v, out);
	return 0;
}

struct list_walk {
	uint64_t cgroup_id, since_ns;
	bool all; /* every cgroup's, not only cgroup_id's */
	struct flow_info *infos;
	size_t n, cap;
};

static int list_one(const struct flows_key *k, const struct flows_value *v, void *data)
{
	struct list_walk *w = data;
	if ((!w->all && k->cgroup_id != w->cgroup_id) || v->last_ns < w->since_ns)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct flow_info *more = reallocarray(w->infos, cap, sizeof(*more));
		if (!more)
			return log_error_errno(ENOMEM, "Failed to allocate a list of flows");
		w->infos = more;
		w->cap = cap;
	}
	flow_info_from(k, v, &w->infos[w->n++]);
	return 0;
}

static int list_walk(const struct flow_counter *c, struct list_walk w, struct flow_info **out,
		     size_t *n)
{
	int r = flows_map_foreach(c, list_one, &w);
	if (r < 0) {
		free(w.infos);
		return r;
	}
	*out = w.n ? w.infos : NULL;
	if (!w.n)
		free(w.infos);
	*n = w.n;
	return 0;
}

int flow_counter_list(const struct flow_counter *c, const struct flow_attachment *a,
		      uint64_t since_ns, struct flow_info **out, size_t *n)
{
	struct list_walk w = {.cgroup_id = a->cgroup_id, .since_ns = since_ns};
	return list_walk(c, w, out, n);
}

int flow_counter_list_all(const struct flow_counter *c, uint64_t since_ns, struct flow_info **out,
			  size_t *n)
{
	struct list_walk w = {.since_ns = since_ns, .all = true};
	return list_walk(c, w, out, n);
}

struct key_walk {
	const uint64_t *ids; /* sorted */
	size_t n_ids;
	struct flows_key *keys;
	size_t n, cap;
};

static int collect_key(const struct flows_key *k, const struct flows_value *v, void *data)
{
	(void)v;
	struct key_walk *w = data;
	size_t lo = 0, hi = w->n_ids;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->ids[mid] < k->cgroup_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == w->n_ids || w->ids[lo] != k->cgroup_id)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct flows_key *more = reallocarray(w->keys, cap, sizeof(*more));
		if (!more)
			return log_error_errno(ENOMEM, "Failed to allocate a list of flows");
		w->keys = more;
		w->cap = cap;
	}
	w->keys[w->n++] = *k;
	return 0;
}

int flows_map_delete_cgroups(struct flow_counter *c, const uint64_t *ids, size_t n)
{
	struct key_walk w = {.ids = ids, .n_ids = n};
	int r = flows_map_foreach(c, collect_key, &w);
	/* Deleted only when the kernel says so: one evicted meanwhile counts
	 * as evicted, which keeps evicted = created - live - deleted. */
	for (size_t i = 0; i < w.n; i++)
		if (bpf_map_delete_elem(c->flows_fd, &w.keys[i]) == 0)
			c->deleted++;
	free(w.keys);
	return r;
}

static int count_one(const struct flows_key *k, const struct flows_value *v, void *data)
{
	(void)k;
	(void)v;
	(*(uint64_t *)data)++;
	return 0;
}

int flow_counter_map_stats(const struct flow_counter *c, struct flow_map_stats *out)
{
	uint64_t live = 0;
	int r = flows_map_foreach(c, count_one, &live);
	if (r < 0)
		return r;
	/* Read after the walk: an insert meanwhile can only make evicted
	 * look larger by that one, never wrap it. */
	_cleanup_free_ struct flows_global *per_cpu = calloc((size_t)c->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return log_error_errno(ENOMEM, "Failed to allocate per-CPU flow counts");
	uint32_t zero = 0;
	if (bpf_map_lookup_elem(c->global_fd, &zero, per_cpu) < 0)
		return log_error_errno(errno, "Failed to read the flow map's counts");
	uint64_t created = 0;
	for (int cpu = 0; cpu < c->ncpus; cpu++)
		created += per_cpu[cpu].created;
	*out = (struct flow_map_stats){
	    .capacity = c->max_flows,
	    .live = live,
	    .created = created,
	    .deleted = c->deleted,
	    .evicted = created > live + c->deleted ? created - live - c->deleted : 0,
	};
	return 0;
}
