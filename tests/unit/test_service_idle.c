// SPDX-License-Identifier: MIT
/*
 * The idle decision of the service machine, with a fake clock: counted
 * traffic moves the deadline, traffic that came close to the deadline is
 * named in a kept_awake event, and an open connection keeps a service awake
 * past its idle time until it is answered or closed.
 */
#include <json-c/json.h>
#include <string.h>

#include "dozed/service.h"
#include "harness.h"
#include "service_fake.h"

/* web: idle 10 s from 100 s, so its first look is at 107.5 s. */
static void fire_at(struct service *s, uint64_t at)
{
	F.now = at;
	service_on_timer(F.reg, s->id);
}

TEST(test_traffic_in_the_last_quarter_is_named_in_a_kept_awake_event)
{
	struct service *s = setup(true);
	fire_at(s, 107500000); /* the look: nothing yet */
	ASSERT_EQ_U(F.timer_at, 110 * SEC);
	ASSERT_STREQ(F.log, "");
	F.activity = 109 * SEC;
	F.counted = "tcp from 10.0.0.9:40000 to port 80, 78 B in";
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "event kept_awake web;");
	ASSERT_STREQ(fact_str("by"), "traffic");
	ASSERT_STREQ(fact_str("what"), "tcp from 10.0.0.9:40000 to port 80, 78 B in");
	ASSERT_EQ_U(fact("idle_ms"), 9000);
	/* Its next window starts from that traffic. */
	ASSERT_EQ_U(F.timer_at, 116500000);
}

TEST(test_traffic_early_in_the_window_is_no_event)
{
	struct service *s = setup(true);
	F.activity = 104 * SEC;
	F.counted = "tcp from 10.0.0.9:40000 to port 80, 78 B in";
	fire_at(s, 107500000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "");
	ASSERT_EQ_U(F.timer_at, 111500000);
	fire_at(s, 111500000);
	ASSERT_EQ_U(F.timer_at, 114 * SEC);
	fire_at(s, 114 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;stop web;");
	ASSERT_STREQ(fact_str("last_counted"), "tcp from 10.0.0.9:40000 to port 80, 78 B in");
}

TEST(test_idle_service_with_nothing_open_sleeps_after_asking)
{
	struct service *s = setup(true);
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(F.blocker_asked, 1);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_unanswered_request_keeps_it_awake_until_answered)
{
	struct service *s = setup(true);
	F.kept = SERVICE_KEPT_UNANSWERED;
	F.kept_what = "an unanswered request from 10.0.0.9:40000 (40 B in, 3s ago)";
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "event kept_awake web;");
	ASSERT_STREQ(fact_str("by"), "unanswered");
	ASSERT_STREQ(fact_str("what"), F.kept_what);
	ASSERT_EQ_U(F.timer_at, 111 * SEC);
	struct json_object *o = service_to_json(F.reg, s);
	struct json_object *v;
	ASSERT_TRUE(json_object_object_get_ex(o, "reason", &v));
	ASSERT_STREQ(json_object_get_string(v),
		     "kept awake by an unanswered request from 10.0.0.9:40000 (40 B in, 3s "
		     "ago); looks again every 1s");
	json_object_put(o);

	/* Still unanswered a second later: no second event. */
	clear_log();
	fire_at(s, 111 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "");
	ASSERT_EQ_U(F.timer_at, 112 * SEC);

	/* Answered: the answer is counted traffic, a new idle window. */
	F.kept = SERVICE_NOT_KEPT;
	F.activity = 111500000;
	fire_at(s, 112 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.timer_at, 119 * SEC);
	fire_at(s, 119 * SEC);
	fire_at(s, 121500000);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_open_connection_keeps_it_awake_until_closed)
{
	struct service *s = setup(true);
	F.kept = SERVICE_KEPT_CONNECTION;
	F.kept_what = "an open connection from 10.0.0.9:40000 to port 80";
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_STREQ(fact_str("by"), "connection");
	for (uint64_t t = 111; t < 140; t++) {
		fire_at(s, t * SEC);
		ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	}
	/* Closed, with no payload: nothing counted, so it sleeps at once. */
	F.kept = SERVICE_NOT_KEPT;
	fire_at(s, 140 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_a_kept_service_can_be_kept_again_after_it_woke)
{
	struct service *s = setup(true);
	F.kept = SERVICE_KEPT_CONNECTION;
	F.kept_what = "an open connection from 10.0.0.9:40000 to port 80";
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	F.kept = SERVICE_NOT_KEPT;
	fire_at(s, 111 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_OK(service_wake_now(F.reg, s, "command"));
	service_on_start_done(F.reg, s->id, 0, NULL);
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	F.kept = SERVICE_KEPT_CONNECTION;
	clear_log();
	fire_at(s, F.now + 7500000);
	fire_at(s, F.now + 2500000);
	ASSERT_STREQ(F.log, "event kept_awake web;");
}

TEST(test_an_answer_sent_while_its_connections_are_read_is_seen_before_the_stop)
{
	struct service *s = setup(true);
	F.kept = SERVICE_NOT_KEPT;
	/* The request was unanswered at the first read; the answer went out
	 * just before the connections were read, so they show nothing open. */
	F.activity_during_blocker = 109999000;
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.blocker_asked, 1);
	ASSERT_EQ_U(F.timer_at, 117499000);
}
