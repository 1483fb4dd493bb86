// SPDX-License-Identifier: MIT
/*
 * The control socket as a file and a door: where it is made, its mode and
 * group, stale and live sockets at its path, socket activation, and the
 * SO_PEERCRED check against a process of another uid.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "capture.h"
#include "child_run.h"
#include "control_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS	    5000
#define NOBODY	    65534
#define OTHER_GROUP 4242

/* In a child: become uid NOBODY (gid, groups as given), connect, and report the first line. */
static pid_t spawn_foreign_client(const char *path, gid_t gid, gid_t supplementary, int out_fd)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	gid_t groups[1] = {supplementary};
	if (setgroups(supplementary ? 1 : 0, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) < 0)
		_exit(10);
	int fd = lineclient_connect_fd(path);
	if (fd < 0)
		_exit(11);
	const char req[] = "{\"cmd\":\"echo\"}\n";
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
		/* refused clients may be closed before the request goes out */
	}
	char buf[512];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	if (write(out_fd, buf, len) < 0)
		_exit(12);
	_exit(0);
}

/* The first line a foreign client (uid NOBODY) receives. */
static char *foreign_client_line(struct control_fixture *f, gid_t gid, gid_t supplementary)
{
	if (geteuid() != 0)
		test_skip("switching to another uid needs root");
	/* The socket and its directory must be reachable for uid NOBODY. */
	if (chmod(f->dir, 0755) < 0)
		FAIL("chmod %s: %s", f->dir, strerror(errno));
	int pipefd[2];
	if (pipe(pipefd) < 0)
		FAIL("pipe: %s", strerror(errno));
	struct child_run w = {.pid = spawn_foreign_client(f->path, gid, supplementary, pipefd[1])};
	close(pipefd[1]);
	evloop_run_until(f->base, child_run_exited, &w, WAIT_MS, "the foreign client to finish");
	char buf[512] = {0};
	ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
	close(pipefd[0]);
	if (!WIFEXITED(w.status) || WEXITSTATUS(w.status) != 0)
		FAIL("the foreign client failed (status %d)", w.status);
	buf[n > 0 ? n : 0] = '\0';
	return strdup(buf);
}

TEST(test_peer_with_another_uid_is_refused)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.mode = 0666;
	control_fixture_start(f, NULL, NULL);
	_cleanup_free_ char *line = foreign_client_line(f, NOBODY, 0);
	ASSERT_CONTAINS(line, "{\"ok\":false,\"error\":\"permission denied: uid 65534");
	ASSERT_EQ_U(control_fixture_counters(f).rejected_peer, 1);
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_peer_in_the_socket_group_is_allowed)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.gid = OTHER_GROUP;
	control_fixture_start(f, NULL, NULL);
	_cleanup_free_ char *primary = foreign_client_line(f, OTHER_GROUP, 0);
	ASSERT_CONTAINS(primary, "{\"ok\":true");
	_cleanup_free_ char *supplementary = foreign_client_line(f, NOBODY, OTHER_GROUP);
	ASSERT_CONTAINS(supplementary, "{\"ok\":true");
	ASSERT_EQ_U(control_fixture_counters(f).rejected_peer, 0);
}

TEST(test_socket_gets_its_mode_group_and_parent_directory)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	if (geteuid() != 0)
		test_skip("giving the socket a group we are not in needs root");
	snprintf(f->path, sizeof(f->path), "%s/run/dozed/control.sock", f->dir);
	f->cfg.gid = OTHER_GROUP;
	control_fixture_start(f, NULL, NULL);
	struct stat st;
	ASSERT_OK(stat(f->path, &st));
	ASSERT_TRUE(S_ISSOCK(st.st_mode));
	ASSERT_EQ_U(st.st_mode & 07777, 0660);
	ASSERT_EQ_U(st.st_gid, OTHER_GROUP);
	char parent[160];
	snprintf(parent, sizeof(parent), "%s/run/dozed", f->dir);
	ASSERT_OK(stat(parent, &st));
	ASSERT_EQ_U(st.st_mode & 07777, 0755);

	control_free(f->ctl);
	f->ctl = NULL;
	ASSERT_ERR(access(f->path, F_OK) < 0 ? -errno : 0, ENOENT);
}

static void bind_stale_socket(const char *path)
{
	struct sockaddr_un sa = lineclient_sockaddr(path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FAIL("binding %s: %s", path, strerror(errno));
	close(fd); /* the file stays, with nobody behind it */
}

TEST(test_stale_socket_file_is_replaced)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	bind_stale_socket(f->path);
	control_fixture_start(f, NULL, NULL);
	control_fixture_assert_serves(f);
}

TEST(test_live_socket_is_not_stolen)
{
	struct control_fixture *f = control_fixture_new();
	struct control *second = NULL;
	ASSERT_ERR(control_new(f->base, &f->cfg, control_fixture_handler, f, &second), EADDRINUSE);
	ASSERT_TRUE(second == NULL);
	control_fixture_assert_serves(f);
}

