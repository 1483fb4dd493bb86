// SPDX-License-Identifier: MIT
/*
 * The freezer on the real kernel: processes this test forks, in its own
 * cgroups only (<hierarchy>/dozed-test-freezer.<suite pid>/<test>), under the
 * v1 freezer and memory hierarchies of a hybrid host and under cgroup2.
 * Frozen as a runtime's pause leaves them, released (they run while the
 * cgroup still reads frozen), settled back. Children die with the test
 * (PR_SET_PDEATHSIG) and are killed by their recorded pids.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const char *v2_root(void)
{
	static char root[PATH_MAX];
	if (!root[0]) {
		_cleanup_free_ char *m = testcg_mount();
		snprintf(root, sizeof(root), "%s", m);
	}
	return root;
}

static void need_dir(const char *root, const char *what)
{
	struct stat st;
	if (stat(root, &st) < 0)
		FAIL("this test needs %s at %s: %s", what, root, strerror(errno));
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* best effort: cleanup */
	}
	close(fd);
}

static bool procs_empty(const char *dir)
{
	char path[PATH_MAX], c;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, &c, 1);
	close(fd);
	return n <= 0;
}

/* Thaws dir (so that what was killed in it can die), waits for it to empty, removes it. */
static void remove_cgroup_dir(const char *dir)
{
	write_file(dir, "freezer.state", "THAWED");
	write_file(dir, "cgroup.freeze", "0");
	for (uint64_t end = test_now_ms() + DEADLINE_MS; !procs_empty(dir) && test_now_ms() < end;)
		usleep(1000);
	for (int i = 0; i < 500 && rmdir(dir) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

static void kill_kids(void)
{
	for (size_t i = 0; i < n_kids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
}

static void reap_all(void)
{
	/* The test process is a subreaper: grandchildren come back to it. */
	int status;
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	n_kids = 0;
}

static void remove_test_dir(void *arg)
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
static char *test_dir(const char *root, const char *name)
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

void test_suite_teardown(void)
{
	/* A test killed by its alarm left its cgroups: its processes died with
	 * it (PDEATHSIG) once thawed. */
	const char *roots[] = {V1_FREEZER, V1_MEMORY, NULL};
	char v2[PATH_MAX] = "";
	_cleanup_free_ char *m = NULL;
	if (cgroup2_mount_point(&m) == 0)
		snprintf(v2, sizeof(v2), "%s", m);
	roots[2] = v2;
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		char base[PATH_MAX];
		if (!roots[i][0])
			continue;
		snprintf(base, sizeof(base), "%s/dozed-test-freezer.%d", roots[i], (int)suite_pid);
		static const char *names[] = {"release",      "settle",	 "many",	"latency",
					      "latency-warm", "park",	 "park-settle", "find",
					      "nested",	      "reclaim", "bad"};
		for (size_t n = 0; n < ARRAY_SIZE(names); n++) {
			char dir[PATH_MAX + 64];
			snprintf(dir, sizeof(dir), "%s/%s.dozed-thaw", base, names[n]);
			remove_cgroup_dir(dir);
			snprintf(dir, sizeof(dir), "%s/%s/inner", base, names[n]);
			remove_cgroup_dir(dir);
			snprintf(dir, sizeof(dir), "%s/%s", base, names[n]);
			remove_cgroup_dir(dir);
		}
		rmdir(base);
	}
}

/* --- the child: answers 'p' with 'P'; on 'f' forks a grandchild and sends its pid -- */

struct child {
	pid_t pid;
	int cmd;   /* write end: commands */
	int reply; /* read end: answers */
};

static void child_main(const char *dir, int cmd, int reply, pid_t parent)
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
static bool read_within(int fd, void *buf, size_t n, int ms)
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

static struct child spawn_child(const char *dir)
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

static void send_cmd(const struct child *c, char cmd)
{
	if (write(c->cmd, &cmd, 1) != 1)
		FAIL("writing to child %d: %s", (int)c->pid, strerror(errno));
}

/* What the runtime's pause does and waits for: frozen, every task stopped. */
static void freeze_and_wait(const struct freezer *f)
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

static bool pid_in(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 16], buf[65536];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
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

static struct freezer freezer_of(const char *dir, bool v1)
{
	struct freezer f = {.v1 = v1};
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	return f;
}

static const char *hierarchy(bool v1)
{
	if (v1) {
		need_dir(V1_FREEZER, "the cgroup v1 freezer hierarchy (a hybrid host)");
		return V1_FREEZER;
	}
	return v2_root();
}

/* --- release and settle, on v1 and v2 ------------------------------------------ */

static void check_release_runs_frozen_child(bool v1)
{
	char *dir = test_dir(hierarchy(v1), "release");
	struct child c = spawn_child(dir);
	struct freezer f = freezer_of(dir, v1);
	freeze_and_wait(&f);
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);

	/* A request made while frozen waits... */
	send_cmd(&c, 'p');
	char got;
	if (read_within(c.reply, &got, 1, 200))
		FAIL("child %d answered while its cgroup was frozen", (int)c.pid);

	/* ...and is answered once released, the cgroup still frozen. */
	uint64_t t0 = now_us();
	int moved = freezer_release(&f);
	uint64_t t1 = now_us();
	ASSERT_EQ_U(moved, 1);
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run after freezer_release", (int)c.pid);
	uint64_t t2 = now_us();
	printf("  %s release: 1 process in %llu us, its answer %llu us after the call began\n",
	       v1 ? "v1" : "v2", (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t0));
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);
	ASSERT_EQ_U(freezer_released(&f), 1);
	char sibling[PATH_MAX + 16];
	snprintf(sibling, sizeof(sibling), "%s.dozed-thaw", dir);
	ASSERT_TRUE(pid_in(sibling, c.pid));
	ASSERT_TRUE(!pid_in(dir, c.pid));
	/* A second release (as after a restart) counts the one already out. */
	ASSERT_EQ_U(freezer_release(&f), 1);
	ASSERT_TRUE(pid_in(sibling, c.pid));
	ASSERT_EQ_U(freezer_released(&f), 1);
}

