// SPDX-License-Identifier: MIT
/* The parts of the runtime's answers that stops and healthchecks need:
 * inspect's stop signal, stop timeout and healthcheck, and the answers of
 * wait and exec. Pure functions, no I/O. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "runtime_internal.h"

#define get	runtime_json_get
#define get_str runtime_json_get_str

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

void runtime_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int runtime_strv_dup(char *const *v, size_t n, char ***out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	char **d = calloc(n, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		d[i] = strdup(v[i]);
		if (!d[i]) {
			runtime_strv_free(d, n);
			return -ENOMEM;
		}
	}
	*out = d;
	return 0;
}

/*
 * Healthcheck.Test as Docker defines it: ["CMD-SHELL", s] runs s with
 * /bin/sh -c, ["CMD", argv...] runs argv, ["NONE"] disables an inherited
 * check. Any other first word is the command itself: that is how Podman
 * runs it (Podman 4.3's compat inspect gives a --health-cmd given as a JSON
 * array as one such word).
 */
static int parse_health_test(json_object *test, struct runtime_container *c)
{
	if (!test || !json_object_is_type(test, json_type_array))
		return 0;
	size_t n = json_object_array_length(test);
	if (n == 0)
		return 0;
	/* Only strings: anything else makes the whole check unreadable. */
	for (size_t i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(test, i), json_type_string))
			return 0;
	const char *first = json_object_get_string(json_object_array_get_idx(test, 0));
	size_t skip = 0;
	const char *prefix[2] = {NULL, NULL};
	size_t n_prefix = 0;
	if (strcmp(first, "NONE") == 0 || *first == '\0')
		return 0;
	if (strcmp(first, "CMD") == 0) {
		skip = 1;
	} else if (strcmp(first, "CMD-SHELL") == 0) {
		/* One shell command line: Docker joins extra words with spaces. */
		if (n < 2)
			return 0;
		skip = 1;
		prefix[0] = "/bin/sh";
		prefix[1] = "-c";
		n_prefix = 2;
	}
	size_t words = n - skip;
	if (words == 0)
		return 0;
	bool shell = n_prefix == 2;
	size_t argc = n_prefix + (shell ? 1 : words);
	char **argv = calloc(argc, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < n_prefix && r == 0; i++, k++)
		r = (argv[k] = strdup(prefix[i])) ? 0 : -ENOMEM;
	if (shell && r == 0) {
		size_t len = 0;
		for (size_t i = skip; i < n; i++)
			len +=
			    strlen(json_object_get_string(json_object_array_get_idx(test, i))) + 1;
		char *line = malloc(len);
		if (line) {
			line[0] = '\0';
			for (size_t i = skip; i < n; i++) {
				if (i > skip)
					strcat(line, " ");
				strcat(line,
				       json_object_get_string(json_object_array_get_idx(test, i)));
			}
		}
		argv[k++] = line;
		r = line ? 0 : -ENOMEM;
	}
	for (size_t i = skip; !shell && i < n && r == 0; i++, k++)
		r = (argv[k] = strdup(json_object_get_string(json_object_array_get_idx(test, i))))
			? 0
			: -ENOMEM;
	if (r < 0) {
		runtime_strv_free(argv, argc);
		return r;
	}
	c->health_cmd = argv;
	c->n_health_cmd = argc;
	return 0;
}

int runtime_parse_inspect_stop_and_health(json_object *root, struct runtime_container *c)
{
	json_object *config = get(root, "Config", json_type_object);
	c->stop_timeout_s = -1;
	const char *sig = get_str(config, "StopSignal");
	if (sig && *sig) {
		c->stop_signal = strdup(sig);
		if (!c->stop_signal)
			return -ENOMEM;
	}
	json_object *timeout = get(config, "StopTimeout", json_type_int);
	if (timeout) {
		int64_t t = json_object_get_int64(timeout);
		/* Negative: Docker's "wait forever"; not a grace period dozed can keep. */
		c->stop_timeout_s = t >= 0 && t <= 24 * 3600 ? (int)t : -1;
	}
	json_object *hc = get(config, "Healthcheck", json_type_object);
	json_object *hc_timeout = get(hc, "Timeout", json_type_int);
	if (hc_timeout && json_object_get_int64(hc_timeout) > 0)
		c->health_timeout_us = (uint64_t)json_object_get_int64(hc_timeout) / 1000;
	int r = parse_health_test(get(hc, "Test", json_type_array), c);
	if (r < 0)
		return r;
	const char *status = get_str(
	    get(get(root, "State", json_type_object), "Health", json_type_object), "Status");
	if (status && strlen(status) < sizeof(c->health_status))
		snprintf(c->health_status, sizeof(c->health_status), "%s", status);
	return 0;
}

static int exit_code_of(json_object *v, int *out)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return -EBADMSG;
	int64_t n = json_object_get_int64(v);
	/* -1: Podman's code for a container that never ran. */
	if (n < -1 || n > 255)
		return -EBADMSG;
	*out = (int)n;
	return 0;
}

int runtime_parse_wait(const char *json, size_t len, int *exit_code)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	return exit_code_of(get(root, "StatusCode", json_type_int), exit_code);
}

int runtime_parse_exec_id(const char *json, size_t len, char **id)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	const char *s = get_str(root, "Id");
	if (!s || !*s || strlen(s) > 128)
		return -EBADMSG;
	*id = strdup(s);
	return *id ? 0 : -ENOMEM;
}

int runtime_parse_exec_inspect(const char *json, size_t len, bool *running, int *exit_code)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	json_object *run = get(root, "Running", json_type_boolean);
	if (!run)
		return -EBADMSG;
	*running = json_object_get_boolean(run);
	*exit_code = -1;
	if (*running)
		return 0;
	return exit_code_of(get(root, "ExitCode", json_type_int), exit_code);
}
