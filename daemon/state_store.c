// SPDX-License-Identifier: MIT
#include "dozed/state_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dozed/log.h"
#include "dozed/macro.h"

#define TMP_PREFIX     STATE_FILE_NAME ".tmp-"
#define CORRUPT_PREFIX STATE_FILE_NAME ".corrupt-"
#define STATE_FILE_MAX (64u << 20)

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static char *state_path(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int read_all(int fd, char **out, size_t *len)
{
	size_t cap = 4096, used = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (used == cap) {
			if (cap >= STATE_FILE_MAX)
				return -EFBIG;
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				return -ENOMEM;
			buf = bigger;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + used, cap - used);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		used += (size_t)k;
	}
	*out = TAKE_PTR(buf);
	*len = used;
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, buf, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/*
 * Keeps a corrupt file aside under a name no earlier corrupt file has: the
 * file itself is renamed when copy is NULL, else a copy of copy_len bytes of
 * copy is written there (the file stays, as its good entries still load).
 */
static int keep_aside(const char *dir, const char *path, const char *copy, size_t copy_len,
		      char **aside)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);

	for (unsigned i = 0; i < 100; i++) {
		_cleanup_free_ char *target = NULL;
		int k = i == 0 ? asprintf(&target, "%s/" CORRUPT_PREFIX "%s", dir, stamp)
			       : asprintf(&target, "%s/" CORRUPT_PREFIX "%s.%u", dir, stamp, i);
		if (k < 0)
			return -ENOMEM;
		int r;
		if (copy) {
			_cleanup_close_ int fd = open(
			    target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd < 0 && errno == EEXIST)
				continue;
			if (fd < 0)
				return -errno;
			r = write_all(fd, copy, copy_len);
			if (r == 0 && fsync(fd) < 0)
				r = -errno;
			if (r < 0) {
				(void)unlink(target);
				return r;
			}
		} else {
			r = renameat2(AT_FDCWD, path, AT_FDCWD, target, RENAME_NOREPLACE);
			if (r < 0 && errno == EINVAL) {
				/* A file system without RENAME_NOREPLACE; the directory is ours. */
				if (access(target, F_OK) == 0)
					continue;
				r = rename(path, target);
			}
			if (r < 0 && errno == EEXIST)
				continue;
			if (r < 0)
				return -errno;
		}
		(void)fsync_dir(dir);
		*aside = TAKE_PTR(target);
		return 0;
	}
	return -EEXIST;
}

/* A crash between creating a temporary file and its rename leaves it behind. */
static void remove_stale_temps(const char *dir)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			log_warning_errno(errno, "Failed to remove %s/%s", dir, e->d_name);
		else
			log_debug("Removed %s/%s, left by an interrupted save", dir, e->d_name);
	}
}

struct bad_log {
	const char *path;
	struct state_aside *aside;
	int err; /* -ENOMEM when an entry could not be kept */
};

static void log_bad_entry(void *userdata, size_t index, const char *name, const char *why,
			  const char *raw)
{
	struct bad_log *l = userdata;
	if (name)
		log_error("%s: entry %zu (%s) set aside: %s", l->path, index, name, why);
	else
		log_error("%s: entry %zu set aside: %s", l->path, index, why);
	char **more = realloc(l->aside->entries, (l->aside->n + 1) * sizeof(*more));
	char *copy = raw ? strdup(raw) : NULL;
	if (!more || !copy) {
		free(copy);
		if (more)
			l->aside->entries = more;
		l->err = -ENOMEM;
		return;
	}
	l->aside->entries = more;
	l->aside->entries[l->aside->n++] = copy;
}

size_t state_store_count_corrupt(const char *dir)
{
	size_t n = 0;
	_cleanup_(closedirp) DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		n += strncmp(e->d_name, CORRUPT_PREFIX, strlen(CORRUPT_PREFIX)) == 0;
	return n;
}

/* Whether an earlier corrupt copy already holds these bytes: one copy per content. */
static bool copy_exists(const char *dir, const char *text, size_t len, char **which)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strncmp(e->d_name, CORRUPT_PREFIX, strlen(CORRUPT_PREFIX)) != 0)
			continue;
		_cleanup_close_ int fd =
		    openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size != len)
			continue;
		_cleanup_free_ char *other = NULL;
		size_t other_len = 0;
		if (read_all(fd, &other, &other_len) == 0 && other_len == len &&
		    memcmp(other, text, len) == 0)
			return asprintf(which, "%s/%s", dir, e->d_name) >= 0;
	}
	return false;
}

int state_store_load(const char *dir, struct state_service **out, size_t *n,
		     struct state_aside *set_aside)
{
	*out = NULL;
	*n = 0;
	*set_aside = (struct state_aside){0};
	_cleanup_free_ char *path = state_path(dir, STATE_FILE_NAME);
	if (!path)
		return log_error_errno(ENOMEM, "Failed to load the enabled services");

