// SPDX-License-Identifier: MIT
/* Light sleep's settings: freeze_after, reclaim_frozen, idle "never" and the
 * two tiers' cross-check, with the exact messages users read. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "harness.h"

#define FREEZE_EXPECTED "expected a duration of 1s or more, like 30s, 10m or 2h, or none"
#define IDLE_EXPECTED	"expected a duration of 1s or more, like 30s, 10m or 2h, or never"

TEST(test_freeze_after_reads_1s_to_a_year_and_none)
{
	const struct {
		const char *text;
		uint64_t us;
	} good[] = {
	    {"1s", DURATION_US_PER_SEC},       {"1000ms", DURATION_US_PER_SEC},
	    {"30s", 30 * DURATION_US_PER_SEC}, {"10m", 10 * DURATION_US_PER_MIN},
	    {"8760h", DURATION_MAX_US},	       {"none", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		uint64_t us = 42;
		const char *expected = NULL;
		ASSERT_OK(settings_parse_freeze_after(good[i].text, &us, &expected));
		ASSERT_EQ_U(us, good[i].us);
		ASSERT_TRUE(expected == NULL);
	}
}

TEST(test_freeze_after_refuses_with_what_is_expected)
{
	const struct {
		const char *text, *want;
	} bad[] = {
	    {"999ms", FREEZE_EXPECTED},
	    {"0s", FREEZE_EXPECTED},
	    {"8761h", "expected a duration of at most 8760h (a year)"},
	    /* No duration: the minimum and "none" say more than the forms. */
	    {"", FREEZE_EXPECTED},
	    {"0", FREEZE_EXPECTED},
	    {"30", FREEZE_EXPECTED},
	    {"never", FREEZE_EXPECTED},
	    {"off", FREEZE_EXPECTED},
	    {"None", FREEZE_EXPECTED},
	    {"none ", FREEZE_EXPECTED},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t us = 42;
		const char *expected = NULL;
		ASSERT_ERR(settings_parse_freeze_after(bad[i].text, &us, &expected), EINVAL);
		ASSERT_STREQ(expected, bad[i].want);
		ASSERT_EQ_U(us, 42);
	}
}

TEST(test_freeze_after_prints_back_what_it_reads)
{
	char buf[DURATION_FORMAT_MAX];
	const char *texts[] = {"none", "1s", "30s", "10m", "2h"};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		uint64_t us;
		const char *expected = NULL;
		ASSERT_OK(settings_parse_freeze_after(texts[i], &us, &expected));
		ASSERT_STREQ(settings_freeze_after_to_string(us, buf, sizeof(buf)), texts[i]);
	}
}

TEST(test_service_idle_takes_never_and_prints_it_back)
{
	uint64_t us = 0;
	const char *expected = NULL;
	char buf[DURATION_FORMAT_MAX];
	ASSERT_OK(settings_parse_service_idle("never", &us, &expected));
	ASSERT_TRUE(us == DOZED_IDLE_NEVER);
	ASSERT_STREQ(settings_idle_to_string(us, buf, sizeof(buf)), "never");
	ASSERT_OK(settings_parse_service_idle("5m", &us, &expected));
	ASSERT_EQ_U(us, 5 * DURATION_US_PER_MIN);
	ASSERT_STREQ(settings_idle_to_string(us, buf, sizeof(buf)), "5m");
	const char *bad[] = {"Never", "never ", "none", "0s", "999ms"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		expected = NULL;
		us = 42;
		ASSERT_ERR(settings_parse_service_idle(bad[i], &us, &expected), EINVAL);
		ASSERT_TRUE(expected != NULL);
		ASSERT_EQ_U(us, 42);
	}
	ASSERT_ERR(settings_parse_service_idle("999ms", &us, &expected), EINVAL);
	ASSERT_STREQ(expected, IDLE_EXPECTED);
	ASSERT_ERR(settings_parse_service_idle("none", &us, &expected), EINVAL);
	ASSERT_STREQ(expected, IDLE_EXPECTED);
	ASSERT_ERR(settings_parse_service_idle("8761h", &us, &expected), EINVAL);
	ASSERT_STREQ(expected, "expected a duration of at most 8760h (a year)");
}

TEST(test_the_daemons_idle_stays_a_duration)
{
	/* --idle of the daemon (config file, command line): "never" is per service. */
	uint64_t us = 42;
	const char *expected = NULL;
	ASSERT_ERR(settings_parse_idle("never", &us, &expected), EINVAL);
	ASSERT_STREQ(expected, "expected a duration like 30ms, 10s, 10m or 2h");
	ASSERT_EQ_U(us, 42);
}

