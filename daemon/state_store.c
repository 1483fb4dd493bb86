// SPDX-License-Identifier: MIT
#include "dozed/state_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dozed/duration.h"
#include "dozed/log.h"
#include "dozed/macro.h"

#define TMP_PREFIX	 STATE_FILE_NAME ".tmp-"
#define CORRUPT_PREFIX	 STATE_FILE_NAME ".corrupt-"
#define STATE_FILE_MAX	 (64u << 20)
#define CONTAINER_ID_LEN 64

static void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

static void json_tokener_freep(struct json_tokener **t)
{
	if (*t)
		json_tokener_free(*t);
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static void state_service_clear(struct state_service *s);

void state_services_free(struct state_service *s, size_t n)
{
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		state_service_clear(&s[i]);
	free(s);
}

static bool is_container_id(const char *id)
{
	return strlen(id) == CONTAINER_ID_LEN && strspn(id, "0123456789abcdef") == CONTAINER_ID_LEN;
}

/* Why an entry cannot be stored, or NULL. The same rules for load and save,
 * so that whatever was saved loads again. */
static const char *service_invalid(const struct state_service *s)
{
	if (!s->name || !s->name[0])
		return "\"name\" is missing or empty";
	if (!s->container || !s->container[0])
		return "\"container\" is missing or empty";
	if (s->container_id && s->container_id[0] && !is_container_id(s->container_id))
		return "\"container_id\" is neither empty nor 64 lowercase hex digits";
	if (s->idle_us > DURATION_MAX_US)
		return "\"idle_ms\" is longer than " DURATION_MAX_TEXT;
	if (s->n_ports > STATE_MAX_PORTS)
		return "more than 16 \"ports\"";
	for (size_t i = 0; i < s->n_ports; i++) {
		if (s->ports[i].host_port == 0)
			return "a port's \"host_port\" is 0";
		if (!memchr(s->ports[i].host_ip, '\0', sizeof(s->ports[i].host_ip)))
			return "a port's \"host_ip\" is too long";
	}
	return NULL;
}

static char *state_path(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* A string field: NULL and *out untouched when absent; -1 when not a clean string. */
static int get_string(struct json_object *entry, const char *key, char **out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(entry, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	const char *s = json_object_get_string(v);
	/* An embedded NUL would silently shorten the value. */
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return -1;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* An integer field of a port within [min, max]; -1 when absent or not one. */
static int get_port_number(struct json_object *port, const char *key, int64_t min, uint16_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(port, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	int64_t x = json_object_get_int64(v);
	if (x < min || x > 65535)
		return -1;
	*out = (uint16_t)x;
	return 0;
}

static int ports_from_json(struct json_object *arr, struct state_service *s, const char **why)
{
	if (!json_object_is_type(arr, json_type_array)) {
		*why = "\"ports\" is not an array";
		return -1;
	}
	size_t n = json_object_array_length(arr);
	if (n > STATE_MAX_PORTS) {
		*why = "more than 16 \"ports\"";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(arr, i), *ip;
		struct state_port *out = &s->ports[i];
		if (!json_object_is_type(p, json_type_object) ||
		    get_port_number(p, "host_port", 1, &out->host_port) < 0 ||
		    get_port_number(p, "container_port", 0, &out->container_port) < 0) {
			*why = "a port is not {\"host_port\": 1-65535, \"container_port\": "
			       "0-65535}";
			return -1;
		}
		if (json_object_object_get_ex(p, "host_ip", &ip)) {
			const char *t = json_object_get_string(ip);
			size_t len = t ? strlen(t) : 0;
			if (!json_object_is_type(ip, json_type_string) ||
			    (size_t)json_object_get_string_len(ip) != len ||
			    len >= sizeof(out->host_ip)) {
				*why = "a port's \"host_ip\" is not an address";
				return -1;
			}
			memcpy(out->host_ip, t, len + 1);
		}
	}
	s->n_ports = n;
	return 0;
}

/* Fills *s from one array entry; 0, -ENOMEM, or -EBADMSG with *why. */
static int service_from_json(struct json_object *entry, struct state_service *s, const char **why)
{
	if (!json_object_is_type(entry, json_type_object)) {
		*why = "not an object";
		return -EBADMSG;
	}

	static const char *const keys[] = {"name", "container", "container_id"};
	static const char *const not_string[] = {
	    "\"name\" is not a plain string",
	    "\"container\" is not a plain string",
	    "\"container_id\" is not a plain string",
	};
	char **fields[] = {&s->name, &s->container, &s->container_id};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		int r = get_string(entry, keys[i], fields[i]);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			*why = not_string[i];
			return -EBADMSG;
		}
	}

	struct json_object *v;
	if (json_object_object_get_ex(entry, "idle_ms", &v)) {
		int64_t ms = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
		if (ms < 0) {
			*why = "\"idle_ms\" is not a number of milliseconds";
			return -EBADMSG;
		}
		if ((uint64_t)ms > DURATION_MAX_US / 1000) {
			*why = "\"idle_ms\" is longer than " DURATION_MAX_TEXT;
			return -EBADMSG;
		}
		s->idle_us = (uint64_t)ms * 1000;
	}

	if (json_object_object_get_ex(entry, "ports", &v) && ports_from_json(v, s, why) < 0)
		return -EBADMSG;

	if (json_object_object_get_ex(entry, "wake_on", &v)) {
		const char *w =
		    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		if (strcmp(w, "data") == 0) {
			s->wake_on_data = true;
		} else if (strcmp(w, "connect") != 0) {
			*why = "\"wake_on\" is neither \"connect\" nor \"data\"";
			return -EBADMSG;
		}
	}

	*why = service_invalid(s);
	return *why ? -EBADMSG : 0;
}

static void state_service_clear(struct state_service *s)
{
	free(s->name);
	free(s->container);
	free(s->container_id);
	*s = (struct state_service){0};
}

static bool name_taken(const struct state_service *s, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0)
			return true;
	return false;
}

int state_store_parse(const char *text, size_t len, struct state_service **out, size_t *n,
		      size_t *n_bad, state_bad_entry_fn bad, void *userdata, char *why,
		      size_t why_len)
{
	*out = NULL;
	*n = *n_bad = 0;
	if (strspn(text, " \t\r\n") >= len) {
		snprintf(why, why_len, "it is empty");
		return -EBADMSG;
	}
	if (memchr(text, '\0', len)) {
		snprintf(why, why_len, "it contains a NUL byte");
		return -EBADMSG;
	}
	if (len > INT32_MAX) {
		snprintf(why, why_len, "it is too large");
		return -EBADMSG;
	}
	_cleanup_(json_tokener_freep) struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	_cleanup_(json_putp) struct json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	if (!root || jerr != json_tokener_success) {
		snprintf(why, why_len, "%s",
			 jerr == json_tokener_continue ? "it ends in the middle of the JSON"
						       : json_tokener_error_desc(jerr));
		return -EBADMSG;
	}
	size_t end = json_tokener_get_parse_end(tok);
	if (strspn(text + end, " \t\r\n") != len - end) {
		snprintf(why, why_len, "text follows the JSON array at byte %zu", end);
		return -EBADMSG;
	}
	if (!json_object_is_type(root, json_type_array)) {
		snprintf(why, why_len, "it is not a JSON array");
		return -EBADMSG;
	}

	size_t count = json_object_array_length(root), good = 0;
	struct state_service *services = calloc(count ? count : 1, sizeof(*services));
	if (!services)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const char *reason = NULL;
		struct state_service *s = &services[good];
		int r = service_from_json(json_object_array_get_idx(root, i), s, &reason);
		if (r == -ENOMEM) {
			state_services_free(services, good + 1);
			return r;
		}
		if (r == 0 && name_taken(services, good, s->name))
			reason = "another entry has the same \"name\"", r = -EBADMSG;
		if (r < 0) {
			if (bad)
				bad(userdata, i + 1, s->name && s->name[0] ? s->name : NULL,
				    reason ? reason : "unreadable");
			state_service_clear(s);
			(*n_bad)++;
			continue;
		}
		good++;
	}
	if (good == 0) {
		free(services);
		services = NULL;
	}
	*out = services;
	*n = good;
	return 0;
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
};

static void log_bad_entry(void *userdata, size_t index, const char *name, const char *why)
{
	const struct bad_log *l = userdata;
	if (name)
		log_error("%s: entry %zu (%s) set aside: %s", l->path, index, name, why);
	else
		log_error("%s: entry %zu set aside: %s", l->path, index, why);
}

int state_store_load(const char *dir, struct state_service **out, size_t *n, size_t *n_bad)
{
	*out = NULL;
	*n = *n_bad = 0;
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
	size_t len = 0;
	char why[256] = "";
	struct bad_log bl = {.path = path};
	int r = read_all(fd, &text, &len);
	if (r == -EFBIG) {
		snprintf(why, sizeof(why), "it is larger than %u MiB", STATE_FILE_MAX >> 20);
		r = -EBADMSG;
	} else if (r < 0) {
		return log_error_errno(r, "Failed to read %s", path);
	} else {
		r = state_store_parse(text, len, out, n, n_bad, log_bad_entry, &bl, why,
				      sizeof(why));
	}
	if (r == -ENOMEM)
		return log_error_errno(r, "Failed to load %s", path);
	if (r == 0 && *n_bad == 0)
		return 0;

	_cleanup_free_ char *aside = NULL;
	if (r == 0) {
		int k = keep_aside(dir, path, text, len, &aside);
		if (k < 0) {
			state_services_free(*out, *n);
			*out = NULL;
			*n = *n_bad = 0;
			return log_error_errno(k,
					       "%s has %zu bad entries, and a copy could not be "
					       "kept aside; fix or remove them",
					       path, *n_bad);
		}
		log_error("%s: %zu bad entries set aside, %zu loaded; the whole file is kept as "
			  "%s",
			  path, *n_bad, *n, aside);
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

/* Takes v; -ENOMEM if it is NULL (a failed allocation) or cannot be added. */
static int add_field(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *service_to_json(const struct state_service *s)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	const char *id = s->container_id ? s->container_id : "";
	if (!o || add_field(o, "container", json_object_new_string(s->container)) < 0 ||
	    add_field(o, "container_id", json_object_new_string(id)) < 0 ||
	    add_field(o, "name", json_object_new_string(s->name)) < 0 ||
	    (s->idle_us &&
	     add_field(o, "idle_ms", json_object_new_int64((int64_t)(s->idle_us / 1000))) < 0) ||
	    add_field(o, "wake_on", json_object_new_string(s->wake_on_data ? "data" : "connect")) <
		0)
		return NULL;
	if (s->n_ports == 0)
		return TAKE_PTR(o);
	struct json_object *ports = json_object_new_array();
	if (add_field(o, "ports", ports) < 0)
		return NULL;
	for (size_t i = 0; i < s->n_ports; i++) {
		struct json_object *p = json_object_new_object();
		if (!p || json_object_array_add(ports, p) < 0) {
			json_object_put(p);
			return NULL;
		}
		if (add_field(p, "host_ip", json_object_new_string(s->ports[i].host_ip)) < 0 ||
		    add_field(p, "host_port", json_object_new_int(s->ports[i].host_port)) < 0 ||
		    add_field(p, "container_port",
			      json_object_new_int(s->ports[i].container_port)) < 0)
			return NULL;
	}
	return TAKE_PTR(o);
}

static int services_format(const struct state_service *s, size_t n, char **out)
{
	_cleanup_(json_putp) struct json_object *arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = service_to_json(&s[i]);
		if (!o)
			return -ENOMEM;
		if (json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			return -ENOMEM;
		}
	}
	const char *text = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text || asprintf(out, "%s\n", text) < 0)
		return -ENOMEM;
	return 0;
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

int state_store_save(const char *dir, const struct state_service *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = service_invalid(&s[i]);
		if (why) {
			log_error("Refusing to save the enabled services: entry %zu: %s", i + 1,
				  why);
			return -EINVAL;
		}
	}

	_cleanup_free_ char *path = state_path(dir, STATE_FILE_NAME);
	_cleanup_free_ char *text = NULL;
	if (!path || services_format(s, n, &text) < 0)
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
