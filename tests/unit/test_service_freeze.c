// SPDX-License-Identifier: MIT
/*
 * Light sleep in the service machine, with a fake clock and fake effects:
 * frozen after freeze_after, thawed by the first packet or a command,
 * stopped after its idle time, and what happens when the runtime refuses.
 */
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dozed/service.h"
#include "harness.h"
#include "service_fake.h"

static void fire_at(struct service *s, uint64_t at)
{
	F.now = at;
	service_on_timer(F.reg, s->id);
}

/* web: idle 10 s, frozen after 4 s (idle_us as given), from 100 s. */
static struct service *light_sleeper(uint64_t idle_us)
{
	struct service *s = setup(true);
	struct service_spec set = {.idle_us = idle_us, .freeze_after_us = 4 * SEC};
	service_update_settings(F.reg, s, &set);
	clear_log();
	return s;
}

static void client_at(struct sockaddr_storage *ss, uint16_t port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x0a000009);
	in->sin_port = htons(port);
}

/* Its timers at 103 s and 104 s fired: its pause asked, not answered yet. */
static struct service *pausing_service(uint64_t idle_us)
{
	struct service *s = light_sleeper(idle_us);
	fire_at(s, 103 * SEC);
	fire_at(s, 104 * SEC);
	return s;
}

/* Frozen at 104 s (the pause answered at once). */
static struct service *frozen_service(uint64_t idle_us)
{
	struct service *s = pausing_service(idle_us);
	ASSERT_STREQ(F.log, "pause web;");
	ASSERT_TRUE(s->freeze_pending);
	service_on_freeze_done(F.reg, s->id, 0, NULL, NULL);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	clear_log();
	return s;
}

static const char *reason_of(struct service *s)
{
	static char buf[512];
	struct json_object *o = service_to_json(F.reg, s), *v;
	ASSERT_TRUE(json_object_object_get_ex(o, "reason", &v));
	snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	json_object_put(o);
	return buf;
}

TEST(test_idle_for_freeze_after_pauses_then_frozen_stops_after_idle)
{
	struct service *s = light_sleeper(10 * SEC);
	ASSERT_EQ_U(F.timer_at, 103 * SEC); /* the last quarter of 4 s */
	ASSERT_CONTAINS(reason_of(s), "freezes in 4s");
	fire_at(s, 103 * SEC);
	fire_at(s, 104 * SEC);
	ASSERT_STREQ(F.log, "pause web;");
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(F.timer_at, 0);
	struct json_object *facts = json_object_new_object();
	json_object_object_add(facts, "pause_ms", json_object_new_int(12));
	F.now = 104 * SEC + 12000;
	service_on_freeze_done(F.reg, s->id, 0, NULL, facts);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	ASSERT_STREQ(F.last_event, "freeze");
	ASSERT_EQ_U(fact("idle_ms"), 4012);
	ASSERT_EQ_U(fact("pause_ms"), 12);
	ASSERT_TRUE(s->paused);
	ASSERT_CONTAINS(s->reason, "frozen; thaws on the first connection");
	/* The stop tier's clock runs from the last use, as before. */
	ASSERT_EQ_U(F.timer_at, 107500000);
	clear_log();
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;stop web;");
}

TEST(test_first_packet_thaws_at_once_and_says_how_long_it_took)
{
	struct service *s = frozen_service(10 * SEC);
	struct sockaddr_storage c;
	client_at(&c, 40000);
	F.now = 105 * SEC + 900;
	F.activity = 105 * SEC; /* the thawing packet counted */
	service_on_packet(F.reg, s->id, &c, 105 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "thaw web;event thaw web;");
	ASSERT_STREQ(fact_str("trigger"), "packet");
	ASSERT_STREQ(fact_str("client"), "10.0.0.9:40000");
	ASSERT_STREQ(fact_str("how"), "freezer");
	ASSERT_EQ_U(fact("thaw_us"), 900);
	ASSERT_EQ_U(fact("frozen_ms"), 1000);
	ASSERT_EQ_U(s->thaws, 1);
	ASSERT_TRUE(!(s->paused));
	/* Frozen again after 4 s of nothing from its thaw. */
	ASSERT_EQ_U(F.timer_at, 108 * SEC + 900);
	/* A late record of the same wake does nothing. */
	clear_log();
	service_on_packet(F.reg, s->id, &c, 105 * SEC);
	ASSERT_STREQ(F.log, "");
}