TEST(test_bool_is_true_or_false_exactly)
{
	bool b = false;
	const char *expected = NULL;
	ASSERT_OK(settings_parse_bool("true", &b, &expected));
	ASSERT_TRUE(b);
	ASSERT_OK(settings_parse_bool("false", &b, &expected));
	ASSERT_TRUE(!b);
	const char *bad[] = {"", "yes", "no", "1", "0", "True", "TRUE", "true ", "on"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		b = true;
		expected = NULL;
		ASSERT_ERR(settings_parse_bool(bad[i], &b, &expected), EINVAL);
		ASSERT_STREQ(expected, "expected true or false");
		ASSERT_TRUE(b);
	}
}

TEST(test_settings_set_takes_the_light_sleep_keys_in_both_spellings)
{
	struct service_settings s = {0};
	const char *expected = NULL;
	ASSERT_OK(settings_set(&s, "freeze_after", "30s", &expected));
	ASSERT_EQ_U(s.freeze_after_us, 30 * DURATION_US_PER_SEC);
	ASSERT_OK(settings_set(&s, "freeze-after", "2m", &expected));
	ASSERT_EQ_U(s.freeze_after_us, 2 * DURATION_US_PER_MIN);
	ASSERT_OK(settings_set(&s, "reclaim_frozen", "true", &expected));
	ASSERT_TRUE(s.reclaim_frozen);
	ASSERT_OK(settings_set(&s, "reclaim-frozen", "false", &expected));
	ASSERT_TRUE(!s.reclaim_frozen);
	ASSERT_OK(settings_set(&s, "idle", "never", &expected));
	ASSERT_TRUE(s.idle_set && s.idle_us == DOZED_IDLE_NEVER);
	ASSERT_OK(settings_set(&s, "freeze_after", "none", &expected));
	ASSERT_EQ_U(s.freeze_after_us, 0);
	const char *keys[] = {"freeze_after", "freeze-after", "reclaim_frozen", "reclaim-frozen"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		ASSERT_TRUE(settings_key_known(keys[i]));
	ASSERT_TRUE(!settings_key_known("freeze"));
	ASSERT_TRUE(!settings_key_known("freezeafter"));
}

TEST(test_settings_set_keeps_the_light_sleep_settings_on_a_bad_value)
{
	struct service_settings s = {.freeze_after_us = 7, .reclaim_frozen = true};
	const char *expected = NULL;
	ASSERT_ERR(settings_set(&s, "freeze-after", "500ms", &expected), EINVAL);
	ASSERT_STREQ(expected, FREEZE_EXPECTED);
	ASSERT_ERR(settings_set(&s, "reclaim-frozen", "yes", &expected), EINVAL);
	ASSERT_STREQ(expected, "expected true or false");
	ASSERT_ERR(settings_set(&s, "idle", "forever", &expected), EINVAL);
	ASSERT_STREQ(expected, IDLE_EXPECTED);
	ASSERT_EQ_U(s.freeze_after_us, 7);
	ASSERT_TRUE(s.reclaim_frozen);
	ASSERT_TRUE(!s.idle_set);
}

TEST(test_tiers_refuse_a_freeze_that_comes_at_or_after_the_stop)
{
	char why[128] = "";
	ASSERT_ERR(settings_check_tiers(5 * DURATION_US_PER_MIN, 10 * DURATION_US_PER_MIN, why,
					sizeof(why)),
		   EINVAL);
	ASSERT_STREQ(why, "freeze_after (10m) must be shorter than idle (5m): a service is frozen "
			  "first, stopped later");
	ASSERT_ERR(settings_check_tiers(5 * DURATION_US_PER_MIN, 5 * DURATION_US_PER_MIN, why,
					sizeof(why)),
		   EINVAL);
	ASSERT_STREQ(why, "freeze_after (5m) must be shorter than idle (5m): a service is frozen "
			  "first, stopped later");
	/* Cut to fit, never past the buffer. */
	char small[16];
	ASSERT_ERR(settings_check_tiers(DURATION_US_PER_SEC, 2 * DURATION_US_PER_SEC, small,
					sizeof(small)),
		   EINVAL);
	ASSERT_EQ_U(strlen(small), sizeof(small) - 1);
}

TEST(test_tiers_allow_no_freeze_a_shorter_one_or_idle_never)
{
	char why[128] = "untouched";
	ASSERT_OK(settings_check_tiers(5 * DURATION_US_PER_MIN, 0, why, sizeof(why)));
	ASSERT_OK(settings_check_tiers(DURATION_US_PER_SEC, 0, why, sizeof(why)));
	ASSERT_OK(settings_check_tiers(5 * DURATION_US_PER_MIN, 5 * DURATION_US_PER_MIN - 1, why,
				       sizeof(why)));
	ASSERT_OK(settings_check_tiers(DOZED_IDLE_NEVER, DURATION_MAX_US, why, sizeof(why)));
	ASSERT_OK(settings_check_tiers(DOZED_IDLE_NEVER, 0, why, sizeof(why)));
	ASSERT_STREQ(why, "untouched");
}
