// SPDX-License-Identifier: MIT
/* The table of dozed's keys and the setter of each: what a value may be, and
 * what is said when it is not. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config_internal.h"
#include "dozed/duration.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/metrics_http.h"

int config_replace_string(char **field, const char *value)
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
	return config_replace_string(&c->runtime_socket, path);
}

static int set_control(struct dozed_config *c, const char *v, const char **expected)
{
	int r = settings_parse_socket_path(v, expected);
	if (r < 0)
		return r;
	return config_replace_string(&c->control_path, v);
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
	r = config_replace_string(&c->control_group, v);
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
	return config_replace_string(&c->nft_table, v);
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
	return config_replace_string(&c->state_dir, v);
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
	int r = config_replace_string(&c->metrics_listen, v);
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
	return config_replace_string(&c->config_path, v);
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

const struct config_key config_keys[N_KEYS] = {
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

_Static_assert(ARRAY_SIZE(config_keys) <= 32, "set_by_args_ has a bit per key");

/* Keys in the file may be written with '_' for '-'. */
const struct config_key *config_key_lookup(const char *name, size_t len, bool file)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const char *k = config_keys[i].name;
		if (strlen(k) != len)
			continue;
		size_t j = 0;
		while (j < len && (name[j] == k[j] || (file && name[j] == '_' && k[j] == '-')))
			j++;
		if (j == len)
			return &config_keys[i];
	}
	return NULL;
}

uint32_t config_key_bit(const struct config_key *k)
{
	return UINT32_C(1) << (k - config_keys);
}
