/* SPDX-License-Identifier: MIT */
#pragma once

/* What service.c (the transitions) and service_registry.c (the registry)
 * share; nothing outside the service state machine sees it. */

#include "dozed/service.h"

struct service_registry {
	struct service_ops ops;
	void *ud;
	uint64_t start_timeout_us; /* 0: none */
	struct service *head;
	size_t n;
	uint64_t next_id;
	char error[320]; /* why the last add or reconcile was refused; "" if not */
};

/* Records why a call is refused (service_registry_error); returns -err. */
__attribute__((format(printf, 3, 4))) int service_refuse(struct service_registry *r, int err,
							 const char *fmt, ...);
/* -EADDRINUSE (refused, with the owner named) when a port is another's than self's. */
int service_check_ports(struct service_registry *r, const struct service *self, const char *name,
			const struct service_port *ports, size_t n_ports);
/* A new service for spec, not yet in the registry: its state is the caller's. */
int service_alloc(struct service_registry *r, const struct service_spec *spec,
		  struct service **out);
/* Frees a service service_alloc made that never went into the registry. */
void service_discard(struct service *s);
void service_link(struct service_registry *r, struct service *s);
void service_unlink(struct service_registry *r, struct service *s);
/* Frees a service taken out of the registry: timer cancelled, ops->forget. */
void service_destroy(struct service_registry *r, struct service *s);
