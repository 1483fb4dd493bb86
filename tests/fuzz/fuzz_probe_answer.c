// SPDX-License-Identifier: MIT
/*
 * The protocol probes' judges (activator/probe_answer.c) on any answer: the
 * first byte picks the kind, the second where the answer is cut, the rest is
 * the answer. Never a crash or a read past it (each judged from a heap copy
 * of exactly its bytes); a verdict once given does not change with more
 * bytes; nothing is "more" once closed or at PROBE_ANSWER_MAX bytes; why is
 * always filled, printable, within its buffer.
 */
#include <stdbool.h>

#include "dozed/probe_answer.h"
#include "fuzz.h"

static const enum probe_kind kinds[] = {PROBE_HTTP,  PROBE_POSTGRES, PROBE_REDIS,
					PROBE_MYSQL, PROBE_TCP,	     PROBE_AUTO};

static enum probe_verdict judge_copy(enum probe_kind kind, const uint8_t *data, size_t n, bool eof,
				     size_t why_len)
{
	uint8_t *copy = n ? malloc(n) : NULL;
	if (n && !copy)
		abort();
	if (n)
		memcpy(copy, data, n);
	char *why = malloc(why_len);
	if (!why)
		abort();
	enum probe_verdict v = probe_answer_judge(kind, copy, n, eof, why, why_len);
	size_t len = strnlen(why, why_len);
	FUZZ_ASSERT(len < why_len);
	FUZZ_ASSERT(len > 0 || why_len == 1);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT((unsigned char)why[i] >= ' ' && (unsigned char)why[i] < 0x7f);
	FUZZ_ASSERT(v == PROBE_VERDICT_MORE || v == PROBE_VERDICT_READY ||
		    v == PROBE_VERDICT_NOT_READY);
	FUZZ_ASSERT(!(eof && v == PROBE_VERDICT_MORE));
	FUZZ_ASSERT(!(n >= PROBE_ANSWER_MAX && v == PROBE_VERDICT_MORE));
	free(why);
	free(copy);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	enum probe_kind kind = kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
	size_t why_len = 1 + data[1] % PROBE_WHY_MAX;
	const uint8_t *answer = data + 2;
	size_t n = size - 2;
	enum probe_verdict whole = judge_copy(kind, answer, n, false, PROBE_WHY_MAX);
	judge_copy(kind, answer, n, true, why_len);
	/* A prefix's verdict is the whole's: bytes after it are never read. */
	size_t cut = n ? (size_t)data[1] * 7 % (n + 1) : 0;
	enum probe_verdict part = judge_copy(kind, answer, cut, false, why_len);
	if (part != PROBE_VERDICT_MORE)
		FUZZ_ASSERT(part == whole);
	return 0;
}
