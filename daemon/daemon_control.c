// SPDX-License-Identifier: MIT
/* The control socket's commands: enable, disable, list, status, sleep, wake,
 * events, flows, metrics. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_internal.h"
#include "daemon_metrics.h"
#include "dozed/control.h"
#include "dozed/control_settings.h"
#include "dozed/control_request.h"
#include "dozed/settings.h"
#include "dozed/feed.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics.h"
#include "dozed/runtime.h"

static void reply_service(struct dozed *d, uint64_t client, struct service *s)
{
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	struct json_object *o = service_to_json(d->services, s);
	if (o) {
		dozed_service_json_add_flows(d, s, o, true);
		dozed_freeze_json_add(s, o);
	}
	json_object_object_add(reply, "service", o);
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
	const char *name = control_request_get_string(req, "service");
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
	int r = dozed_enable_container(d, c, &op->settings, &s, why, sizeof(why));
	if (r < 0) {
		control_reply_error(d->control, op->client_id, "%s", why);
		return;
	}
	if (!known) {
		dozed_emit(d, s, "enabled", NULL);
	}
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
	const char *container = control_request_get_string(req, "container");
	if (!container || !*container) {
		control_reply_error(d->control, client, "missing \"container\": name a container");
		return;
	}
	struct service_settings settings = {0};
	char err[512];
	if (control_request_settings(req, d->cfg.idle_us, &settings, err, sizeof(err)) < 0) {
		control_reply_error(d->control, client, "%s", err);
		return;
	}
	struct pending_op *op = pending_op_new(d, PENDING_ENABLE, 0);
	if (!op) {
		control_reply_error(d->control, client, "out of memory");
		return;
	}
	op->client_id = client;
	op->settings = settings;
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
	for (struct service *s = service_first(d->services); s; s = s->next) {
		struct json_object *o = service_to_json(d->services, s);
		if (o) {
			dozed_service_json_add_flows(d, s, o, false);
			dozed_freeze_json_add(s, o);
		}
		json_object_array_add(list, o);
	}
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
	bool want_follow = control_request_get_bool(req, "follow", false);
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

/* The listener's text, for hosts without --metrics-listen. */
static void cmd_metrics(struct dozed *d, uint64_t client)
{
	struct metrics_blob *b = NULL;
	int r = dozed_metrics_render(d, &b);
	if (r < 0) {
		control_reply_error(d->control, client, "cannot render the metrics: %s",
				    strerror(-r));
		return;
	}
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "metrics", json_object_new_string_len(b->text, (int)b->len));
	metrics_blob_unref(b);
	control_reply(d->control, client, reply);
}

#define SERVICE_FIELD                                                                              \
	{                                                                                          \
		"service", CONTROL_FIELD_STRING, "a string: the service's name"                    \
	}

static const struct control_field enable_fields[] = {
    {"container", CONTROL_FIELD_STRING, "a string: a container's name or id"},
    CONTROL_SETTINGS_FIELDS,
};
static const struct control_field service_fields[] = {SERVICE_FIELD};
static const struct control_field flows_fields[] = {
    SERVICE_FIELD,
    {"since_ms", CONTROL_FIELD_UINT, "a number of milliseconds"},
};
static const struct control_field events_fields[] = {
    {"follow", CONTROL_FIELD_BOOL, "true or false"},
};

enum command {
	CMD_ENABLE,
	CMD_DISABLE,
	CMD_LIST,
	CMD_STATUS,
	CMD_SLEEP,
	CMD_WAKE,
	CMD_EVENTS,
	CMD_FLOWS,
	CMD_METRICS,
};

static const struct {
	const char *name;
	enum command cmd;
	const struct control_field *fields;
	size_t n_fields;
} commands[] = {
    {"enable", CMD_ENABLE, enable_fields, ARRAY_SIZE(enable_fields)},
    {"disable", CMD_DISABLE, service_fields, ARRAY_SIZE(service_fields)},
    {"list", CMD_LIST, NULL, 0},
    {"status", CMD_STATUS, service_fields, ARRAY_SIZE(service_fields)},
    {"sleep", CMD_SLEEP, service_fields, ARRAY_SIZE(service_fields)},
    {"wake", CMD_WAKE, service_fields, ARRAY_SIZE(service_fields)},
    {"events", CMD_EVENTS, events_fields, ARRAY_SIZE(events_fields)},
    {"flows", CMD_FLOWS, flows_fields, ARRAY_SIZE(flows_fields)},
    {"metrics", CMD_METRICS, NULL, 0},
};

void dozed_control_handler(void *userdata, uint64_t client_id, const char *cmd,
			   struct json_object *req)
{
	struct dozed *d = userdata;
	size_t i = 0;
	while (i < ARRAY_SIZE(commands) && strcmp(commands[i].name, cmd) != 0)
		i++;
	if (i == ARRAY_SIZE(commands)) {
		control_reply_error(d->control, client_id,
				    "unknown command \"%s\" (expected enable, disable, list, "
				    "status, sleep, wake, events, flows or metrics)",
				    cmd);
		return;
	}
	/* A field of the wrong type is refused, not skipped: skipping "idle":5 would
	 * re-enable with the default idle time. */
	char err[256];
	if (control_request_check_fields(req, cmd, commands[i].fields, commands[i].n_fields, err,
					 sizeof(err)) < 0) {
		control_reply_error(d->control, client_id, "%s", err);
		return;
	}
	switch (commands[i].cmd) {
	case CMD_ENABLE:
		cmd_enable(d, client_id, req);
		break;
	case CMD_DISABLE:
		cmd_disable(d, client_id, req);
		break;
	case CMD_LIST:
		cmd_list(d, client_id);
		break;
	case CMD_STATUS: {
		struct service *s = service_arg(d, client_id, req);
		if (s)
			reply_service(d, client_id, s);
		break;
	}
	case CMD_SLEEP:
		cmd_sleep_or_wake(d, client_id, req, true);
		break;
	case CMD_WAKE:
		cmd_sleep_or_wake(d, client_id, req, false);
		break;
	case CMD_EVENTS:
		cmd_events(d, client_id, req);
		break;
	case CMD_FLOWS:
		dozed_cmd_flows(d, client_id, req);
		break;
	case CMD_METRICS:
		cmd_metrics(d, client_id);
		break;
	}
}
