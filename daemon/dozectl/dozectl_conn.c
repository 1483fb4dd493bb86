// SPDX-License-Identifier: MIT
/* dozectl's connection to the control socket: one JSON object per line each
 * way, each failure said on stderr once, with what to do about it. */
#include "dozed/dozectl_conn.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "dozed/macro.h"

int dozectl_conn_open(struct dozectl_conn *c, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	c->path = path;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dozectl: control socket path too long: %s\n", path);
		return -DOZECTL_EXIT_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fprintf(stderr, "dozectl: cannot create a socket: %s\n", strerror(errno));
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;
		const char *hint = err == ENOENT || err == ECONNREFUSED ? " (is dozed running?)"
				   : err == EACCES ? " (run as root or as a member of the "
						     "socket's group)"
						   : "";
		fprintf(stderr, "dozectl: cannot connect to %s: %s%s\n", path, strerror(err), hint);
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	struct timeval tv = {.tv_sec = DOZECTL_REPLY_TIMEOUT_S};
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->in = fdopen(c->fd, "r");
	if (!c->in) {
		fprintf(stderr, "dozectl: %s\n", strerror(errno));
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	return 0;
}

void dozectl_conn_close(struct dozectl_conn *c)
{
	if (c->in)
		fclose(c->in);
	else if (c->fd >= 0)
		close(c->fd);
}

int dozectl_conn_send(struct dozectl_conn *c, struct json_object *req)
{
	size_t len = 0;
	const char *s = json_object_to_json_string_length(
	    req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	_cleanup_free_ char *line = s ? malloc(len + 1) : NULL;
	if (!line) {
		fprintf(stderr, "dozectl: out of memory\n");
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	memcpy(line, s, len);
	line[len] = '\n';
	for (size_t off = 0; off <= len;) {
		ssize_t n = send(c->fd, line + off, len + 1 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		/* Closed by dozed, which says why first (a refused peer, a full socket):
		 * the caller reads that line rather than report a broken pipe. */
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return -EPIPE;
		if (n < 0) {
			fprintf(stderr, "dozectl: cannot send to %s: %s\n", c->path,
				strerror(errno));
			return -DOZECTL_EXIT_UNREACHABLE;
		}
		off += (size_t)n;
	}
	return 0;
}

/* The next line as a JSON object (and its text in *text), or -DOZECTL_EXIT_UNREACHABLE. A line
 * that dozed sent before closing is still read: unread data outlives the close. */
int dozectl_conn_read(struct dozectl_conn *c, struct json_object **out, char **text)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	errno = 0;
	ssize_t n = getline(&line, &cap, c->in);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			fprintf(stderr, "dozectl: no answer from %s within %d s\n", c->path,
				DOZECTL_REPLY_TIMEOUT_S);
		else if (errno != 0)
			fprintf(stderr, "dozectl: cannot read from %s: %s\n", c->path,
				strerror(errno));
		else
			fprintf(stderr, "dozectl: dozed closed the connection (%s)\n", c->path);
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	struct json_object *o = json_tokener_parse(line);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		fprintf(stderr, "dozectl: unexpected answer from %s: %.200s\n", c->path, line);
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	*out = o;
	if (text)
		*text = TAKE_PTR(line);
	return 0;
}
