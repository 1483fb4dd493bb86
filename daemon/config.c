// SPDX-License-Identifier: MIT
#include "dozed/config.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "dozed/duration.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics_http.h"

/* Sets one key from its text. 0, -ENOMEM, or -EINVAL with *expected saying
 * what is allowed. */
typedef int (*key_set_fn)(struct dozed_config *c, const char *value, const char **expected);

struct key_def {
	const char *name;
	key_set_fn set; /* NULL for flags, which take no value */
	bool args_only; /* not allowed in the config file */
	bool *(*flag)(struct dozed_config *c);
};

static int replace_string(char **field, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/* Strict unsigned number in base 10 or 16: digits only, no sign, no space, and in
 * base 10 no leading zero ("080" could be meant as octal; it is refused, not read as 80). */
static int parse_number(const char *s, unsigned base, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = s;
	if (base == 10 && s[0] == '0' && s[1] != '\0')
		return -EINVAL;
	for (;; p++) {
		unsigned digit;
		if (*p >= '0' && *p <= '9')
			digit = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			digit = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			digit = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (n > (max - digit) / base)
			return -ERANGE;
		n = n * base + digit;
	}
	if (p == s || *p != '\0')
		return -EINVAL;
	*out = n;
	return 0;
}

static int set_runtime_socket(struct dozed_config *c, const char *v, const char **expected)
{
	const char *path;
	int r = settings_parse_runtime_socket(v, &path, expected);
	if (r < 0)
		return r;
	return replace_string(&c->runtime_socket, path);
}

static int set_control(struct dozed_config *c, const char *v, const char **expected)
{
	int r = settings_parse_socket_path(v, expected);
	if (r < 0)
		return r;
	return replace_string(&c->control_path, v);
}

static int group_lookup(const char *name, gid_t *gid)
{
	long size = sysconf(_SC_GETGR_R_SIZE_MAX);
	if (size <= 0)
		size = 1024;
	for (;;) {
		_cleanup_free_ char *buf = malloc((size_t)size);
		if (!buf)
			return -ENOMEM;
		struct group grp, *found = NULL;
		int r = getgrnam_r(name, &grp, buf, (size_t)size, &found);
		if (r == ERANGE && size < (1L << 24)) {
			size *= 2;
			continue;
		}
		if (r == ENOMEM)
			return -ENOMEM;
		/* getgrnam_r reports "no such group" as 0 and NULL, or as one of
		 * several errors depending on the NSS module. */
		if (r != 0 || !found)
			return -ENOENT;
		*gid = found->gr_gid;
		return 0;
	}
}

static int set_control_group(struct dozed_config *c, const char *v, const char **expected)
{
	gid_t gid;
	int r = v[0] ? group_lookup(v, &gid) : -ENOENT;
	if (r == -ENOENT) {
		*expected = "expected the name of an existing group";
		return -EINVAL;
	}
	if (r < 0)
		return r;
	r = replace_string(&c->control_group, v);
	if (r < 0)
		return r;
	c->control_gid = gid;
	return 0;
}

static int set_activator_port(struct dozed_config *c, const char *v, const char **expected)
{
	uint64_t port;
	if (parse_number(v, 10, UINT16_MAX, &port) < 0 || port == 0) {
		*expected = "expected a port 1-65535";
		return -EINVAL;
	}
	c->activator_port = (uint16_t)port;
	return 0;
}

static int set_nft_table(struct dozed_config *c, const char *v, const char **expected)
{
	size_t len = strlen(v);
	if (len == 0 || len > 64 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len) {
		*expected = "expected 1-64 letters, digits, '_' or '-'";
		return -EINVAL;
	}
	return replace_string(&c->nft_table, v);
}

static int set_mark(struct dozed_config *c, const char *v, const char **expected)
{
	uint64_t mark = 0;
	bool hex = v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
	int r = parse_number(hex ? v + 2 : v, hex ? 16 : 10, UINT32_MAX, &mark);
	if (r < 0 || mark == 0) {
		*expected = "expected a non-zero 32-bit number, decimal or 0x hex";
		return -EINVAL;
	}
	c->mark = (uint32_t)mark;
	return 0;
}

static int set_state_dir(struct dozed_config *c, const char *v, const char **expected)
{
	if (v[0] != '/') {
		*expected = "expected an absolute path";
		return -EINVAL;
	}
	return replace_string(&c->state_dir, v);
}

static int set_idle(struct dozed_config *c, const char *v, const char **expected)
{
	return settings_parse_idle(v, &c->idle_us, expected);
}

static int set_probe_interval(struct dozed_config *c, const char *v, const char **expected)
{
	return settings_parse_duration(v, DURATION_US_PER_MS, 10 * DURATION_US_PER_SEC,
				       "expected a duration from 1ms to 10s", &c->probe_interval_us,
				       expected);
}

static int set_wake_timeout(struct dozed_config *c, const char *v, const char **expected)
{
	/* The lower bound, the probe interval, is checked by dozed_config_validate(). */
	return settings_parse_duration(v, 0, 10 * DURATION_US_PER_MIN,
				       "expected a duration from the probe interval to 10m",
				       &c->wake_timeout_us, expected);
}

static int set_unanswered_timeout(struct dozed_config *c, const char *v, const char **expected)
{
	return settings_parse_duration(v, DURATION_US_PER_SEC, DURATION_MAX_US,
				       "expected a duration of 1s or more, like 10m or 2h",
				       &c->unanswered_timeout_us, expected);
}

static int set_stop_timeout(struct dozed_config *c, const char *v, const char **expected)
{
	uint64_t s;
	if (parse_number(v, 10, 3600, &s) < 0) {
		*expected = "expected a number of seconds 0-3600";
		return -EINVAL;
	}
	c->stop_timeout_s = (unsigned)s;
	c->stop_timeout_set = true;
	return 0;
}

static int set_max_held(struct dozed_config *c, const char *v, const char **expected)
{
	uint64_t n;
	if (parse_number(v, 10, 1000000, &n) < 0 || n == 0) {
		*expected = "expected a number of connections 1-1000000";
		return -EINVAL;
	}
	c->max_held = (size_t)n;
	return 0;
}

static int set_held_silent_timeout(struct dozed_config *c, const char *v, const char **expected)
{
	return settings_parse_duration(v, 100 * DURATION_US_PER_MS, DURATION_US_PER_HOUR,
				       "expected a duration from 100ms to 1h",
				       &c->held_silent_timeout_us, expected);
}

static int set_max_held_per_client(struct dozed_config *c, const char *v, const char **expected)
{
	/* The upper bound, max-held, is checked by dozed_config_validate(). */
	uint64_t n;
	if (parse_number(v, 10, 1000000, &n) < 0 || n == 0) {
		*expected = "expected a number of connections from 1 to max-held";
		return -EINVAL;
	}
	c->max_held_per_client = (size_t)n;
	return 0;
}

static int set_control_idle_timeout(struct dozed_config *c, const char *v, const char **expected)
{
	return settings_parse_duration(v, DURATION_US_PER_SEC, DURATION_US_PER_HOUR,
				       "expected a duration from 1s to 1h",
				       &c->control_idle_timeout_us, expected);
}

/* The parser's message names the rule and the forms: "--ignore tcp/0: rule ...". */
static int set_ignore(struct dozed_config *c, const char *v, const char **expected)
{
	return flow_rules_parse(v, &c->ignore, expected);
}

static int set_log_level(struct dozed_config *c, const char *v, const char **expected)
{
	int level = log_level_from_string(v);
	if (level < 0) {
		*expected = "expected err, warning, notice, info or debug";
		return -EINVAL;
	}
	c->log_level = level;
	return 0;
}

static int set_metrics_listen(struct dozed_config *c, const char *v, const char **expected)
{
	/* Parsing is single-threaded; the message is used before the next key. */
	static char why[192];
	struct sockaddr_storage addr;
	if (metrics_listen_parse(v, &addr, why, sizeof(why)) < 0) {
		*expected = why;
		return -EINVAL;
	}
	int r = replace_string(&c->metrics_listen, v);
	if (r < 0)
		return r;
	c->metrics_addr = addr;
	return 0;
}

static int set_config(struct dozed_config *c, const char *v, const char **expected)
{
	if (v[0] == '\0') {
		*expected = "expected the path of a config file";
		return -EINVAL;
	}
	return replace_string(&c->config_path, v);
}

static bool *flag_check(struct dozed_config *c)
{
	return &c->check;
}

static bool *flag_version(struct dozed_config *c)
{
	return &c->version;
}

static bool *flag_help(struct dozed_config *c)
{
	return &c->help;
}

enum {
	KEY_RUNTIME_SOCKET,
	KEY_CONTROL,
	KEY_CONTROL_GROUP,
	KEY_ACTIVATOR_PORT,
	KEY_NFT_TABLE,
	KEY_MARK,
	KEY_STATE_DIR,
	KEY_IDLE,
	KEY_PROBE_INTERVAL,
	KEY_WAKE_TIMEOUT,
	KEY_STOP_TIMEOUT,
	KEY_MAX_HELD,
	KEY_HELD_SILENT_TIMEOUT,
	KEY_MAX_HELD_PER_CLIENT,
	KEY_CONTROL_IDLE_TIMEOUT,
	KEY_IGNORE,
	KEY_UNANSWERED_TIMEOUT,
	KEY_LOG_LEVEL,
	KEY_METRICS_LISTEN,
	KEY_CONFIG,
	KEY_CHECK,
	KEY_VERSION,
	KEY_HELP,
	N_KEYS,
};

static const struct key_def keys[N_KEYS] = {
    [KEY_RUNTIME_SOCKET] = {"runtime-socket", set_runtime_socket, false, NULL},
    [KEY_CONTROL] = {"control", set_control, false, NULL},
    [KEY_CONTROL_GROUP] = {"control-group", set_control_group, false, NULL},
    [KEY_ACTIVATOR_PORT] = {"activator-port", set_activator_port, false, NULL},
    [KEY_NFT_TABLE] = {"nft-table", set_nft_table, false, NULL},
    [KEY_MARK] = {"mark", set_mark, false, NULL},
    [KEY_STATE_DIR] = {"state-dir", set_state_dir, false, NULL},
    [KEY_IDLE] = {"idle", set_idle, false, NULL},
    [KEY_PROBE_INTERVAL] = {"probe-interval", set_probe_interval, false, NULL},
    [KEY_WAKE_TIMEOUT] = {"wake-timeout", set_wake_timeout, false, NULL},
    [KEY_STOP_TIMEOUT] = {"stop-timeout", set_stop_timeout, false, NULL},
    [KEY_MAX_HELD] = {"max-held", set_max_held, false, NULL},
    [KEY_HELD_SILENT_TIMEOUT] = {"held-silent-timeout", set_held_silent_timeout, false, NULL},
    [KEY_MAX_HELD_PER_CLIENT] = {"max-held-per-client", set_max_held_per_client, false, NULL},
    [KEY_CONTROL_IDLE_TIMEOUT] = {"control-idle-timeout", set_control_idle_timeout, false, NULL},
    [KEY_IGNORE] = {"ignore", set_ignore, false, NULL},
    [KEY_UNANSWERED_TIMEOUT] = {"unanswered-timeout", set_unanswered_timeout, false, NULL},
    [KEY_LOG_LEVEL] = {"log-level", set_log_level, false, NULL},
    [KEY_METRICS_LISTEN] = {"metrics-listen", set_metrics_listen, false, NULL},
    [KEY_CONFIG] = {"config", set_config, true, NULL},
    [KEY_CHECK] = {"check", NULL, true, flag_check},
    [KEY_VERSION] = {"version", NULL, true, flag_version},
    [KEY_HELP] = {"help", NULL, true, flag_help},
};

_Static_assert(ARRAY_SIZE(keys) <= 32, "set_by_args_ has a bit per key");

/* Keys in the file may be written with '_' for '-'. */
static const struct key_def *key_lookup(const char *name, size_t len, bool file)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *k = keys[i].name;
		if (strlen(k) != len)
			continue;
		size_t j = 0;
		while (j < len && (name[j] == k[j] || (file && name[j] == '_' && k[j] == '-')))
			j++;
		if (j == len)
			return &keys[i];
	}
	return NULL;
}

