// SPDX-License-Identifier: MIT
/*
 * The healthcheck probe (daemon/health.c) against the real runtimes of
 * tests/runtime-env.sh: dozed runs the container's health command itself,
 * through the exec API, until it passes or the deadline. Each test on both
 * runtimes: test_podman_* and test_docker_*.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dozed/health.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"
#include "rtenv.h"

void test_suite_teardown(void)
{
	rtenv_teardown();
}

#define HTTPD_AS_INIT "exec /bin/httpd -f -p 80 -h /www"

static char *const check_ok[] = {"/bin/sh", "-c", "test -e /www/ok"};

/* A running busybox httpd as PID 1 whose health command passes once /www/ok is there. */
static void ctr_run(const struct rtenv *env, const char *name)
{
	static const char *const opts[] = {"--health-cmd", "test -e /www/ok", NULL};
	rtenv_make(env, name, true, opts, HTTPD_AS_INIT);
}

struct outcome {
	bool done;
	unsigned calls;
	int result;
	char answer[256];
	uint64_t at_ms;
	struct health_check **free_me; /* freed from inside done when set */
};

static void on_done(void *userdata, int result, const char *last_answer)
{
	struct outcome *o = userdata;
	o->calls++;
	o->done = true;
	o->result = result;
	o->at_ms = test_now_ms();
	snprintf(o->answer, sizeof(o->answer), "%s", last_answer);
	if (o->free_me) {
		health_check_free(*o->free_me);
		*o->free_me = NULL;
		/* last_answer is done's own copy: still readable. */
		snprintf(o->answer, sizeof(o->answer), "%s", last_answer);
	}
}

static bool outcome_done(void *arg)
{
	return ((struct outcome *)arg)->done;
}

static void free_check(void *arg)
{
	struct health_check **h = arg;
	health_check_free(*h);
	free(h);
}

static struct health_check **check_slot(void)
{
	struct health_check **h = calloc(1, sizeof(*h));
	ASSERT_TRUE(h);
	test_defer(free_check, h);
	return h;
}

struct timer_flag {
	bool fired;
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	((struct timer_flag *)arg)->fired = true;
}

/* Runs the loop for ms, or until o is done. */
static void run_for(struct event_base *base, unsigned ms, struct outcome *o)
{
	struct timer_flag f = {0};
	struct event *ev = evtimer_new(base, on_timer, &f);
	ASSERT_TRUE(ev);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
	uint64_t end = test_now_ms() + ms;
	while (!f.fired && !(o && o->done) && test_now_ms() < end + 5000)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

BOTH_RUNTIMES(passes_only_once_the_file_appears)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	ctr_run(env, "health-file");
	/* The health command as inspect reads it from the container. */
	const struct rtenv_result *ins = rtenv_inspect(base, rt, "health-file");
	rtenv_expect_ok(ins, "inspect");
	ASSERT_EQ_U(ins->c->n_health_cmd, 3);

	struct outcome o = {0};
	struct health_check **h = check_slot();
	ASSERT_OK(health_check_start(base, rt, ins->c->id, ins->c->health_cmd, ins->c->n_health_cmd,
				     0, 50000, 30000000, on_done, &o, h));
	ASSERT_TRUE(!o.done); /* never from inside the start */
	/* Several runs, each exiting 1: no answer yet. */
	run_for(base, 800, &o);
	ASSERT_TRUE(!o.done);

	uint64_t before_file = test_now_ms();
	rtenv_cli(env, "exec", "health-file", "touch", "/www/ok");
	evloop_run_until(base, outcome_done, &o, 10000, "the health check to pass");
	ASSERT_EQ_U(o.calls, 1);
	ASSERT_EQ_U(o.result, 0);
	ASSERT_STREQ(o.answer, "healthcheck: passed");
	ASSERT_TRUE(o.at_ms >= before_file);
	fprintf(stderr, "%s: passed %llu ms after the file was being made\n", env->name,
		(unsigned long long)(o.at_ms - before_file));
}

BOTH_RUNTIMES(a_check_that_never_passes_times_out_saying_how_it_exited)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	ctr_run(env, "health-never");

	struct outcome o = {0};
	struct health_check **h = check_slot();
	uint64_t t0 = test_now_ms();
	ASSERT_OK(health_check_start(base, rt, "health-never", check_ok, 3, 0, 100000, 1500000,
				     on_done, &o, h));
	evloop_run_until(base, outcome_done, &o, 10000, "the health check's deadline");
	uint64_t took = o.at_ms - t0;
	ASSERT_ERR(o.result, ETIMEDOUT);
	ASSERT_STREQ(o.answer, "healthcheck: exited 1");
	ASSERT_TRUE(took >= 1490 && took < 3000);
	/* Nothing more comes. */
	run_for(base, 300, NULL);
	ASSERT_EQ_U(o.calls, 1);

	/* A command the image does not have: its exit code, named. */
	static char *const missing[] = {"/no/such/check"};
	struct outcome m = {0};
	struct health_check **hm = check_slot();
	ASSERT_OK(health_check_start(base, rt, "health-never", missing, 1, 0, 100000, 700000,
				     on_done, &m, hm));
	evloop_run_until(base, outcome_done, &m, 10000, "the health check's deadline");
	ASSERT_ERR(m.result, ETIMEDOUT);
	ASSERT_STREQ(m.answer, strcmp(env->name, "docker") == 0
				   ? "healthcheck: exited 126 (command not found or not executable)"
				   : "healthcheck: exited 127 (command not found)");

	/* A run slower than its own timeout: said so. */
	static char *const slow[] = {"sleep", "5"};
	struct outcome s = {0};
	struct health_check **hs = check_slot();
	ASSERT_OK(health_check_start(base, rt, "health-never", slow, 2, 300000, 100000, 1000000,
				     on_done, &s, hs));
	evloop_run_until(base, outcome_done, &s, 10000, "the health check's deadline");
	ASSERT_ERR(s.result, ETIMEDOUT);
	ASSERT_STREQ(s.answer, "healthcheck: did not end within 0.3 s");
}

