// SPDX-License-Identifier: MIT
#include "control_fixture.h"

#include <event2/event.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS 5000

void control_fixture_handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct control_fixture *f = ud;
	f->requests++;
	if (strcmp(cmd, "echo") == 0) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "ok", json_object_new_boolean(1));
		json_object_object_add(r, "echo", json_object_get(req));
		control_reply(f->ctl, id, r);
	} else if (strcmp(cmd, "later") == 0) {
		f->later_client = id;
	} else if (strcmp(cmd, "follow") == 0) {
		control_subscribe(f->ctl, id);
		control_reply(f->ctl, id, json_tokener_parse("{\"ok\":true}"));
	} else {
		control_reply_error(f->ctl, id, "unknown command: %s", cmd);
	}
}

static void fixture_free(void *arg)
{
	struct control_fixture *f = arg;
	control_free(f->ctl);
	event_base_free(f->base);
	free(f);
}

struct control_fixture *control_fixture_bare(const char *prefix)
{
	/* The server's peers may leave while it writes to them. */
	signal(SIGPIPE, SIG_IGN);
	struct control_fixture *f = calloc(1, sizeof(*f));
	if (!f)
		FAIL("out of memory");
	char *dir = lineclient_tmpdir(prefix);
	int n = snprintf(f->dir, sizeof(f->dir), "%s", dir);
	free(dir);
	if (n < 0 || (size_t)n >= sizeof(f->dir))
		FAIL("temporary directory name too long for the fixture");
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->base = event_base_new();
	if (!f->base)
		FAIL("event_base_new failed");
	/* Deferred after the directory: the server goes first, then its files. */
	test_defer(fixture_free, f);
	control_config_defaults(&f->cfg);
	f->cfg.path = f->path;
	return f;
}

void control_fixture_start(struct control_fixture *f, control_handler_fn handler, void *userdata)
{
	if (!handler) {
		handler = control_fixture_handler;
		userdata = f;
	}
	ASSERT_OK(control_new(f->base, &f->cfg, handler, userdata, &f->ctl));
}

struct control_fixture *control_fixture_new(void)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	control_fixture_start(f, NULL, NULL);
	return f;
}

struct control_counters control_fixture_counters(struct control_fixture *f)
{
	struct control_counters k;
	control_get_counters(f->ctl, &k);
	return k;
}

struct lineclient *control_fixture_connect(struct control_fixture *f)
{
	return lineclient_open(f->base, f->path);
}

struct clients_wait {
	struct control_fixture *f;
	uint64_t n;
};

static bool clients_are(void *arg)
{
	struct clients_wait *w = arg;
	return control_fixture_counters(w->f).clients_now == w->n;
}

void control_fixture_wait_clients(struct control_fixture *f, uint64_t n, const char *what)
{
	struct clients_wait w = {.f = f, .n = n};
	evloop_run_until(f->base, clients_are, &w, WAIT_MS, what);
}

void control_fixture_assert_serves(struct control_fixture *f)
{
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
}
