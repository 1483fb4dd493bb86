// SPDX-License-Identifier: MIT
/*
 * --metrics-listen in the real dozed binary, and the metrics over the control
 * socket: a taken port or a bad address stops dozed at start-up, naming the
 * address and the reason; a free one serves /metrics; the control command
 * "metrics" and "dozectl metrics" give the same text. dozed runs in this
 * test's private network namespace (its nft table, activator port and
 * loopback are that namespace's), with its control socket, state and config
 * in the test's directory and a runtime socket nothing listens on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "dozed/metrics_http.h"
#include "child_run.h"
#include "control_fixture.h"
#include "daemon_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"
#include "netns.h"

#define WAIT_MS 20000

struct run {
	char dir[PATH_MAX];
	pid_t pid;
	int status;
	int out; /* stdout and stderr, one file */
};

/* $(BUILD)/NAME, beside $(BUILD)/tests/integration/ where this test is. */
static void built(const char *name, char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		FAIL("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	snprintf(out, len, "%s/../../%s", dirname(self), name);
	if (access(out, X_OK) < 0)
		FAIL("%s is not at %s (%s): build it first (make BUILD=<dir> <dir>/%s)", name, out,
		     strerror(errno), name);
}

static void run_kill(void *arg)
{
	struct run *r = arg;
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
}

/* dozed with its own everything and metrics_listen, started in the background. */
static struct run *dozed_start(const char *metrics_listen)
{
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		FAIL("out of memory");
	test_defer(free, r);
	char *dir = lineclient_tmpdir("dozed-metrics");
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	free(dir);
	char dozed[PATH_MAX], conf[PATH_MAX + 16], control[PATH_MAX + 16], state[PATH_MAX + 16],
	    runtime[PATH_MAX + 16], out[PATH_MAX + 16];
	built("dozed", dozed, sizeof(dozed));
	snprintf(conf, sizeof(conf), "%s/dozed.conf", r->dir);
	snprintf(control, sizeof(control), "%s/control.sock", r->dir);
	snprintf(state, sizeof(state), "%s/state", r->dir);
	snprintf(runtime, sizeof(runtime), "%s/no-runtime.sock", r->dir);
	snprintf(out, sizeof(out), "%s/output", r->dir);
	int fd = open(conf, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || close(fd) < 0 || mkdir(state, 0700) < 0)
		FAIL("cannot prepare %s: %s", r->dir, strerror(errno));
	r->out = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (r->out < 0)
		FAIL("open %s: %s", out, strerror(errno));
	test_defer_close(r->out);
	const char *argv[] = {"dozed",
			      "--config",
			      conf,
			      "--control",
			      control,
			      "--state-dir",
			      state,
			      "--runtime-socket",
			      runtime,
			      "--nft-table",
			      "dozed_test_metrics",
			      "--activator-port",
			      "15991",
			      "--metrics-listen",
			      metrics_listen,
			      NULL};
	fflush(NULL);
	r->pid = fork();
	if (r->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (r->pid == 0) {
		if (dup2(r->out, STDOUT_FILENO) < 0 || dup2(r->out, STDERR_FILENO) < 0)
			_exit(127);
		unsetenv("JOURNAL_STREAM");
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("DOCKER_HOST");
		execv(dozed, (char *const *)argv);
		_exit(127);
	}
	test_defer(run_kill, r);
	return r;
}

/* Its exit status, once it has exited; fails the test if it does not. */
static int dozed_wait_exit(struct run *r)
{
	for (uint64_t end = test_now_ms() + WAIT_MS; test_now_ms() < end; usleep(2000))
		if (waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
			r->pid = 0;
			return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128;
		}
	_cleanup_free_ char *text = child_run_output(r->out);
	FAIL("dozed did not exit within %d ms; it said: %s", WAIT_MS, text);
}

/* What dozed said, once it has exited; fails the test if it exited 0. */
static char *dozed_failed_output(struct run *r)
{
	int status = dozed_wait_exit(r);
	char *text = child_run_output(r->out);
	if (status == 0)
		FAIL("dozed exited 0; it said: %s", text);
	return text;
}

/* Takes addr:port with a listening socket, for the test's life. */
static void take_port(const char *ip, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		FAIL("cannot take %s:%u: %s", ip, port, strerror(errno));
	test_defer_close(fd);
}

TEST(test_dozed_with_a_taken_metrics_port_exits_naming_the_address_and_the_reason)
{
	ASSERT_OK(netns_enter_private());
	take_port("127.0.0.1", 9321);
	struct run *r = dozed_start("127.0.0.1:9321");
	_cleanup_free_ char *text = dozed_failed_output(r);
	ASSERT_CONTAINS(text, "127.0.0.1:9321");
	ASSERT_CONTAINS(text, "Address already in use");
	ASSERT_CONTAINS(text, "metrics-listen another port");
	/* Stopped before the rest: no control socket was made. */
	char control[PATH_MAX + 16];
	snprintf(control, sizeof(control), "%s/control.sock", r->dir);
	ASSERT_TRUE(access(control, F_OK) < 0);
}

TEST(test_dozed_with_an_address_not_on_this_host_exits_naming_it)
{
	ASSERT_OK(netns_enter_private());
	struct run *r = dozed_start("192.0.2.1:9321");
	_cleanup_free_ char *text = dozed_failed_output(r);
	ASSERT_CONTAINS(text, "192.0.2.1:9321");
	ASSERT_CONTAINS(text, strerror(EADDRNOTAVAIL));
}

TEST(test_dozed_with_a_bad_metrics_address_exits_2_saying_what_is_expected)
{
	ASSERT_OK(netns_enter_private());
	struct run *r = dozed_start("localhost:9321");
	ASSERT_EQ_U(dozed_wait_exit(r), 2);
	_cleanup_free_ char *text = child_run_output(r->out);
	ASSERT_CONTAINS(text, "--metrics-listen localhost:9321: localhost is not an IPv4 address; "
			      "expected ADDR:PORT with a numeric address");
}

/* One GET /metrics from this process: the status line and headers, or "". */
static char *http_get_head(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 10};
	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char *buf = calloc(1, 65536);
	if (!buf)
		FAIL("out of memory");
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1)) {
		size_t len = 0;
		ssize_t n;
		while (len < 65535 && (n = recv(fd, buf + len, 65535 - len, 0)) > 0)
			len += (size_t)n;
	}
	close(fd);
	return buf;
}

TEST(test_dozed_serves_metrics_on_its_address_once_started)
{
	ASSERT_OK(netns_enter_private());
	struct run *r = dozed_start("127.0.0.1:9321");
	/* Bound before dozed_new returns: the first connect that succeeds is answered. */
	char *head = NULL;
	for (uint64_t end = test_now_ms() + WAIT_MS; test_now_ms() < end; usleep(5000)) {
		free(head);
		head = http_get_head(9321);
		if (head[0] || waitpid(r->pid, &r->status, WNOHANG) == r->pid)
			break;
	}
	_cleanup_free_ char *text = child_run_output(r->out);
	if (!head || strncmp(head, "HTTP/1.1 200 OK\r\n", 17) != 0)
		FAIL("no 200 from dozed's /metrics: \"%.200s\"; dozed said: %s", head ? head : "",
		     text);
	ASSERT_CONTAINS(head, "Content-Type: " METRICS_HTTP_CONTENT_TYPE "\r\n");
	free(head);
	kill(r->pid, SIGTERM);
	ASSERT_EQ_U(dozed_wait_exit(r), 0);
	_cleanup_free_ char *after = child_run_output(r->out);
	ASSERT_CONTAINS(after, "metrics at http://127.0.0.1:9321/metrics");
}
