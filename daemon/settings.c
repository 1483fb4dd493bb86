// SPDX-License-Identifier: MIT
/*
 * The parsers of settings' text, one per value, for every place a setting
 * comes from (config file, command line, labels, control requests, dozectl).
 * Pure, and linked into dozectl: nothing here may need libevent, libbpf or
 * libnftnl.
 */
#include "dozed/settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"

#define DURATION_EXPECTED "expected a duration like 30ms, 10s, 10m or 2h"
#define UNIX_PREFIX	  "unix://"

int settings_parse_duration(const char *v, uint64_t min_us, uint64_t max_us, const char *range,
			    uint64_t *out_us, const char **expected)
{
	uint64_t us;
	int r = duration_parse_us(v, &us);
	if (r == -ERANGE) {
		/* Over a year: name the year only where it is the setting's own limit. */
		*expected = max_us >= DURATION_MAX_US
				? "expected a duration of at most " DURATION_MAX_TEXT
				: range;
		return -EINVAL;
	}
	if (r < 0) {
		*expected = DURATION_EXPECTED;
		return -EINVAL;
	}
	if (us < min_us || us > max_us) {
		*expected = range;
		return -EINVAL;
	}
	*out_us = us;
	return 0;
}

int settings_parse_idle(const char *v, uint64_t *out_us, const char **expected)
{
	return settings_parse_duration(v, DOZED_IDLE_MIN_US, DURATION_MAX_US,
				       "expected a duration of 1s or more, like 30s, 10m or 2h",
				       out_us, expected);
}

int settings_parse_service_idle(const char *v, uint64_t *out_us, const char **expected)
{
	if (strcmp(v, "never") == 0) {
		*out_us = DOZED_IDLE_NEVER;
		return 0;
	}
	static const char range[] =
	    "expected a duration of 1s or more, like 30s, 10m or 2h, or never";
	int r =
	    settings_parse_duration(v, DOZED_IDLE_MIN_US, DURATION_MAX_US, range, out_us, expected);
	/* "Never", "off", "0": say the word that is taken. */
	if (r < 0 && strcmp(*expected, DURATION_EXPECTED) == 0)
		*expected = range;
	return r;
}

const char *settings_idle_to_string(uint64_t idle_us, char *buf, size_t len)
{
	if (idle_us == DOZED_IDLE_NEVER) {
		snprintf(buf, len, "never");
		return buf;
	}
	return duration_format(idle_us, buf, len);
}

int settings_parse_freeze_after(const char *v, uint64_t *out_us, const char **expected)
{
	if (strcmp(v, "none") == 0) {
		*out_us = 0;
		return 0;
	}
	static const char range[] =
	    "expected a duration of 1s or more, like 30s, 10m or 2h, or none";
	int r = settings_parse_duration(v, DOZED_FREEZE_AFTER_MIN_US, DURATION_MAX_US, range,
					out_us, expected);
	/* "0", "off", "never": the minimum and the word for none say more than
	 * the forms of a duration. */
	if (r < 0 && strcmp(*expected, DURATION_EXPECTED) == 0)
		*expected = range;
	return r;
}

const char *settings_freeze_after_to_string(uint64_t freeze_after_us, char *buf, size_t len)
{
	if (freeze_after_us == 0) {
		snprintf(buf, len, "none");
		return buf;
	}
	return duration_format(freeze_after_us, buf, len);
}

int settings_parse_bool(const char *v, bool *out, const char **expected)
{
	if (strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0)
		*out = false;
	else {
		*expected = "expected true or false";
		return -EINVAL;
	}
	return 0;
}

int settings_check_tiers(uint64_t idle_us, uint64_t freeze_after_us, char *why, size_t why_len)
{
	if (freeze_after_us == 0 || idle_us == DOZED_IDLE_NEVER || freeze_after_us < idle_us)
		return 0;
	char f[DURATION_FORMAT_MAX], i[DURATION_FORMAT_MAX];
	/* A freeze at or after the stop would never happen: said, not ignored. */
	snprintf(why, why_len,
		 "freeze_after (%s) must be shorter than idle (%s): a service is frozen first, "
		 "stopped later",
		 duration_format(freeze_after_us, f, sizeof(f)),
		 duration_format(idle_us, i, sizeof(i)));
	return -EINVAL;
}

