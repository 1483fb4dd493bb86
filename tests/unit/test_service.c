// SPDX-License-Identifier: MIT
/*
 * The service state machine with a fake clock and fake effects: every effect
 * is recorded as a line of text ("redirect+ web", "stop web", ...) in order,
 * so a test asserts what the daemon would do and in which order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/service.h"
#include "harness.h"
#include "service_fake.h"

TEST(test_running_container_is_awake_with_its_first_look_in_the_last_quarter_of_its_idle_time)
{
	struct service *s = setup(true);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	/* Idle 10 s from 100 s: a look at 107.5 s, then the deadline. */
	ASSERT_EQ_U(F.timer_at, 107500000);
	F.now = F.timer_at;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(F.timer_at, 110 * SEC);
	ASSERT_STREQ(F.log, "");
}

TEST(test_stopped_container_is_asleep_with_its_ports_redirected)
{
	struct service *s = setup(false);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "redirect+ web;");
}

TEST(test_idle_service_redirects_its_ports_before_the_stop)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;stop web;");
	ASSERT_EQ_U(fact("idle_ms"), 10000);
	ASSERT_STREQ(fact_str("trigger"), "idle");
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
}

TEST(test_egress_moves_the_idle_deadline)
{
	struct service *s = setup(true);
	F.activity = 105 * SEC;
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.timer_at, 112500000);
	ASSERT_STREQ(F.log, "");
	F.now = 115 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_EQ_U(fact("egress_bytes"), 1234);
}

TEST(test_relayed_client_waiting_for_an_answer_keeps_it_awake)
{
	struct service *s = setup(true);
	F.waiting = 2;
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.timer_at, 117500000);
	ASSERT_STREQ(F.log, "");
	struct json_object *o = service_to_json(F.reg, s);
	struct json_object *v;
	ASSERT_TRUE(json_object_object_get_ex(o, "waiting", &v));
	ASSERT_EQ_U(json_object_get_int64(v), 2);
	ASSERT_TRUE(json_object_object_get_ex(o, "reason", &v));
	ASSERT_STREQ(json_object_get_string(v),
		     "2 relayed clients waiting for its answer; sleeps 10s after the last is "
		     "answered, without counted traffic");
	json_object_put(o);
	/* Answered (or gone): the idle time counts from the last moment one waited. */
	F.waiting = 0;
	F.now = 115 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.timer_at, 117500000);
	F.now = 120 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_connection_held_during_stop_starts_it_once_stopped)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	clear_log();
	connect_client(s);
	/* No start while the stop runs; the container that still runs is probed. */
	ASSERT_STREQ(F.log, "probe web;");
	clear_log();
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "probe-cancel web;event wake web;start web;");
	ASSERT_STREQ(fact_str("trigger"), "connection during stop");
}

TEST(test_connection_wakes_probes_and_ready_removes_the_redirect)
{
	struct service *s = asleep_service();
	connect_client(s);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(fact_str("client"), "10.0.0.9:40000");
	F.now += 300000;
	service_on_start_done(F.reg, s->id, 0, NULL);
	F.now += 50000;
	service_on_ready(F.reg, s->id, 50000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "event wake web;start web;probe web;redirect- web;event ready web;");
	ASSERT_EQ_U(fact("start_ms"), 300);
	ASSERT_EQ_U(fact("probe_ms"), 50);
	ASSERT_EQ_U(fact("total_ms"), 350);
	ASSERT_EQ_U(s->last_wake_ms, 350);
	ASSERT_EQ_U(F.timer_at, F.now + 7500000);
}

TEST(test_failed_start_resets_held_clients_and_sleeps_again)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_start_done(F.reg, s->id, -EIO, "No such image");
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_CONTAINS(F.log, "reset-held web;event wake_failed web;");
	ASSERT_CONTAINS(fact_str("reason"), "No such image");
	ASSERT_TRUE(!strstr(F.log, "redirect-"));
}

TEST(test_three_failed_wakes_refuse_clients_until_the_backoff_ends)
{
	struct service *s = asleep_service();
	for (int i = 0; i < SERVICE_FAILURES_BEFORE_BACKOFF; i++) {
		connect_client(s);
		service_on_start_done(F.reg, s->id, -EIO, "boom");
	}
	ASSERT_EQ_U(s->state, SERVICE_FAILED);
	ASSERT_EQ_U(F.timer_at, F.now + SERVICE_BACKOFF_FIRST_US);
	ASSERT_TRUE(!service_accepts_clients(F.reg, s));
	clear_log();
	connect_client(s);
	ASSERT_STREQ(F.log, "reset-held web;");
	F.now += SERVICE_BACKOFF_FIRST_US;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_TRUE(service_accepts_clients(F.reg, s));
}

