// SPDX-License-Identifier: MIT
/* A container's freezer, thawed from under its runtime (include/dozed/freezer.h):
 * its state, the release and the settle. Finding it: freezer_find.c; its
 * memory: freezer_memory.c. */
#include "dozed/freezer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "freezer_internal.h"

/* Processes forked during a settle land beside their parent; each round moves
 * those too. A container that forks faster than this is not settled (-EBUSY). */
#define SETTLE_ROUNDS 64

/* --- small file helpers ---------------------------------------------------- */

int freezer_path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The whole of a file (procfs and cgroupfs report no size), NUL-terminated. */
int freezer_read_all(const char *path, char **out, size_t *len_out)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 2) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				return -ENOMEM;
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	*out = TAKE_PTR(buf);
	return 0;
}

/* A one-line control file (freezer.state, memory.current), without its newline. */
int freezer_read_line(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	int r = freezer_path_join(path, sizeof(path), dir, name);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int freezer_write_text(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int r = freezer_path_join(path, sizeof(path), dir, name);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int freezer_read_u64(const char *dir, const char *name, uint64_t *out)
{
	char buf[64];
	int r = freezer_read_line(dir, name, buf, sizeof(buf));
	if (r < 0)
		return r;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf || *end != '\0' || buf[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* --- the freeze state ------------------------------------------------------ */

int freezer_is_frozen(const struct freezer *f)
{
	char buf[32];
	if (!f->v1) {
		int r = freezer_read_line(f->dir, "cgroup.freeze", buf, sizeof(buf));
		if (r < 0)
			return r;
		return strcmp(buf, "1") == 0 ? 1 : strcmp(buf, "0") == 0 ? 0 : -EINVAL;
	}
	int r = freezer_read_line(f->dir, "freezer.state", buf, sizeof(buf));
	if (r < 0)
		return r;
	/* FREEZING: some task has not stopped yet; the runtime waits for FROZEN. */
	if (strcmp(buf, "THAWED") == 0 || strcmp(buf, "FREEZING") == 0)
		return 0;
	if (strcmp(buf, "FROZEN") != 0)
		return -EINVAL;
	/* FROZEN also when only an ancestor is: that is not this cgroup's pause. */
	r = freezer_read_line(f->dir, "freezer.self_freezing", buf, sizeof(buf));
	if (r < 0)
		return r;
	return strcmp(buf, "1") == 0;
}

int freezer_set(const struct freezer *f, bool frozen)
{
	if (f->v1)
		return freezer_write_text(f->dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
	return freezer_write_text(f->dir, "cgroup.freeze", frozen ? "1" : "0");
}

/* --- release and settle ---------------------------------------------------- */

static int sibling_path(const struct freezer *f, char *out, size_t size)
{
	size_t len = strlen(f->dir);
	while (len > 0 && f->dir[len - 1] == '/')
		len--;
	/* An empty or relative dir has no sibling dozed may create. */
	if (len == 0 || f->dir[0] != '/')
		return -EINVAL;
	int n = snprintf(out, size, "%.*s%s", (int)len, f->dir, FREEZER_SIBLING_SUFFIX);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * The sibling is made with mkdir in the parent directory: only when dir is a
 * cgroup below the root of its hierarchy (the freeze file exists nowhere else),
 * so that no directory appears beside a hierarchy's mount point or anywhere
 * outside cgroupfs.
 */
static int on_cgroupfs(const char *dir, bool v1)
{
	struct statfs sfs;
	if (statfs(dir, &sfs) < 0)
		return -errno;
	return sfs.f_type == (v1 ? CGROUP_SUPER_MAGIC : CGROUP2_SUPER_MAGIC) ? 0 : -EINVAL;
}

static int check_cgroup(const struct freezer *f)
{
	int r = on_cgroupfs(f->dir, f->v1);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	r = freezer_path_join(path, sizeof(path), f->dir,
			      f->v1 ? "freezer.state" : "cgroup.freeze");
	if (r < 0)
		return r;
	return access(path, F_OK) < 0 ? -errno : 0;
}

/*
 * Moves every process listed in from/cgroup.procs into to: one write(2) of
 * its pid each, on one open file. A process that exited in between (ESRCH)
 * is not an error. Returns how many moved.
 */
static int move_procs(const char *from, const char *to)
{
	char path[PATH_MAX];
	int r = freezer_path_join(path, sizeof(path), from, "cgroup.procs");
	if (r < 0)
		return r;
	_cleanup_free_ char *list = NULL;
	size_t len = 0;
	r = freezer_read_all(path, &list, &len);
	if (r < 0)
		return r;
	if (len == 0)
		return 0;

	r = freezer_path_join(path, sizeof(path), to, "cgroup.procs");
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int moved = 0;
	for (char *p = list; *p;) {
		size_t l = strcspn(p, "\n");
		if (l > 0) {
			ssize_t n;
			do
				n = write(fd, p, l);
			while (n < 0 && errno == EINTR);
			if (n < 0 && errno != ESRCH)
				return -errno;
			if (n >= 0)
				moved++;
		}
		p += l;
		if (*p == '\n')
			p++;
	}
	return moved;
}

static int count_procs(const char *dir)
{
	char path[PATH_MAX];
	int r = freezer_path_join(path, sizeof(path), dir, "cgroup.procs");
	if (r < 0)
		return r;
	_cleanup_free_ char *list = NULL;
	r = freezer_read_all(path, &list, NULL);
	if (r < 0)
		return r;
	int n = 0;
	for (const char *p = list; *p; p++)
		if (*p == '\n')
			n++;
	return n;
}

static int settle_into(const struct freezer *f, const char *sibling)
{
	for (int round = 0; round < SETTLE_ROUNDS; round++) {
		int r = move_procs(sibling, f->dir);
		if (r == -ENOENT && access(sibling, F_OK) < 0 && errno == ENOENT)
			return 0;
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		/* Empty at the read; a fork since then makes rmdir say EBUSY. */
		if (rmdir(sibling) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
	}
	return -EBUSY;
}

int freezer_release(const struct freezer *f)
{
	char sibling[PATH_MAX];
	int r = sibling_path(f, sibling, sizeof(sibling));
	if (r < 0)
		return r;
	r = check_cgroup(f);
	if (r < 0)
		return r;
	/* EEXIST: made by the caller (frozen, to park the processes in it:
	 * daemon_freeze.c), or a release dozed did not settle. Its state is
	 * the caller's: it is not touched here. */
	if (mkdir(sibling, 0755) < 0 && errno != EEXIST)
		return -errno;
	/* Only the processes of dir itself: a nested cgroup stays frozen (under
	 * a v1 ancestor's or v2 cgroup.freeze) until the runtime's unpause. */
	int moved = move_procs(f->dir, sibling);
	if (moved < 0)
		(void)settle_into(f, sibling);
	return moved;
}

int freezer_released(const struct freezer *f)
{
	char sibling[PATH_MAX];
	int r = sibling_path(f, sibling, sizeof(sibling));
	if (r < 0)
		return r;
	r = count_procs(sibling);
	return r == -ENOENT ? 0 : r;
}

int freezer_settle(const struct freezer *f)
{
	char sibling[PATH_MAX];
	int r = sibling_path(f, sibling, sizeof(sibling));
	if (r < 0)
		return r;
	/* Absent: nothing to settle. Not on cgroupfs: not dozed's, not removed. */
	r = on_cgroupfs(sibling, f->v1);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return settle_into(f, sibling);
}
