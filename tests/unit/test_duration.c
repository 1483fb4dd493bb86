// SPDX-License-Identifier: MIT
/* Durations as users write them in options and dozectl, and as dozed prints them. */
#include <errno.h>
#include <stdint.h>

#include "dozed/duration.h"
#include "harness.h"

static uint64_t parsed(const char *s)
{
	uint64_t us = 0;
	int r = duration_parse_us(s, &us);
	if (r < 0)
		FAIL("duration_parse_us(\"%s\") returned %d", s, r);
	return us;
}

static void assert_rejected(const char *s)
{
	uint64_t us = 12345;
	int r = duration_parse_us(s, &us);
	if (r != -EINVAL)
		FAIL("duration_parse_us(\"%s\") returned %d, expected -EINVAL", s, r);
	if (us != 12345)
		FAIL("duration_parse_us(\"%s\") wrote its output on failure", s);
}

static const char *formatted(uint64_t us)
{
	static char buf[DURATION_FORMAT_MAX];
	return duration_format(us, buf, sizeof(buf));
}

TEST(test_each_unit_parses_to_microseconds)
{
	ASSERT_EQ_U(parsed("30ms"), 30000);
	ASSERT_EQ_U(parsed("10s"), 10000000);
	ASSERT_EQ_U(parsed("10m"), 600000000);
	ASSERT_EQ_U(parsed("2h"), UINT64_C(7200000000));
}

TEST(test_zero_parses_and_leading_zeros_are_rejected)
{
	ASSERT_EQ_U(parsed("0ms"), 0);
	ASSERT_EQ_U(parsed("0s"), 0);
	ASSERT_EQ_U(parsed("10s"), 10000000);
	assert_rejected("007s");
	assert_rejected("08h");
	assert_rejected("00ms");
}

TEST(test_number_without_unit_is_rejected)
{
	assert_rejected("10");
	assert_rejected("0");
}

TEST(test_unknown_or_mixed_units_are_rejected)
{
	assert_rejected("10x");
	assert_rejected("10us");
	assert_rejected("10sec");
	assert_rejected("10S");
	assert_rejected("1m30s");
	assert_rejected("10d");
	assert_rejected("10mss");
}

TEST(test_sign_fraction_and_whitespace_are_rejected)
{
	assert_rejected("-1s");
	assert_rejected("+1s");
	assert_rejected("1.5s");
	assert_rejected("1 s");
	assert_rejected(" 1s");
	assert_rejected("1s ");
	assert_rejected("0x10s");
}

TEST(test_empty_and_unit_alone_are_rejected)
{
	assert_rejected("");
	assert_rejected("s");
	assert_rejected("ms");
	assert_rejected(NULL);
}

static void assert_too_long(const char *s)
{
	uint64_t us = 12345;
	int r = duration_parse_us(s, &us);
	if (r != -ERANGE)
		FAIL("duration_parse_us(\"%s\") returned %d, expected -ERANGE", s, r);
	if (us != 12345)
		FAIL("duration_parse_us(\"%s\") wrote its output on failure", s);
}

TEST(test_a_year_is_the_longest_duration)
{
	ASSERT_EQ_U(parsed("8760h"), DURATION_MAX_US);
	ASSERT_EQ_U(parsed("525600m"), DURATION_MAX_US);
	ASSERT_EQ_U(parsed("31536000s"), DURATION_MAX_US);
	ASSERT_EQ_U(parsed("31536000000ms"), DURATION_MAX_US);
	assert_too_long("8761h");
	assert_too_long("31536001s");
	assert_too_long("31536000001ms");
}

TEST(test_durations_that_would_wrap_a_deadline_are_too_long)
{
	/* Accepted before, and "now + idle" wrapped: the service slept at once. */
	assert_too_long("18446744073709s");
	assert_too_long("5124095576h");
	assert_too_long("18446744073709551615ms");
	assert_too_long("99999999999999999999999s");
	assert_rejected("99999999999999999999999x");
}

TEST(test_format_below_a_second_is_milliseconds)
{
	ASSERT_STREQ(formatted(0), "0ms");
	ASSERT_STREQ(formatted(999), "0ms");
	ASSERT_STREQ(formatted(850000), "850ms");
	ASSERT_STREQ(formatted(999999), "999ms");
}

TEST(test_format_below_a_minute_is_whole_seconds)
{
	ASSERT_STREQ(formatted(1000000), "1s");
	ASSERT_STREQ(formatted(12000000), "12s");
	ASSERT_STREQ(formatted(12999999), "12s");
	ASSERT_STREQ(formatted(59999999), "59s");
}

TEST(test_format_minutes_with_seconds)
{
	ASSERT_STREQ(formatted(184000000), "3m04s");
	ASSERT_STREQ(formatted(3599000000u), "59m59s");
	ASSERT_STREQ(formatted(600000000), "10m");
}

TEST(test_format_hours_with_minutes)
{
	ASSERT_STREQ(formatted(UINT64_C(7260000000)), "2h01m");
	ASSERT_STREQ(formatted(UINT64_C(7259000000)), "2h00m");
	ASSERT_STREQ(formatted(UINT64_C(7200000000)), "2h");
	ASSERT_STREQ(formatted(UINT64_MAX), "5124095576h01m");
	ASSERT_STREQ(formatted(DURATION_MAX_US), "8760h");
}

TEST(test_formatted_whole_units_parse_back)
{
	const char *samples[] = {"30ms", "1s", "59s", "10m", "59m", "2h", "100h"};
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		ASSERT_STREQ(formatted(parsed(samples[i])), samples[i]);
}

TEST(test_format_is_cut_to_the_buffer)
{
	char buf[4];
	ASSERT_STREQ(duration_format(184000000, buf, sizeof(buf)), "3m0");
	char one[1];
	ASSERT_STREQ(duration_format(184000000, one, sizeof(one)), "");
}
