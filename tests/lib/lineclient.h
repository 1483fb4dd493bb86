/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Clients of a line protocol on a unix stream socket, for tests of a server
 * that runs on the test's own libevent base: every wait runs that base, with
 * a deadline, so client and server make progress in one thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

struct event_base;

struct lineclient {
	struct event_base *base;
	int fd;
	size_t len;
	bool eof;
	int err; /* errno of the read that ended it, 0 at a clean EOF */
	char buf[256 * 1024];
};

/* A fresh directory /tmp/PREFIX.XXXXXX (malloc'd), removed with its contents when the test ends. */
char *lineclient_tmpdir(const char *prefix);
/* The address of path; fails the test when it does not fit. */
struct sockaddr_un lineclient_sockaddr(const char *path);
/* A connected blocking socket, or -errno. */
int lineclient_connect_fd(const char *path);

/* Connects (non-blocking) or fails the test; closed and freed when the test ends. */
struct lineclient *lineclient_open(struct event_base *base, const char *path);
/* Closes the connection now. */
void lineclient_close(struct lineclient *c);
/* Sends it all while the base runs; false when the server closed the connection first. */
bool lineclient_send(struct lineclient *c, const char *data, size_t len);
/* The next line (malloc'd, without its newline), or NULL at EOF. Fails the test after 5 s. */
char *lineclient_read_line(struct lineclient *c);
/* Sends line (which ends with '\n') and returns the reply line; fails the test without one. */
char *lineclient_request(struct lineclient *c, const char *line);
/* Reads to EOF (whatever lines were still in flight) and fails the test if it does not come. */
void lineclient_assert_closed(struct lineclient *c);
/* True when nothing arrives while the base runs for ms. */
bool lineclient_silent_for(struct lineclient *c, unsigned ms);
