// SPDX-License-Identifier: MIT
/*
 * Durations: duration_parse_us() on any string, and duration_format() of any
 * value into buffers of every size, each exactly as large as it says (ASan
 * sees one byte too many).
 */
#include <inttypes.h>

#include "dozed/duration.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	uint64_t us = 0;
	int r = duration_parse_us(s, &us);
	FUZZ_ASSERT(r == 0 || r < 0);
	if (r == 0) {
		/* Accepted text is digits and one unit: never empty, never a sign. */
		FUZZ_ASSERT(s[0] >= '0' && s[0] <= '9');
		char buf[DURATION_FORMAT_MAX];
		duration_format(us, buf, sizeof(buf));
		FUZZ_ASSERT(strlen(buf) < sizeof(buf));
		/* The short form is truncated, never rounded up; one that
		 * parses again ("10m") is at most the value. */
		uint64_t again = 0;
		if (duration_parse_us(buf, &again) == 0)
			FUZZ_ASSERT(again <= us);
	}
	free(s);

	/* The first 8 bytes as a value, the next as a buffer size. */
	if (size >= 9) {
		uint64_t v;
		memcpy(&v, data, sizeof(v));
		/* len 0 is refused by an assertion: not a case to explore. */
		size_t len = 1 + data[8] % (DURATION_FORMAT_MAX + 8);
		char *buf = malloc(len);
		if (!buf)
			abort();
		char *out = duration_format(v, buf, len);
		FUZZ_ASSERT(out == buf);
		FUZZ_ASSERT(memchr(buf, '\0', len) != NULL);
		free(buf);
	}
	return 0;
}
