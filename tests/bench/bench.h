/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the benchmarks under tests/bench/ share. Each benchmark is one
 * translation unit linked against libdozed.a only, so these helpers are
 * static and live in this header.
 *
 * A benchmark's body runs in a forked child (bench_run_supervised): whatever
 * happens to it — a failed step, a crash, Ctrl-C — the parent then ends what
 * is left in the benchmark's cgroups and removes them. Test cgroups live only
 * under <cgroup2 mount>/dozed-bench.<pid of the benchmark>/.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dozed/cgroup.h"
#include "dozed/macro.h"
#include "netns.h" /* tests/lib, linked into the benchmarks too */

#define BENCH_RESULTS_DIR "tests/bench/results"

/*
 * BENCH_QUICK=1 in the environment: make check's run of every benchmark
 * (tests/bench/quick.sh), so that one which no longer runs fails CI. Tiny
 * sizes, no peers, no targets judged, no results written; what it measures
 * means nothing, only that every step ran.
 */
static inline bool bench_quick(void)
{
	static int quick = -1;
	if (quick < 0) {
		const char *v = getenv("BENCH_QUICK");
		quick = v && *v && strcmp(v, "0") != 0;
	}
	return quick;
}

static inline double bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median and the 95th percentile at the slow end of n samples (sorted in
 * place): the high end of times, the low end of rates (higher_is_better). */
struct bench_stat {
	double p50, p95;
};

static inline struct bench_stat bench_stat_of(double *v, size_t n, bool higher_is_better)
{
	struct bench_stat s = {0, 0};
	if (n == 0)
		return s;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	size_t i95 = (n * 95) / 100 < n ? (n * 95) / 100 : n - 1;
	s.p50 = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	s.p95 = higher_is_better ? v[n - 1 - i95] : v[i95];
	return s;
}

/*
 * The 95 % confidence interval of the median of n samples (sorted in place),
 * distribution-free: the median lies between the order statistics k and
 * n-1-k (from 0) with 95 % confidence when n - 2k >= 1.96 sqrt(n). With few
 * samples it is their whole range.
 */
static inline void bench_median_ci95(double *v, size_t n, double *lo, double *hi)
{
	*lo = *hi = 0;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	size_t k = 0;
	while (n > 2 * (k + 1) &&
	       (double)(n - 2 * (k + 1)) * (double)(n - 2 * (k + 1)) >= 3.8416 * (double)n)
		k++;
	*lo = v[k];
	*hi = v[n - 1 - k];
}

/* --- test cgroups ------------------------------------------------------------------- */

static char bench_cg_root[PATH_MAX];

/* <cgroup2 mount>/dozed-bench.<pid>, created; set before bench_run_supervised forks. */
static inline int bench_cgroup_root_create(void)
{
	_cleanup_free_ char *mount = NULL;
	int r = cgroup2_mount_point(&mount);
	if (r < 0)
		return r;
	snprintf(bench_cg_root, sizeof(bench_cg_root), "%s/dozed-bench.%d", mount, (int)getpid());
	if (mkdir(bench_cg_root, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		fprintf(stderr, "bench: mkdir %s: %s\n", bench_cg_root, strerror(-r));
		bench_cg_root[0] = '\0';
		return r;
	}
	return 0;
}

/* Creates bench_cg_root/name; its path in out. */
static inline int bench_cgroup_create(const char *name, char *out, size_t len)
{
	if (!bench_cg_root[0])
		return -ENOENT;
	if ((size_t)snprintf(out, len, "%s/%s", bench_cg_root, name) >= len)
		return -ENAMETOOLONG;
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		int r = -errno;
		fprintf(stderr, "bench: mkdir %s: %s\n", out, strerror(-r));
		return r;
	}
	return 0;
}

/* Moves the calling process into cgroup dir: its sockets made from now on count there. */
static inline int bench_cgroup_enter(const char *dir)
{
	char procs[PATH_MAX];
	if ((size_t)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir) >= sizeof(procs))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* "0" moves the writer itself. */
	if (write(fd, "0", 1) < 0)
		return -errno;
	return 0;
}

static inline void bench_cgroup_remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		char sub[PATH_MAX];
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < sizeof(sub))
			bench_cgroup_remove_tree(sub);
	}
	closedir(d);
	/* Whatever still runs here was started by this benchmark: cgroup.kill
	 * ends exactly those processes, then the directory can go. */
	char kill_path[PATH_MAX];
	int fd = -1;
	if ((size_t)snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir) <
	    sizeof(kill_path))
		fd = open(kill_path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* an empty cgroup is fine */
		}
		close(fd);
	}
	for (int i = 0; i < 500 && rmdir(dir) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

static inline void bench_cgroup_remove_all(void)
{
	if (!bench_cg_root[0])
		return;
	bench_cgroup_remove_tree(bench_cg_root);
	struct stat st;
	if (stat(bench_cg_root, &st) == 0)
		fprintf(stderr, "bench: could not remove %s\n", bench_cg_root);
	bench_cg_root[0] = '\0';
}

/* --- supervision ---------------------------------------------------------------------- */

static volatile pid_t bench_child_pid;
static volatile sig_atomic_t bench_interrupted;

static void bench_forward_signal(int sig)
{
	bench_interrupted = sig;
	if (bench_child_pid > 0)
		kill(bench_child_pid, sig);
}

/*
 * Runs body(arg) in a child and waits for it, passing on SIGINT and SIGTERM.
 * The child dies with this process. 0 when body returned 0, -EINTR when one
 * of those signals came (the benchmark should stop), -1 otherwise.
 */
static inline int bench_run_supervised(int (*body)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* A shell starts background jobs with SIGINT ignored. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		int r = body(arg);
		fflush(NULL);
		_exit(r == 0 ? 0 : 1);
	}
	bench_child_pid = pid;
	struct sigaction sa = {.sa_handler = bench_forward_signal}, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bench_child_pid = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (WIFSIGNALED(status))
		fprintf(stderr, "bench: the benchmark died of signal %d\n", WTERMSIG(status));
	if (bench_interrupted)
		return -EINTR;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* tests/bench/results/name, opened for writing (NULL and a message when it
 * cannot be; NULL in quick mode, whose figures are not results). */
static inline FILE *bench_csv_open_mode(const char *name, const char *mode)
{
	if (bench_quick())
		return NULL;
	char path[PATH_MAX];
	mkdir(BENCH_RESULTS_DIR, 0755);
	snprintf(path, sizeof(path), "%s/%s", BENCH_RESULTS_DIR, name);
	FILE *f = fopen(path, mode);
	if (!f)
		fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

static inline FILE *bench_csv_open(const char *name)
{
	return bench_csv_open_mode(name, "w");
}
