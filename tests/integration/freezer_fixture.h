/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The freezer tests' world: processes this test forks, in its own cgroups
 * only (<hierarchy>/dozed-test-freezer.<suite pid>/<test>), under the v1
 * freezer and memory hierarchies of a hybrid host and under cgroup2. Children
 * die with the test (PR_SET_PDEATHSIG) and are killed by their recorded pids.
 * Header-only: each test binary is one file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dozed/cgroup.h"
#include "dozed/freezer.h"
#include "dozed/macro.h"
#include "harness.h"
#include "testcg.h"

#define V1_FREEZER  "/sys/fs/cgroup/freezer"
#define V1_MEMORY   "/sys/fs/cgroup/memory"
#define DEADLINE_MS 5000
#define MAX_KIDS    512

static pid_t suite_pid;
/* This test's processes (children, and grandchildren they reported). */
static pid_t kids[MAX_KIDS];
static size_t n_kids;

__attribute__((constructor)) static void remember_suite_pid(void)
{
	suite_pid = getpid();
}

static inline uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline const char *v2_root(void)
{
	static char root[PATH_MAX];
	if (!root[0]) {
		_cleanup_free_ char *m = testcg_mount();
		snprintf(root, sizeof(root), "%s", m);
	}
	return root;
}

static inline void need_dir(const char *root, const char *what)
{
	struct stat st;
	if (stat(root, &st) < 0)
		FAIL("this test needs %s at %s: %s", what, root, strerror(errno));
}

static inline void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* best effort: cleanup */
	}
	close(fd);
}

static inline bool procs_empty(const char *dir)
{
	char path[PATH_MAX], c;
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return true;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, &c, 1);
	close(fd);
	return n <= 0;
}

/* Thaws dir (so that what was killed in it can die), waits for it to empty, removes it. */
static inline void remove_cgroup_dir(const char *dir)
{
	write_file(dir, "freezer.state", "THAWED");
	write_file(dir, "cgroup.freeze", "0");
	for (uint64_t end = test_now_ms() + DEADLINE_MS; !procs_empty(dir) && test_now_ms() < end;)
		usleep(1000);
	for (int i = 0; i < 500 && rmdir(dir) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

static inline void kill_kids(void)
{
	for (size_t i = 0; i < n_kids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
}

static inline void reap_all(void)
{
	/* The test process is a subreaper: grandchildren come back to it. */
	int status;
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	n_kids = 0;
}

static inline void remove_test_dir(void *arg)
{
	char *dir = arg;
	char sibling[PATH_MAX + 16];
	snprintf(sibling, sizeof(sibling), "%s.dozed-thaw", dir);
	kill_kids();
	write_file(dir, "freezer.state", "THAWED");
	write_file(dir, "cgroup.freeze", "0");
	reap_all();
	remove_cgroup_dir(sibling);
	remove_cgroup_dir(dir);
	/* The suite's directory goes once empty (another test's may remain). */
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		rmdir(dir);
	}
	free(dir);
}

/* <root>/dozed-test-freezer.<suite pid>/<name>, removed when the test ends. */
static inline char *test_dir(const char *root, const char *name)
{
	char *base = NULL, *dir = NULL;
	if (asprintf(&base, "%s/dozed-test-freezer.%d", root, (int)suite_pid) < 0 ||
	    asprintf(&dir, "%s/%s", base, name) < 0)
		FAIL("out of memory");
	if (mkdir(base, 0755) < 0 && errno != EEXIST)
		FAIL("mkdir %s: %s", base, strerror(errno));
	free(base);
	if (mkdir(dir, 0755) < 0)
		FAIL("mkdir %s: %s", dir, strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	test_defer(remove_test_dir, dir);
	return dir;
}

/* Removes dir and every cgroup below it, deepest first (what a killed test left). */
static inline void remove_cgroup_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0) {
			char sub[PATH_MAX];
			if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < (int)sizeof(sub))
				remove_cgroup_tree(sub);
		}
	closedir(d);
	remove_cgroup_dir(dir);
}

/* For test_suite_teardown(): a test killed by its alarm left its cgroups;
 * its processes died with it (PDEATHSIG) once thawed. */
static inline void freezer_fixture_teardown(void)
{
	char v2[PATH_MAX] = "";
	_cleanup_free_ char *m = NULL;
	if (cgroup2_mount_point(&m) == 0)
		snprintf(v2, sizeof(v2), "%s", m);
	const char *roots[] = {V1_FREEZER, V1_MEMORY, v2};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		char base[PATH_MAX + 64];
		if (!roots[i][0])
			continue;
		snprintf(base, sizeof(base), "%s/dozed-test-freezer.%d", roots[i], (int)suite_pid);
		remove_cgroup_tree(base);
	}
}

