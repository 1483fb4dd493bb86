/* SPDX-License-Identifier: MIT */
#pragma once

/* Between freezer.c, freezer_find.c and freezer_memory.c: cgroupfs and procfs
 * files as plain syscalls, and a process's cgroup directory. Each returns 0 or
 * -errno. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* dir/name in out; -ENAMETOOLONG when it does not fit. */
int freezer_path_join(char *out, size_t size, const char *dir, const char *name);
/* The whole file (procfs and cgroupfs report no size), NUL-terminated, malloc'd. */
int freezer_read_all(const char *path, char **out, size_t *len_out);
/* A one-line control file (freezer.state, memory.current), without its newline. */
int freezer_read_line(const char *dir, const char *name, char *buf, size_t size);
int freezer_write_text(const char *dir, const char *name, const char *text);
int freezer_read_u64(const char *dir, const char *name, uint64_t *out);

/* /proc/self/mountinfo and /proc/PID/cgroup (malloc'd); -ESRCH when pid is gone. */
int freezer_proc_texts(pid_t pid, char **mountinfo, char **proc_pid_cgroup);
/* The directory of the process's cgroup in the v1 hierarchy of controller,
 * or with NULL in cgroup2; *is_root (may be NULL) when it is the hierarchy's root. */
int freezer_cgroup_dir_in(const char *mountinfo, const char *proc_pid_cgroup,
			  const char *controller, char *out, size_t size, bool *is_root);
