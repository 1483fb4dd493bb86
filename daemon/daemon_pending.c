// SPDX-License-Identifier: MIT
/* The runtime calls in flight for a service or the daemon (struct pending_op,
 * daemon_internal.h): each is on dozed->ops until it is answered, cancelled
 * or freed with the daemon. */
#include <errno.h>
#include <stdlib.h>

#include "daemon_internal.h"
#include "dozed/log.h"
#include "dozed/runtime.h"

struct pending_op *pending_op_new(struct dozed *d, enum pending_kind kind, uint64_t service_id)
{
	struct pending_op *op = calloc(1, sizeof(*op));
	if (!op) {
		log_error_errno(ENOMEM, "Failed to allocate a runtime request");
		return NULL;
	}
	op->d = d;
	op->kind = kind;
	op->service_id = service_id;
	LIST_PREPEND(ops, d->ops, op);
	return op;
}

struct service *pending_op_finish(struct pending_op *op)
{
	struct service *s = service_find_by_id(op->d->services, op->service_id);
	pending_op_free(op);
	return s;
}

void pending_op_free(struct pending_op *op)
{
	if (!op)
		return;
	LIST_REMOVE(ops, op->d->ops, op);
	free(op->container);
	free(op);
}

size_t pending_ops_cancel(struct dozed *d, enum pending_kind kind, uint64_t service_id)
{
	size_t n = 0;
	struct pending_op *op, *next;
	LIST_FOREACH_SAFE (ops, op, next, d->ops) {
		if (op->kind != kind || op->service_id != service_id)
			continue;
		runtime_cancel(d->runtime, op);
		pending_op_free(op);
		n++;
	}
	return n;
}
