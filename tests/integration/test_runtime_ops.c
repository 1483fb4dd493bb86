// SPDX-License-Identifier: MIT
/*
 * runtime_kill, runtime_wait, runtime_exec and inspect's stop and health
 * fields against the real runtimes of tests/runtime-env.sh (Podman 4.3 and
 * Docker 20.10), each test on both: test_podman_* and test_docker_*.
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
#include "fixture.h"
#include "harness.h"
#include "netns.h"
#include "rtenv.h"

#define CALL_TIMEOUT_MS 30000

void test_suite_teardown(void)
{
	rtenv_teardown();
}

/* busybox httpd as PID 1: it ignores SIGTERM (and SIGINT), as many images' inits do. */
#define HTTPD_AS_INIT "exec /bin/httpd -f -p 80 -h /www"

struct res {
	bool done;
	int err;
	int http_status;
	int exit_code;
	unsigned calls;
	char message[512];
};

static void res_set(struct res *r, int err, const struct runtime_error *e, int exit_code)
{
	r->calls++;
	r->done = true;
	r->err = err;
	r->http_status = e->http_status;
	r->exit_code = exit_code;
	snprintf(r->message, sizeof(r->message), "%s", e->message);
}

static void on_done(int err, const struct runtime_error *e, void *userdata)
{
	res_set(userdata, err, e, -1);
}

static void on_code(int err, const struct runtime_error *e, int exit_code, void *userdata)
{
	res_set(userdata, err, e, exit_code);
}

static bool res_done(void *arg)
{
	return ((struct res *)arg)->done;
}

static void res_wait(struct event_base *base, struct res *r, const char *what)
{
	evloop_run_until(base, res_done, r, CALL_TIMEOUT_MS, what);
}

static struct res do_kill(struct event_base *base, struct runtime *rt, const char *id,
			  const char *sig)
{
	struct res r = {0};
	ASSERT_OK(runtime_kill(rt, id, sig, on_done, &r));
	ASSERT_TRUE(!r.done); /* never from inside the call */
	res_wait(base, &r, "the kill's answer");
	return r;
}

static struct res do_wait(struct event_base *base, struct runtime *rt, const char *id,
			  uint64_t timeout_us)
{
	struct res r = {0};
	ASSERT_OK(runtime_wait(rt, id, timeout_us, on_code, &r));
	ASSERT_TRUE(!r.done);
	res_wait(base, &r, "the wait's answer");
	return r;
}

static struct res do_exec(struct event_base *base, struct runtime *rt, const char *id,
			  const char *const *argv, size_t argc, uint64_t timeout_us)
{
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, id, argv, argc, timeout_us, on_code, &r));
	ASSERT_TRUE(!r.done);
	res_wait(base, &r, "the exec's answer");
	return r;
}

static void expect_ok(const struct res *r, const char *what)
{
	if (r->err < 0)
		FAIL("%s failed: %s (%s)", what, strerror(-r->err), r->message);
	ASSERT_EQ_U(r->calls, 1);
}

static bool running(struct event_base *base, struct runtime *rt, const char *id)
{
	const struct rtenv_result *r = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(r, "inspect");
	return r->c->running;
}

