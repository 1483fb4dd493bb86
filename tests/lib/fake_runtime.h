/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A fake container runtime for the runtime client's tests: a child process on
 * a unix socket in a temporary directory that answers each connection with
 * canned bytes, or not at all. For what a real runtime will not do on demand:
 * hang, cut an answer short, send too much, break a stream in odd ways. It
 * dies with the test (even one killed by its timeout) and is stopped, its
 * socket and directory removed, when the test ends.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fake_runtime {
	char path[108]; /* its API socket */
	char dir[64];
	pid_t pid;
	int served_fd; /* a byte per connection the fake is done with */
	unsigned served;
};

/*
 * Connection i gets answers[min(i, n - 1)] once its request (head and body)
 * is read: NULL never answers; the bytes are sent and the connection closed,
 * or kept open with keep_open (a stream). Fails the test if it cannot start.
 */
struct fake_runtime *fake_runtime_start(const char *const *answers, size_t n, bool keep_open);
/* The connections answered (or held) so far. */
unsigned fake_runtime_served(struct fake_runtime *f);

/* For evloop_run_until: fake_runtime_served_enough(&(struct fake_runtime_wait){f, n}). */
struct fake_runtime_wait {
	struct fake_runtime *f;
	unsigned want;
};
bool fake_runtime_served_enough(void *wait);
