// SPDX-License-Identifier: MIT
/*
 * runtime_exec and runtime_wait against a fake runtime (a child process on a
 * unix socket answering each connection with canned bytes, as in
 * test_runtime_client.c): for what the real ones will not do on demand, an
 * exec that never ends, answers that are not the JSON expected, a cancel
 * while the exec is being polled.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "harness.h"
#include "rtenv.h"

struct fake {
	pid_t pid;
	char dir[64];
	char path[108];
	int served_fd; /* a byte per connection answered */
	unsigned served;
};

static void fake_stop(void *arg)
{
	struct fake *f = arg;
	kill(f->pid, SIGKILL);
	while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(f->served_fd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}

/* Reads a request, its body too (Content-Length): a close with unread bytes
 * would reset the connection before the client read the answer. */
static void read_request(int fd)
{
	char buf[16384];
	size_t len = 0;
	char *end = NULL;
	while (len < sizeof(buf) - 1 && !end) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return;
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
	size_t have = len - (size_t)(end + 4 - buf);
	while (have < body) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		have += (size_t)n;
	}
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Connection i gets answers[min(i, n - 1)]; NULL: held open, never answered. */
static struct fake *fake_start(const char *const *answers, size_t n)
{
	struct fake *f = calloc(1, sizeof(*f));
	ASSERT_TRUE(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/dozed-fake.XXXXXX");
	ASSERT_TRUE(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(lfd >= 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	ASSERT_OK(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)));
	ASSERT_OK(listen(lfd, 64));
	int served[2];
	ASSERT_OK(pipe2(served, O_CLOEXEC | O_NONBLOCK));
	fflush(NULL);
	f->pid = fork();
	ASSERT_TRUE(f->pid >= 0);
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (size_t i = 0;; i++) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				_exit(1);
			const char *a = answers[i < n ? i : n - 1];
			if (a) {
				read_request(fd);
				write_all(fd, a, strlen(a));
				close(fd);
			}
			if (write(served[1], "", 1) != 1)
				_exit(1);
		}
	}
	close(lfd);
	close(served[1]);
	f->served_fd = served[0];
	test_defer(fake_stop, f);
	return f;
}

static unsigned fake_count(struct fake *f)
{
	char buf[64];
	ssize_t n;
	while ((n = read(f->served_fd, buf, sizeof(buf))) > 0)
		f->served += (unsigned)n;
	return f->served;
}

struct served_at_least {
	struct fake *f;
	unsigned n;
};

static bool served_enough(void *arg)
{
	struct served_at_least *w = arg;
	return fake_count(w->f) >= w->n;
}

static struct runtime *client(struct event_base *base, const struct fake *f, uint64_t timeout_us)
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
	struct fake *f = fake_start(answers, ARRAY_SIZE(answers));
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	if (r.err < 0)
		FAIL("exec failed: %s", r.message);
	ASSERT_EQ_U(r.exit_code, 3);
	ASSERT_EQ_U(r.calls, 1);
	ASSERT_EQ_U(fake_count(f), 6);
}

TEST(test_exec_that_never_ends_times_out_within_its_timeout)
{
	static const char *const answers[] = {CREATED, STARTED, STILL_RUNNING};
	struct fake *f = fake_start(answers, ARRAY_SIZE(answers));
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
	unsigned n = fake_count(f);
	fprintf(stderr, "%u inspects in %llu ms\n", n - 2, (unsigned long long)took);
	ASSERT_GE_U(n, 2 + 4);
	ASSERT_TRUE(n < 2 + 60);
}

TEST(test_exec_cancelled_while_polled_makes_no_more_calls)
{
	static const char *const answers[] = {CREATED, STARTED, STILL_RUNNING};
	struct fake *f = fake_start(answers, ARRAY_SIZE(answers));
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	struct served_at_least w = {f, 5};
	evloop_run_until(base, served_enough, &w, 10000, "three inspects");
	ASSERT_EQ_U(runtime_cancel(rt, &r), 1);
	unsigned at_cancel = fake_count(f);
	/* Long past the poll's longest step (100 ms): nothing more. */
	struct served_at_least never = {f, at_cancel + 2};
	uint64_t until = test_now_ms() + 400;
	while (test_now_ms() < until) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(2000);
	}
	ASSERT_TRUE(!served_enough(&never));
	ASSERT_EQ_U(r.calls, 0);
}

TEST(test_exec_and_wait_answers_that_are_not_the_json_expected)
{
	static const char *const no_id[] = {JSON_ANSWER("201 Created", "2\r\n\r\n{}")};
	struct fake *f = fake_start(no_id, 1);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 2000000);
	struct res r = {0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	ASSERT_ERR(r.err, EBADMSG);
	ASSERT_CONTAINS(r.message, "/containers/web/exec");

	static const char *const bad_inspect[] = {CREATED, STARTED,
						  JSON_ANSWER("200 OK", "5\r\n\r\nhello")};
	f = fake_start(bad_inspect, ARRAY_SIZE(bad_inspect));
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
	f = fake_start(refused, ARRAY_SIZE(refused));
	rt = client(base, f, 2000000);
	r = (struct res){0};
	ASSERT_OK(runtime_exec(rt, "web", true_argv, 1, 0, on_code, &r));
	evloop_run_until(base, called, &r, 10000, "the exec's answer");
	ASSERT_ERR(r.err, EIO);
	ASSERT_CONTAINS(r.message, "can only create exec sessions");

	static const char *const bad_wait[] = {
	    JSON_ANSWER("200 OK", "15\r\n\r\n{\"Error\":null}\n")};
	f = fake_start(bad_wait, 1);
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
	struct fake *f = fake_start(answers, ARRAY_SIZE(answers));
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
