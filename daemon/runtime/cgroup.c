// SPDX-License-Identifier: MIT
#include "dozed/cgroup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/log.h"
#include "dozed/fileio.h"
#include "dozed/macro.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape_octal(const char *s, size_t len)
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

/* Splits one line into at most max space-separated fields, in place. */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(line, " ", &save); tok && n < max;
	     tok = strtok_r(NULL, " ", &save))
		fields[n++] = tok;
	return n;
}

int cgroup2_mount_parse(const char *mountinfo, char **mount_point, char **mount_root)
{
	const char *line = mountinfo;
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		_cleanup_free_ char *copy = strndup(line, len);
		if (!copy)
			return -ENOMEM;
		line = end ? end + 1 : NULL;

		/* id parent major:minor root mount-point options [optional...] - fstype src opts */
		char *f[64];
		size_t n = split_fields(copy, f, ARRAY_SIZE(f));
		size_t sep = 6;
		while (sep < n && strcmp(f[sep], "-") != 0)
			sep++;
		if (n < 6 || sep + 1 >= n)
			continue;
		if (strcmp(f[sep + 1], "cgroup2") != 0)
			continue;

		_cleanup_free_ char *point = unescape_octal(f[4], strlen(f[4]));
		_cleanup_free_ char *root = unescape_octal(f[3], strlen(f[3]));
		if (!point || !root)
			return -ENOMEM;
		*mount_point = TAKE_PTR(point);
		*mount_root = TAKE_PTR(root);
		return 0;
	}
	return -ENOENT;
}

int cgroup2_path_parse(const char *proc_pid_cgroup, char **path)
{
	const char *line = proc_pid_cgroup;
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len >= 3 && strncmp(line, "0::", 3) == 0) {
			if (len == 3 || line[3] != '/')
				return -EINVAL;
			*path = strndup(line + 3, len - 3);
			return *path ? 0 : -ENOMEM;
		}
		line = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* --- the cgroup v1 twins, for a hybrid host's freezer and memory hierarchies -- */

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

/*
 * The mount point and root of the cgroup v1 hierarchy that has controller
 * (its super options, the last field, name it). Same contract as
 * cgroup2_mount_parse; generic over the controller (freezer, memory).
 */
int cgroup1_mount_parse(const char *mountinfo, const char *controller, char **point, char **root)
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
		_cleanup_free_ char *p = unescape_octal(f[4], fl[4]);
		_cleanup_free_ char *r = unescape_octal(f[3], fl[3]);
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
int cgroup1_path_parse(const char *proc_pid_cgroup, const char *controller, char **path)
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

static int cgroup2_mount(char **point, char **root)
{
	_cleanup_free_ char *mountinfo = NULL;
	int r = file_read_text("/proc/self/mountinfo", &mountinfo);
	if (r < 0)
		return log_error_errno(r, "Failed to read /proc/self/mountinfo");
	r = cgroup2_mount_parse(mountinfo, point, root);
	if (r == -ENOENT)
		return log_error_errno(SYNTHETIC_ERRNO(r),
				       "No cgroup2 filesystem is mounted: dozed needs cgroup v2 "
				       "(boot with systemd.unified_cgroup_hierarchy=1, or mount "
				       "one: mount -t cgroup2 none /sys/fs/cgroup/unified)");
	if (r < 0)
		return log_error_errno(r, "Failed to parse /proc/self/mountinfo");
	return 0;
}

int cgroup2_mount_point(char **out)
{
	_cleanup_free_ char *root = NULL;
	return cgroup2_mount(out, &root);
}

int cgroup2_dir_from_pid(pid_t pid, char **out)
{
	_cleanup_free_ char *point = NULL, *root = NULL, *text = NULL, *path = NULL;
	int r = cgroup2_mount(&point, &root);
	if (r < 0)
		return r;

	char proc_path[64];
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/cgroup", (int)pid);
	r = file_read_text(proc_path, &text);
	if (r == -ENOENT)
		return log_error_errno(SYNTHETIC_ERRNO(ESRCH),
				       "Cannot find the cgroup of PID %d: no such process",
				       (int)pid);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s", proc_path);

	r = cgroup2_path_parse(text, &path);
	if (r == -ENOENT)
		return log_error_errno(SYNTHETIC_ERRNO(r),
				       "PID %d is in no cgroup v2 (no \"0::\" line in %s)",
				       (int)pid, proc_path);
	if (r == -EINVAL)
		return log_error_errno(SYNTHETIC_ERRNO(r),
				       "Failed to parse %s: its \"0::\" line names no path",
				       proc_path);
	if (r < 0)
		return log_error_errno(r, "Failed to parse %s", proc_path);

	/* A mount of a subtree (root other than "/") shows only the paths under it. */
	const char *rel = path;
	if (strcmp(root, "/") != 0) {
		size_t rl = strlen(root);
		if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
			return log_error_errno(
			    SYNTHETIC_ERRNO(ENOENT),
			    "The cgroup %s of PID %d is outside the cgroup2 mount "
			    "at %s (which shows %s)",
			    path, (int)pid, point, root);
		rel = path + rl;
	}
	if (strcmp(rel, "/") == 0)
		rel = "";

	char *dir = NULL;
	if (asprintf(&dir, "%s%s", point, rel) < 0)
		return log_error_errno(ENOMEM, "Failed to build the cgroup path of PID %d",
				       (int)pid);
	*out = dir;
	return 0;
}
