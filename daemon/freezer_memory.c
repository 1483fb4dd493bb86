// SPDX-License-Identifier: MIT
/* A frozen container's memory: what it holds, and asking the kernel to
 * reclaim it (include/dozed/freezer.h). */
#include "dozed/freezer.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "freezer_internal.h"

/* --- memory ---------------------------------------------------------------- */

/* Process pid's memory cgroup: its v2 directory when the memory controller is
 * enabled there (memory.current exists), else the v1 "memory" hierarchy's. */
static int memory_dir(pid_t pid, char *dir, size_t size, bool *v2, bool *is_root)
{
	_cleanup_free_ char *mountinfo = NULL, *cg = NULL;
	int r = freezer_proc_texts(pid, &mountinfo, &cg);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	if (freezer_cgroup_dir_in(mountinfo, cg, NULL, dir, size, is_root) == 0 &&
	    freezer_path_join(path, sizeof(path), dir, "memory.current") == 0 &&
	    access(path, F_OK) == 0) {
		*v2 = true;
		return 0;
	}
	r = freezer_cgroup_dir_in(mountinfo, cg, "memory", dir, size, is_root);
	if (r < 0)
		return r;
	r = freezer_path_join(path, sizeof(path), dir, "memory.usage_in_bytes");
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
	return freezer_read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", out);
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
	r = freezer_path_join(path, sizeof(path), dir, knob);
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
	r = freezer_read_u64(dir, current, &b);
	if (r < 0)
		return r;
	if (v2) {
		/* Asking for all of it: the kernel takes what it can. EAGAIN says
		 * it reclaimed less than asked, which is the expected outcome. */
		char amount[32];
		snprintf(amount, sizeof(amount), "%llu", (unsigned long long)b);
		r = b > 0 ? freezer_write_text(dir, knob, amount) : 0;
		if (r == -EAGAIN)
			r = 0;
	} else {
		/* With tasks present, force_empty reclaims what it can and returns. */
		r = freezer_write_text(dir, knob, "0");
	}
	if (r < 0)
		return r;
	r = freezer_read_u64(dir, current, &a);
	if (r < 0)
		return r;
	if (before)
		*before = b;
	if (after)
		*after = a;
	return 0;
}
