// SPDX-License-Identifier: MIT
/*
 * UNKNOWN: a saved service whose container the runtime has not told about
 * yet (it is not up), and its reconciliation once it answers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service_internal.h"

int service_add_unknown(struct service_registry *r, const struct service_spec *spec,
			bool redirected, const char *why, struct service **out)
{
	r->error[0] = '\0';
	struct service *s;
	int ret = service_alloc(r, spec, &s);
	if (ret < 0)
		return ret;
	s->state = SERVICE_UNKNOWN;
	service_enter(r, s, SERVICE_UNKNOWN);
	s->redirected = redirected && s->n_ports > 0;
	service_set_unknown_reason(s, why);
	service_link(r, s);
	*out = s;
	return 0;
}

void service_set_unknown_reason(struct service *s, const char *why)
{
	if (s->state == SERVICE_UNKNOWN)
		service_set_reason(s, "not reconciled yet (%s); its redirect is kept as it was",
				   why);
}

int service_reconcile(struct service_registry *r, struct service *s, const char *container_id,
		      const struct service_port *ports, size_t n_ports, bool running)
{
	r->error[0] = '\0';
	if (s->state != SERVICE_UNKNOWN)
		return -EALREADY;
	if (n_ports == 0 || n_ports > SERVICE_MAX_PORTS) {
		service_set_reason(s,
				   "its container publishes %zu TCP ports (1 to %d are supported)",
				   n_ports, SERVICE_MAX_PORTS);
		return -EINVAL;
	}
	int ret = service_check_ports(r, s, s->name, ports, n_ports);
	if (ret < 0) {
		service_set_reason(s, "a port of its container belongs to another service");
		return ret;
	}
	bool same = n_ports == s->n_ports;
	/* Field by field: the bytes after a host_ip's NUL are anyone's. */
	for (size_t i = 0; same && i < n_ports; i++)
		same = ports[i].host_port == s->ports[i].host_port &&
		       ports[i].container_port == s->ports[i].container_port &&
		       strcmp(ports[i].host_ip, s->ports[i].host_ip) == 0;
	if (!same) {
		/* The saved ports are not the container's (any more): the old
		 * ones leave the set before the new ones are taken. */
		ret = service_redirect_remove(r, s);
		if (ret < 0) {
			service_set_reason(s, "its old ports could not leave the redirect set (%s)",
					   strerror(-ret));
			return ret;
		}
		memcpy(s->ports, ports, n_ports * sizeof(*ports));
		s->n_ports = n_ports;
	}
	if (container_id && strcmp(container_id, s->container_id) != 0) {
		char *id = strdup(container_id);
		if (!id)
			return -ENOMEM;
		free(s->container_id);
		s->container_id = id;
	}
	ret = running ? service_redirect_remove(r, s) : service_redirect_add(r, s);
	if (ret < 0) {
		service_set_reason(s, "its redirect could not be %s (%s)",
				   running ? "removed" : "added", strerror(-ret));
		return ret;
	}
	/* Only for a client still held: one that gave up wakes nothing. */
	bool wake = s->wake_when_known && r->ops.activator_held(r->ud, s) > 0;
	s->wake_when_known = false;
	if (running) {
		service_become_awake(r, s);
		if (wake)
			r->ops.activator_starting(r->ud, s);
	} else {
		service_enter(r, s, SERVICE_ASLEEP);
		s->running = false;
		service_set_reason(s, "stopped; wakes on the next connection");
		if (wake)
			service_begin_wake(r, s, NULL, "connection while unknown");
	}
	return 0;
}
