// SPDX-License-Identifier: MIT
/* A container's freezer, thawed from under its runtime (include/dozed/freezer.h). */
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

#include "dozed/cgroup.h"
#include "dozed/macro.h"

/* The sibling the released processes wait in: beside the container's cgroup,
 * so that it inherits what the parent gives (and nothing the runtime set on
 * the container's own cgroup, which matters on v2 only: one hierarchy). */
#define THAW_SUFFIX ".dozed-thaw"
/* Processes forked during a settle land beside their parent; each round moves
 * those too. A container that forks faster than this is not settled (-EBUSY). */
#define SETTLE_ROUNDS 64

/* --- small file helpers ---------------------------------------------------- */

static int path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The whole of a file (procfs and cgroupfs report no size), NUL-terminated. */
static int read_all(const char *path, char **out, size_t *len_out)
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
static int read_line(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	int r = path_join(path, sizeof(path), dir, name);
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

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int r = path_join(path, sizeof(path), dir, name);
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

static int read_u64(const char *dir, const char *name, uint64_t *out)
{
	char buf[64];
	int r = read_line(dir, name, buf, sizeof(buf));
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

/* --- parsing: the cgroup v1 twins of cgroup2_mount_parse/cgroup2_path_parse -- */

/* Whether a comma-separated list holds token exactly: "freezer" is not
 * "name=freezer" (a named hierarchy with no controller). */
static bool list_has(const char *list, size_t len, const char *token)
{
	size_t tl = strlen(token);
	const char *end = list + len;
	for (const char *p = list; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t l = comma ? (size_t)(comma - p) : (size_t)(end - p);
		if (l == tl && memcmp(p, token, tl) == 0)
			return true;
		p += l + 1;
	}
	return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_field(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] =
			    (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * The mount point and root of the cgroup v1 hierarchy that has controller
 * (its super options, the last field, name it). Same contract as
 * cgroup2_mount_parse; generic over the controller (freezer, memory).
 */
static int cgroup1_mount_parse(const char *mountinfo, const char *controller, char **point,
			       char **root)
{
	for (const char *line = mountinfo; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *next = eol ? eol + 1 : NULL;

		/* id parent major:minor root mount-point options [optional...] - fstype src opts */
		const char *f[64];
		size_t fl[64], n = 0;
		for (size_t i = 0; i < len && n < ARRAY_SIZE(f);) {
			while (i < len && line[i] == ' ')
				i++;
			if (i == len)
				break;
			size_t start = i;
			while (i < len && line[i] != ' ')
				i++;
			f[n] = line + start;
			fl[n++] = i - start;
		}
		size_t sep = 6;
		while (sep < n && !(fl[sep] == 1 && f[sep][0] == '-'))
			sep++;
		line = next;
		/* after "-": fstype, source, super options */
		if (n < 6 || sep + 3 >= n)
			continue;
		if (!(fl[sep + 1] == 6 && memcmp(f[sep + 1], "cgroup", 6) == 0))
			continue;
		if (!list_has(f[sep + 3], fl[sep + 3], controller))
			continue;
		_cleanup_free_ char *p = unescape_field(f[4], fl[4]);
		_cleanup_free_ char *r = unescape_field(f[3], fl[3]);
		if (!p || !r)
			return -ENOMEM;
		*point = TAKE_PTR(p);
		*root = TAKE_PTR(r);
		return 0;
	}
	return -ENOENT;
}

/* The path of the "ID:controllers:path" line whose controllers name
 * controller. Same contract as cgroup2_path_parse. */
static int cgroup1_path_parse(const char *proc_pid_cgroup, const char *controller, char **path)
{
	for (const char *line = proc_pid_cgroup; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2 && list_has(c1 + 1, (size_t)(c2 - c1 - 1), controller)) {
			size_t pl = len - (size_t)(c2 + 1 - line);
			if (pl == 0 || c2[1] != '/')
				return -EINVAL;
			*path = strndup(c2 + 1, pl);
			return *path ? 0 : -ENOMEM;
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

/*
 * The directory of cgroup path (as /proc/PID/cgroup names it) under a mount
 * of root at point. The kernel writes absolute, normalized paths: a "." or
 * ".." component is no text of its, and must not lead outside the mount.
 * A v2 cgroup removed under a live reader reads "PATH (deleted)": gone.
 */
static int cgroup_dir_join(const char *point, const char *root, const char *path, char *out,
			   size_t size, bool *is_root)
{
	if (point[0] != '/' || path[0] != '/')
		return -EINVAL;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += l;
	}
	static const char deleted[] = " (deleted)";
	size_t pl = strlen(path);
	if (pl >= sizeof(deleted) - 1 && strcmp(path + pl - (sizeof(deleted) - 1), deleted) == 0)
		return -ENOENT;

	/* A mount of a subtree (root other than "/") shows only the paths under it. */
	const char *rel = path;
	if (strcmp(root, "/") != 0) {
		size_t rl = strlen(root);
		if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
			return -ENOENT;
		rel = path + rl;
	}
	if (strcmp(rel, "/") == 0)
		rel = "";
	/* The mount point "/" (a container's own cgroupfs) must not give "//x". */
	if (strcmp(point, "/") == 0 && rel[0])
		point = "";
	int n = snprintf(out, size, "%s%s", point, rel);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	if (is_root)
		*is_root = rel[0] == '\0';
	return 0;
}

/* The cgroup directory of a v1 hierarchy (controller) or, with NULL, of v2. */
static int cgroup_dir_in(const char *mountinfo, const char *proc_pid_cgroup, const char *controller,
			 char *out, size_t size, bool *is_root)
{
	_cleanup_free_ char *point = NULL, *root = NULL, *path = NULL;
	int r = controller ? cgroup1_mount_parse(mountinfo, controller, &point, &root)
			   : cgroup2_mount_parse(mountinfo, &point, &root);
	if (r < 0)
		return r;
	r = controller ? cgroup1_path_parse(proc_pid_cgroup, controller, &path)
		       : cgroup2_path_parse(proc_pid_cgroup, &path);
	if (r < 0)
		return r;
	return cgroup_dir_join(point, root, path, out, size, is_root);
}

int freezer_find_in(const char *mountinfo, const char *proc_pid_cgroup, struct freezer *out)
{
	char dir[PATH_MAX];
	/* The runtime freezes through v1 whenever the freezer hierarchy is
	 * there and holds the process; a path that is malformed or outside the
	 * mount is an answer too (the runtime does not use v2 then either). */
	int r = cgroup_dir_in(mountinfo, proc_pid_cgroup, "freezer", dir, sizeof(dir), NULL);
	bool v1 = r == 0;
	if (r == -ENOENT) {
		_cleanup_free_ char *point = NULL, *root = NULL, *path = NULL;
		bool mounted = cgroup1_mount_parse(mountinfo, "freezer", &point, &root) == 0;
		bool listed = cgroup1_path_parse(proc_pid_cgroup, "freezer", &path) == 0;
		if (mounted && listed)
			return -ENOENT;
		r = cgroup_dir_in(mountinfo, proc_pid_cgroup, NULL, dir, sizeof(dir), NULL);
	}
	if (r < 0)
		return r;
	memcpy(out->dir, dir, strlen(dir) + 1);
	out->v1 = v1;
	return 0;
}

/* The texts freezer_find_in reads, for process pid. */
static int proc_texts(pid_t pid, char **mountinfo, char **proc_pid_cgroup)
{
	if (pid <= 0)
		return -EINVAL;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *cg = NULL;
	int r = read_all(path, &cg, NULL);
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* Our own mount namespace: the paths are the ones dozed opens. */
	r = read_all("/proc/self/mountinfo", mountinfo, NULL);
	if (r < 0)
		return r;
	*proc_pid_cgroup = TAKE_PTR(cg);
	return 0;
}

int freezer_find(pid_t pid, struct freezer *out)
{
	_cleanup_free_ char *mountinfo = NULL, *cg = NULL;
	int r = proc_texts(pid, &mountinfo, &cg);
	if (r < 0)
		return r;
	return freezer_find_in(mountinfo, cg, out);
}

/* --- the freeze state ------------------------------------------------------ */

int freezer_is_frozen(const struct freezer *f)
{
	char buf[32];
	if (!f->v1) {
		int r = read_line(f->dir, "cgroup.freeze", buf, sizeof(buf));
		if (r < 0)
			return r;
		return strcmp(buf, "1") == 0 ? 1 : strcmp(buf, "0") == 0 ? 0 : -EINVAL;
	}
	int r = read_line(f->dir, "freezer.state", buf, sizeof(buf));
	if (r < 0)
		return r;
	/* FREEZING: some task has not stopped yet; the runtime waits for FROZEN. */
	if (strcmp(buf, "THAWED") == 0 || strcmp(buf, "FREEZING") == 0)
		return 0;
	if (strcmp(buf, "FROZEN") != 0)
		return -EINVAL;
	/* FROZEN also when only an ancestor is: that is not this cgroup's pause. */
	r = read_line(f->dir, "freezer.self_freezing", buf, sizeof(buf));
	if (r < 0)
		return r;
	return strcmp(buf, "1") == 0;
}

int freezer_set(const struct freezer *f, bool frozen)
{
	if (f->v1)
		return write_text(f->dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
	return write_text(f->dir, "cgroup.freeze", frozen ? "1" : "0");
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
	int n = snprintf(out, size, "%.*s%s", (int)len, f->dir, THAW_SUFFIX);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * The sibling is made with mkdir in the parent directory: only when dir is a
 * cgroup below the root of its hierarchy (the freeze file exists nowhere else),
 * so that no directory appears beside a hierarchy's mount point or anywhere
 * outside cgroupfs.
 */
static int check_cgroup(const struct freezer *f)
{
	struct statfs sfs;
	if (statfs(f->dir, &sfs) < 0)
		return -errno;
	if (sfs.f_type != (f->v1 ? CGROUP_SUPER_MAGIC : CGROUP2_SUPER_MAGIC))
		return -EINVAL;
	char path[PATH_MAX];
	int r = path_join(path, sizeof(path), f->dir, f->v1 ? "freezer.state" : "cgroup.freeze");
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
	int r = path_join(path, sizeof(path), from, "cgroup.procs");
	if (r < 0)
		return r;
	_cleanup_free_ char *list = NULL;
	size_t len = 0;
	r = read_all(path, &list, &len);
	if (r < 0)
		return r;
	if (len == 0)
		return 0;

	r = path_join(path, sizeof(path), to, "cgroup.procs");
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
	int r = path_join(path, sizeof(path), dir, "cgroup.procs");
	if (r < 0)
		return r;
	_cleanup_free_ char *list = NULL;
	r = read_all(path, &list, NULL);
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

static struct freezer sibling_freezer(const struct freezer *f, const char *sibling)
{
	struct freezer s = {.v1 = f->v1};
	memcpy(s.dir, sibling, strlen(sibling) + 1);
	return s;
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
	/* EEXIST: parked (freezer_park), or a release dozed did not settle (it
	 * was killed in between). A parked sibling is frozen: thaw it, which
	 * is all a parked wake costs. */
	bool existed = false;
	if (mkdir(sibling, 0755) < 0) {
		if (errno != EEXIST)
			return -errno;
		existed = true;
		struct freezer s = sibling_freezer(f, sibling);
		r = freezer_set(&s, false);
		if (r < 0)
			return r;
	}
	/* Only the processes of dir itself: a nested cgroup stays frozen (under
	 * a v1 ancestor's or v2 cgroup.freeze) until the runtime's unpause. */
	int moved = move_procs(f->dir, sibling);
	if (moved < 0) {
		(void)settle_into(f, sibling);
		return moved;
	}
	return existed ? count_procs(sibling) : moved;
}

int freezer_park(const struct freezer *f)
{
	char sibling[PATH_MAX];
	int r = sibling_path(f, sibling, sizeof(sibling));
	if (r < 0)
		return r;
	r = check_cgroup(f);
	if (r < 0)
		return r;
	/* Parking a cgroup that is not (yet) frozen would freeze what runs. */
	r = freezer_is_frozen(f);
	if (r < 0)
		return r;
	if (r == 0)
		return -EAGAIN;
	if (mkdir(sibling, 0755) < 0 && errno != EEXIST)
		return -errno;
	/* Frozen before anything moves in: a frozen process moved into a
	 * frozen cgroup stays frozen (v1 freezer_attach, v2 the same). */
	struct freezer s = sibling_freezer(f, sibling);
	r = freezer_set(&s, true);
	if (r < 0) {
		(void)rmdir(sibling);
		return r;
	}
	int moved = move_procs(f->dir, sibling);
	if (moved < 0) {
		(void)settle_into(f, sibling);
		return moved;
	}
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
	if (access(sibling, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	return settle_into(f, sibling);
}

/* --- memory ---------------------------------------------------------------- */

/* Process pid's memory cgroup: its v2 directory when the memory controller is
 * enabled there (memory.current exists), else the v1 "memory" hierarchy's. */
static int memory_dir(pid_t pid, char *dir, size_t size, bool *v2, bool *is_root)
{
	_cleanup_free_ char *mountinfo = NULL, *cg = NULL;
	int r = proc_texts(pid, &mountinfo, &cg);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	if (cgroup_dir_in(mountinfo, cg, NULL, dir, size, is_root) == 0 &&
	    path_join(path, sizeof(path), dir, "memory.current") == 0 && access(path, F_OK) == 0) {
		*v2 = true;
		return 0;
	}
	r = cgroup_dir_in(mountinfo, cg, "memory", dir, size, is_root);
	if (r < 0)
		return r;
	r = path_join(path, sizeof(path), dir, "memory.usage_in_bytes");
	if (r < 0)
		return r;
	if (access(path, F_OK) < 0)
		return -ENOENT;
	*v2 = false;
	return 0;
}

int freezer_memory_bytes(pid_t pid, uint64_t *out)
{
	char dir[PATH_MAX];
	bool v2 = false, is_root = false;
	int r = memory_dir(pid, dir, sizeof(dir), &v2, &is_root);
	if (r < 0)
		return r;
	return read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", out);
}

int freezer_reclaim(pid_t pid, uint64_t *before, uint64_t *after, const char **why)
{
	const char *unused;
	if (!why)
		why = &unused;
	*why = NULL;
	char dir[PATH_MAX];
	bool v2 = false, is_root = false;
	int r = memory_dir(pid, dir, sizeof(dir), &v2, &is_root);
	if (r == -ENOENT) {
		*why = "the container's cgroup has no memory controller (neither cgroup v2 "
		       "memory.current nor a cgroup v1 memory hierarchy)";
		return -EOPNOTSUPP;
	}
	if (r < 0)
		return r;
	/* v2's root has a memory.reclaim too: it would empty the whole host's cache. */
	if (is_root) {
		*why = "the process is in the root memory cgroup: reclaiming there would "
		       "reclaim the whole host's memory";
		return -EINVAL;
	}
	const char *current = v2 ? "memory.current" : "memory.usage_in_bytes";
	const char *knob = v2 ? "memory.reclaim" : "memory.force_empty";
	char path[PATH_MAX];
	r = path_join(path, sizeof(path), dir, knob);
	if (r < 0)
		return r;
	if (access(path, F_OK) < 0) {
		if (errno != ENOENT)
			return -errno;
		*why = v2 ? "this kernel has no cgroup v2 memory.reclaim (Linux 5.19 or later "
			    "has it)"
			  : "this kernel's cgroup v1 memory controller has no memory.force_empty";
		return -EOPNOTSUPP;
	}

	uint64_t b = 0, a = 0;
	r = read_u64(dir, current, &b);
	if (r < 0)
		return r;
	if (v2) {
		/* Asking for all of it: the kernel takes what it can. EAGAIN says
		 * it reclaimed less than asked, which is the expected outcome. */
		char amount[32];
		snprintf(amount, sizeof(amount), "%llu", (unsigned long long)b);
		r = b > 0 ? write_text(dir, knob, amount) : 0;
		if (r == -EAGAIN)
			r = 0;
	} else {
		/* With tasks present, force_empty reclaims what it can and returns. */
		r = write_text(dir, knob, "0");
	}
	if (r < 0)
		return r;
	r = read_u64(dir, current, &a);
	if (r < 0)
		return r;
	if (before)
		*before = b;
	if (after)
		*after = a;
	return 0;
}
