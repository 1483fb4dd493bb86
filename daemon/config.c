// SPDX-License-Identifier: MIT
#include "dozed/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "dozed/duration.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics_http.h"

#include "config_internal.h"

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

	if (config_replace_string(&c->runtime_socket, DOZED_RUNTIME_SOCKET_DEFAULT) < 0 ||
	    config_replace_string(&c->control_path, DOZED_CONTROL_PATH_DEFAULT) < 0 ||
	    config_replace_string(&c->nft_table, DOZED_NFT_TABLE_DEFAULT) < 0 ||
	    config_replace_string(&c->state_dir, DOZED_STATE_DIR_DEFAULT) < 0 ||
	    config_replace_string(&c->config_path, DOZED_CONFIG_PATH_DEFAULT) < 0)
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
		const struct config_key *k =
		    strncmp(arg, "--", 2) == 0 ? config_key_lookup(arg + 2, len - 2, false) : NULL;
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
			c->set_by_args_ |= config_key_bit(k);
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
		c->set_by_args_ |= config_key_bit(k);
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

	const struct config_key *k = config_key_lookup(name, strlen(name), true);
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
	bool overridden = c->set_by_args_ & config_key_bit(k);
	const char *expected = NULL;
	int r = k->set(overridden ? &scratch : c, value, &expected);
	dozed_config_free(&scratch);
	if (r == -EINVAL)
		return fail(err_msg, r, "%s:%u: %s = %s: %s", path, lineno, name, shown(value),
			    expected);
	if (r < 0)
		return r;
	if (!overridden)
		c->set_by_file_ |= config_key_bit(k);
	if (!overridden && k == &config_keys[KEY_WAKE_TIMEOUT])
		c->wake_timeout_line_ = lineno;
	if (!overridden && k == &config_keys[KEY_MAX_HELD_PER_CLIENT])
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
	if (c->set_by_args_ & config_key_bit(&config_keys[key]) || !line)
		return fail(err_msg, -EINVAL, "--%s %s: %s", config_keys[key].name, value,
			    expected);
	return fail(err_msg, -EINVAL, "%s:%u: %s = %s: %s", c->config_path, line,
		    config_keys[key].name, value, expected);
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
	uint32_t bit = config_key_bit(&config_keys[KEY_RUNTIME_SOCKET]);
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
	return config_replace_string(&c->runtime_socket, path);
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

	bool named = c->set_by_args_ & config_key_bit(&config_keys[KEY_CONFIG]);
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
	bool per_client_set =
	    c->set_by_args_ & config_key_bit(&config_keys[KEY_MAX_HELD_PER_CLIENT]) ||
	    c->max_held_per_client_line_;
	if (!per_client_set && c->max_held_per_client > c->max_held)
		c->max_held_per_client = c->max_held;
	return dozed_config_validate(c, err_msg);
}