TEST(test_unanswered_request_keeps_it_from_freezing_an_open_connection_does_not)
{
	struct service *s = light_sleeper(10 * SEC);
	F.kept = SERVICE_KEPT_UNANSWERED;
	F.kept_what = "an unanswered request from 10.0.0.9:40000";
	fire_at(s, 103 * SEC);
	fire_at(s, 104 * SEC);
	ASSERT_STREQ(F.log, "event kept_awake web;");
	ASSERT_EQ_U(F.freezes_asked, 0);
	F.kept = SERVICE_KEPT_CONNECTION;
	F.kept_what = "a connection from 10.0.0.9:40000";
	fire_at(s, 105 * SEC);
	ASSERT_EQ_U(F.freezes_asked, 1);
	service_on_freeze_done(F.reg, s->id, 0, NULL, NULL);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	/* Frozen, the same connection keeps it from being stopped. */
	clear_log();
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	/* Its idle window's kept_awake event went out before the freeze. */
	ASSERT_STREQ(F.log, "");
	ASSERT_STREQ(s->kept_awake_by, "a connection from 10.0.0.9:40000");
	F.kept = SERVICE_NOT_KEPT;
	fire_at(s, 111 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_a_refused_pause_leaves_it_on_the_stop_tier_and_says_why)
{
	struct service *s = pausing_service(10 * SEC);
	service_on_freeze_done(F.reg, s->id, -EPERM,
			       "the runtime refused to pause it: cgroups: freezer not supported",
			       NULL);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(s->freeze_refused,
		     "the runtime refused to pause it: cgroups: freezer not supported");
	ASSERT_CONTAINS(s->reason,
			"not frozen (the runtime refused to pause it: cgroups: freezer not "
			"supported)");
	ASSERT_CONTAINS(reason_of(s), "sleeps in 6s");
	ASSERT_EQ_U(F.timer_at, 107500000);
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(F.freezes_asked, 1);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	/* New settings give the freeze a new chance. */
	struct service_spec set = {.idle_us = 10 * SEC, .freeze_after_us = 3 * SEC};
	service_update_settings(F.reg, s, &set);
	ASSERT_STREQ(s->freeze_refused, "");
}

TEST(test_a_packet_during_the_pause_thaws_it_once_paused)
{
	struct service *s = pausing_service(10 * SEC);
	struct sockaddr_storage c;
	client_at(&c, 40001);
	F.now = 104 * SEC + 5000;
	service_on_packet(F.reg, s->id, &c, 104 * SEC + 5000);
	ASSERT_TRUE(s->thaw_wanted);
	ASSERT_EQ_U(F.thaws_asked, 0);
	F.now = 104 * SEC + 15000;
	service_on_freeze_done(F.reg, s->id, 0, NULL, NULL);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "pause web;event freeze web;thaw web;event thaw web;");
	ASSERT_STREQ(fact_str("trigger"), "packet during freeze");
	ASSERT_EQ_U(fact("thaw_us"), 10000);
}

TEST(test_a_thaw_through_the_runtime_completes_later)
{
	struct service *s = frozen_service(10 * SEC);
	F.thaw_answer = FAKE_THAW_ASYNC;
	F.now = 105 * SEC;
	service_on_packet(F.reg, s->id, NULL, 105 * SEC);
	ASSERT_STREQ(F.log, "unpause web;");
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	ASSERT_TRUE(s->thaw_pending);
	service_on_packet(F.reg, s->id, NULL, 105 * SEC);
	ASSERT_EQ_U(F.thaws_asked, 1);
	ASSERT_ERR(service_sleep_now(F.reg, s, "command"), EBUSY);
	F.now = 105 * SEC + 20000;
	service_on_thaw_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(fact_str("how"), "runtime");
	ASSERT_EQ_U(fact("thaw_us"), 20000);
}

TEST(test_a_thaw_that_fails_restarts_it_with_clients_held)
{
	struct service *s = frozen_service(10 * SEC);
	F.thaw_answer = -EIO;
	F.now = 105 * SEC;
	service_on_packet(F.reg, s->id, NULL, 105 * SEC);
	ASSERT_STREQ(F.log,
		     "thaw-refused web;event thaw web;redirect+ web;event sleep web;stop web;");
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	/* The thaw event says it failed, why, and what follows. */
	F.log[0] = '\0';
	ASSERT_TRUE(s->start_after_stop);
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "event wake web;start web;");
}

TEST(test_a_refused_unpause_restarts_it_and_says_so)
{
	struct service *s = frozen_service(10 * SEC);
	F.thaw_answer = FAKE_THAW_ASYNC;
	service_on_packet(F.reg, s->id, NULL, 105 * SEC);
	service_on_thaw_done(F.reg, s->id, -EIO, "container is marked for removal");
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_TRUE(s->start_after_stop);
	ASSERT_STREQ(F.last_event, "sleep");
	ASSERT_CONTAINS(F.log, "event thaw web;redirect+ web;event sleep web;stop web;");
}

