/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dozectl's connection to dozed's control socket. Each function says what
 * went wrong on stderr itself and returns minus the exit code dozectl ends
 * with (-DOZECTL_EXIT_UNREACHABLE...), so the caller only passes it on.
 */

#include <stdio.h>

struct json_object;

#define DOZECTL_EXIT_OK		 0
#define DOZECTL_EXIT_REFUSED	 1 /* the daemon said no */
#define DOZECTL_EXIT_USAGE	 2
#define DOZECTL_EXIT_UNREACHABLE 3 /* cannot reach the daemon */
/* How long dozectl waits for each reply line. */
#define DOZECTL_REPLY_TIMEOUT_S 60

struct dozectl_conn {
	const char *path; /* borrowed */
	int fd;
	FILE *in; /* owns fd once opened */
};

/* Connects to path, with DOZECTL_REPLY_TIMEOUT_S on each read and write.
 * Close it with dozectl_conn_close even on failure. */
int dozectl_conn_open(struct dozectl_conn *c, const char *path);
void dozectl_conn_close(struct dozectl_conn *c);
/* Sends req as one line. -EPIPE: dozed closed the socket, and the line it
 * sent before (why) is still to be read. */
int dozectl_conn_send(struct dozectl_conn *c, struct json_object *req);
/* The next line as a JSON object (owned by the caller), its text in *text
 * (malloc'd) unless text is NULL. */
int dozectl_conn_read(struct dozectl_conn *c, struct json_object **out, char **text);
