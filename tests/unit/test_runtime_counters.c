// SPDX-License-Identifier: MIT
/*
 * The runtime client's counters for the metrics: each call counted by its
 * kind, its failures as errors, a cancelled call as neither, and the event
 * stream's connects and breaks. Against a fake runtime
 * (tests/lib/fake_runtime.h) that answers every connection with the same
 * canned bytes.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dozed/runtime.h"
#include "evloop.h"
#include "fake_runtime.h"
#include "harness.h"
#include "rtenv.h"

static struct runtime *client(struct event_base *base, const struct fake_runtime *f)
{
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.timeout_us = 5000000;
	cfg.reconnect_min_us = 20000;
	cfg.reconnect_max_us = 50000;
	return rtenv_runtime_new(base, f->path, &cfg);
}

static struct runtime_counters counters(const struct runtime *rt)
{
	struct runtime_counters c;
	runtime_get_counters(rt, &c);
	return c;
}

TEST(test_calls_are_counted_by_kind_and_failures_as_errors)
{
	struct fake_runtime *f = fake_runtime_start(
	    (const char *const[]){
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nboom\n"},
	    1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f);
	struct runtime_counters c = counters(rt);
	for (int i = 0; i < RUNTIME_CALL_COUNT; i++)
		ASSERT_EQ_U(c.calls[i] + c.errors[i], 0);
	ASSERT_ERR(rtenv_start(base, rt, "web")->err, EIO);
	ASSERT_ERR(rtenv_start(base, rt, "web")->err, EIO);
	ASSERT_TRUE(rtenv_inspect(base, rt, "web")->err < 0);
	c = counters(rt);
	ASSERT_EQ_U(c.calls[RUNTIME_CALL_START], 2);
	ASSERT_EQ_U(c.errors[RUNTIME_CALL_START], 2);
	ASSERT_EQ_U(c.calls[RUNTIME_CALL_INSPECT], 1);
	ASSERT_EQ_U(c.errors[RUNTIME_CALL_INSPECT], 1);
	ASSERT_EQ_U(c.calls[RUNTIME_CALL_STOP], 0);
}

static void never_called(int err, const struct runtime_error *e, void *userdata)
{
	(void)err;
	(void)e;
	(void)userdata;
	FAIL("a cancelled call's callback ran");
}

TEST(test_a_call_answered_is_no_error_and_a_cancelled_one_is_none)
{
	struct fake_runtime *f =
	    fake_runtime_start((const char *const[]){"HTTP/1.1 204 No Content\r\n\r\n"}, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f);
	rtenv_expect_ok(rtenv_start(base, rt, "web"), "start");
	int token;
	ASSERT_OK(runtime_pause(rt, "web", never_called, &token));
	ASSERT_EQ_U(runtime_cancel(rt, &token), 1);
	struct runtime_counters c = counters(rt);
	ASSERT_EQ_U(c.calls[RUNTIME_CALL_START], 1);
	ASSERT_EQ_U(c.errors[RUNTIME_CALL_START], 0);
	ASSERT_EQ_U(c.calls[RUNTIME_CALL_PAUSE], 1);
	ASSERT_EQ_U(c.errors[RUNTIME_CALL_PAUSE], 0);
}

TEST(test_the_event_stream_counts_its_connects_and_breaks)
{
	/* A stream that is up, then ends: the client connects again. */
	struct fake_runtime *f = fake_runtime_start(
	    (const char *const[]){"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"}, 1,
	    false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f);
	struct rtenv_events *log = rtenv_events_new(rt);
	rtenv_wait_disconnected(base, log, 2);
	struct runtime_counters c = counters(rt);
	ASSERT_GE_U(c.calls[RUNTIME_CALL_EVENTS], 2);
	ASSERT_GE_U(c.errors[RUNTIME_CALL_EVENTS], 2);
	/* Each break came from a connect counted before it. */
	ASSERT_TRUE(c.errors[RUNTIME_CALL_EVENTS] <= c.calls[RUNTIME_CALL_EVENTS]);
}

TEST(test_every_call_kind_has_a_name)
{
	ASSERT_STREQ(runtime_call_name(RUNTIME_CALL_START), "start");
	ASSERT_STREQ(runtime_call_name(RUNTIME_CALL_EVENTS), "events");
	for (int i = 0; i < RUNTIME_CALL_COUNT; i++)
		ASSERT_TRUE(runtime_call_name(i) && runtime_call_name(i)[0]);
	ASSERT_STREQ(runtime_call_name(RUNTIME_CALL_COUNT), "other");
}