static void check_settle_returns_processes(bool v1)
{
	char *dir = test_dir(hierarchy(v1), "settle");
	struct child c = spawn_child(dir);
	struct freezer f = freezer_of(dir, v1);
	freeze_and_wait(&f);
	ASSERT_EQ_U(freezer_release(&f), 1);

	/* Released, the child forks: the grandchild is born in the sibling. */
	send_cmd(&c, 'f');
	pid_t g = 0;
	if (!read_within(c.reply, &g, sizeof(g), DEADLINE_MS) || g <= 0)
		FAIL("child %d did not fork after freezer_release", (int)c.pid);
	kids[n_kids++] = g;
	ASSERT_EQ_U(freezer_released(&f), 2);

	/* The runtime's unpause, then the settle. */
	ASSERT_OK(freezer_set(&f, false));
	ASSERT_EQ_U(freezer_is_frozen(&f), 0);
	ASSERT_OK(freezer_settle(&f));
	char sibling[PATH_MAX + 16];
	snprintf(sibling, sizeof(sibling), "%s.dozed-thaw", dir);
	struct stat st;
	if (stat(sibling, &st) == 0 || errno != ENOENT)
		FAIL("%s is still there after freezer_settle", sibling);
	ASSERT_TRUE(pid_in(dir, c.pid));
	ASSERT_TRUE(pid_in(dir, g));
	ASSERT_EQ_U(freezer_released(&f), 0);
	/* Back, and running in the thawed cgroup. */
	send_cmd(&c, 'p');
	char got;
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run after freezer_settle", (int)c.pid);
	/* Nothing to settle is not an error. */
	ASSERT_OK(freezer_settle(&f));
}