int settings_parse_wake_on(const char *v, bool *out_data, const char **expected)
{
	if (strcmp(v, "connect") == 0)
		*out_data = false;
	else if (strcmp(v, "data") == 0)
		*out_data = true;
	else {
		*expected = "expected connect or data";
		return -EINVAL;
	}
	return 0;
}

const char *settings_wake_on_to_string(bool data)
{
	return data ? "data" : "connect";
}

int settings_parse_keep_awake(const char *v, bool *out_connections, const char **expected)
{
	if (strcmp(v, "connections") == 0)
		*out_connections = true;
	else if (strcmp(v, "none") == 0)
		*out_connections = false;
	else {
		*expected = "expected connections or none";
		return -EINVAL;
	}
	return 0;
}

const char *settings_keep_awake_to_string(bool connections)
{
	return connections ? "connections" : "none";
}

#define PROBE_EXPECTED "expected auto, tcp, http, http:/PATH, postgres, redis, mysql or healthcheck"

static const char *const probe_kind_names[] = {
    [PROBE_AUTO] = "auto",
    [PROBE_TCP] = "tcp",
    [PROBE_HTTP] = "http",
    [PROBE_POSTGRES] = "postgres",
    [PROBE_REDIS] = "redis",
    [PROBE_MYSQL] = "mysql",
    [PROBE_HEALTHCHECK] = "healthcheck",
};

const char *settings_probe_kind_name(enum probe_kind kind)
{
	return (size_t)kind < ARRAY_SIZE(probe_kind_names) ? probe_kind_names[kind] : "unknown";
}