static uint32_t key_bit(const struct key_def *k)
{
	return UINT32_C(1) << (k - keys);
}

__attribute__((format(printf, 3, 4))) static int fail(char **err_msg, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(err_msg, fmt, ap) < 0) {
		*err_msg = NULL;
		r = -ENOMEM;
	}
	va_end(ap);
	return r;
}

/* An empty value would vanish from a message. */
static const char *shown(const char *value)
{
	return value[0] ? value : "''";
}

/*
 * " (a setting of each service: ...)" when name (len bytes) is a per-service
 * setting that dozed itself does not take (freeze-after, wake-on...), where
 * to set it instead; else "".
 */
static const char *per_service_hint(const char *name, size_t len, char *buf, size_t buf_len)
{
	char key[32];
	if (len >= sizeof(key))
		return "";
	memcpy(key, name, len);
	key[len] = '\0';
	if (!settings_key_known(key))
		return "";
	/* Labels are spelled with dashes: dozed.freeze-after. */
	for (char *p = key; *p; p++)
		if (*p == '_')
			*p = '-';
	snprintf(buf, buf_len,
		 " (a setting of each service: dozectl enable, or the label dozed.%s)", key);
	return buf;
}

int dozed_config_defaults(struct dozed_config *c)
{
	*c = (struct dozed_config){
	    .activator_port = DOZED_ACTIVATOR_PORT_DEFAULT,
	    .mark = DOZED_MARK_DEFAULT,
	    .idle_us = DOZED_IDLE_DEFAULT_US,
	    .probe_interval_us = DOZED_PROBE_INTERVAL_DEFAULT_US,
	    .wake_timeout_us = DOZED_WAKE_TIMEOUT_DEFAULT_US,
	    .unanswered_timeout_us = DOZED_UNANSWERED_TIMEOUT_DEFAULT_US,
	    .stop_timeout_s = DOZED_STOP_TIMEOUT_DEFAULT_S,
	    .max_held = DOZED_MAX_HELD_DEFAULT,
	    .held_silent_timeout_us = DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US,
	    .max_held_per_client = DOZED_MAX_HELD_PER_CLIENT_DEFAULT,
	    .control_idle_timeout_us = DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US,
	    .log_level = LOG_INFO,
	};

	if (replace_string(&c->runtime_socket, DOZED_RUNTIME_SOCKET_DEFAULT) < 0 ||
	    replace_string(&c->control_path, DOZED_CONTROL_PATH_DEFAULT) < 0 ||
	    replace_string(&c->nft_table, DOZED_NFT_TABLE_DEFAULT) < 0 ||
	    replace_string(&c->state_dir, DOZED_STATE_DIR_DEFAULT) < 0 ||
	    replace_string(&c->config_path, DOZED_CONFIG_PATH_DEFAULT) < 0)
		return -ENOMEM;
	return 0;
}

