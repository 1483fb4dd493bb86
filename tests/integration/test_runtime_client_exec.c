// SPDX-License-Identifier: MIT
/*
 * runtime_exec and runtime_wait against a fake runtime (a child process on a
 * unix socket answering each connection with canned bytes,
 * tests/lib/fake_runtime.h): for what the real ones will not do on demand, an
 * exec that never ends, answers that are not the JSON expected, a cancel
 * while the exec is being polled.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "fake_runtime.h"
#include "harness.h"
#include "rtenv.h"

static struct runtime *client(struct event_base *base, const struct fake_runtime *f,
			      uint64_t timeout_us)
{
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.timeout_us = timeout_us;
	return rtenv_runtime_new(base, f->path, &cfg);
}

#define JSON_ANSWER(status, body)                                                                  \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\nContent-Length: " body

#define CREATED JSON_ANSWER("201 Created", "12\r\n\r\n{\"Id\":\"e1\"}\n")
/* The attached start, as both runtimes answer it: a raw stream until close. */
#define STARTED	      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
#define STILL_RUNNING JSON_ANSWER("200 OK", "32\r\n\r\n{\"Running\":true,\"ExitCode\":null}")
#define EXITED_3      JSON_ANSWER("200 OK", "30\r\n\r\n{\"Running\":false,\"ExitCode\":3}")

struct res {
	unsigned calls;
	int err;
	int exit_code;
	char message[512];
};

static void on_code(int err, const struct runtime_error *e, int exit_code, void *userdata)
{
	struct res *r = userdata;
	r->calls++;
	r->err = err;
	r->exit_code = exit_code;
	snprintf(r->message, sizeof(r->message), "%s", e->message);
}

static bool called(void *arg)
{
	return ((struct res *)arg)->calls > 0;
}

static const char *const true_argv[] = {"true"};

TEST(test_exec_polls_until_the_command_is_no_longer_running)
{
	static const char *const answers[] = {CREATED,	     STARTED,	    STILL_RUNNING,
					      STILL_RUNNING, STILL_RUNNING, EXITED_3};
	struct fake_runtime *f = fake_runtime_start(answers, ARRAY_SIZE(answers), false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	if (r.err < 0)
		FAIL("exec failed: %s", r.message);
	ASSERT_EQ_U(r.exit_code, 3);
	ASSERT_EQ_U(r.calls, 1);
	ASSERT_EQ_U(fake_runtime_served(f), 6);
}

TEST(test_exec_that_never_ends_times_out_within_its_timeout)
{
	static const char *const answers[] = {CREATED, STARTED, STILL_RUNNING};
	struct fake_runtime *f = fake_runtime_start(answers, ARRAY_SIZE(answers), false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000);
	struct res r = {0};
	uint64_t t0 = test_now_ms();
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 500000, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	uint64_t took = test_now_ms() - t0;
	ASSERT_ERR(r.err, ETIMEDOUT);
	ASSERT_TRUE(r.exit_code == -1);
	ASSERT_CONTAINS(r.message, "did not end within 0.5 s");
	ASSERT_TRUE(took >= 490 && took < 2000);
	/* Polled, backing off: more than a few inspects, far fewer than one a ms. */
	unsigned n = fake_runtime_served(f);
	fprintf(stderr, "%u inspects in %llu ms\n", n - 2, (unsigned long long)took);
	ASSERT_GE_U(n, 2 + 4);
	ASSERT_TRUE(n < 2 + 60);
}

TEST(test_exec_cancelled_while_polled_makes_no_more_calls)
{
	static const char *const answers[] = {CREATED, STARTED, STILL_RUNNING};
	struct fake_runtime *f = fake_runtime_start(answers, ARRAY_SIZE(answers), false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	struct fake_runtime_wait w = {f, 5};
	evloop_run_until(base, fake_runtime_served_enough, &w, 10000, "three inspects");
	ASSERT_EQ_U(runtime_cancel(rt, &r), 1);
	unsigned at_cancel = fake_runtime_served(f);
	/* Long past the poll's longest step (100 ms): nothing more. */
	struct fake_runtime_wait never = {f, at_cancel + 2};
	uint64_t until = test_now_ms() + 400;
	while (test_now_ms() < until) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(2000);
	}
	ASSERT_TRUE(!fake_runtime_served_enough(&never));
	ASSERT_EQ_U(r.calls, 0);
}

TEST(test_exec_and_wait_answers_that_are_not_the_json_expected)
{
	static const char *const no_id[] = {JSON_ANSWER("201 Created", "2\r\n\r\n{}")};
	struct fake_runtime *f = fake_runtime_start(no_id, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 2000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	ASSERT_ERR(r.err, EBADMSG);
	ASSERT_CONTAINS(r.message, "/containers/web/exec");

	static const char *const bad_inspect[] = {CREATED, STARTED,
						  JSON_ANSWER("200 OK", "5\r\n\r\nhello")};
	f = fake_runtime_start(bad_inspect, ARRAY_SIZE(bad_inspect), false);
	rt = client(base, f, 2000000);
	r = (struct res){0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	ASSERT_ERR(r.err, EBADMSG);
	ASSERT_CONTAINS(r.message, "/exec/e1/json");

	/* A start the runtime refuses, in Podman's words. */
	static const char *const refused[] = {
	    CREATED, JSON_ANSWER("500 Internal Server Error",
				 "92\r\n\r\n{\"cause\":\"x\",\"message\":\"can only create exec "
				 "sessions on running containers\",\"response\":500}")};
	f = fake_runtime_start(refused, ARRAY_SIZE(refused), false);
	rt = client(base, f, 2000000);
	r = (struct res){0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	ASSERT_ERR(r.err, EIO);
	ASSERT_CONTAINS(r.message, "can only create exec sessions");

	static const char *const bad_wait[] = {
	    JSON_ANSWER("200 OK", "15\r\n\r\n{\"Error\":null}\n")};
	f = fake_runtime_start(bad_wait, 1, false);
	rt = client(base, f, 2000000);
	r = (struct res){0};
	ASSERT_OK(runtime_wait(rt, "web", 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the wait's answer");
	ASSERT_ERR(r.err, EBADMSG);
	ASSERT_TRUE(r.exit_code == -1);
}

struct free_in_cb {
	struct runtime *rt;
	unsigned calls;
};

static void free_runtime_cb(int err, const struct runtime_error *e, int exit_code, void *userdata)
{
	(void)err;
	(void)e;
	(void)exit_code;
	struct free_in_cb *s = userdata;
	s->calls++;
	runtime_free(s->rt);
}

static bool freed(void *arg)
{
	return ((struct free_in_cb *)arg)->calls > 0;
}

TEST(test_runtime_freed_inside_an_exec_callback_with_another_exec_pending)
{
	/* Two execs; the first inspect answers one, whose callback frees the
	 * runtime: the other ends with it, silently. */
	static const char *const answers[] = {CREATED, CREATED,	 STARTED,
					      STARTED, EXITED_3, STILL_RUNNING};
	struct fake_runtime *f = fake_runtime_start(answers, ARRAY_SIZE(answers), false);
	struct event_base *base = rtenv_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = f->path;
	struct runtime *rt = NULL;
	ASSERT_OK(runtime_new(base, &cfg, &rt));
	struct free_in_cb s = {.rt = rt};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, free_runtime_cb, &s));
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, free_runtime_cb, &s));
	evloop_run_until(base, freed, &s, 10000, "an exec's answer");
	uint64_t until = test_now_ms() + 300;
	while (test_now_ms() < until) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(2000);
	}
	ASSERT_EQ_U(s.calls, 1);
}
