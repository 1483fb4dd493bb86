/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Finding a container's cgroup v2 directory from its init PID: the "0::" line
 * of /proc/PID/cgroup joined with the cgroup2 mount point from
 * /proc/self/mountinfo (/sys/fs/cgroup on unified hosts,
 * /sys/fs/cgroup/unified on hybrid ones).
 */

/* Parsers, pure, on the text of those files. Strings out are malloc'd.
 * -ENOENT: no cgroup2 mount / no "0::" line; -EINVAL: malformed text. */
int cgroup2_mount_parse(const char *mountinfo, char **mount_point, char **mount_root);
int cgroup2_path_parse(const char *proc_pid_cgroup, char **path);
/* The same for the cgroup v1 hierarchy of controller ("freezer", "memory"):
 * its mount (super options naming it exactly, not "name=freezer") and the
 * path of the /proc/PID/cgroup line whose controllers name it. */
int cgroup1_mount_parse(const char *mountinfo, const char *controller, char **point, char **root);
int cgroup1_path_parse(const char *proc_pid_cgroup, const char *controller, char **path);

/* The cgroup2 mount point of this host, logged when missing. */
int cgroup2_mount_point(char **out);
/* The cgroup v2 directory of a process, e.g. /sys/fs/cgroup/system.slice/docker-ID.scope. */
int cgroup2_dir_from_pid(pid_t pid, char **out);
