/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared by the libFuzzer targets: each defines LLVMFuzzerTestOneInput and
 * feeds the real parser (linked from the daemon's objects) arbitrary bytes.
 * A property that does not hold is a crash, so libFuzzer keeps the input.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: a broken property is as much a finding as a crash. */
#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * A new directory for a target's files, in $FUZZ_TMPDIR (tests/fuzz/run.sh
 * removes it after the run, crash or not), else /dev/shm. Aborts on failure.
 */
static inline void fuzz_mkdtemp(char *buf, size_t len, const char *name)
{
	const char *tmp = getenv("FUZZ_TMPDIR");
	snprintf(buf, len, "%s/%s.XXXXXX", tmp && tmp[0] ? tmp : "/dev/shm", name);
	if (!mkdtemp(buf))
		abort();
}

/* A NUL-terminated copy of the input, for the parsers that take strings. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