BOTH_RUNTIMES(sigterm_ignored_by_init_leaves_it_running_until_sigkill)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	rtenv_make(env, "ops-kill", true, NULL, HTTPD_AS_INIT);
	ASSERT_TRUE(running(base, rt, "ops-kill"));

	struct res k = do_kill(base, rt, "ops-kill", "SIGTERM");
	expect_ok(&k, "kill SIGTERM");
	/* The other spellings reach the runtime as well. */
	struct res k2 = do_kill(base, rt, "ops-kill", "TERM");
	expect_ok(&k2, "kill TERM");
	struct res k3 = do_kill(base, rt, "ops-kill", "15");
	expect_ok(&k3, "kill 15");
	/* As Docker's inspect gives a --stop-signal typed in lower case. */
	struct res k5 = do_kill(base, rt, "ops-kill", "sigterm");
	expect_ok(&k5, "kill sigterm");

	/* httpd ignores it: the wait runs out, and it still runs. */
	uint64_t t0 = test_now_ms();
	struct res w = do_wait(base, rt, "ops-kill", 700000);
	uint64_t took = test_now_ms() - t0;
	ASSERT_ERR(w.err, ETIMEDOUT);
	ASSERT_TRUE(w.exit_code == -1);
	ASSERT_CONTAINS(w.message, "within 0.7 s");
	ASSERT_TRUE(took >= 650 && took < 5000);
	ASSERT_TRUE(running(base, rt, "ops-kill"));

	/* A wait, then SIGKILL: the wait answers with 137. */
	struct res w2 = {0};
	ASSERT_OK(runtime_wait(rt, "ops-kill", 20000000, on_code, &w2));
	struct res kill9 = do_kill(base, rt, "ops-kill", "SIGKILL");
	expect_ok(&kill9, "kill SIGKILL");
	res_wait(base, &w2, "the wait's answer after SIGKILL");
	expect_ok(&w2, "wait");
	ASSERT_EQ_U(w2.exit_code, 137);
	ASSERT_TRUE(!running(base, rt, "ops-kill"));

	/* A wait on a stopped container answers at once, with its exit code. */
	t0 = test_now_ms();
	struct res w3 = do_wait(base, rt, "ops-kill", 0);
	expect_ok(&w3, "wait on a stopped container");
	ASSERT_EQ_U(w3.exit_code, 137);
	fprintf(stderr, "%s: wait on a stopped container answered in %llu ms\n", env->name,
		(unsigned long long)(test_now_ms() - t0));
	ASSERT_TRUE(test_now_ms() - t0 < 2000);

	/* A kill of a stopped container: -ESRCH, whatever the runtime's status. */
	struct res k4 = do_kill(base, rt, "ops-kill", "SIGKILL");
	fprintf(stderr, "%s: kill of a stopped container: HTTP %d, %s\n", env->name, k4.http_status,
		k4.message);
	ASSERT_ERR(k4.err, ESRCH);
	ASSERT_EQ_U(k4.http_status, strcmp(env->name, "docker") == 0 ? 409 : 500);
}

