// SPDX-License-Identifier: MIT
/* The control socket's commands: enable, disable, list, status, sleep, wake, events. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_internal.h"
#include "dozed/control.h"
#include "dozed/duration.h"
#include "dozed/feed.h"
#include "dozed/log.h"
#include "dozed/runtime.h"

static const char *req_string(struct json_object *req, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void reply_service(struct dozed *d, uint64_t client, struct service *s)
{
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "service", service_to_json(d->services, s));
	control_reply(d->control, client, reply);
}

static void reply_ok(struct dozed *d, uint64_t client)
{
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	control_reply(d->control, client, reply);
}

/* The service named by "service", or an error reply (NULL). */
static struct service *service_arg(struct dozed *d, uint64_t client, struct json_object *req)
{
	const char *name = req_string(req, "service");
	if (!name) {
		control_reply_error(d->control, client, "missing \"service\": name the service");
		return NULL;
	}
	struct service *s = service_find_by_container(d->services, name);
	if (!s)
		control_reply_error(d->control, client,
				    "no service %s (dozectl list shows the enabled ones)", name);
	return s;
}

static void enable_done(struct pending_op *op, int err, const char *msg,
			const struct runtime_container *c)
{
	struct dozed *d = op->d;
	if (err < 0) {
		control_reply_error(d->control, op->client_id, "%s", msg);
		return;
	}
	bool known = service_find_by_container(d->services, c->id) != NULL;
	struct service *s;
	char why[256];
	int r = dozed_enable_container(d, c, op->idle_us, op->idle_explicit, op->wake_on_data, &s,
				       why, sizeof(why));
	if (r < 0) {
		control_reply_error(d->control, op->client_id, "%s", why);
		return;
	}
	if (!known)
		feed_emit(d->feed, "enabled", s->name, s->container_id, NULL);
	r = dozed_save_state(d);
	if (r < 0) {
		control_reply_error(d->control, op->client_id,
				    "%s is enabled, but could not be saved in %s (%s): it will not "
				    "be after a restart",
				    s->name, d->cfg.state_dir, strerror(-r));
		return;
	}
	reply_service(d, op->client_id, s);
}

static void enable_inspected(int err, const struct runtime_error *error,
			     const struct runtime_container *c, void *userdata)
{
	struct pending_op *op = userdata;
	enable_done(op, err, error->message, c);
	pending_op_free(op);
}

static void cmd_enable(struct dozed *d, uint64_t client, struct json_object *req)
{
	const char *container = req_string(req, "container");
	const char *idle = req_string(req, "idle");
	const char *wake_on = req_string(req, "wake_on");
	uint64_t idle_us = 0;
	if (!container || !*container) {
		control_reply_error(d->control, client, "missing \"container\": name a container");
		return;
	}
	if (idle && (duration_parse_us(idle, &idle_us) < 0 || idle_us < 1000000)) {
		control_reply_error(
		    d->control, client,
		    "idle %s: expected a duration of 1s or more, like 30s, 10m or 2h", idle);
		return;
	}
	if (wake_on && strcmp(wake_on, "connect") != 0 && strcmp(wake_on, "data") != 0) {
		control_reply_error(d->control, client, "wake_on %s: expected connect or data",
				    wake_on);
		return;
	}
	struct pending_op *op = pending_op_new(d, PENDING_ENABLE, 0);
	if (!op) {
		control_reply_error(d->control, client, "out of memory");
		return;
	}
	op->client_id = client;
	op->idle_us = idle_us;
	op->idle_explicit = idle != NULL;
	op->wake_on_data = wake_on && strcmp(wake_on, "data") == 0;
	int r = runtime_inspect(d->runtime, container, enable_inspected, op);
	if (r < 0) {
		pending_op_free(op);
		control_reply_error(d->control, client, "cannot ask the runtime about %s: %s",
				    container, strerror(-r));
	}
}

static void cmd_disable(struct dozed *d, uint64_t client, struct json_object *req)
{
	struct service *s = service_arg(d, client, req);
	if (!s)
		return;
	service_disable(d->services, s);
	int r = dozed_save_state(d);
	if (r < 0)
		control_reply_error(d->control, client,
				    "disabled, but %s could not be saved (%s): it comes back "
				    "after a restart",
				    d->cfg.state_dir, strerror(-r));
	else
		reply_ok(d, client);
}

static void cmd_list(struct dozed *d, uint64_t client)
{
	struct json_object *reply = json_object_new_object();
	struct json_object *list = json_object_new_array();
	for (struct service *s = service_first(d->services); s; s = s->next)
		json_object_array_add(list, service_to_json(d->services, s));
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "services", list);
	control_reply(d->control, client, reply);
}

static void cmd_sleep_or_wake(struct dozed *d, uint64_t client, struct json_object *req, bool sleep)
{
	struct service *s = service_arg(d, client, req);
	if (!s)
		return;
	int r = sleep ? service_sleep_now(d->services, s, "command")
		      : service_wake_now(d->services, s, "command");
	if (r == -EALREADY)
		control_reply_error(d->control, client, "%s is %s already", s->name,
				    service_state_name(s->state));
	else if (r == -EBUSY)
		control_reply_error(d->control, client, "%s is %s; try again when it is done",
				    s->name, service_state_name(s->state));
	else if (r < 0)
		control_reply_error(d->control, client, "%s: %s", s->name, s->reason);
	else
		reply_service(d, client, s);
}

static void cmd_events(struct dozed *d, uint64_t client, struct json_object *req)
{
	struct json_object *follow;
	bool want_follow =
	    json_object_object_get_ex(req, "follow", &follow) && json_object_get_boolean(follow);
	struct json_object *history = NULL;
	if (feed_history_json(d->feed, &history) < 0) {
		control_reply_error(d->control, client, "out of memory");
		return;
	}
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "events", history);
	/* Subscribed first: no event falls between the history and the stream. */
	if (want_follow)
		control_subscribe(d->control, client);
	control_reply(d->control, client, reply);
}

void dozed_control_handler(void *userdata, uint64_t client_id, const char *cmd,
			   struct json_object *req)
{
	struct dozed *d = userdata;
	if (strcmp(cmd, "enable") == 0)
		cmd_enable(d, client_id, req);
	else if (strcmp(cmd, "disable") == 0)
		cmd_disable(d, client_id, req);
	else if (strcmp(cmd, "list") == 0)
		cmd_list(d, client_id);
	else if (strcmp(cmd, "status") == 0) {
		struct service *s = service_arg(d, client_id, req);
		if (s)
			reply_service(d, client_id, s);
	} else if (strcmp(cmd, "sleep") == 0)
		cmd_sleep_or_wake(d, client_id, req, true);
	else if (strcmp(cmd, "wake") == 0)
		cmd_sleep_or_wake(d, client_id, req, false);
	else if (strcmp(cmd, "events") == 0)
		cmd_events(d, client_id, req);
	else
		control_reply_error(d->control, client_id,
				    "unknown command \"%s\" (expected enable, disable, list, "
				    "status, sleep, wake or events)",
				    cmd);
}
