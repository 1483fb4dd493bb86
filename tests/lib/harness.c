// SPDX-License-Identifier: MIT
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS    256
#define MAX_CLEANUPS 64

struct test_case {
	const char *name;
	test_fn fn;
};

struct cleanup {
	test_cleanup_fn fn;
	void *arg;
};

static struct test_case tests[MAX_TESTS];
static size_t n_tests;
static struct cleanup cleanups[MAX_CLEANUPS];
static size_t n_cleanups;
static unsigned timeout_seconds = 60;
/* Results travel from the test child to the harness through this pipe. */
static int result_fd = -1;

void test_register(const char *name, test_fn fn)
{
	if (n_tests == MAX_TESTS) {
		fprintf(stderr, "harness: more than %d tests in one binary\n", MAX_TESTS);
		abort();
	}
	tests[n_tests++] = (struct test_case){name, fn};
}

void test_set_timeout(unsigned seconds)
{
	timeout_seconds = seconds;
}

void test_defer(test_cleanup_fn fn, void *arg)
{
	if (n_cleanups == MAX_CLEANUPS) {
		fn(arg);
		FAIL("more than %d deferred cleanups", MAX_CLEANUPS);
	}
	cleanups[n_cleanups++] = (struct cleanup){fn, arg};
}

static void close_cleanup(void *arg)
{
	close((int)(intptr_t)arg);
}

void test_defer_close(int fd)
{
	test_defer(close_cleanup, (void *)(intptr_t)fd);
}

uint64_t test_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run_cleanups(void)
{
	while (n_cleanups > 0) {
		struct cleanup c = cleanups[--n_cleanups];
		c.fn(c.arg);
	}
}

static void report(char kind, const char *msg)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%c%s", kind, msg);
	if (n > 0 && write(result_fd, line, (size_t)n) < 0)
		perror("harness: writing result");
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[900];
	int n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	report('F', msg);
	run_cleanups();
	exit(1);
}

void test_skip(const char *fmt, ...)
{
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report('S', msg);
	run_cleanups();
	exit(0);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Ftimed out";
	if (write(result_fd, msg, sizeof(msg) - 1) < 0) {
		/* nothing more can be done in a signal handler */
	}
	/* Cleanups are not async-signal-safe; the kill below is. Resources of
	 * the test live in its own namespaces, which die with it. */
	signal(SIGALRM, SIG_DFL);
	raise(SIGALRM);
}

static int run_one(const struct test_case *t)
{
	int fds[2];
	if (pipe(fds) < 0) {
		perror("harness: pipe");
		return 1;
	}
	uint64_t start = test_now_ms();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("harness: fork");
		return 1;
	}
	if (pid == 0) {
		close(fds[0]);
		result_fd = fds[1];
		signal(SIGALRM, on_alarm);
		alarm(timeout_seconds);
		t->fn();
		run_cleanups();
		report('P', "");
		exit(0);
	}
	close(fds[1]);
	char buf[1024];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	uint64_t ms = test_now_ms() - start;

	/* The first report wins: a failure followed by the exit path's 'P' is a failure. */
	char kind = len > 0 ? buf[0] : '?';
	const char *msg = len > 0 ? buf + 1 : "";
	bool exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (kind == 'P' && exited_ok && buf[1] == '\0') {
		printf("PASS %s (%llu ms)\n", t->name, (unsigned long long)ms);
		return 0;
	}
	if (kind == 'S' && exited_ok) {
		printf("SKIP %s: %s\n", t->name, msg);
		return 0;
	}
	if (kind == 'F') {
		printf("FAIL %s: %s\n", t->name, msg);
	} else if (WIFSIGNALED(status)) {
		printf("FAIL %s: killed by signal %d (%s)\n", t->name, WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	} else {
		printf("FAIL %s: exited with status %d%s\n", t->name, WEXITSTATUS(status),
		       kind == 'P' ? " after passing (sanitizer report above?)" : "");
	}
	return 1;
}

/* A test binary may define this to remove what its tests could leave behind
 * when one was killed before its own cleanups ran. */
__attribute__((weak)) void test_suite_teardown(void)
{
}

int main(int argc, char **argv)
{
	int failed = 0;
	size_t ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n_tests; i++) {
		if (argc > 1) {
			bool wanted = false;
			for (int a = 1; a < argc; a++)
				wanted |= strcmp(argv[a], tests[i].name) == 0;
			if (!wanted)
				continue;
		}
		failed |= run_one(&tests[i]);
		ran++;
	}
	test_suite_teardown();
	if (ran == 0) {
		fprintf(stderr, "harness: no test matched\n");
		return 1;
	}
	return failed;
}
