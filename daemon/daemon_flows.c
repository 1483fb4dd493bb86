// SPDX-License-Identifier: MIT
/*
 * The explainer: what the flow counter and the container's open connections
 * say of a service, for the control protocol (status, flows).
 */
#include <json-c/json.h>

#include "dozed/control.h"
#include "daemon_internal.h"

void dozed_cmd_flows(struct dozed *d, uint64_t client, struct json_object *req)
{
	(void)req;
	control_reply_error(d->control, client, "flows: not built yet");
}

void dozed_service_json_add_flows(struct dozed *d, struct service *s, struct json_object *o,
				  bool detailed)
{
	(void)d;
	(void)s;
	(void)o;
	(void)detailed;
}

enum service_kept dozed_flows_blocker(struct dozed *d, struct service *s, char *what, size_t len)
{
	(void)d;
	(void)s;
	(void)what;
	(void)len;
	return SERVICE_NOT_KEPT;
}
