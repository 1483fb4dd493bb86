// SPDX-License-Identifier: MIT
#include "child_run.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

bool child_run_exited(void *child)
{
	struct child_run *c = child;
	return waitpid(c->pid, &c->status, WNOHANG) == c->pid;
}

char *child_run_output(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (!text || (len > 0 && pread(fd, text, (size_t)len, 0) != len))
		FAIL("cannot read the child's output");
	return text;
}

void child_run_dozectl_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		FAIL("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	snprintf(buf, len, "%s/../../dozectl", dirname(self));
	if (access(buf, X_OK) < 0)
		FAIL("dozectl is not at %s (%s): build it first, e.g. make BUILD=<dir> "
		     "<dir>/dozectl",
		     buf, strerror(errno));
}
