/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A child process run to its end while the test's event loop serves (the
 * control server the child talks to lives in the test): waited for with
 * evloop_run_until(base, child_run_exited, &c, ...), its output read back
 * from the files it wrote. And the dozectl built beside the test binary.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct child_run {
	pid_t pid;
	int status; /* as waitpid gives it, once exited */
};

/* For evloop_run_until: the child (a struct child_run) has exited. */
bool child_run_exited(void *child);
/* All that fd (a regular file the child wrote) holds, NUL-terminated and
 * malloc'd; fails the test when it cannot be read. */
char *child_run_output(int fd);
/* $(BUILD)/dozectl, beside $(BUILD)/tests/<kind>/<test>, in buf; fails the
 * test, saying to build it, when it is not there. */
void child_run_dozectl_path(char *buf, size_t len);