/* Parked right after the pause: still frozen, in the sibling; the wake thaws only. */
static void check_park_then_release(bool v1)
{
	char *dir = test_dir(hierarchy(v1), "park");
	struct child c = spawn_child(dir);
	struct freezer f = freezer_of(dir, v1);
	/* Not frozen: nothing is parked, no sibling appears. */
	char sibling[PATH_MAX + 16];
	snprintf(sibling, sizeof(sibling), "%s.dozed-thaw", dir);
	struct stat st;
	ASSERT_ERR(freezer_park(&f), EAGAIN);
	ASSERT_TRUE(stat(sibling, &st) < 0 && errno == ENOENT);

	freeze_and_wait(&f);
	ASSERT_EQ_U(freezer_park(&f), 1);
	ASSERT_TRUE(pid_in(sibling, c.pid));
	ASSERT_TRUE(!pid_in(dir, c.pid));
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);
	ASSERT_EQ_U(freezer_released(&f), 1);
	send_cmd(&c, 'p');
	char got;
	if (read_within(c.reply, &got, 1, 200))
		FAIL("child %d answered while parked", (int)c.pid);

	usleep(50000); /* a quiet spell, as before a wake: the figure is a cold one */
	uint64_t t0 = now_us();
	ASSERT_EQ_U(freezer_release(&f), 1);
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run after freezer_release of the parked sibling",
		     (int)c.pid);
	printf("  %s parked release: its answer %llu us after the call began\n", v1 ? "v1" : "v2",
	       (unsigned long long)(now_us() - t0));
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);

	ASSERT_OK(freezer_set(&f, false));
	ASSERT_OK(freezer_settle(&f));
	ASSERT_TRUE(stat(sibling, &st) < 0 && errno == ENOENT);
	ASSERT_TRUE(pid_in(dir, c.pid));
	send_cmd(&c, 'p');
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run after freezer_settle", (int)c.pid);
}

/* Parked, then settled while the cgroup is still frozen (the runtime refused
 * to unpause): back in it, and frozen. */
static void check_park_then_settle_frozen(bool v1)
{
	char *dir = test_dir(hierarchy(v1), "park-settle");
	struct child c = spawn_child(dir);
	struct freezer f = freezer_of(dir, v1);
	freeze_and_wait(&f);
	ASSERT_EQ_U(freezer_park(&f), 1);
	ASSERT_OK(freezer_settle(&f));
	ASSERT_TRUE(pid_in(dir, c.pid));
	ASSERT_EQ_U(freezer_released(&f), 0);
	send_cmd(&c, 'p');
	char got;
	if (read_within(c.reply, &got, 1, 200))
		FAIL("child %d ran after a settle into its frozen cgroup", (int)c.pid);
	ASSERT_OK(freezer_set(&f, false));
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run once its cgroup was thawed", (int)c.pid);
}

TEST(test_v1_parked_child_stays_frozen_and_release_thaws_it)
{
	check_park_then_release(true);
}

TEST(test_v2_parked_child_stays_frozen_and_release_thaws_it)
{
	check_park_then_release(false);
}

TEST(test_v1_parked_child_settled_into_its_frozen_cgroup_stays_frozen)
{
	check_park_then_settle_frozen(true);
}

TEST(test_v2_parked_child_settled_into_its_frozen_cgroup_stays_frozen)
{
	check_park_then_settle_frozen(false);
}

TEST(test_v1_release_runs_a_frozen_child_while_the_cgroup_reads_frozen)
{
	check_release_runs_frozen_child(true);
}

TEST(test_v1_settle_moves_back_the_child_and_what_it_forked_and_removes_the_sibling)
{
	check_settle_returns_processes(true);
}

TEST(test_v2_release_runs_a_frozen_child_while_the_cgroup_reads_frozen)
{
	check_release_runs_frozen_child(false);
}

TEST(test_v2_settle_moves_back_the_child_and_what_it_forked_and_removes_the_sibling)
{
	check_settle_returns_processes(false);
}

/* n children in dir that only sleep; returns once all have joined it. */
static void spawn_sleepers(const char *dir, int n)
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

static void check_release_of_many(bool v1)
{
	enum { N = 200 };
	char *dir = test_dir(hierarchy(v1), "many");
	spawn_sleepers(dir, N);
	struct freezer f = freezer_of(dir, v1);
	freeze_and_wait(&f);
	uint64_t t0 = now_us();
	int moved = freezer_release(&f);
	uint64_t t1 = now_us();
	ASSERT_EQ_U(moved, N);
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);
	ASSERT_EQ_U(freezer_released(&f), N);
	ASSERT_OK(freezer_set(&f, false));
	uint64_t t2 = now_us();
	ASSERT_OK(freezer_settle(&f));
	uint64_t t3 = now_us();
	ASSERT_EQ_U(freezer_released(&f), 0);
	printf("  %s release: %d processes in %llu us (%.1f us each); settle %llu us\n",
	       v1 ? "v1" : "v2", N, (unsigned long long)(t1 - t0), (double)(t1 - t0) / N,
	       (unsigned long long)(t3 - t2));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Writes pid into the cgroup.procs of the cgroup it is in: no move, but the
 * kernel takes its global lock for migrations all the same. */
