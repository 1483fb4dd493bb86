// SPDX-License-Identifier: MIT
/*
 * runtime_pause and runtime_unpause against the real runtimes of
 * tests/runtime-env.sh, each test on both: what inspect says after each, a
 * second pause or unpause (done, as asked), a missing container, and the
 * freezer state of the container's processes on this host.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/freezer.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "harness.h"
#include "rtenv.h"

#define CALL_TIMEOUT_MS 30000

void test_suite_teardown(void)
{
	rtenv_teardown();
}

struct res {
	bool done;
	int err;
	int http_status;
	char message[512];
};

static void on_done(int err, const struct runtime_error *e, void *userdata)
{
	struct res *r = userdata;
	r->done = true;
	r->err = err;
	r->http_status = e->http_status;
	snprintf(r->message, sizeof(r->message), "%s", e->message);
}

static bool res_done(void *arg)
{
	return ((struct res *)arg)->done;
}

static struct res call(struct event_base *base, struct runtime *rt, const char *id, bool pause)
{
	struct res r = {0};
	ASSERT_OK((pause ? runtime_pause : runtime_unpause)(rt, id, on_done, &r));
	ASSERT_TRUE(!r.done); /* never from inside the call */
	evloop_run_until(base, res_done, &r, CALL_TIMEOUT_MS, pause ? "the pause" : "the unpause");
	return r;
}

static void expect_ok(const struct res *r, const char *what)
{
	if (r->err < 0)
		FAIL("%s failed: %s (HTTP %d: %s)", what, strerror(-r->err), r->http_status,
		     r->message);
}

/* Inspect's running, paused, and the freezer of its init as the kernel says. */
static void expect_state(struct event_base *base, struct runtime *rt, const char *id, bool paused)
{
	const struct rtenv_result *r = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(r, "inspect");
	ASSERT_TRUE(r->c->running); /* paused is running too, on both */
	ASSERT_EQ_U(r->c->paused, paused);
	ASSERT_STREQ(r->c->state, paused ? "paused" : "running");
	struct freezer f;
	ASSERT_OK(freezer_find(r->c->pid, &f));
	ASSERT_EQ_U(freezer_is_frozen(&f), paused);
}

BOTH_RUNTIMES(pause_and_unpause_say_what_inspect_and_the_freezer_see)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	rtenv_make(env, "ops-pause", true, NULL, NULL);
	expect_state(base, rt, "ops-pause", false);

	struct res p = call(base, rt, "ops-pause", true);
	expect_ok(&p, "pause");
	expect_state(base, rt, "ops-pause", true);
	/* Paused already (by hand, say): paused, as asked. */
	struct res p2 = call(base, rt, "ops-pause", true);
	expect_ok(&p2, "a second pause");
	expect_state(base, rt, "ops-pause", true);

	struct res u = call(base, rt, "ops-pause", false);
	expect_ok(&u, "unpause");
	expect_state(base, rt, "ops-pause", false);
	/* Not paused: it runs, as asked. */
	struct res u2 = call(base, rt, "ops-pause", false);
	expect_ok(&u2, "a second unpause");
	expect_state(base, rt, "ops-pause", false);
}

BOTH_RUNTIMES(pause_of_a_missing_or_stopped_container_is_refused_by_the_runtime)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	struct res p = call(base, rt, "no-such-pause", true);
	ASSERT_ERR(p.err, ENOENT);
	ASSERT_EQ_U(p.http_status, 404);
	ASSERT_CONTAINS(p.message, "no-such-pause");

	rtenv_make(env, "ops-pause-created", false, NULL, NULL);
	struct res c = call(base, rt, "ops-pause-created", true);
	ASSERT_TRUE(c.err < 0);
	ASSERT_TRUE(c.http_status >= 400);
	fprintf(stderr, "%s: pause of a created container: HTTP %d, %s\n", env->name, c.http_status,
		c.message);

	struct res none = {0};
	ASSERT_ERR(runtime_pause(rt, "", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_unpause(rt, NULL, on_done, &none), EINVAL);
}