TEST(test_probe_timeout_stops_the_container_and_sleeps_again)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_start_done(F.reg, s->id, 0, NULL);
	clear_log();
	service_on_wake_failed(F.reg, s->id, -ETIMEDOUT, "");
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "event wake_failed web;stop web;");
	ASSERT_CONTAINS(fact_str("reason"), "not ready on port 8080 in time");
}

TEST(test_started_by_hand_while_asleep_goes_direct_and_is_awake)
{
	struct service *s = asleep_service();
	service_on_runtime_started(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "redirect- web;event wake web;");
	ASSERT_STREQ(fact_str("trigger"), "runtime");
}

TEST(test_stopped_by_hand_while_awake_becomes_asleep_with_its_redirect)
{
	struct service *s = setup(true);
	service_on_runtime_died(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;");
	ASSERT_EQ_U(F.timer_at, 0);
}

TEST(test_our_own_start_and_stop_events_change_nothing)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_runtime_started(F.reg, s->id);
	service_on_runtime_died(F.reg, s->id); /* the late die of the stop before */
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "event wake web;start web;");
}

TEST(test_redirect_failure_keeps_it_awake_and_retries_later)
{
	struct service *s = setup(true);
	F.redirect_err = -EPERM;
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "");
	ASSERT_EQ_U(F.timer_at, 120 * SEC);
	ASSERT_CONTAINS(s->reason, "could not redirect");
}

TEST(test_failed_stop_removes_the_redirect_and_stays_awake)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	clear_log();
	service_on_stop_done(F.reg, s->id, -EIO, "runtime timed out");
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "redirect- web;");
	ASSERT_CONTAINS(s->reason, "runtime timed out");
}

TEST(test_failed_stop_with_held_clients_relays_them)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	connect_client(s);
	clear_log();
	service_on_stop_done(F.reg, s->id, -EIO, "runtime timed out");
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "probe-cancel web;probe web;");
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
}

TEST(test_disabling_an_awake_service_lets_it_go_at_once)
{
	struct service *s = setup(true);
	service_disable(F.reg, s);
	ASSERT_STREQ(F.log, "event disabled web;forget web;");
	ASSERT_EQ_U(service_count(F.reg), 0);
}

TEST(test_disabling_a_sleeping_service_wakes_it_then_lets_it_go)
{
	struct service *s = asleep_service();
	uint64_t id = s->id;
	service_disable(F.reg, s);
	/* Its ports stay redirected until it answers: no client is refused. */
	ASSERT_STREQ(F.log, "event wake web;start web;");
	ASSERT_EQ_U(service_count(F.reg), 1);
	service_disable(F.reg, s); /* asked twice: still one wake */
	ASSERT_STREQ(F.log, "event wake web;start web;");
	service_on_start_done(F.reg, id, 0, NULL);
	service_on_ready(F.reg, id, 1000);
	ASSERT_STREQ(F.log, "event wake web;start web;probe web;redirect- web;event ready web;"
			    "event disabled web;forget web;");
	ASSERT_EQ_U(service_count(F.reg), 0);
}

TEST(test_disabling_a_service_whose_wake_fails_still_lets_it_go)
{
	struct service *s = asleep_service();
	uint64_t id = s->id;
	service_disable(F.reg, s);
	service_on_start_done(F.reg, id, -EIO, "boom");
	ASSERT_CONTAINS(F.log,
			"event wake_failed web;redirect- web;event disabled web;forget web;");
	ASSERT_EQ_U(service_count(F.reg), 0);
}

TEST(test_removed_container_resets_held_clients_and_is_dropped)
{
	struct service *s = asleep_service();
	connect_client(s);
	uint64_t id = s->id;
	clear_log();
	service_remove(F.reg, s);
	ASSERT_STREQ(F.log, "redirect- web;reset-held web;event removed web;forget web;");
	/* A late completion for it is ignored. */
	service_on_start_done(F.reg, id, 0, NULL);
	service_on_ready(F.reg, id, 1);
	ASSERT_EQ_U(service_count(F.reg), 0);
}

TEST(test_same_name_or_port_cannot_be_managed_twice)
{
	setup(true);
	static const struct service_port same_port[] = {{.host_port = 8080}};
	static const struct service_port other_port[] = {{.host_port = 9090}};
	struct service_spec spec = {.name = "api",
				    .container_id = "ffff",
				    .idle_us = SEC,
				    .ports = same_port,
				    .n_ports = 1};
	struct service *s;
	ASSERT_ERR(service_add(F.reg, &spec, true, &s), EADDRINUSE);
	spec.name = "web";
	spec.ports = other_port;
	ASSERT_ERR(service_add(F.reg, &spec, true, &s), EEXIST);
	spec.n_ports = 0;
	spec.name = "noports";
	ASSERT_ERR(service_add(F.reg, &spec, true, &s), EINVAL);
}