static void migrate_in_place(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 16], text[16];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(text, sizeof(text), "%d", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? write(fd, text, strlen(text)) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		FAIL("writing %s to %s: %s", text, path, strerror(errno));
}

/*
 * Not an assertion on time: the figures, printed. Each round starts cold
 * (50 ms without a migration), as a wake after an idle period does. Beside
 * it: the kernel's own thaw, and a release right after another migration
 * (the kernel's cgroup_threadgroup_rwsem still in writer mode, which is what
 * the favordynmods mount option keeps it in): the difference is the RCU
 * grace period a cold migration waits for.
 */
static void measure_release(bool v1)
{
	enum { ROUNDS = 10, MODES = 3 };
	char *dir = test_dir(hierarchy(v1), "latency");
	char *warm = test_dir(hierarchy(v1), "latency-warm");
	struct child c = spawn_child(dir);
	spawn_sleepers(warm, 1);
	pid_t sleeper = kids[n_kids - 1];
	struct freezer f = freezer_of(dir, v1);
	uint64_t t[MODES][ROUNDS];
	for (int i = 0; i < MODES * ROUNDS; i++) {
		int mode = i % MODES;
		freeze_and_wait(&f);
		send_cmd(&c, 'p');
		usleep(50000);
		if (mode == 2)
			migrate_in_place(warm, sleeper);
		uint64_t t0 = now_us();
		if (mode == 1)
			ASSERT_OK(freezer_set(&f, false));
		else
			ASSERT_EQ_U(freezer_release(&f), 1);
		char got;
		if (!read_within(c.reply, &got, 1, DEADLINE_MS))
			FAIL("child %d did not answer after round %d", (int)c.pid, i);
		t[mode][i / MODES] = now_us() - t0;
		if (mode != 1) {
			ASSERT_OK(freezer_set(&f, false));
			ASSERT_OK(freezer_settle(&f));
		}
	}
	for (int m = 0; m < MODES; m++)
		qsort(t[m], ROUNDS, sizeof(t[m][0]), cmp_u64);
	printf("  %s frozen -> answer, %d rounds each: freezer_release cold p50 %llu us (min %llu, "
	       "max %llu); the kernel's thaw (%s) p50 %llu us (max %llu); freezer_release "
	       "right after a migration p50 %llu us (max %llu)\n",
	       v1 ? "v1" : "v2", ROUNDS, (unsigned long long)t[0][ROUNDS / 2],
	       (unsigned long long)t[0][0], (unsigned long long)t[0][ROUNDS - 1],
	       v1 ? "THAWED" : "cgroup.freeze 0", (unsigned long long)t[1][ROUNDS / 2],
	       (unsigned long long)t[1][ROUNDS - 1], (unsigned long long)t[2][ROUNDS / 2],
	       (unsigned long long)t[2][ROUNDS - 1]);
}

TEST(test_v1_release_latency_from_cold)
{
	measure_release(true);
}

TEST(test_v2_release_latency_from_cold)
{
	measure_release(false);
}

TEST(test_v1_release_of_200_processes_moves_them_all)
{
	check_release_of_many(true);
}

TEST(test_v2_release_of_200_processes_moves_them_all)
{
	check_release_of_many(false);
}

/* --- finding, nesting, memory, bad input ------------------------------------------ */

TEST(test_find_gives_the_child_s_test_cgroup_in_the_v1_freezer)
{
	char *dir = test_dir(hierarchy(true), "find");
	struct child c = spawn_child(dir);
	struct freezer f;
	ASSERT_OK(freezer_find(c.pid, &f));
	ASSERT_STREQ(f.dir, dir);
	ASSERT_TRUE(f.v1);
}

