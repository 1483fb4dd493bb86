// SPDX-License-Identifier: MIT
#include "promtool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

int promtool_check(const char *text, char *why, size_t len)
{
	if (access(PROMTOOL, X_OK) < 0)
		FAIL("%s is missing (%s): install Debian's prometheus package (make deps)",
		     PROMTOOL, strerror(errno));
	char in_path[] = "/tmp/dozed-metrics.XXXXXX";
	int in = mkstemp(in_path);
	if (in < 0)
		FAIL("mkstemp: %s", strerror(errno));
	unlink(in_path);
	test_defer_close(in);
	if (write(in, text, strlen(text)) != (ssize_t)strlen(text) || lseek(in, 0, SEEK_SET) < 0)
		FAIL("cannot write the text for promtool: %s", strerror(errno));
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(in, STDIN_FILENO) < 0 || dup2(p[1], STDOUT_FILENO) < 0 ||
		    dup2(p[1], STDERR_FILENO) < 0)
			_exit(127);
		execl(PROMTOOL, "promtool", "check", "metrics", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < len && (n = read(p[0], why + got, len - 1 - got)) > 0)
		got += (size_t)n;
	if (len > 0)
		why[got] = '\0';
	close(p[0]);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		FAIL("waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
