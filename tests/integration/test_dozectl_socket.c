// SPDX-License-Identifier: MIT
/*
 * dozectl and its socket (tests/lib/dozectl_fixture.h's fake daemon): a
 * daemon it cannot reach, DOZED_CONTROL, a refused peer, a socket full of
 * idle clients, a connection closed without a reply, and the event stream.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "child_run.h"
#include "control_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "dozectl_fixture.h"
#include "json_fixture.h"
#include "lineclient.h"

TEST(test_unreachable_daemon_exits_3_naming_the_socket)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	char missing[160], want[256];
	snprintf(missing, sizeof(missing), "%s/nothing.sock", f->cf->dir);
	struct dozectl_result *r = DOZECTL_RUN(f, "--control", missing, "list");
	dozectl_assert_exit(r, 3);
	snprintf(want, sizeof(want),
		 "dozectl: cannot connect to %s: No such file or directory (is dozed running?)\n",
		 missing);
	ASSERT_STREQ(r->err, want);
}

TEST(test_control_path_comes_from_DOZED_CONTROL)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r =
	    dozectl_fixture_run(f, f->cf->path, (const char *const[]){"list", NULL});
	dozectl_assert_exit(r, 0);
	ASSERT_EQ_U(f->requests, 1);
	/* --control wins over it. */
	r = dozectl_fixture_run(f, "/nonexistent/env.sock",
				(const char *const[]){"--control", f->cf->path, "list", NULL});
	dozectl_assert_exit(r, 0);
	ASSERT_EQ_U(f->requests, 2);
	r = dozectl_fixture_run(f, "/nonexistent/env.sock", (const char *const[]){"list", NULL});
	dozectl_assert_exit(r, 3);
	ASSERT_CONTAINS(r->err, "cannot connect to /nonexistent/env.sock");
}

TEST(test_refused_peer_gets_the_daemons_reason_not_a_broken_pipe)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	if (geteuid() != 0)
		test_skip("running dozectl as another uid needs root");
	/* Reachable for uid 65534, which is neither root nor in a socket group. */
	if (chmod(f->cf->dir, 0755) < 0 || chmod(f->cf->path, 0666) < 0)
		FAIL("chmod %s: %s", f->cf->path, strerror(errno));
	f->run_as = 65534;
	/* Refused before or after its request went out: the same message either way. */
	for (int i = 0; i < 20; i++) {
		struct dozectl_result *r = DOZECTL_RUN(f, "list");
		dozectl_assert_exit(r, 1);
		ASSERT_STREQ(r->err, "dozectl: permission denied: uid 65534 is not root, dozed's "
				     "user or in the control socket's group\n");
	}
	ASSERT_EQ_U(f->requests, 0);
}

static void close_fd(void *arg)
{
	close((int)(intptr_t)arg);
}

#define N_IDLE (CONTROL_MAX_CLIENTS_DEFAULT + CONTROL_ROOT_RESERVE + 10)

static void close_all(void *arg)
{
	int *fds = arg;
	for (int i = 0; i < N_IDLE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

TEST(test_list_answers_when_idle_connections_fill_the_socket)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	/* More idle connections than the limit and root's reserve together. */
	int *fds = malloc(N_IDLE * sizeof(int));
	if (!fds)
		FAIL("out of memory");
	memset(fds, -1, N_IDLE * sizeof(int));
	test_defer(close_all, fds);
	for (int i = 0; i < N_IDLE; i++) {
		fds[i] = lineclient_connect_fd(f->cf->path);
		if (fds[i] < 0)
			FAIL("connect %s: %s", f->cf->path, strerror(-fds[i]));
	}
	struct dozectl_result *r = DOZECTL_RUN(f, "list");
	dozectl_assert_exit(r, 0);
	ASSERT_CONTAINS(r->out, "postgres-main  asleep");
	ASSERT_STREQ(r->err, "");
}

TEST(test_connection_closed_without_a_reply_exits_3)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	char path[160];
	snprintf(path, sizeof(path), "%s/mute.sock", f->cf->dir);
	struct sockaddr_un sa = lineclient_sockaddr(path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(lfd);
	test_defer(close_fd, (void *)(intptr_t)lfd);
	ASSERT_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(lfd, 4));

	int out = dozectl_fixture_output(f, "stdout"), err = dozectl_fixture_output(f, "stderr");
	struct child_run c = {
	    .pid = dozectl_fixture_spawn(f, (const char *const[]){"--control", path, "list", NULL},
					 NULL, out, err)};
	int cfd = accept(lfd, NULL, NULL);
	ASSERT_OK(cfd);
	char buf[256];
	ASSERT_TRUE(read(cfd, buf, sizeof(buf)) > 0);
	close(cfd);
	evloop_run_until(f->cf->base, child_run_exited, &c, DOZECTL_WAIT_MS, "dozectl to exit");
	ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3);
	_cleanup_free_ char *text = child_run_output(err);
	ASSERT_CONTAINS(text, "dozectl: dozed closed the connection");
	close(out);
	close(err);
}