/* A path sent as is in a request line: nothing that would end or split it. */
bool settings_probe_path_valid(const char *v)
{
	size_t n = strlen(v);
	if (v[0] != '/' || n > PROBE_HTTP_PATH_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~')
			return false;
	return true;
}

int settings_parse_probe(const char *v, struct probe_spec *out, const char **expected)
{
	struct probe_spec p = {.kind = PROBE_AUTO};
	const char *colon = strchr(v, ':');
	if (strncmp(v, "http:", 5) == 0) {
		if (!settings_probe_path_valid(v + 5)) {
			*expected = "expected http:/PATH, PATH printable ASCII without spaces, "
				    "at most 200 bytes";
			return -EINVAL;
		}
		p.kind = PROBE_HTTP;
		snprintf(p.http_path, sizeof(p.http_path), "%s", v + 5);
		*out = p;
		return 0;
	}
	size_t i = 0;
	while (i < ARRAY_SIZE(probe_kind_names) && (colon || strcmp(v, probe_kind_names[i]) != 0))
		i++;
	if (i == ARRAY_SIZE(probe_kind_names)) {
		*expected = PROBE_EXPECTED;
		return -EINVAL;
	}
	p.kind = (enum probe_kind)i;
	if (p.kind == PROBE_HTTP)
		snprintf(p.http_path, sizeof(p.http_path), "/");
	*out = p;
	return 0;
}

const char *settings_probe_to_string(const struct probe_spec *p, char *buf, size_t len)
{
	if (p->kind == PROBE_HTTP && p->http_path[0] && strcmp(p->http_path, "/") != 0)
		snprintf(buf, len, "http:%s", p->http_path);
	else
		snprintf(buf, len, "%s", settings_probe_kind_name(p->kind));
	return buf;
}

void settings_probe_resolve(const struct probe_spec *set, bool has_healthcheck,
			    uint16_t container_port, struct probe_spec *out, char *used,
			    size_t used_len)
{
	char text[PROBE_HTTP_PATH_MAX + 16];
	*out = *set;
	if (set->kind == PROBE_HEALTHCHECK && !has_healthcheck) {
		*out = (struct probe_spec){.kind = PROBE_TCP};
		snprintf(used, used_len, "tcp (healthcheck asked, the container has none)");
		return;
	}
	if (set->kind != PROBE_AUTO) {
		snprintf(used, used_len, "%s", settings_probe_to_string(set, text, sizeof(text)));
		return;
	}
	if (has_healthcheck) {
		*out = (struct probe_spec){.kind = PROBE_HEALTHCHECK};
		snprintf(used, used_len, "healthcheck (auto: the container has one)");
		return;
	}
	static const struct {
		uint16_t port;
		enum probe_kind kind;
	} by_port[] = {{5432, PROBE_POSTGRES}, {6379, PROBE_REDIS}, {3306, PROBE_MYSQL}};
	for (size_t i = 0; i < ARRAY_SIZE(by_port); i++) {
		if (by_port[i].port == container_port) {
			*out = (struct probe_spec){.kind = by_port[i].kind};
			snprintf(used, used_len, "%s (auto: port %u)",
				 settings_probe_kind_name(out->kind), container_port);
			return;
		}
	}
	*out = (struct probe_spec){.kind = PROBE_TCP};
	snprintf(used, used_len, "tcp (auto)");
}

static bool is_socket_path(const char *v)
{
	return v[0] == '/' && strlen(v) < DOZED_UNIX_PATH_MAX;
}

int settings_parse_socket_path(const char *v, const char **expected)
{
	if (!is_socket_path(v)) {
		*expected = "expected the absolute path of a unix socket (at most 107 bytes)";
		return -EINVAL;
	}
	return 0;
}

int settings_parse_runtime_socket(const char *v, const char **out_path, const char **expected)
{
	/* The DOCKER_HOST form is accepted too: it is what users have at hand. */
	const char *path =
	    strncmp(v, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0 ? v + strlen(UNIX_PREFIX) : v;
	if (!is_socket_path(path)) {
		*expected = "expected the absolute path of a unix socket (at most 107 bytes), "
			    "or unix://PATH";
		return -EINVAL;
	}
	*out_path = path;
	return 0;
}

int settings_parse_docker_host(const char *v, const char **out_path, const char **expected)
{
	if (strncmp(v, UNIX_PREFIX, strlen(UNIX_PREFIX)) != 0)
		return -EPROTONOSUPPORT;
	return settings_parse_runtime_socket(v, out_path, expected);
}

static int set_idle(struct service_settings *s, const char *v, const char **expected)
{
	int r = settings_parse_service_idle(v, &s->idle_us, expected);
	if (r < 0)
		return r;
	s->idle_set = true;
	return 0;
}

static int set_wake_on(struct service_settings *s, const char *v, const char **expected)
{
	return settings_parse_wake_on(v, &s->wake_on_data, expected);
}

static int set_probe(struct service_settings *s, const char *v, const char **expected)
{
	return settings_parse_probe(v, &s->probe, expected);
}

static int set_ignore(struct service_settings *s, const char *v, const char **expected)
{
	int r = flow_rules_parse(v, &s->ignore, expected);
	if (r < 0)
		return r;
	s->ignore_set = true; /* "none" too: no rules, whatever the default */
	return 0;
}

static int set_keep_awake(struct service_settings *s, const char *v, const char **expected)
{
	return settings_parse_keep_awake(v, &s->keep_awake_connections, expected);
}

static int set_freeze_after(struct service_settings *s, const char *v, const char **expected)
{
	return settings_parse_freeze_after(v, &s->freeze_after_us, expected);
}

static int set_reclaim_frozen(struct service_settings *s, const char *v, const char **expected)
{
	return settings_parse_bool(v, &s->reclaim_frozen, expected);
}

struct settings_key {
	const char *name;
	const char *alias; /* the spelling of labels and dozectl, or NULL */
	int (*set)(struct service_settings *s, const char *v, const char **expected);
};

static const struct settings_key settings_keys[] = {
    {"idle", NULL, set_idle},
    {"wake_on", "wake-on", set_wake_on},
    {"probe", NULL, set_probe},
    {"ignore", NULL, set_ignore},
    {"keep_awake", "keep-awake", set_keep_awake},
    {"freeze_after", "freeze-after", set_freeze_after},
    {"reclaim_frozen", "reclaim-frozen", set_reclaim_frozen},
};

static const struct settings_key *settings_key_find(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings_keys); i++) {
		const struct settings_key *k = &settings_keys[i];
		if (strcmp(key, k->name) == 0 || (k->alias && strcmp(key, k->alias) == 0))
			return k;
	}
	return NULL;
}

bool settings_key_known(const char *key)
{
	return settings_key_find(key) != NULL;
}

int settings_set(struct service_settings *s, const char *key, const char *value,
		 const char **expected)
{
	const struct settings_key *k = settings_key_find(key);
	if (!k) {
		*expected = "expected idle, wake_on, probe, ignore, keep_awake, freeze_after or "
			    "reclaim_frozen";
		return -ENOENT;
	}
	/* On a copy: a failed parser may have written part of its field. */
	struct service_settings copy = *s;
	int r = k->set(&copy, value, expected);
	if (r < 0)
		return r;
	*s = copy;
	return 0;
}