BOTH_RUNTIMES(kill_and_wait_of_a_created_or_missing_container)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	rtenv_make(env, "ops-created", false, NULL, HTTPD_AS_INIT);

	struct res k = do_kill(base, rt, "ops-created", "SIGTERM");
	ASSERT_ERR(k.err, ESRCH);
	/* Never ran: at once, exit code 0 (Docker), 0 or -1 (Podman). */
	uint64_t t0 = test_now_ms();
	struct res w = do_wait(base, rt, "ops-created", 5000000);
	expect_ok(&w, "wait on a created container");
	ASSERT_TRUE(test_now_ms() - t0 < 2000);
	fprintf(stderr, "%s: wait on a created container: exit code %d\n", env->name, w.exit_code);
	ASSERT_TRUE(w.exit_code == 0 || (strcmp(env->name, "podman") == 0 && w.exit_code == -1));

	struct res k2 = do_kill(base, rt, "no-such-ops", "SIGTERM");
	ASSERT_ERR(k2.err, ENOENT);
	ASSERT_CONTAINS(k2.message, "no-such-ops");
	struct res w2 = do_wait(base, rt, "no-such-ops", 0);
	ASSERT_ERR(w2.err, ENOENT);
	ASSERT_EQ_U(w2.http_status, 404);

	/* Bad signals never reach the runtime. */
	struct res none = {0};
	ASSERT_ERR(runtime_kill(rt, "ops-created", "SIG TERM", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_kill(rt, "ops-created", "", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_kill(rt, "ops-created", "0", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_kill(rt, "ops-created", "SIGTERM&x=1", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_kill(rt, "ops-created", "65", on_done, &none), EINVAL);
	ASSERT_ERR(runtime_kill(rt, "ops-created", NULL, on_done, &none), EINVAL);
	ASSERT_EQ_U(none.calls, 0);
}

BOTH_RUNTIMES(exec_reports_the_exit_code_of_the_command)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	rtenv_make(env, "ops-exec", true, NULL, HTTPD_AS_INIT);

	static const char *const t[] = {"true"}, *const f[] = {"false"},
				 *const seven[] = {"sh", "-c", "echo out; echo err >&2; exit 7"},
				 *const missing[] = {"/no/such/binary"}, *const dir[] = {"/www"};
	struct res r = do_exec(base, rt, "ops-exec", t, 1, 0);
	expect_ok(&r, "exec true");
	ASSERT_EQ_U(r.exit_code, 0);
	r = do_exec(base, rt, "ops-exec", f, 1, 0);
	expect_ok(&r, "exec false");
	ASSERT_EQ_U(r.exit_code, 1);
	r = do_exec(base, rt, "ops-exec", seven, 3, 0);
	expect_ok(&r, "exec sh -c 'exit 7'");
	ASSERT_EQ_U(r.exit_code, 7);
	/* A missing command is an exit code: 127 on Podman, 126 on Docker. */
	r = do_exec(base, rt, "ops-exec", missing, 1, 0);
	expect_ok(&r, "exec of a missing binary");
	fprintf(stderr, "%s: exec of a missing binary exits %d\n", env->name, r.exit_code);
	ASSERT_EQ_U(r.exit_code, strcmp(env->name, "docker") == 0 ? 126 : 127);
	r = do_exec(base, rt, "ops-exec", dir, 1, 0);
	expect_ok(&r, "exec of a directory");
	ASSERT_EQ_U(r.exit_code, 126);

	/* Output over the answer bound (8 MiB) is read and dropped, not refused. */
	static const char *const loud[] = {"sh", "-c", "yes | head -c 12000000; exit 4"};
	r = do_exec(base, rt, "ops-exec", loud, 3, 0);
	expect_ok(&r, "exec of a command writing 12 MB");
	ASSERT_EQ_U(r.exit_code, 4);

	/* A command that outlives its timeout: -ETIMEDOUT within it. */
	static const char *const slow[] = {"sleep", "5"};
	uint64_t t0 = test_now_ms();
	r = do_exec(base, rt, "ops-exec", slow, 2, 400000);
	uint64_t took = test_now_ms() - t0;
	ASSERT_ERR(r.err, ETIMEDOUT);
	ASSERT_TRUE(took >= 350 && took < 3000);
	ASSERT_CONTAINS(r.message, "did not end within 0.4 s");
	fprintf(stderr, "%s: exec timed out after %llu ms: %s\n", env->name,
		(unsigned long long)took, r.message);

	/* In a stopped container: -ESRCH. */
	rtenv_expect_ok(rtenv_stop(base, rt, "ops-exec", 0), "stop");
	r = do_exec(base, rt, "ops-exec", t, 1, 0);
	fprintf(stderr, "%s: exec in a stopped container: HTTP %d, %s\n", env->name, r.http_status,
		r.message);
	ASSERT_ERR(r.err, ESRCH);
	r = do_exec(base, rt, "no-such-ops", t, 1, 0);
	ASSERT_ERR(r.err, ENOENT);

	struct res none = {0};
	ASSERT_ERR(runtime_exec(rt, "ops-exec", t, 0, 0, on_code, &none), EINVAL);
	ASSERT_ERR(runtime_exec(rt, "ops-exec", NULL, 1, 0, on_code, &none), EINVAL);
	ASSERT_EQ_U(none.calls, 0);
}

static void on_never(int err, const struct runtime_error *e, int exit_code, void *userdata)
{
	(void)err;
	(void)e;
	(void)exit_code;
	(*(unsigned *)userdata)++;
}

static void on_done_never(int err, const struct runtime_error *e, void *userdata)
{
	on_never(err, e, 0, userdata);
}

struct ticks {
	struct event_base *base;
	unsigned n;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	((struct ticks *)arg)->n++;
}

static bool ticked(void *arg)
{
	return ((struct ticks *)arg)->n >= 1;
}

static void free_event(void *ev)
{
	event_free(ev);
}

/* Runs the loop for ms: long enough for every step of a cancelled exec to
 * have called back, had it not been cancelled. */
static void run_for(struct event_base *base, unsigned ms)
{
	struct ticks t = {.base = base};
	struct event *ev = evtimer_new(base, on_tick, &t);
	ASSERT_TRUE(ev);
	test_defer(free_event, ev);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
	evloop_run_until(base, ticked, &t, ms + 5000, "the timer");
}

BOTH_RUNTIMES(cancelled_exec_wait_and_kill_never_call_back)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	rtenv_make(env, "ops-cancel", true, NULL, HTTPD_AS_INIT);

	unsigned called = 0;
	static const char *const slow[] = {"sh", "-c", "sleep 0.3"};
	static const char *const t[] = {"true"};
	/* At each step of an exec: before the create answers, and later (a
	 * poll or the attached start), by cancelling on a timer. */
	ASSERT_OK(runtime_exec(rt, "ops-cancel", t, 1, 0, on_never, &called));
	ASSERT_OK(runtime_exec(rt, "ops-cancel", slow, 3, 0, on_never, &called));
	ASSERT_OK(runtime_wait(rt, "ops-cancel", 0, on_never, &called));
	ASSERT_OK(runtime_kill(rt, "ops-cancel", "SIGTERM", on_done_never, &called));
	ASSERT_EQ_U(runtime_cancel(rt, &called), 4);
	ASSERT_EQ_U(runtime_cancel(rt, &called), 0);
	for (unsigned delay = 20; delay <= 160; delay *= 2) {
		ASSERT_OK(runtime_exec(rt, "ops-cancel", slow, 3, 0, on_never, &called));
		run_for(base, delay);
		ASSERT_EQ_U(runtime_cancel(rt, &called), 1);
	}
	run_for(base, 600);
	ASSERT_EQ_U(called, 0);

	/* runtime_free with an exec pending: no callback, no leak (ASan). */
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = env->sock;
	struct runtime *other = NULL;
	ASSERT_OK(runtime_new(base, &cfg, &other));
	ASSERT_OK(runtime_exec(other, "ops-cancel", slow, 3, 0, on_never, &called));
	run_for(base, 50);
	runtime_free(other);
	run_for(base, 500);
	ASSERT_EQ_U(called, 0);

	/* The container is fine and execs still work. */
	struct res r = do_exec(base, rt, "ops-cancel", t, 1, 0);
	expect_ok(&r, "exec after cancels");
	ASSERT_EQ_U(r.exit_code, 0);
}

BOTH_RUNTIMES(inspect_reads_the_stop_signal_timeout_and_healthcheck)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	static const char *const opts[] = {"--stop-signal",
					   "SIGINT",
					   "--stop-timeout",
					   "3",
					   "--health-cmd",
					   "test -e /www/ok",
					   "--health-timeout",
					   "2s",
					   NULL};
	rtenv_make(env, "ops-hc", true, opts, HTTPD_AS_INIT);
	rtenv_make(env, "ops-plain", true, NULL, HTTPD_AS_INIT);

	const struct rtenv_result *hc = rtenv_inspect(base, rt, "ops-hc");
	rtenv_expect_ok(hc, "inspect");
	const struct runtime_container *c = hc->c;
	/* Docker keeps the name given, Podman 4.3 gives the number. */
	ASSERT_STREQ(c->stop_signal, strcmp(env->name, "docker") == 0 ? "SIGINT" : "2");
	ASSERT_EQ_U(c->stop_timeout_s, 3);
	ASSERT_EQ_U(c->n_health_cmd, 3);
	ASSERT_STREQ(c->health_cmd[0], "/bin/sh");
	ASSERT_STREQ(c->health_cmd[1], "-c");
	ASSERT_STREQ(c->health_cmd[2], "test -e /www/ok");
	ASSERT_EQ_U(c->health_timeout_us, 2000000);
	/* Neither runtime has run the check yet (Docker after 30 s, Podman never here). */
	ASSERT_STREQ(c->health_status, "starting");

	const struct rtenv_result *plain = rtenv_inspect(base, rt, "ops-plain");
	rtenv_expect_ok(plain, "inspect");
	c = plain->c;
	if (strcmp(env->name, "docker") == 0) {
		ASSERT_TRUE(c->stop_signal == NULL);
		ASSERT_TRUE(c->stop_timeout_s == -1);
	} else {
		ASSERT_STREQ(c->stop_signal, "15");
		ASSERT_EQ_U(c->stop_timeout_s, 10);
	}
	ASSERT_EQ_U(c->n_health_cmd, 0);
	ASSERT_TRUE(c->health_cmd == NULL);
	ASSERT_EQ_U(c->health_timeout_us, 0);
	ASSERT_STREQ(c->health_status, "");

	/* The health command, run by exec, fails until the file is there. */
	struct res r = do_exec(base, rt, "ops-hc", (const char *const *)hc->c->health_cmd,
			       hc->c->n_health_cmd, 0);
	expect_ok(&r, "exec of the health command");
	ASSERT_EQ_U(r.exit_code, 1);
	rtenv_cli(env, "exec", "ops-hc", "touch", "/www/ok");
	r = do_exec(base, rt, "ops-hc", (const char *const *)hc->c->health_cmd, hc->c->n_health_cmd,
		    0);
	expect_ok(&r, "exec of the health command");
	ASSERT_EQ_U(r.exit_code, 0);
}