TEST(test_events_prints_the_history_one_line_each)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct dozectl_result *r = DOZECTL_RUN(f, "events");
	dozectl_assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"events\",\"follow\":false}");
	ASSERT_STREQ(r->out, "2026-11-24T22:58:00.123Z web sleep idle=2s egress_bytes=1234 "
			     "egress_packets=7\n");

	r = DOZECTL_RUN(f, "events", "--json");
	dozectl_assert_exit(r, 0);
	struct json_object *want = json_fixture_parse(SLEEP_EVENT);
	char expected[1024];
	snprintf(expected, sizeof(expected), "%s\n", dozectl_fixture_plain(want));
	json_object_put(want);
	ASSERT_STREQ(r->out, expected);
}

struct follow_wait {
	int fd;
	const char *needle;
};

static bool output_contains(void *arg)
{
	struct follow_wait *w = arg;
	_cleanup_free_ char *text = child_run_output(w->fd);
	return strstr(text, w->needle) != NULL;
}

static void kill_child(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void follow_and_receive(struct dozectl_fixture *f, bool json, const char *history_line,
			       const char *event_line)
{
	int out = dozectl_fixture_output(f, json ? "follow-json" : "follow"),
	    err = dozectl_fixture_output(f, "stderr");
	const char *const args[] = {
	    "--control", f->cf->path, "events", "--follow", json ? "--json" : NULL, NULL};
	pid_t pid = dozectl_fixture_spawn(f, args, NULL, out, err);
	test_defer(kill_child, (void *)(intptr_t)pid);

	struct follow_wait w = {.fd = out, .needle = history_line};
	evloop_run_until(f->cf->base, output_contains, &w, DOZECTL_WAIT_MS,
			 "the history from dozectl");
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"events\",\"follow\":true}");
	ASSERT_TRUE(f->subscribed);

	struct json_object *e = json_fixture_parse(READY_EVENT);
	control_broadcast(f->cf->ctl, e);
	json_object_put(e);
	w.needle = event_line;
	evloop_run_until(f->cf->base, output_contains, &w, DOZECTL_WAIT_MS,
			 "the followed event from dozectl");
	close(out);
	close(err);
}

TEST(test_events_follow_prints_broadcasts_as_they_come)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	follow_and_receive(f, false, "2026-11-24T22:58:00.123Z web sleep idle=2s",
			   "2026-11-24T22:58:05.000Z web ready start=300ms probe=1223ms "
			   "total=1523ms\n");
}

TEST(test_events_follow_json_prints_one_object_per_line)
{
	struct dozectl_fixture *f = dozectl_fixture_new();
	struct json_object *history = json_fixture_parse(SLEEP_EVENT),
			   *ready = json_fixture_parse(READY_EVENT);
	char history_line[1024], ready_line[1024];
	snprintf(history_line, sizeof(history_line), "%s\n", dozectl_fixture_plain(history));
	snprintf(ready_line, sizeof(ready_line), "\n%s\n", dozectl_fixture_plain(ready));
	json_object_put(history);
	json_object_put(ready);
	follow_and_receive(f, true, history_line, ready_line);
}