	remove_stale_temps(dir);

	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return log_error_errno(errno, "Failed to open %s", path);

	_cleanup_free_ char *text = NULL;
	size_t len = 0, n_bad = 0;
	char why[256] = "";
	struct bad_log bl = {.path = path, .aside = set_aside};
	int r = read_all(fd, &text, &len);
	if (r == -EFBIG) {
		snprintf(why, sizeof(why), "it is larger than %u MiB", STATE_FILE_MAX >> 20);
		r = -EBADMSG;
	} else if (r < 0) {
		return log_error_errno(r, "Failed to read %s", path);
	} else {
		r = state_store_parse(text, len, out, n, &n_bad, log_bad_entry, &bl, why,
				      sizeof(why));
	}
	if (r == 0 && bl.err < 0)
		r = bl.err;
	if (r == -ENOMEM) {
		state_services_free(*out, *n);
		*out = NULL;
		*n = 0;
		state_aside_clear(set_aside);
		return log_error_errno(r, "Failed to load %s", path);
	}
	if (r == 0 && n_bad == 0)
		return 0;

	_cleanup_free_ char *aside = NULL;
	if (r == 0) {
		/* The bad entries are kept in the file too: the copy is a record of it. */
		if (copy_exists(dir, text, len, &aside)) {
			log_error("%s: %zu bad entries set aside, %zu loaded; they are kept in it, "
				  "and a copy of the file is %s",
				  path, n_bad, *n, aside);
			return 0;
		}
		int k = keep_aside(dir, path, text, len, &aside);
		if (k < 0)
			log_error_errno(
			    k,
			    "%s: %zu bad entries set aside, %zu loaded; they are kept in "
			    "it, but no copy of the file could be written beside it",
			    path, n_bad, *n);
		else
			log_error("%s: %zu bad entries set aside, %zu loaded; they are kept in it, "
				  "and the whole file is copied to %s",
				  path, n_bad, *n, aside);
		return 0;
	}
	int k = keep_aside(dir, path, NULL, 0, &aside);
	if (k < 0)
		return log_error_errno(k,
				       "%s is corrupt (%s) and could not be moved aside; "
				       "fix or remove it",
				       path, why);
	log_error("%s is corrupt (%s): moved to %s", path, why, aside);
	return -EBADMSG;
}

/* mkdir -p: the state directory private to root, parents as usual. */
static int mkdir_parents(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	_cleanup_free_ char *parent = strdup(dir);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -ENOENT;
	*slash = '\0';
	int r = mkdir_parents(parent, 0755);
	if (r < 0)
		return r;
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Creates a temporary file of our own beside the state file. */
static int create_temp(int dfd, char *name, size_t len)
{
	static unsigned counter;
	for (unsigned tries = 0; tries < 100; tries++) {
		snprintf(name, len, TMP_PREFIX "%d-%u", (int)getpid(), counter++);
		int fd =
		    openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

int state_store_save(const char *dir, const struct state_service *s, size_t n,
		     const struct state_aside *aside)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = state_service_invalid(&s[i]);
		if (why) {
			log_error("Refusing to save the enabled services: entry %zu: %s", i + 1,
				  why);
			return -EINVAL;
		}
	}

	_cleanup_free_ char *path = state_path(dir, STATE_FILE_NAME);
	_cleanup_free_ char *text = NULL;
	if (!path || state_store_format(s, n, aside, &text) < 0)
		return log_error_errno(ENOMEM, "Failed to save the enabled services");

	int r = mkdir_parents(dir, 0700);
	if (r < 0)
		return log_error_errno(r, "Failed to create the state directory %s", dir);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_error_errno(errno, "Failed to open the state directory %s", dir);

	char tmp[64];
	_cleanup_close_ int fd = create_temp(dfd, tmp, sizeof(tmp));
	if (fd < 0)
		return log_error_errno(fd, "Failed to create a temporary file in %s", dir);

	const char *op = "write";
	r = write_all(fd, text, strlen(text));
	if (r == 0) {
		op = "fsync";
		r = fsync(fd) < 0 ? -errno : 0;
	}
	if (r == 0) {
		op = "close";
		r = close(TAKE_FD(fd)) < 0 ? -errno : 0;
	}
	if (r == 0) {
		op = "rename";
		r = renameat(dfd, tmp, dfd, STATE_FILE_NAME) < 0 ? -errno : 0;
	}
	if (r < 0) {
		(void)unlinkat(dfd, tmp, 0);
		return log_error_errno(r, "Failed to save %s (%s of %s/%s)", path, op, dir, tmp);
	}
	/* Without it a power cut could bring back the old file after the rename. */
	if (fsync(dfd) < 0)
		return log_error_errno(errno, "Failed to save %s (fsync of %s)", path, dir);
	return 0;
}