TEST(test_v1_cgroup_frozen_only_by_its_parent_is_not_frozen_itself)
{
	char *dir = test_dir(hierarchy(true), "nested");
	char inner[PATH_MAX];
	snprintf(inner, sizeof(inner), "%s/inner", dir);
	if (mkdir(inner, 0755) < 0)
		FAIL("mkdir %s: %s", inner, strerror(errno));
	struct freezer outer = freezer_of(dir, true), in = freezer_of(inner, true);
	freeze_and_wait(&outer);
	ASSERT_EQ_U(freezer_is_frozen(&outer), 1);
	ASSERT_EQ_U(freezer_is_frozen(&in), 0);
	ASSERT_OK(freezer_set(&outer, false));
	ASSERT_EQ_U(freezer_is_frozen(&outer), 0);
	rmdir(inner);
}

static void unlink_file(void *path)
{
	unlink(path);
	free(path);
}

TEST(test_v1_reclaim_drops_the_page_cache_a_child_filled)
{
	need_dir(V1_MEMORY, "the cgroup v1 memory hierarchy (a hybrid host)");
	char *dir = test_dir(V1_MEMORY, "reclaim");
	char *file = NULL;
	/* On disk (ext4), not tmpfs: page cache that reclaim can drop. */
	if (asprintf(&file, "/var/tmp/dozed-test-freezer.%d.dat", (int)getpid()) < 0)
		FAIL("out of memory");
	test_defer(unlink_file, file);
	/* A writer in the cgroup fills the page cache, charged to it. */
	fflush(NULL);
	pid_t w = fork();
	if (w == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (testcg_enter(dir) < 0)
			_exit(2);
		int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		static char block[1 << 20];
		memset(block, 'z', sizeof(block));
		for (int i = 0; fd >= 0 && i < 64; i++)
			if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
				_exit(3);
		if (fd < 0 || fsync(fd) < 0)
			_exit(4);
		/* Dropped, then read again: what a service reading its data does. */
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		lseek(fd, 0, SEEK_SET);
		while (read(fd, block, sizeof(block)) > 0)
			;
		/* Stay, so that the cgroup is populated as a container is. */
		for (;;)
			pause();
	}
	kids[n_kids++] = w;
	uint64_t before = 0;
	for (uint64_t end = test_now_ms() + 20000;; usleep(10000)) {
		ASSERT_OK(freezer_memory_bytes(w, &before));
		if (before >= 60u << 20)
			break;
		int status;
		if (waitpid(w, &status, WNOHANG) == w)
			FAIL("the writer exited (status 0x%x)", status);
		if (test_now_ms() > end)
			FAIL("the cgroup never held 60 MiB (%llu bytes)",
			     (unsigned long long)before);
	}
	uint64_t b = 0, a = 0;
	const char *why = NULL;
	uint64_t t0 = now_us();
	ASSERT_OK(freezer_reclaim(w, &b, &a, &why));
	uint64_t t1 = now_us();
	printf("  v1 reclaim (memory.force_empty): %llu KiB -> %llu KiB in %llu us\n",
	       (unsigned long long)(b >> 10), (unsigned long long)(a >> 10),
	       (unsigned long long)(t1 - t0));
	ASSERT_GE_U(b, 60u << 20);
	ASSERT_TRUE(a + (32u << 20) < b);
	ASSERT_TRUE(why == NULL);
	uint64_t now = 0;
	ASSERT_OK(freezer_memory_bytes(w, &now));
	ASSERT_TRUE(now < b);
}

static void rm_tmp(void *path)
{
	char f[PATH_MAX + 32];
	snprintf(f, sizeof(f), "%s/freezer.state", (char *)path);
	unlink(f);
	snprintf(f, sizeof(f), "%s/cgroup.freeze", (char *)path);
	unlink(f);
	umount2(path, MNT_DETACH);
	rmdir(path);
	free(path);
}

