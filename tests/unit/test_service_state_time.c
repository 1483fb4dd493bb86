// SPDX-License-Identifier: MIT
/*
 * The machine's accounting for the metrics: time in each state (the
 * stretch under way included), how sleeps' stops ended, egress summed over
 * a container's runs, the sum of the activator's wake times.
 */
#include <errno.h>

#include "dozed/service.h"
#include "harness.h"
#include "service_fake.h"

static uint64_t in_state(const struct service *s, enum service_state st)
{
	return service_state_time_us(s, st, F.now);
}

TEST(test_time_in_each_state_adds_up_through_a_sleep_and_a_wake)
{
	struct service *s = setup(true); /* awake at 100 s */
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id); /* idle: sleeping */
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	F.now = 112 * SEC;
	service_on_stop_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	F.now = 150 * SEC;
	connect_client(s);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	F.now = 151 * SEC;
	service_on_start_done(F.reg, s->id, 0, NULL);
	F.now = 152 * SEC;
	service_on_ready(F.reg, s->id, SEC);
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	F.now = 160 * SEC;
	/* The awake stretch under way counts up to the reading. */
	ASSERT_EQ_U(in_state(s, SERVICE_AWAKE), 18 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_SLEEPING), 2 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_ASLEEP), 38 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_WAKING), 2 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_FAILED), 0);
	ASSERT_EQ_U(in_state(s, SERVICE_UNKNOWN), 0);
	ASSERT_EQ_U(in_state(s, SERVICE_FROZEN), 0);
	/* A later reading grows the current state only. */
	F.now = 170 * SEC;
	ASSERT_EQ_U(in_state(s, SERVICE_AWAKE), 28 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_ASLEEP), 38 * SEC);
	ASSERT_EQ_U(s->sleeps_stopped, 1);
	ASSERT_EQ_U(s->sleeps_failed, 0);
}

TEST(test_a_service_added_asleep_counts_from_its_addition_not_from_zero)
{
	struct service *s = setup(false); /* asleep at 100 s */
	ASSERT_EQ_U(in_state(s, SERVICE_ASLEEP), 0);
	F.now = 103 * SEC;
	ASSERT_EQ_U(in_state(s, SERVICE_ASLEEP), 3 * SEC);
	ASSERT_EQ_U(in_state(s, SERVICE_AWAKE), 0);
}

TEST(test_a_clock_behind_the_stretch_adds_nothing)
{
	struct service *s = setup(true);
	F.now = 90 * SEC;
	ASSERT_EQ_U(in_state(s, SERVICE_AWAKE), 0);
	ASSERT_EQ_U(service_state_time_us(s, (enum service_state)99, F.now), 0);
}

TEST(test_a_failed_stop_is_counted_as_failed)
{
	struct service *s = setup(true);
	F.now = 110 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_SLEEPING);
	service_on_stop_done(F.reg, s->id, -EIO, "no");
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_EQ_U(s->sleeps_failed, 1);
	ASSERT_EQ_U(s->sleeps_stopped, 0);
}

TEST(test_a_stop_by_the_runtime_counts_as_stopped)
{
	struct service *s = setup(true);
	F.now = 105 * SEC;
	service_on_runtime_died(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_EQ_U(s->sleeps_stopped, 1);
	ASSERT_EQ_U(in_state(s, SERVICE_AWAKE), 5 * SEC);
}

TEST(test_egress_total_survives_a_new_cgroup)
{
	struct service *s = setup(true);
	service_note_egress(s, 1000, 10, 0);
	service_note_egress(s, 1500, 12, 0);
	ASSERT_EQ_U(s->egress_bytes_total, 1500);
	/* A new container run: the daemon zeroes the reading, it counts again. */
	s->egress_bytes = 0;
	service_note_egress(s, 300, 3, 0);
	ASSERT_EQ_U(s->egress_bytes_total, 1800);
	/* A reading below the last one without that (a counter read anew). */
	service_note_egress(s, 100, 1, 0);
	ASSERT_EQ_U(s->egress_bytes_total, 1900);
	ASSERT_EQ_U(s->egress_bytes, 100);
}