/* --- the child: answers 'p' with 'P'; on 'f' forks a grandchild and sends its pid -- */

struct child {
	pid_t pid;
	int cmd;   /* write end: commands */
	int reply; /* read end: answers */
};

static inline void child_main(const char *dir, int cmd, int reply, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	char procs[PATH_MAX];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(2);
	close(fd);
	if (write(reply, "R", 1) != 1)
		_exit(3);
	for (;;) {
		char c;
		ssize_t n = read(cmd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if (c == 'p' && write(reply, "P", 1) != 1)
			_exit(4);
		if (c == 'f') {
			pid_t me = getpid();
			pid_t g = fork();
			if (g == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != me)
					_exit(1);
				for (;;)
					pause();
			}
			if (write(reply, &g, sizeof(g)) != (ssize_t)sizeof(g))
				_exit(5);
		}
	}
}

/* Reads n bytes from fd within the deadline; false when they did not come. */
static inline bool read_within(int fd, void *buf, size_t n, int ms)
{
	size_t got = 0;
	uint64_t end = test_now_ms() + (uint64_t)ms;
	while (got < n) {
		uint64_t now = test_now_ms();
		if (now >= end)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(end - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	return true;
}

static inline struct child spawn_child(const char *dir)
{
	int cmd[2], reply[2];
	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(reply, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	if (n_kids == MAX_KIDS)
		FAIL("more than %d children", MAX_KIDS);
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(cmd[1]);
		close(reply[0]);
		child_main(dir, cmd[0], reply[1], parent);
	}
	kids[n_kids++] = pid;
	close(cmd[0]);
	close(reply[1]);
	test_defer_close(cmd[1]);
	test_defer_close(reply[0]);
	char c;
	if (!read_within(reply[0], &c, 1, DEADLINE_MS) || c != 'R')
		FAIL("child %d did not join %s", (int)pid, dir);
	return (struct child){pid, cmd[1], reply[0]};
}

static inline void send_cmd(const struct child *c, char cmd)
{
	if (write(c->cmd, &cmd, 1) != 1)
		FAIL("writing to child %d: %s", (int)c->pid, strerror(errno));
}

/* What the runtime's pause does and waits for: frozen, every task stopped. */
static inline void freeze_and_wait(const struct freezer *f)
{
	ASSERT_OK(freezer_set(f, true));
	char path[PATH_MAX + 32], buf[256];
	snprintf(path, sizeof(path), "%s/%s", f->dir, f->v1 ? "freezer.state" : "cgroup.events");
	for (uint64_t end = test_now_ms() + DEADLINE_MS;; usleep(1000)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (f->v1 ? strcmp(buf, "FROZEN\n") == 0 : strstr(buf, "frozen 1") != NULL)
			return;
		if (test_now_ms() > end)
			FAIL("%s never said frozen (last: \"%s\")", path, buf);
	}
}

static inline bool pid_in(const char *dir, pid_t pid)
{
	char path[PATH_MAX], buf[65536];
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (char *save = NULL, *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		if (atoi(t) == pid)
			return true;
	return false;
}

static inline struct freezer freezer_of(const char *dir, bool v1)
{
	struct freezer f = {.v1 = v1};
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	return f;
}

static inline const char *hierarchy(bool v1)
{
	if (v1) {
		need_dir(V1_FREEZER, "the cgroup v1 freezer hierarchy (a hybrid host)");
		return V1_FREEZER;
	}
	return v2_root();
}

static inline void spawn_sleepers(const char *dir, int n)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		FAIL("pipe: %s", strerror(errno));
	test_defer_close(ready[0]);
	pid_t parent = getpid();
	for (int i = 0; i < n; i++) {
		if (n_kids == MAX_KIDS)
			FAIL("more than %d children", MAX_KIDS);
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			FAIL("fork: %s", strerror(errno));
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent || testcg_enter(dir) < 0 ||
			    write(ready[1], "R", 1) != 1)
				_exit(2);
			for (;;)
				pause();
		}
		kids[n_kids++] = pid;
	}
	close(ready[1]);
	for (int i = 0; i < n; i++) {
		char c;
		if (!read_within(ready[0], &c, 1, DEADLINE_MS * 4))
			FAIL("only %d of %d children joined %s", i, n, dir);
	}
}