TEST(test_bad_directories_are_refused_and_nothing_is_created_beside_them)
{
	char *base = test_dir(hierarchy(true), "bad");
	char absent[PATH_MAX], sib[PATH_MAX + 16];
	snprintf(absent, sizeof(absent), "%s/absent", base);
	struct freezer f = freezer_of(absent, true);
	ASSERT_ERR(freezer_is_frozen(&f), ENOENT);
	ASSERT_ERR(freezer_set(&f, true), ENOENT);
	ASSERT_ERR(freezer_release(&f), ENOENT);
	ASSERT_EQ_U(freezer_released(&f), 0);
	ASSERT_OK(freezer_settle(&f));
	snprintf(sib, sizeof(sib), "%s.dozed-thaw", absent);
	struct stat st;
	ASSERT_TRUE(stat(sib, &st) < 0 && errno == ENOENT);

	/* Not cgroupfs, though it has the file: no mkdir beside it. */
	char *tmp = strdup("/var/tmp/dozed-test-freezer.XXXXXX");
	if (!tmp || !mkdtemp(tmp))
		FAIL("mkdtemp: %s", strerror(errno));
	test_defer(rm_tmp, tmp);
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s/freezer.state", tmp);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	f = freezer_of(tmp, true);
	ASSERT_ERR(freezer_release(&f), EINVAL);
	snprintf(sib, sizeof(sib), "%s.dozed-thaw", tmp);
	ASSERT_TRUE(stat(sib, &st) < 0 && errno == ENOENT);

	/* The root of a hierarchy has no freeze file: no mkdir beside its mount
	 * point. Mounted again in a private namespace, on our own directory,
	 * so that a mistake would land there, not in /sys/fs/cgroup. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		FAIL("private mount namespace: %s", strerror(errno));
	unlink(file);
	if (mount("dozed-test", tmp, "cgroup", 0, "freezer") < 0)
		FAIL("mount the freezer hierarchy on %s: %s", tmp, strerror(errno));
	f = freezer_of(tmp, true);
	ASSERT_ERR(freezer_is_frozen(&f), ENOENT);
	ASSERT_ERR(freezer_release(&f), ENOENT);
	ASSERT_TRUE(stat(sib, &st) < 0 && errno == ENOENT);
	umount2(tmp, MNT_DETACH);
	if (mount("dozed-test", tmp, "cgroup2", 0, NULL) < 0)
		FAIL("mount cgroup2 on %s: %s", tmp, strerror(errno));
	f = freezer_of(tmp, false);
	ASSERT_ERR(freezer_is_frozen(&f), ENOENT);
	ASSERT_ERR(freezer_release(&f), ENOENT);
	ASSERT_TRUE(stat(sib, &st) < 0 && errno == ENOENT);

	/* Relative and empty directories have no sibling. */
	f = freezer_of("relative/dir", false);
	ASSERT_ERR(freezer_release(&f), EINVAL);
	f = freezer_of("", true);
	ASSERT_ERR(freezer_release(&f), EINVAL);
}

TEST(test_a_process_that_is_gone_is_esrch)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status;
	ASSERT_TRUE(waitpid(pid, &status, 0) == pid);
	struct freezer f;
	uint64_t bytes = 0, b = 0, a = 0;
	const char *why = NULL;
	ASSERT_ERR(freezer_find(pid, &f), ESRCH);
	ASSERT_ERR(freezer_memory_bytes(pid, &bytes), ESRCH);
	ASSERT_ERR(freezer_reclaim(pid, &b, &a, &why), ESRCH);
	ASSERT_ERR(freezer_find(0, &f), EINVAL);
	ASSERT_ERR(freezer_find(-1, &f), EINVAL);
}

TEST(test_reclaim_refuses_the_root_memory_cgroup)
{
	/* pid 1 (only read, never moved) sits in the root memory cgroup. */
	uint64_t b = 0, a = 0;
	const char *why = NULL;
	char line[256] = "";
	FILE *cg = fopen("/proc/1/cgroup", "re");
	ASSERT_TRUE(cg != NULL);
	bool root = false;
	while (fgets(line, sizeof(line), cg))
		root |= strstr(line, ":memory:/\n") != NULL;
	fclose(cg);
	if (!root)
		FAIL("this test needs pid 1 in the root v1 memory cgroup (its /proc/1/cgroup)");
	ASSERT_ERR(freezer_reclaim(1, &b, &a, &why), EINVAL);
	ASSERT_TRUE(why != NULL);
	ASSERT_CONTAINS(why, "root memory cgroup");
}
