// SPDX-License-Identifier: MIT
/*
 * Light sleep's wake hook, userspace side: arming a cgroup's hook (its
 * flows_config's freeze fields) and reading the flows_wake ring buffer the
 * ingress program reports the first waking packet through
 * (bpf/flows.bpf.c, flows_wake_check).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "dozed/flow_counter.h"
#include "dozed/flows.h"
#include "dozed/log.h"
#include "flows.skel.h"
#include "flows_config.h"
#include "flows_internal.h"

static void wake_from(const struct flows_wake *k, struct flow_wake *out)
{
	*out = (struct flow_wake){
	    .cgroup_id = k->cgroup_id,
	    .at_ns = k->at_ns,
	    .proto = k->proto,
	    .local_port = k->local_port,
	    .payload = k->payload,
	    .syn_seen = k->kind == FLOWS_WAKE_SYN_SEEN,
	};
	flows_peer_to_sockaddr(k->peer_addr, k->peer_port, &out->peer);
}

static int wake_sample(void *ctx, void *data, size_t size)
{
	struct flow_counter *c = ctx;
	/* The layout is shared with the program built beside this file: a
	 * short record is a bug, skipped rather than read past. */
	if (size < sizeof(struct flows_wake)) {
		log_warning("A wake record of %zu bytes, not %zu: skipped", size,
			    sizeof(struct flows_wake));
		return 0;
	}
	struct flow_wake w;
	wake_from(data, &w);
	c->wake_n++;
	if (c->wake_cb)
		c->wake_cb(&w, c->wake_userdata);
	return 0;
}

int flows_wake_new(struct flow_counter *c)
{
	c->wake_ring =
	    ring_buffer__new(bpf_map__fd(c->skel->maps.flows_wake), wake_sample, c, NULL);
	if (!c->wake_ring)
		return log_error_errno(errno, "Failed to open the flow counter's wake ring buffer");
	return 0;
}

void flows_wake_free(struct flow_counter *c)
{
	ring_buffer__free(c->wake_ring);
	c->wake_ring = NULL;
}

int flow_counter_set_frozen(struct flow_counter *c, struct flow_attachment *a, bool frozen,
			    bool wake_on_data)
{
	struct flows_cgroup_config saved = a->config;
	a->config.frozen = frozen;
	a->config.wake_on_data = frozen && wake_on_data;
	/* Arming again (frozen twice) reports the next packet again. */
	int r = flows_config_write(c, a, false, true);
	if (r < 0) {
		a->config = saved;
		if (r != -ENOENT)
			return r;
		return log_debug_errno(r, "Cannot %s the wake hook of %s: its cgroup is gone",
				       frozen ? "arm" : "disarm", a->path);
	}
	return 0;
}

int flow_counter_wake_fd(const struct flow_counter *c)
{
	return ring_buffer__epoll_fd(c->wake_ring);
}

int flow_counter_wake_consume(struct flow_counter *c, flow_wake_cb cb, void *userdata)
{
	c->wake_cb = cb;
	c->wake_userdata = userdata;
	c->wake_n = 0;
	int r = ring_buffer__consume(c->wake_ring);
	c->wake_cb = NULL;
	c->wake_userdata = NULL;
	if (r < 0)
		return log_error_errno(r, "Failed to read the flow counter's wake ring buffer");
	return c->wake_n;
}
