// SPDX-License-Identifier: MIT
/* The interruptible stop: a client that comes while the container still runs. */
#include <errno.h>

#include "harness.h"
#include "service_fake.h"

/* "web", awake, then idle: SLEEPING with its stop sent, and a client held. */
static struct service *stopping_with_a_client(void)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	clear_log();
	F.now += SEC / 2;
	connect_client(s);
	return s;
}

TEST(test_a_client_during_the_stop_has_the_running_container_probed)
{
	struct service *s = stopping_with_a_client();
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "probe web;");
	/* A second client does not start a second probe. */
	connect_client(s);
	ASSERT_STREQ(F.log, "probe web;");
}

TEST(test_a_container_that_still_serves_has_its_stop_cancelled)
{
	struct service *s = stopping_with_a_client();
	clear_log();
	F.now += 3000;
	service_on_ready(F.reg, s->id, 3000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "stop-cancel web;redirect- web;event sleep_cancelled web;");
	ASSERT_CONTAINS(fact_str("reason"), "still served");
	ASSERT_EQ_U(fact("stopping_ms"), 503);
	ASSERT_EQ_U(fact("probe_ms"), 3);
	ASSERT_CONTAINS(s->reason, "stop was cancelled");
	ASSERT_EQ_U(s->sleeps_cancelled, 1);
	ASSERT_CONTAINS(s->last_stop, "cancelled");
	ASSERT_EQ_U(s->wakes, 0); /* it never slept */
	ASSERT_EQ_U(F.timer_at, F.now + 7500000);
	/* The stop's late end (a cancelled call that still answered) changes nothing. */
	clear_log();
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "");
}

TEST(test_a_stop_past_its_kill_is_not_cancelled_and_wakes_once_done)
{
	struct service *s = stopping_with_a_client();
	F.stop_uncancellable = true;
	clear_log();
	service_on_ready(F.reg, s->id, 3000);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "stop-cancel-too-late web;");
	clear_log();
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "event wake web;start web;");
}

TEST(test_a_container_that_no_longer_serves_is_started_again_after_its_stop)
{
	struct service *s = stopping_with_a_client();
	clear_log();
	/* The probe saw nothing ready; the stop ends. */
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "probe-cancel web;event wake web;start web;");
	ASSERT_STREQ(fact_str("trigger"), "connection during stop");
	ASSERT_STREQ(s->last_stop, "finished, then started again for a client that came during it");
	service_on_start_done(F.reg, s->id, 0, NULL);
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(s->wakes, 1);
	ASSERT_EQ_U(s->sleeps_cancelled, 0);
}

TEST(test_a_container_already_gone_is_not_probed_during_its_stop)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	service_on_runtime_died(F.reg, s->id); /* its die event, before the stop's answer */
	clear_log();
	connect_client(s);
	ASSERT_STREQ(F.log, "");
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_STREQ(F.log, "event wake web;start web;");
}

TEST(test_a_ready_while_sleeping_without_a_stop_probe_changes_nothing)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	clear_log();
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	ASSERT_STREQ(F.log, "");
}

TEST(test_the_next_stop_probes_again)
{
	struct service *s = stopping_with_a_client();
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	F.held = 0;
	F.now += 11 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	clear_log();
	connect_client(s);
	ASSERT_STREQ(F.log, "probe web;");
}

TEST(test_a_wake_command_during_the_stop_probes_and_cancels_it)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	clear_log();
	ASSERT_OK(service_wake_now(F.reg, s, "command"));
	ASSERT_STREQ(F.log, "probe web;");
	service_on_ready(F.reg, s->id, 1000);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "probe web;stop-cancel web;redirect- web;event sleep_cancelled web;");
}

TEST(test_a_disable_during_the_stop_cancels_it_and_lets_it_go)
{
	struct service *s = setup(true);
	uint64_t id = s->id;
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	clear_log();
	service_disable(F.reg, s);
	ASSERT_STREQ(F.log, "probe web;");
	service_on_ready(F.reg, id, 1000);
	ASSERT_TRUE(service_find_by_id(F.reg, id) == NULL);
	ASSERT_STREQ(F.log, "probe web;stop-cancel web;redirect- web;event sleep_cancelled "
			    "web;event disabled web;forget web;");
}
