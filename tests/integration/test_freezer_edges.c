// SPDX-License-Identifier: MIT
/*
 * The freezer's edges on the real kernel (tests/integration/freezer_fixture.h):
 * finding a process's freezer, a cgroup frozen by its parent only, memory
 * reclaim, and bad input (absent directories, not cgroupfs, a hierarchy's
 * root, a process gone).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/freezer.h"
#include "freezer_fixture.h"
#include "harness.h"
#include "testcg.h"

void test_suite_teardown(void)
{
	freezer_fixture_teardown();
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

static void *sleep_forever(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* How many of pid's threads are in the freezer cgroup whose path ends with suffix. */
static int threads_in(pid_t pid, const char *suffix, int *total)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int in = 0;
	*total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512], line[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s/%s/cgroup", dir, e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		(*total)++;
		while (fgets(line, sizeof(line), f)) {
			char *c = strstr(line, ":freezer:");
			if (!c)
				continue;
			line[strcspn(line, "\n")] = '\0';
			size_t l = strlen(line), sl = strlen(suffix);
			in += l >= sl && strcmp(line + l - sl, suffix) == 0;
		}
		fclose(f);
	}
	closedir(d);
	return in;
}

TEST(test_v1_release_and_settle_move_every_thread_of_a_process)
{
	char *dir = test_dir(hierarchy(true), "threads");
	int ready[2];
	ASSERT_TRUE(pipe2(ready, O_CLOEXEC) == 0);
	test_defer_close(ready[0]);
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pthread_t t;
		if (getppid() != parent || testcg_enter(dir) < 0 ||
		    pthread_create(&t, NULL, sleep_forever, NULL) != 0 ||
		    write(ready[1], "R", 1) != 1)
			_exit(2);
		sleep_forever(NULL);
	}
	kids[n_kids++] = pid;
	close(ready[1]);
	char c;
	if (!read_within(ready[0], &c, 1, DEADLINE_MS))
		FAIL("the two-thread child did not start");
	struct freezer f = freezer_of(dir, true);
	freeze_and_wait(&f);
	ASSERT_EQ_U(freezer_release(&f), 1);
	int total = 0;
	int out = threads_in(pid, FREEZER_SIBLING_SUFFIX, &total);
	ASSERT_GE_U(total, 2);
	ASSERT_EQ_U(out, total);
	ASSERT_OK(freezer_set(&f, false));
	ASSERT_OK(freezer_settle(&f));
	const char *name = strrchr(dir, '/');
	ASSERT_EQ_U(threads_in(pid, name, &total), total);
}

static void unlink_file(void *path)
{
	unlink(path);
	free(path);
}

TEST(test_v1_reclaim_drops_the_page_cache_of_a_frozen_child)
{
	need_dir(V1_MEMORY, "the cgroup v1 memory hierarchy (a hybrid host)");
	char *dir = test_dir(V1_MEMORY, "reclaim");
	char *fdir = test_dir(hierarchy(true), "reclaim");
	char *file = NULL;
	/* On disk (ext4), not tmpfs: page cache that reclaim can drop. */
	if (asprintf(&file, "/var/tmp/dozed-test-freezer.%d.dat", (int)getpid()) < 0)
		FAIL("out of memory");
	test_defer(unlink_file, file);
	int ready[2];
	ASSERT_TRUE(pipe2(ready, O_CLOEXEC) == 0);
	test_defer_close(ready[0]);
	/* A writer in the cgroup fills the page cache, charged to it. */
	fflush(NULL);
	pid_t w = fork();
	if (w == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (testcg_enter(dir) < 0 || testcg_enter(fdir) < 0)
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
		if (write(ready[1], "R", 1) != 1)
			_exit(5);
		/* Stay, so that the cgroup is populated as a container is. */
		for (;;)
			pause();
	}
	kids[n_kids++] = w;
	close(ready[1]);
	char c;
	if (!read_within(ready[0], &c, 1, 20000))
		FAIL("the writer did not fill the page cache");
	/* Frozen, as dozed reclaims a container after its pause. */
	struct freezer f = freezer_of(fdir, true);
	freeze_and_wait(&f);
	uint64_t b = 0, a = 0;
	const char *why = NULL;
	uint64_t t0 = now_us();
	ASSERT_OK(freezer_reclaim(w, &b, &a, &why));
	uint64_t t1 = now_us();
	printf("  v1 reclaim (memory.force_empty) of a frozen cgroup: %llu KiB -> %llu KiB in "
	       "%llu us\n",
	       (unsigned long long)(b >> 10), (unsigned long long)(a >> 10),
	       (unsigned long long)(t1 - t0));
	ASSERT_GE_U(b, 60u << 20);
	ASSERT_TRUE(a + (32u << 20) < b);
	ASSERT_TRUE(why == NULL);
	uint64_t now = 0;
	ASSERT_OK(freezer_memory_bytes(w, &now));
	ASSERT_TRUE(now < b);
	ASSERT_EQ_U(freezer_is_frozen(&f), 1);
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
	/* A directory of the sibling's name outside cgroupfs is not removed. */
	ASSERT_TRUE(mkdir(sib, 0700) == 0);
	ASSERT_ERR(freezer_settle(&f), EINVAL);
	ASSERT_TRUE(stat(sib, &st) == 0);
	ASSERT_TRUE(rmdir(sib) == 0);

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
