// SPDX-License-Identifier: MIT
/*
 * The control socket as a file and a door: where it is made, its mode and
 * group, stale and live sockets at its path, socket activation, and the
 * SO_PEERCRED check against a process of another uid.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS	    5000
#define NOBODY	    65534
#define OTHER_GROUP 4242

struct fixture {
	struct event_base *base;
	struct control *ctl;
	struct control_config cfg;
	char dir[64];
	char path[128];
	unsigned requests;
};

/* "echo" answers with the request; anything else is an error. */
static void handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct fixture *f = ud;
	f->requests++;
	if (strcmp(cmd, "echo") != 0) {
		control_reply_error(f->ctl, id, "unknown command: %s", cmd);
		return;
	}
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "echo", json_object_get(req));
	control_reply(f->ctl, id, r);
}

static void fixture_free(void *arg)
{
	struct fixture *f = arg;
	control_free(f->ctl);
	event_base_free(f->base);
	free(f);
}

/* A temporary directory and no server yet. */
static struct fixture *fixture_bare(void)
{
	signal(SIGPIPE, SIG_IGN);
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		FAIL("out of memory");
	char *dir = lineclient_tmpdir("dozed-ctl");
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	free(dir);
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->base = event_base_new();
	if (!f->base)
		FAIL("event_base_new failed");
	test_defer(fixture_free, f);
	control_config_defaults(&f->cfg);
	f->cfg.path = f->path;
	return f;
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = fixture_bare();
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	return f;
}

/* The server answers an echo on a new connection. */
static void assert_serves(struct fixture *f)
{
	struct lineclient *c = lineclient_open(f->base, f->path);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
}

static struct control_counters counters(struct fixture *f)
{
	struct control_counters k;
	control_get_counters(f->ctl, &k);
	return k;
}

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

struct child_wait {
	pid_t pid;
	int status;
};

static bool child_exited(void *arg)
{
	struct child_wait *w = arg;
	return waitpid(w->pid, &w->status, WNOHANG) == w->pid;
}

/* The first line a foreign client (uid NOBODY) receives. */
static char *foreign_client_line(struct fixture *f, gid_t gid, gid_t supplementary)
{
	if (geteuid() != 0)
		test_skip("switching to another uid needs root");
	/* The socket and its directory must be reachable for uid NOBODY. */
	if (chmod(f->dir, 0755) < 0)
		FAIL("chmod %s: %s", f->dir, strerror(errno));
	int pipefd[2];
	if (pipe(pipefd) < 0)
		FAIL("pipe: %s", strerror(errno));
	struct child_wait w = {.pid = spawn_foreign_client(f->path, gid, supplementary, pipefd[1])};
	close(pipefd[1]);
	evloop_run_until(f->base, child_exited, &w, WAIT_MS, "the foreign client to finish");
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
	struct fixture *f = fixture_bare();
	f->cfg.mode = 0666;
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	_cleanup_free_ char *line = foreign_client_line(f, NOBODY, 0);
	ASSERT_CONTAINS(line, "{\"ok\":false,\"error\":\"permission denied: uid 65534");
	ASSERT_EQ_U(counters(f).rejected_peer, 1);
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_peer_in_the_socket_group_is_allowed)
{
	struct fixture *f = fixture_bare();
	f->cfg.gid = OTHER_GROUP;
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	_cleanup_free_ char *primary = foreign_client_line(f, OTHER_GROUP, 0);
	ASSERT_CONTAINS(primary, "{\"ok\":true");
	_cleanup_free_ char *supplementary = foreign_client_line(f, NOBODY, OTHER_GROUP);
	ASSERT_CONTAINS(supplementary, "{\"ok\":true");
	ASSERT_EQ_U(counters(f).rejected_peer, 0);
}

TEST(test_socket_gets_its_mode_group_and_parent_directory)
{
	struct fixture *f = fixture_bare();
	if (geteuid() != 0)
		test_skip("giving the socket a group we are not in needs root");
	snprintf(f->path, sizeof(f->path), "%s/run/dozed/control.sock", f->dir);
	f->cfg.gid = OTHER_GROUP;
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
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
	struct fixture *f = fixture_bare();
	bind_stale_socket(f->path);
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	assert_serves(f);
}

TEST(test_live_socket_is_not_stolen)
{
	struct fixture *f = fixture_new();
	struct control *second = NULL;
	ASSERT_ERR(control_new(f->base, &f->cfg, handler, f, &second), EADDRINUSE);
	ASSERT_TRUE(second == NULL);
	assert_serves(f);
}

TEST(test_path_that_is_not_a_socket_is_refused)
{
	struct fixture *f = fixture_bare();
	int fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	ASSERT_OK(fd);
	close(fd);
	ASSERT_ERR(control_new(f->base, &f->cfg, handler, f, &f->ctl), EEXIST);
	ASSERT_OK(access(f->path, F_OK));
}

TEST(test_socket_activated_fd_serves_and_its_file_is_left_alone)
{
	struct fixture *f = fixture_bare();
	struct sockaddr_un sa = lineclient_sockaddr(f->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(fd, 16));
	ASSERT_OK(control_new_from_fd(f->base, fd, &f->cfg, handler, f, &f->ctl));
	assert_serves(f);
	control_free(f->ctl);
	f->ctl = NULL;
	ASSERT_OK(access(f->path, F_OK));
}

TEST(test_fd_that_does_not_listen_is_refused)
{
	struct fixture *f = fixture_bare();
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	ASSERT_ERR(control_new_from_fd(f->base, fd, &f->cfg, handler, f, &f->ctl), EINVAL);
	/* It was taken and closed. */
	ASSERT_TRUE(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

TEST(test_clients_over_the_limit_are_refused)
{
	struct fixture *f = fixture_bare();
	f->cfg.max_clients = 2;
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	struct lineclient *a = lineclient_open(f->base, f->path);
	struct lineclient *b = lineclient_open(f->base, f->path);
	_cleanup_free_ char *ra = lineclient_request(a, "{\"cmd\":\"echo\"}\n");
	_cleanup_free_ char *rb = lineclient_request(b, "{\"cmd\":\"echo\"}\n");
	struct lineclient *c = lineclient_open(f->base, f->path);
	_cleanup_free_ char *rc = lineclient_read_line(c);
	ASSERT_STREQ(rc, "{\"ok\":false,\"error\":\"too many control clients (limit 2)\"}");
	lineclient_assert_closed(c);
	ASSERT_EQ_U(counters(f).rejected_full, 1);
}