TEST(test_path_that_is_not_a_socket_is_refused)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	int fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	ASSERT_OK(fd);
	close(fd);
	ASSERT_ERR(control_new(f->base, &f->cfg, control_fixture_handler, f, &f->ctl), EEXIST);
	ASSERT_OK(access(f->path, F_OK));
}

TEST(test_socket_activated_fd_serves_and_its_file_is_left_alone)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	struct sockaddr_un sa = lineclient_sockaddr(f->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(fd, 16));
	ASSERT_OK(control_new_from_fd(f->base, fd, &f->cfg, control_fixture_handler, f, &f->ctl));
	control_fixture_assert_serves(f);
	control_free(f->ctl);
	f->ctl = NULL;
	ASSERT_OK(access(f->path, F_OK));
}

TEST(test_fd_that_does_not_listen_is_refused)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	ASSERT_ERR(control_new_from_fd(f->base, fd, &f->cfg, control_fixture_handler, f, &f->ctl),
		   EINVAL);
	/* It was taken and closed. */
	ASSERT_TRUE(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

/* In a child of uid NOBODY, primary group OTHER_GROUP: n idle connections, held until released. */
struct holder {
	pid_t pid;
	int release; /* closing it ends the child */
};

/* Ends the child, which closes its connections. */
static void holder_stop(struct holder *h)
{
	if (h->release >= 0)
		close(h->release);
	h->release = -1;
	if (h->pid > 0)
		waitpid(h->pid, NULL, 0);
	h->pid = 0;
}

static void holder_free(void *arg)
{
	holder_stop(arg);
	free(arg);
}

static struct holder *spawn_foreign_holder(struct control_fixture *f, unsigned n)
{
	if (geteuid() != 0)
		test_skip("switching to another uid needs root");
	if (chmod(f->dir, 0755) < 0)
		FAIL("chmod %s: %s", f->dir, strerror(errno));
	int ready[2], release[2];
	if (pipe(ready) < 0 || pipe(release) < 0)
		FAIL("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		close(release[1]);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(OTHER_GROUP, OTHER_GROUP, OTHER_GROUP) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(10);
		unsigned opened = 0;
		while (opened < n && lineclient_connect_fd(f->path) >= 0)
			opened++;
		if (write(ready[1], &opened, sizeof(opened)) != sizeof(opened))
			_exit(12);
		char c;
		while (read(release[0], &c, 1) > 0) {
		}
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	struct holder *h = calloc(1, sizeof(*h));
	if (!h)
		FAIL("out of memory");
	h->pid = pid;
	h->release = release[1];
	test_defer(holder_free, h);
	unsigned opened = 0;
	ssize_t got = read(ready[0], &opened, sizeof(opened));
	close(ready[0]);
	if (got != sizeof(opened) || opened != n)
		FAIL("the foreign holder opened %u of %u connections", opened, n);
	return h;
}

struct clients_wait {
	struct control_fixture *f;
	uint64_t n;
};

static void close_fds(void *arg)
{
	int *fds = arg;
	for (size_t i = 0; fds[i] >= 0; i++)
		close(fds[i]);
	free(fds);
}

/* n idle connections of this (root) process, closed when the test ends. */
static void open_idle(struct control_fixture *f, unsigned n)
{
	int *fds = malloc((n + 1) * sizeof(int));
	if (!fds)
		FAIL("out of memory");
	for (unsigned i = 0; i < n; i++) {
		fds[i] = lineclient_connect_fd(f->path);
		if (fds[i] < 0)
			FAIL("connect %s: %s", f->path, strerror(-fds[i]));
	}
	fds[n] = -1;
	test_defer(close_fds, fds);
}

TEST(test_clients_over_the_limit_are_refused_but_root_gets_its_reserve)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.max_clients = 2;
	f->cfg.gid = OTHER_GROUP;
	control_fixture_start(f, NULL, NULL);
	spawn_foreign_holder(f, 2);
	control_fixture_wait_clients(f, 2, "the foreign clients to connect");
	/* A third client of the same group is refused... */
	_cleanup_free_ char *refused = foreign_client_line(f, OTHER_GROUP, 0);
	ASSERT_STREQ(refused, "{\"ok\":false,\"error\":\"too many control clients (limit 2)\"}\n");
	ASSERT_EQ_U(control_fixture_counters(f).rejected_full, 1);
	/* ...root is not: its reserve is beyond the limit. */
	struct lineclient *root[CONTROL_ROOT_RESERVE];
	for (size_t i = 0; i < ARRAY_SIZE(root); i++) {
		root[i] = control_fixture_connect(f);
		_cleanup_free_ char *r = lineclient_request(root[i], "{\"cmd\":\"echo\"}\n");
		ASSERT_CONTAINS(r, "\"ok\":true");
	}
	ASSERT_EQ_U(control_fixture_counters(f).clients_now, 2 + CONTROL_ROOT_RESERVE);
	ASSERT_EQ_U(control_fixture_counters(f).evicted, 0);
}

TEST(test_root_gets_in_when_idle_clients_fill_the_socket)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.gid = OTHER_GROUP;
	control_fixture_start(f, NULL, NULL);
	/* The default limit, filled by a member of the group, then root's reserve by root. */
	spawn_foreign_holder(f, CONTROL_MAX_CLIENTS_DEFAULT);
	control_fixture_wait_clients(f, CONTROL_MAX_CLIENTS_DEFAULT,
				     "256 foreign clients to connect");
	open_idle(f, CONTROL_ROOT_RESERVE + 8);
	/* Each of root's past the reserve took the slot of the idlest foreign client. */
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
	ASSERT_EQ_U(control_fixture_counters(f).evicted, 9);
	ASSERT_EQ_U(control_fixture_counters(f).clients_now,
		    CONTROL_MAX_CLIENTS_DEFAULT + CONTROL_ROOT_RESERVE);
}