void dozed_config_free(struct dozed_config *c)
{
	if (!c)
		return;
	free(c->runtime_socket);
	free(c->control_path);
	free(c->control_group);
	free(c->nft_table);
	free(c->state_dir);
	free(c->config_path);
	free(c->docker_host_ignored);
	free(c->metrics_listen);
	*c = (struct dozed_config){0};
}

int dozed_config_parse_args(struct dozed_config *c, int argc, char **argv, char **err_msg)
{
	*err_msg = NULL;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0) {
			c->help = true;
			continue;
		}
		if (arg[0] != '-')
			return fail(err_msg, -EINVAL,
				    "%s: unexpected argument (dozed takes options only)", arg);

		const char *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct key_def *k =
		    strncmp(arg, "--", 2) == 0 ? key_lookup(arg + 2, len - 2, false) : NULL;
		char hint[128];
		if (!k)
			return fail(err_msg, -EINVAL, "%.*s: unknown option%s", (int)len, arg,
				    strncmp(arg, "--", 2) == 0
					? per_service_hint(arg + 2, len - 2, hint, sizeof(hint))
					: "");

		if (k->flag) {
			if (eq)
				return fail(err_msg, -EINVAL, "--%s: takes no value", k->name);
			*k->flag(c) = true;
			c->set_by_args_ |= key_bit(k);
			continue;
		}

		const char *value;
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return fail(err_msg, -EINVAL, "--%s: expected a value after it", k->name);

		const char *expected = NULL;
		int r = k->set(c, value, &expected);
		if (r == -EINVAL)
			return fail(err_msg, r, "--%s %s: %s", k->name, shown(value), expected);
		if (r < 0)
			return r;
		c->set_by_args_ |= key_bit(k);
	}
	return 0;
}