TEST(test_thaw_failure_facts)
{
	struct service *s = frozen_service(10 * SEC);
	F.thaw_answer = -EIO;
	/* The sleep that follows the failed thaw says why it sleeps. */
	F.now = 105 * SEC;
	service_wake_now(F.reg, s, "command");
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(fact_str("trigger"), "thaw failed");
}

TEST(test_commands_on_a_frozen_service)
{
	struct service *s = frozen_service(10 * SEC);
	F.now = 105 * SEC;
	ASSERT_OK(service_wake_now(F.reg, s, "command"));
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.last_event, "thaw");
	ASSERT_STREQ(fact_str("trigger"), "command");
	ASSERT_EQ_U(fact("thaw_us"), 0);
	ASSERT_ERR(service_wake_now(F.reg, s, "command"), EALREADY);
	/* Asleep by command from frozen: the stop tier at once. */
	fire_at(s, 108 * SEC);
	fire_at(s, 109 * SEC);
	service_on_freeze_done(F.reg, s->id, 0, NULL, NULL);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	clear_log();
	ASSERT_OK(service_sleep_now(F.reg, s, "command"));
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;stop web;");
}

TEST(test_sleep_command_during_a_pause_is_busy)
{
	struct service *s = pausing_service(10 * SEC);
	ASSERT_ERR(service_sleep_now(F.reg, s, "command"), EBUSY);
}

TEST(test_disable_thaws_first)
{
	struct service *s = frozen_service(10 * SEC);
	uint64_t id = s->id;
	service_disable(F.reg, s);
	ASSERT_TRUE((service_find_by_id(F.reg, id)) == NULL);
	ASSERT_STREQ(F.log, "thaw web;event thaw web;event disabled web;forget web;");
}

TEST(test_disable_during_a_pause_thaws_once_paused)
{
	struct service *s = pausing_service(10 * SEC);
	uint64_t id = s->id;
	service_disable(F.reg, s);
	ASSERT_TRUE((service_find_by_id(F.reg, id)) != NULL);
	service_on_freeze_done(F.reg, id, 0, NULL, NULL);
	ASSERT_TRUE((service_find_by_id(F.reg, id)) == NULL);
	ASSERT_STREQ(F.log, "pause web;event freeze web;thaw web;event thaw web;event disabled "
			    "web;forget web;");
}

TEST(test_found_paused_is_frozen_with_its_stop_clock_from_now)
{
	struct service *s = setup(true);
	clear_log();
	F.now = 200 * SEC;
	service_found_paused(F.reg, s);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
	ASSERT_TRUE(s->paused);
	ASSERT_CONTAINS(s->reason, "found paused");
	ASSERT_EQ_U(F.timer_at, 207500000);
	service_on_packet(F.reg, s->id, NULL, 201 * SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
}

TEST(test_idle_never_freezes_and_is_never_stopped)
{
	struct service *s = frozen_service(UINT64_MAX);
	ASSERT_EQ_U(F.timer_at, 0);
	ASSERT_CONTAINS(s->reason, "never stopped");
	struct json_object *o = service_to_json(F.reg, s), *v;
	ASSERT_TRUE(json_object_object_get_ex(o, "idle_timeout_ms", &v));
	ASSERT_TRUE((v) == NULL);
	json_object_put(o);
}

TEST(test_freeze_after_not_shorter_than_idle_is_no_light_sleep)
{
	struct service *s = setup(true);
	struct service_spec set = {.idle_us = 10 * SEC, .freeze_after_us = 10 * SEC};
	service_update_settings(F.reg, s, &set);
	clear_log();
	fire_at(s, 107500000);
	fire_at(s, 110 * SEC);
	ASSERT_EQ_U(F.freezes_asked, 0);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
}

TEST(test_runtime_death_while_frozen_is_asleep)
{
	struct service *s = frozen_service(10 * SEC);
	service_on_runtime_died(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_TRUE(!(s->paused));
	ASSERT_STREQ(F.log, "redirect+ web;event sleep web;");
}

TEST(test_an_unanswered_pause_is_asked_again_not_refused)
{
	struct service *s = pausing_service(10 * SEC);
	service_on_freeze_done(F.reg, s->id, -EAGAIN, "connect: Connection refused", NULL);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(s->freeze_refused, "");
	ASSERT_CONTAINS(s->reason, "did not answer its pause (connect: Connection refused)");
	ASSERT_EQ_U(F.timer_at, 109 * SEC);
	fire_at(s, 109 * SEC);
	ASSERT_EQ_U(F.freezes_asked, 2);
	service_on_freeze_done(F.reg, s->id, 0, NULL, NULL);
	ASSERT_EQ_U(s->state, SERVICE_FROZEN);
}