BOTH_RUNTIMES(a_stopped_or_missing_container_ends_the_check_at_once)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	ctr_run(env, "health-stopped");
	rtenv_expect_ok(rtenv_stop(base, rt, "health-stopped", 0), "stop");

	struct outcome o = {0};
	struct health_check **h = check_slot();
	ASSERT_OK(health_check_start(base, rt, "health-stopped", check_ok, 3, 0, 100000, 20000000,
				     on_done, &o, h));
	evloop_run_until(base, outcome_done, &o, 10000, "the health check's end");
	ASSERT_ERR(o.result, ESRCH);
	ASSERT_STREQ(o.answer, "healthcheck: the container is not running");

	struct outcome g = {0};
	struct health_check **hg = check_slot();
	ASSERT_OK(health_check_start(base, rt, "no-such-health", check_ok, 3, 0, 100000, 20000000,
				     on_done, &g, hg));
	evloop_run_until(base, outcome_done, &g, 10000, "the health check's end");
	ASSERT_ERR(g.result, ENOENT);
	ASSERT_CONTAINS(g.answer, "healthcheck: the runtime refused the exec: ");
	ASSERT_CONTAINS(g.answer, "no-such-health");
}

BOTH_RUNTIMES(freed_checks_never_call_back)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	ctr_run(env, "health-free");

	/* Freed with a run under way, and between runs. */
	struct outcome o = {0};
	struct health_check *h = NULL;
	ASSERT_OK(health_check_start(base, rt, "health-free", check_ok, 3, 0, 20000, 20000000,
				     on_done, &o, &h));
	health_check_free(h);
	ASSERT_OK(health_check_start(base, rt, "health-free", check_ok, 3, 0, 20000, 20000000,
				     on_done, &o, &h));
	run_for(base, 400, &o);
	health_check_free(h);
	health_check_free(NULL);
	run_for(base, 400, &o);
	ASSERT_EQ_U(o.calls, 0);

	/* Freed from inside done: it passes (the file is there) and frees itself. */
	rtenv_cli(env, "exec", "health-free", "touch", "/www/ok");
	struct health_check *self = NULL;
	struct outcome s = {.free_me = &self};
	ASSERT_OK(health_check_start(base, rt, "health-free", check_ok, 3, 0, 20000, 20000000,
				     on_done, &s, &self));
	evloop_run_until(base, outcome_done, &s, 10000, "the health check to pass");
	ASSERT_EQ_U(s.result, 0);
	ASSERT_TRUE(self == NULL);
	ASSERT_STREQ(s.answer, "healthcheck: passed");

	/* Bad arguments: refused, no callback. */
	struct health_check *bad = NULL;
	ASSERT_ERR(
	    health_check_start(base, rt, "health-free", check_ok, 0, 0, 1, 1, on_done, &o, &bad),
	    EINVAL);
	ASSERT_ERR(
	    health_check_start(base, rt, "health-free", check_ok, 3, 0, 1, 0, on_done, &o, &bad),
	    EINVAL);
	ASSERT_ERR(health_check_start(base, rt, "", check_ok, 3, 0, 1, 1, on_done, &o, &bad),
		   EINVAL);
	ASSERT_TRUE(bad == NULL);
	run_for(base, 100, NULL);
	ASSERT_EQ_U(o.calls, 0);
}

TEST(test_an_unreachable_runtime_is_tried_again_until_the_deadline)
{
	char path[128];
	snprintf(path, sizeof(path), "/tmp/dozed-no-runtime.%d/docker.sock", (int)getpid());
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, path, NULL);
	struct outcome o = {0};
	struct health_check **h = check_slot();
	uint64_t t0 = test_now_ms();
	/* The runtime may be restarting: not a refusal, so not the end. */
	ASSERT_OK(
	    health_check_start(base, rt, "web", check_ok, 3, 0, 50000, 600000, on_done, &o, h));
	evloop_run_until(base, outcome_done, &o, 10000, "the health check's deadline");
	ASSERT_ERR(o.result, ETIMEDOUT);
	ASSERT_TRUE(o.at_ms - t0 >= 590);
	ASSERT_CONTAINS(o.answer,
			"healthcheck: the exec failed: Cannot connect to the container runtime");
	ASSERT_CONTAINS(o.answer, path);
}