static char *strip(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = strlen(s);
	while (len > 0 && strchr(" \t\r\n", s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* One "key = value" line, already stripped and neither blank nor a comment. */
static int load_line(struct dozed_config *c, const char *path, unsigned lineno, char *line,
		     char **err_msg)
{
	char *eq = strchr(line, '=');
	if (!eq)
		return fail(err_msg, -EINVAL, "%s:%u: %s: expected key = value", path, lineno,
			    line);
	*eq = '\0';
	const char *name = strip(line);
	const char *value = strip(eq + 1);

	const struct key_def *k = key_lookup(name, strlen(name), true);
	char hint[128];
	if (!k)
		return fail(err_msg, -EINVAL, "%s:%u: %s = %s: unknown key%s", path, lineno,
			    shown(name), value,
			    per_service_hint(name, strlen(name), hint, sizeof(hint)));
	if (k->args_only)
		return fail(err_msg, -EINVAL, "%s:%u: %s = %s: only allowed on the command line",
			    path, lineno, name, value);

	/* The command line wins, but what the file says must still be valid. */
	struct dozed_config scratch = {0};
	bool overridden = c->set_by_args_ & key_bit(k);
	const char *expected = NULL;
	int r = k->set(overridden ? &scratch : c, value, &expected);
	dozed_config_free(&scratch);
	if (r == -EINVAL)
		return fail(err_msg, r, "%s:%u: %s = %s: %s", path, lineno, name, shown(value),
			    expected);
	if (r < 0)
		return r;
	if (!overridden)
		c->set_by_file_ |= key_bit(k);
	if (!overridden && k == &keys[KEY_WAKE_TIMEOUT])
		c->wake_timeout_line_ = lineno;
	if (!overridden && k == &keys[KEY_MAX_HELD_PER_CLIENT])
		c->max_held_per_client_line_ = lineno;
	return 0;
}

int dozed_config_load_file(struct dozed_config *c, const char *path, bool must_exist,
			   char **err_msg)
{
	*err_msg = NULL;
	_cleanup_free_ char *path_copy = strdup(path);
	if (!path_copy)
		return -ENOMEM;

	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		if (r == -ENOENT && !must_exist)
			return 0;
		return fail(err_msg, r, "%s: cannot read: %s", path, strerror(-r));
	}

	_cleanup_free_ char *buf = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	while (getline(&buf, &cap, f) >= 0) {
		lineno++;
		char *line = strip(buf);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		int r = load_line(c, path, lineno, line, err_msg);
		if (r < 0)
			return r;
	}
	/* A directory opens fine and fails on the first read. */
	if (ferror(f)) {
		int r = errno ? -errno : -EIO;
		return fail(err_msg, r, "%s: cannot read: %s", path, strerror(-r));
	}

	free(c->config_path);
	c->config_path = TAKE_PTR(path_copy);
	return 0;
}

/* "--KEY VALUE" or "FILE:LINE: KEY = VALUE", as the key was last set. */
static int fail_key(const struct dozed_config *c, char **err_msg, unsigned key, unsigned line,
		    const char *value, const char *expected)
{
	if (c->set_by_args_ & key_bit(&keys[key]) || !line)
		return fail(err_msg, -EINVAL, "--%s %s: %s", keys[key].name, value, expected);
	return fail(err_msg, -EINVAL, "%s:%u: %s = %s: %s", c->config_path, line, keys[key].name,
		    value, expected);
}

int dozed_config_validate(const struct dozed_config *c, char **err_msg)
{
	*err_msg = NULL;
	char text[32], bound[96];
	if (c->wake_timeout_us < c->probe_interval_us) {
		char wake[DURATION_FORMAT_MAX], probe[DURATION_FORMAT_MAX];
		duration_format(c->wake_timeout_us, wake, sizeof(wake));
		duration_format(c->probe_interval_us, probe, sizeof(probe));
		snprintf(bound, sizeof(bound),
			 "expected a duration from the probe interval (%s) to 10m", probe);
		return fail_key(c, err_msg, KEY_WAKE_TIMEOUT, c->wake_timeout_line_, wake, bound);
	}
	if (c->max_held_per_client > c->max_held) {
		snprintf(text, sizeof(text), "%zu", c->max_held_per_client);
		snprintf(bound, sizeof(bound),
			 "expected a number of connections from 1 to max-held (%zu)", c->max_held);
		return fail_key(c, err_msg, KEY_MAX_HELD_PER_CLIENT, c->max_held_per_client_line_,
				text, bound);
	}
	return 0;
}

int dozed_config_apply_docker_host(struct dozed_config *c, const char *docker_host, char **err_msg)
{
	*err_msg = NULL;
	uint32_t bit = key_bit(&keys[KEY_RUNTIME_SOCKET]);
	/* Unset or empty: the default, as docker has it. */
	if ((c->set_by_args_ | c->set_by_file_) & bit || !docker_host || !docker_host[0])
		return 0;
	const char *path, *expected = NULL;
	int r = settings_parse_docker_host(docker_host, &path, &expected);
	if (r == -EPROTONOSUPPORT)
		return fail(err_msg, -EINVAL,
			    "DOCKER_HOST=%s is not supported: dozed reaches the container runtime "
			    "over a unix socket only (DOCKER_HOST=unix:///PATH)",
			    docker_host);
	if (r < 0)
		return fail(err_msg, r, "DOCKER_HOST=%s: %s", docker_host, expected);
	return replace_string(&c->runtime_socket, path);
}

int dozed_config_from_argv(struct dozed_config *c, int argc, char **argv, char **err_msg)
{
	*err_msg = NULL;
	int r = dozed_config_defaults(c);
	if (r < 0)
		return r;
	r = dozed_config_parse_args(c, argc, argv, err_msg);
	if (r < 0)
		return r;
	if (c->help || c->version)
		return 0;

	bool named = c->set_by_args_ & key_bit(&keys[KEY_CONFIG]);
	_cleanup_free_ char *path = strdup(c->config_path);
	if (!path)
		return -ENOMEM;
	r = dozed_config_load_file(c, path, named, err_msg);
	if (r < 0)
		return r;
	/* A DOCKER_HOST dozed cannot use (tcp://...) leaves the default socket,
	 * as it always has, but is said: main logs it. */
	r = dozed_config_apply_docker_host(c, getenv("DOCKER_HOST"), &c->docker_host_ignored);
	if (r < 0 && r != -EINVAL)
		return r;
	/* Its default follows a smaller max-held rather than contradict it. */
	bool per_client_set = c->set_by_args_ & key_bit(&keys[KEY_MAX_HELD_PER_CLIENT]) ||
			      c->max_held_per_client_line_;
	if (!per_client_set && c->max_held_per_client > c->max_held)
		c->max_held_per_client = c->max_held;
	return dozed_config_validate(c, err_msg);
}
