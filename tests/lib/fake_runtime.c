// SPDX-License-Identifier: MIT
#include "fake_runtime.h"

#include <errno.h>
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

#include "harness.h"

static void fake_stop(void *arg)
{
	struct fake_runtime *f = arg;
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

/* Gives up when the client is gone (no SIGPIPE: the fake lives on). */
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

struct fake_runtime *fake_runtime_start(const char *const *answers, size_t n, bool keep_open)
{
	struct fake_runtime *f = calloc(1, sizeof(*f));
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
		/* Dies with the test, even one killed by its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (size_t i = 0;; i++) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				_exit(1);
			const char *a = answers[i < n ? i : n - 1];
			if (a) { /* else held open, never answered */
				read_request(fd);
				write_all(fd, a, strlen(a));
				if (!keep_open)
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

unsigned fake_runtime_served(struct fake_runtime *f)
{
	char buf[64];
	ssize_t n;
	while ((n = read(f->served_fd, buf, sizeof(buf))) > 0)
		f->served += (unsigned)n;
	return f->served;
}

bool fake_runtime_served_enough(void *wait)
{
	struct fake_runtime_wait *w = wait;
	return fake_runtime_served(w->f) >= w->want;
}
