// SPDX-License-Identifier: MIT
/* Which freezer the runtime uses for a process: the v1 freezer hierarchy's
 * directory, else its cgroup v2 one (include/dozed/freezer.h). */
#include "dozed/freezer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/cgroup.h"
#include "dozed/macro.h"
#include "freezer_internal.h"

/* Absolute, and no "." or ".." component. */
static bool normalized(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += l;
	}
	return true;
}

/*
 * The directory of cgroup path (as /proc/PID/cgroup names it) under a mount
 * of root at point. The kernel writes absolute, normalized paths (both): a
 * "." or ".." component is no text of its, and must not lead outside the mount.
 * A v2 cgroup removed under a live reader reads "PATH (deleted)": gone.
 * The sibling (FREEZER_SIBLING_SUFFIX) gives the container's cgroup.
 */
static int cgroup_dir_join(const char *point, const char *root, const char *path, char *out,
			   size_t size, bool *is_root)
{
	if (!normalized(point) || !normalized(path))
		return -EINVAL;
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
	/* A process out in dozed's sibling (released, or parked while frozen)
	 * belongs to the container's cgroup beside it: after a restart of dozed
	 * the container's init is found there. */
	size_t rl = strlen(rel), sl = strlen(FREEZER_SIBLING_SUFFIX);
	if (rl > sl + 1 && strcmp(rel + rl - sl, FREEZER_SIBLING_SUFFIX) == 0) {
		/* The name it is the sibling of: a cgroup's, never "." or "..". */
		const char *base = rel + rl - sl;
		while (base > rel && base[-1] != '/')
			base--;
		size_t bl = (size_t)(rel + rl - sl - base);
		if (bl > 0 && !(bl == 1 && base[0] == '.') &&
		    !(bl == 2 && base[0] == '.' && base[1] == '.'))
			out[(size_t)n - sl] = '\0';
	}
	if (is_root)
		*is_root = rel[0] == '\0';
	return 0;
}

/* The cgroup directory of a v1 hierarchy (controller) or, with NULL, of v2. */
int freezer_cgroup_dir_in(const char *mountinfo, const char *proc_pid_cgroup,
			  const char *controller, char *out, size_t size, bool *is_root)
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
	int r =
	    freezer_cgroup_dir_in(mountinfo, proc_pid_cgroup, "freezer", dir, sizeof(dir), NULL);
	bool v1 = r == 0;
	if (r == -ENOENT) {
		_cleanup_free_ char *point = NULL, *root = NULL, *path = NULL;
		bool mounted = cgroup1_mount_parse(mountinfo, "freezer", &point, &root) == 0;
		bool listed = cgroup1_path_parse(proc_pid_cgroup, "freezer", &path) == 0;
		if (mounted && listed)
			return -ENOENT;
		r = freezer_cgroup_dir_in(mountinfo, proc_pid_cgroup, NULL, dir, sizeof(dir), NULL);
	}
	if (r < 0)
		return r;
	memcpy(out->dir, dir, strlen(dir) + 1);
	out->v1 = v1;
	return 0;
}

/* The texts freezer_find_in reads, for process pid. */
int freezer_proc_texts(pid_t pid, char **mountinfo, char **proc_pid_cgroup)
{
	if (pid <= 0)
		return -EINVAL;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *cg = NULL;
	int r = freezer_read_all(path, &cg, NULL);
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* Our own mount namespace: the paths are the ones dozed opens. */
	r = freezer_read_all("/proc/self/mountinfo", mountinfo, NULL);
	if (r < 0)
		return r;
	*proc_pid_cgroup = TAKE_PTR(cg);
	return 0;
}

int freezer_find(pid_t pid, struct freezer *out)
{
	_cleanup_free_ char *mountinfo = NULL, *cg = NULL;
	int r = freezer_proc_texts(pid, &mountinfo, &cg);
	if (r < 0)
		return r;
	return freezer_find_in(mountinfo, cg, out);
}