TEST(test_root_gets_in_when_root_fills_the_socket)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.max_clients = 16;
	control_fixture_start(f, NULL, NULL);
	struct lineclient *oldest = control_fixture_connect(f);
	_cleanup_free_ char *first = lineclient_request(oldest, "{\"cmd\":\"echo\"}\n");
	open_idle(f, 16 + CONTROL_ROOT_RESERVE - 1);
	control_fixture_wait_clients(f, 16 + CONTROL_ROOT_RESERVE, "the socket to fill");
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
	/* The one idle longest made room, and was told why. */
	_cleanup_free_ char *why = lineclient_read_line(oldest);
	ASSERT_STREQ(why, "{\"ok\":false,\"error\":\"closed: the control socket is full and "
			  "root needed a slot\"}");
	lineclient_assert_closed(oldest);
	ASSERT_EQ_U(control_fixture_counters(f).evicted, 1);
}

static bool idle_closed_at_least(void *arg)
{
	struct clients_wait *w = arg;
	return control_fixture_counters(w->f).idle_closed >= w->n;
}

TEST(test_idle_clients_of_root_and_of_the_group_are_closed_after_the_timeout)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.gid = OTHER_GROUP;
	f->cfg.idle_timeout_us = 300 * 1000;
	control_fixture_start(f, NULL, NULL);
	spawn_foreign_holder(f, 20);
	open_idle(f, 20);
	/* Waited for as a count: under load, the first may be closed before the last is in. */
	struct clients_wait w = {.f = f, .n = 40};
	evloop_run_until(f->base, idle_closed_at_least, &w, WAIT_MS, "40 idle clients closed");
	ASSERT_EQ_U(control_fixture_counters(f).clients_now, 0);
	ASSERT_EQ_U(control_fixture_counters(f).rejected_full, 0);
	control_fixture_assert_serves(f);
}

static unsigned open_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		FAIL("opendir /proc/self/fd: %s", strerror(errno));
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool fds_back(void *arg)
{
	return open_fds() == *(unsigned *)arg;
}

static bool accepted_at_least(void *arg)
{
	struct clients_wait *w = arg;
	return control_fixture_counters(w->f).accepted >= w->n;
}

TEST(test_a_thousand_connections_leave_no_descriptor_behind)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.gid = OTHER_GROUP;
	control_fixture_start(f, NULL, NULL);
	unsigned fds_before = open_fds();
	capture_stderr_begin();

	/* A group member's thousand: the limit's worth stay, the rest are refused. */
	struct holder *h = spawn_foreign_holder(f, 1000);
	struct clients_wait w = {.f = f, .n = 1000};
	evloop_run_until(f->base, accepted_at_least, &w, WAIT_MS, "1000 foreign connections");
	ASSERT_EQ_U(control_fixture_counters(f).clients_now, CONTROL_MAX_CLIENTS_DEFAULT);
	ASSERT_EQ_U(control_fixture_counters(f).rejected_full, 1000 - CONTROL_MAX_CLIENTS_DEFAULT);

	/* Root's thousand: each past its reserve takes the slot of the idlest. */
	int fds[1000];
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		fds[i] = lineclient_connect_fd(f->path);
		if (fds[i] < 0)
			FAIL("connect %s: %s", f->path, strerror(-fds[i]));
	}
	w.n = 2000;
	evloop_run_until(f->base, accepted_at_least, &w, WAIT_MS, "1000 root connections");
	ASSERT_EQ_U(control_fixture_counters(f).clients_now,
		    CONTROL_MAX_CLIENTS_DEFAULT + CONTROL_ROOT_RESERVE);
	/* 744 refused and 740 evicted, told in a line a second, not 1 484. */
	_cleanup_free_ char *log = capture_stderr_end();
	unsigned lines = 0;
	for (const char *p = log; (p = strstr(p, "dozed warning:")); p++)
		lines++;
	if (lines == 0 || lines > 10)
		FAIL("%u warnings for 1484 refused or evicted clients, expected 1 a second", lines);

	uint64_t start = test_now_ms();
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
	printf("  a fresh request among 2000 connections: answered in %llu ms\n",
	       (unsigned long long)(test_now_ms() - start));

	lineclient_close(c);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	holder_stop(h);
	control_fixture_wait_clients(f, 0, "every connection to be closed");
	evloop_run_until(f->base, fds_back, &fds_before, WAIT_MS,
			 "the server's descriptors to be back to their number before");
}