TEST(test_a_refused_service_says_why_for_the_caller_to_log)
{
	setup(true);
	static const struct service_port same_port[] = {{.host_port = 8080}};
	struct service_spec spec = {.name = "api",
				    .container_id = "ffff",
				    .idle_us = SEC,
				    .ports = same_port,
				    .n_ports = 1};
	struct service *s;
	ASSERT_ERR(service_add(F.reg, &spec, true, &s), EADDRINUSE);
	ASSERT_STREQ(service_registry_error(F.reg),
		     "Cannot manage api: port 8080 is already web's");
	spec.name = "web";
	ASSERT_ERR(service_add_unknown(F.reg, &spec, false, "not asked yet", &s), EEXIST);
	ASSERT_STREQ(service_registry_error(F.reg), "web is already managed");
	/* A call that succeeds leaves no stale message behind. */
	static const struct service_port free_port[] = {{.host_port = 9090}};
	spec.name = "api";
	spec.ports = free_port;
	ASSERT_OK(service_add(F.reg, &spec, true, &s));
	ASSERT_STREQ(service_registry_error(F.reg), "");
}

/* Every op the machine calls, one left out at a time: a copy of the ops
 * that fell behind (a bench's once did) is refused, not called through NULL. */
TEST(test_a_registry_with_an_op_missing_is_refused)
{
	ASSERT_OK(service_registry_new(&fake_ops, NULL, &F.reg));
	service_registry_free(F.reg);
	F.reg = NULL;
	size_t n_ops = sizeof(struct service_ops) / sizeof(void (*)(void));
	for (size_t i = 0; i < n_ops; i++) {
		struct service_ops ops = fake_ops;
		void (**slot)(void) = (void (**)(void)) & ops + i;
		*slot = NULL;
		struct service_registry *r = NULL;
		int ret = service_registry_new(&ops, NULL, &r);
		if (ret != -EINVAL) {
			service_registry_free(r);
			FAIL(
			    "op %zu of %zu left out: service_registry_new returned %d, not -EINVAL",
			    i, n_ops, ret);
		}
	}
	struct service_registry *r = NULL;
	ASSERT_ERR(service_registry_new(NULL, NULL, &r), EINVAL);
}

TEST(test_every_state_change_is_reported_through_the_ops)
{
	struct service *s = setup(true);
	ASSERT_STREQ(F.transitions, "");
	F.now += 11 * SEC;
	service_on_timer(F.reg, s->id);
	service_on_stop_done(F.reg, s->id, 0, NULL);
	connect_client(s);
	service_on_start_done(F.reg, s->id, 0, NULL);
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_STREQ(F.transitions,
		     "awake->sleeping;sleeping->asleep;asleep->waking;waking->awake;");
}

TEST(test_sleep_and_wake_commands_follow_the_state)
{
	struct service *s = setup(true);
	ASSERT_ERR(service_wake_now(F.reg, s, "command"), EALREADY);
	ASSERT_OK(service_sleep_now(F.reg, s, "command"));
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_ERR(service_sleep_now(F.reg, s, "command"), EBUSY);
	/* A wake asked for during the stop starts it once stopped. */
	ASSERT_OK(service_wake_now(F.reg, s, "command"));
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	service_on_start_done(F.reg, s->id, 0, NULL);
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_OK(service_sleep_now(F.reg, s, "command"));
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_ERR(service_sleep_now(F.reg, s, "command"), EALREADY);
	ASSERT_OK(service_wake_now(F.reg, s, "command"));
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
}

TEST(test_status_says_why_an_awake_service_is_awake)
{
	struct service *s = setup(true);
	F.activity = 103 * SEC;
	F.now = 105 * SEC;
	struct json_object *o = service_to_json(F.reg, s);
	ASSERT_TRUE(o);
	struct json_object *v;
	ASSERT_TRUE(json_object_object_get_ex(o, "reason", &v));
	ASSERT_STREQ(json_object_get_string(v), "last counted traffic 2s ago; sleeps in 8s");
	ASSERT_TRUE(json_object_object_get_ex(o, "sleeps_in_ms", &v));
	ASSERT_EQ_U(json_object_get_int64(v), 8000);
	ASSERT_TRUE(json_object_object_get_ex(o, "state", &v));
	ASSERT_STREQ(json_object_get_string(v), "awake");
	json_object_put(o);
}
