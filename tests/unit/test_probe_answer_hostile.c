// SPDX-License-Identifier: MIT
/* Answers made to fool a probe: never ready, and shown whole in the reason. */
#include <string.h>

#include "dozed/probe_answer.h"
#include "harness.h"

static enum probe_verdict judge(enum probe_kind kind, const void *bytes, size_t len, bool eof,
				char *why)
{
	return probe_answer_judge(kind, bytes, len, eof, why, PROBE_WHY_MAX);
}

TEST(test_a_postgres_authentication_request_without_its_code_is_not_ready)
{
	char why[PROBE_WHY_MAX];
	static const char r4[] = {'R', 0, 0, 0, 4};
	ASSERT_EQ_U(judge(PROBE_POSTGRES, r4, sizeof(r4), false, why), PROBE_VERDICT_NOT_READY);
	ASSERT_CONTAINS(why, "malformed authentication request");
	static const char r7[] = {'R', 0, 0, 0, 7, 0, 0, 0};
	ASSERT_EQ_U(judge(PROBE_POSTGRES, r7, sizeof(r7), false, why), PROBE_VERDICT_NOT_READY);
}

TEST(test_a_nul_in_an_answer_is_shown_not_cut)
{
	char why[PROBE_WHY_MAX];
	static const char pong[] = "+PO\0NG\r\n";
	ASSERT_EQ_U(judge(PROBE_REDIS, pong, sizeof(pong) - 1, false, why),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "redis: not an answer to PING: +PO?NG");
	static const char http[] = "\0TTP/1.1 200 OK\r\n";
	ASSERT_EQ_U(judge(PROBE_HTTP, http, sizeof(http) - 1, false, why), PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "http: not a status line: \"?TTP/1.1 200 OK\"");
	static const char loading[] = "-LOADING a\0b\r\n";
	ASSERT_EQ_U(judge(PROBE_REDIS, loading, sizeof(loading) - 1, false, why),
		    PROBE_VERDICT_NOT_READY);
	ASSERT_STREQ(why, "redis: LOADING a?b");
}
