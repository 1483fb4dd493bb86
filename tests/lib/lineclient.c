// SPDX-License-Identifier: MIT
#include "lineclient.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"
#include "harness.h"

#define WAIT_MS 5000

static void remove_tree(void *arg)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)arg);
	if (system(cmd) != 0)
		fprintf(stderr, "lineclient: cannot remove %s\n", (char *)arg);
	free(arg);
}

char *lineclient_tmpdir(const char *prefix)
{
	char *dir = malloc(strlen(prefix) + 16);
	if (!dir)
		FAIL("out of memory");
	sprintf(dir, "/tmp/%s.XXXXXX", prefix);
	if (!mkdtemp(dir))
		FAIL("mkdtemp %s: %s", dir, strerror(errno));
	char *copy = strdup(dir);
	if (!copy)
		FAIL("out of memory");
	test_defer(remove_tree, copy);
	return dir;
}

struct sockaddr_un lineclient_sockaddr(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		FAIL("socket path too long: %s", path);
	memcpy(sa.sun_path, path, len + 1);
	return sa;
}

int lineclient_connect_fd(const char *path)
{
	struct sockaddr_un sa = lineclient_sockaddr(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void lineclient_free(void *arg)
{
	struct lineclient *c = arg;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

struct lineclient *lineclient_open(struct event_base *base, const char *path)
{
	struct lineclient *c = calloc(1, sizeof(*c));
	if (!c)
		FAIL("out of memory");
	c->base = base;
	c->fd = lineclient_connect_fd(path);
	if (c->fd < 0) {
		int r = c->fd;
		free(c);
		FAIL("connect to %s: %s", path, strerror(-r));
	}
	test_defer(lineclient_free, c);
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
		FAIL("fcntl: %s", strerror(errno));
	return c;
}

void lineclient_close(struct lineclient *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Reads what is there; true when a line, EOF or an error is in. */
static bool fill(void *arg)
{
	struct lineclient *c = arg;
	while (!c->eof && c->len < sizeof(c->buf)) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN) {
			c->eof = true;
			c->err = errno;
		}
		break;
	}
	return c->eof || memchr(c->buf, '\n', c->len);
}

char *lineclient_read_line(struct lineclient *c)
{
	evloop_run_until(c->base, fill, c, WAIT_MS, "a line from the server");
	char *nl = memchr(c->buf, '\n', c->len);
	if (!nl)
		return NULL;
	size_t n = (size_t)(nl - c->buf);
	char *line = strndup(c->buf, n);
	if (!line)
		FAIL("out of memory");
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	return line;
}

struct send_state {
	struct lineclient *c;
	const char *data;
	size_t len, off;
	bool broken;
};

static bool send_some(void *arg)
{
	struct send_state *s = arg;
	while (s->off < s->len) {
		ssize_t n = send(s->c->fd, s->data + s->off, s->len - s->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				return false;
			s->broken = true;
			return true;
		}
		s->off += (size_t)n;
	}
	return true;
}

bool lineclient_send(struct lineclient *c, const char *data, size_t len)
{
	struct send_state s = {.c = c, .data = data, .len = len};
	evloop_run_until(c->base, send_some, &s, WAIT_MS, "sending to the server");
	return !s.broken;
}

char *lineclient_request(struct lineclient *c, const char *line)
{
	if (!lineclient_send(c, line, strlen(line)))
		FAIL("the server closed the connection while sending %s", line);
	char *reply = lineclient_read_line(c);
	if (!reply)
		FAIL("no reply to %s", line);
	return reply;
}

void lineclient_assert_closed(struct lineclient *c)
{
	char *line;
	while ((line = lineclient_read_line(c)))
		free(line);
	if (!c->eof)
		FAIL("the server did not close the connection");
}

bool lineclient_silent_for(struct lineclient *c, unsigned ms)
{
	/* A loopexit left pending by an earlier wait may end a dispatch early: run again
	 * until the whole time has passed. */
	uint64_t end = test_now_ms() + ms;
	for (uint64_t now = test_now_ms(); now < end; now = test_now_ms()) {
		uint64_t left = end - now;
		struct timeval tv = {.tv_sec = (time_t)(left / 1000),
				     .tv_usec = (suseconds_t)(left % 1000) * 1000};
		event_base_loopexit(c->base, &tv);
		event_base_dispatch(c->base);
	}
	fill(c);
	return c->len == 0 && !c->eof;
}
