// SPDX-License-Identifier: MIT
#include "service_fake.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

struct fake F;

static void logf_(const char *fmt, const char *name)
{
	char line[128];
	snprintf(line, sizeof(line), fmt, name);
	strncat(F.log, line, sizeof(F.log) - strlen(F.log) - 2);
	strcat(F.log, ";");
}

static uint64_t f_now(void *ud)
{
	(void)ud;
	return F.now;
}
static int f_redirect_add(void *ud, struct service *s)
{
	(void)ud;
	if (F.redirect_err)
		return F.redirect_err;
	logf_("redirect+ %s", s->name);
	return 0;
}
static int f_redirect_remove(void *ud, struct service *s)
{
	(void)ud;
	logf_("redirect- %s", s->name);
	return 0;
}
static void f_stop(void *ud, struct service *s)
{
	(void)ud;
	logf_("stop %s", s->name);
}
static bool f_stop_cancel(void *ud, struct service *s)
{
	(void)ud;
	logf_(F.stop_uncancellable ? "stop-cancel-too-late %s" : "stop-cancel %s", s->name);
	return !F.stop_uncancellable;
}
static void f_probe_cancel(void *ud, struct service *s)
{
	(void)ud;
	logf_("probe-cancel %s", s->name);
}
static void f_start(void *ud, struct service *s)
{
	(void)ud;
	logf_("start %s", s->name);
}
static void f_starting(void *ud, struct service *s)
{
	(void)ud;
	logf_("probe %s", s->name);
}
static void f_failed(void *ud, struct service *s)
{
	(void)ud;
	logf_("reset-held %s", s->name);
	F.held = 0;
}
static size_t f_held(void *ud, struct service *s)
{
	(void)ud;
	(void)s;
	return F.held;
}
static size_t f_waiting(void *ud, struct service *s)
{
	(void)ud;
	(void)s;
	return F.waiting;
}
static void f_egress(void *ud, struct service *s)
{
	(void)ud;
	s->last_activity_us = F.activity;
	s->egress_bytes = F.activity ? 1234 : 0;
	service_note_counted(s, F.counted);
}
static enum service_kept f_blocker(void *ud, struct service *s, char *what, size_t len)
{
	(void)ud;
	(void)s;
	F.blocker_asked++;
	if (F.activity_during_blocker)
		F.activity = F.activity_during_blocker;
	snprintf(what, len, "%s", F.kept_what ? F.kept_what : "");
	return F.kept;
}
static void f_freeze(void *ud, struct service *s)
{
	(void)ud;
	F.freezes_asked++;
	logf_("pause %s", s->name);
}
static int f_thaw(void *ud, struct service *s, char *why, size_t len)
{
	(void)ud;
	F.thaws_asked++;
	if (F.thaw_answer < 0) {
		snprintf(why, len, "the freezer is gone");
		logf_("thaw-refused %s", s->name);
		return F.thaw_answer;
	}
	if (F.thaw_answer == FAKE_THAW_ASYNC) {
		logf_("unpause %s", s->name);
		return 0;
	}
	logf_("thaw %s", s->name);
	return 1;
}
static void f_timer(void *ud, struct service *s, uint64_t at)
{
	(void)ud;
	(void)s;
	F.timer_at = at;
}
static void f_emit(void *ud, struct service *s, const char *event, struct json_object *facts)
{
	(void)ud;
	char line[64];
	snprintf(line, sizeof(line), "event %s %%s", event);
	logf_(line, s->name);
	snprintf(F.last_event, sizeof(F.last_event), "%s", event);
	json_object_put(F.last_facts);
	F.last_facts = facts;
}
static void f_forget(void *ud, struct service *s)
{
	(void)ud;
	logf_("forget %s", s->name);
}

static void f_state_changed(void *ud, struct service *s, enum service_state from)
{
	(void)ud;
	char line[64];
	snprintf(line, sizeof(line), "%s->%s;", service_state_name(from),
		 service_state_name(s->state));
	strncat(F.transitions, line, sizeof(F.transitions) - strlen(F.transitions) - 1);
}

const struct service_ops fake_ops = {
    .now_us = f_now,
    .redirect_add = f_redirect_add,
    .redirect_remove = f_redirect_remove,
    .runtime_stop = f_stop,
    .runtime_start = f_start,
    .runtime_stop_cancel = f_stop_cancel,
    .activator_starting = f_starting,
    .activator_probe_cancel = f_probe_cancel,
    .activator_failed = f_failed,
    .activator_held = f_held,
    .activator_waiting = f_waiting,
    .egress_read = f_egress,
    .sleep_blocker = f_blocker,
    .runtime_freeze = f_freeze,
    .runtime_thaw = f_thaw,
    .timer_set = f_timer,
    .emit = f_emit,
    .forget = f_forget,
    .state_changed = f_state_changed,
};

static void registry_free(void *arg)
{
	(void)arg;
	service_registry_free(F.reg);
	json_object_put(F.last_facts);
}

struct service *setup(bool running)
{
	memset(&F, 0, sizeof(F));
	F.now = 100 * SEC;
	ASSERT_OK(service_registry_new(&fake_ops, NULL, &F.reg));
	test_defer(registry_free, NULL);
	static const struct service_port ports[] = {{.host_port = 8080, .container_port = 80}};
	struct service_spec spec = {.name = "web",
				    .container_id = "0123456789abcdef0123",
				    .idle_us = 10 * SEC,
				    .ports = ports,
				    .n_ports = 1};
	struct service *s = NULL;
	ASSERT_OK(service_add(F.reg, &spec, running, &s));
	return s;
}

void clear_log(void)
{
	F.log[0] = '\0';
}

int64_t fact(const char *key)
{
	struct json_object *v;
	if (!F.last_facts || !json_object_object_get_ex(F.last_facts, key, &v))
		FAIL("event %s has no fact %s", F.last_event, key);
	return json_object_get_int64(v);
}

const char *fact_str(const char *key)
{
	struct json_object *v;
	if (!F.last_facts || !json_object_object_get_ex(F.last_facts, key, &v))
		FAIL("event %s has no fact %s", F.last_event, key);
	return json_object_get_string(v);
}

/* Asleep, with the fake log cleared. */
struct service *asleep_service(void)
{
	struct service *s = setup(false);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	clear_log();
	return s;
}

void connect_client(struct service *s)
{
	struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = htons(40000)};
	inet_pton(AF_INET, "10.0.0.9", &c.sin_addr);
	F.held++;
	service_on_wake_requested(F.reg, s->id, (struct sockaddr_storage *)&c);
}
