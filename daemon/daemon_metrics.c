// SPDX-License-Identifier: MIT
/* The daemon's metrics (daemon_metrics.h). */
#include "daemon_metrics.h"

#include "dozed/metrics.h"
#include "daemon_internal.h"

int dozed_metrics_render(struct dozed *d, struct metrics_text *out)
{
	/* A stub until the collectors land. */
	(void)d;
	(void)out;
	return 0;
}

void dozed_metrics_note_first_response(struct dozed *d, uint64_t service_id, uint64_t us)
{
	(void)d;
	(void)service_id;
	(void)us;
}

void dozed_metrics_note_event(struct dozed *d, struct service *s, const char *event,
			      const struct json_object *facts)
{
	(void)d;
	(void)s;
	(void)event;
	(void)facts;
}
