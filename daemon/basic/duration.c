// SPDX-License-Identifier: MIT
#include "dozed/duration.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *suffix;
	uint64_t us;
} units[] = {
    {"ms", DURATION_US_PER_MS},
    {"s", DURATION_US_PER_SEC},
    {"m", DURATION_US_PER_MIN},
    {"h", DURATION_US_PER_HOUR},
};

int duration_parse_us(const char *s, uint64_t *out_us)
{
	assert(out_us);
	if (!s)
		return -EINVAL;

	uint64_t n = 0;
	const char *p = s;
	/* strtoull would take a sign and leading space, which we refuse. */
	bool too_big = false;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');
		if (n > (UINT64_MAX - digit) / 10)
			too_big = true;
		else
			n = n * 10 + digit;
	}
	/* "08h" is no duration, as "080" is no port: one way to write each. */
	if (p == s || (s[0] == '0' && p - s > 1))
		return -EINVAL;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (too_big || n > DURATION_MAX_US / units[i].us)
			return -ERANGE;
		*out_us = n * units[i].us;
		return 0;
	}
	return -EINVAL;
}

char *duration_format(uint64_t us, char *buf, size_t len)
{
	assert(buf && len > 0);

	if (us < DURATION_US_PER_SEC) {
		snprintf(buf, len, "%" PRIu64 "ms", us / DURATION_US_PER_MS);
		return buf;
	}

	uint64_t sec = us / DURATION_US_PER_SEC;
	if (sec < 60)
		snprintf(buf, len, "%" PRIu64 "s", sec);
	else if (sec < 3600 && sec % 60 == 0)
		snprintf(buf, len, "%" PRIu64 "m", sec / 60);
	else if (sec < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", sec / 60, sec % 60);
	else if (sec % 3600 == 0)
		snprintf(buf, len, "%" PRIu64 "h", sec / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", sec / 3600, sec % 3600 / 60);
	return buf;
}
