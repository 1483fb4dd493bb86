// SPDX-License-Identifier: MIT
/*
 * The freezer on the real kernel (tests/integration/freezer_fixture.h):
 * frozen as a runtime's pause leaves a container, released (the processes
 * run while the cgroup still reads frozen), parked, settled back; on the v1
 * freezer and on cgroup2. The release's latency is printed, not asserted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dozed/freezer.h"
#include "freezer_fixture.h"
#include "harness.h"

void test_suite_teardown(void)
{
	freezer_fixture_teardown();
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
	/* Out in the sibling, it is still found in its container's cgroup (as
	 * after a restart of dozed). On this hybrid host freezer_find gives v1. */
	if (v1) {
		struct freezer found;
		ASSERT_OK(freezer_find(c.pid, &found));
		ASSERT_STREQ(found.dir, dir);
	}
	/* A second release finds nothing left to move. */
	ASSERT_EQ_U(freezer_release(&f), 0);
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

/*
 * Parking, as daemon_freeze.c does right after the pause: the sibling made
 * and frozen first, then freezer_release moves the processes into it, still
 * frozen. The sibling's freezer is returned: thawing it is the wake.
 */
static struct freezer park(const struct freezer *f)
{
	struct freezer sib = freezer_of(f->dir, f->v1);
	if (snprintf(sib.dir, sizeof(sib.dir), "%s.dozed-thaw", f->dir) >= (int)sizeof(sib.dir))
		FAIL("%s: too long a path", f->dir);
	if (mkdir(sib.dir, 0755) < 0)
		FAIL("mkdir %s: %s", sib.dir, strerror(errno));
	ASSERT_OK(freezer_set(&sib, true));
	ASSERT_EQ_U(freezer_release(f), 1);
	return sib;
}

/* Parked: still frozen, in the sibling; the wake is the kernel's thaw only. */
static void check_park_then_thaw(bool v1)
{
	char *dir = test_dir(hierarchy(v1), "park");
	struct child c = spawn_child(dir);
	struct freezer f = freezer_of(dir, v1);
	struct stat st;
	freeze_and_wait(&f);
	struct freezer sib = park(&f);
	const char *sibling = sib.dir;
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
	ASSERT_OK(freezer_set(&sib, false));
	if (!read_within(c.reply, &got, 1, DEADLINE_MS) || got != 'P')
		FAIL("child %d did not run once its parking sibling was thawed", (int)c.pid);
	printf("  %s parked, thawed: its answer %llu us after the call began\n", v1 ? "v1" : "v2",
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
	(void)park(&f);
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

TEST(test_v1_parked_child_stays_frozen_and_a_thaw_of_the_sibling_runs_it)
{
	check_park_then_thaw(true);
}

TEST(test_v2_parked_child_stays_frozen_and_a_thaw_of_the_sibling_runs_it)
{
	check_park_then_thaw(false);
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
