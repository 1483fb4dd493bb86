// SPDX-License-Identifier: MIT
/* services.json as text: the parser (pure, for load and the fuzzer) and the writer. */
#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "dozed/state_store.h"

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
const char *state_service_invalid(const struct state_service *s)
{
	if (!s->name || !s->name[0])
		return "\"name\" is missing or empty";
	if (!s->container || !s->container[0])
		return "\"container\" is missing or empty";
	if (s->container_id && s->container_id[0] && !is_container_id(s->container_id))
		return "\"container_id\" is neither empty nor 64 lowercase hex digits";
	if (s->idle_us > DURATION_MAX_US && s->idle_us != DOZED_IDLE_NEVER)
		return "\"idle_ms\" is longer than " DURATION_MAX_TEXT;
	if (s->freeze_after_us > DURATION_MAX_US)
		return "\"freeze_after_ms\" is longer than " DURATION_MAX_TEXT;
	if (s->freeze_after_us && s->freeze_after_us < DOZED_FREEZE_AFTER_MIN_US)
		return "\"freeze_after_ms\" is neither 0 (none) nor 1000 (1s) or more";
	/* With the daemon's idle (0 here) the daemon checks, knowing its own. */
	if (s->idle_us && s->freeze_after_us && s->freeze_after_us >= s->idle_us &&
	    s->idle_us != DOZED_IDLE_NEVER)
		return "\"freeze_after_ms\" is not shorter than \"idle_ms\"";
	if (s->n_ports > STATE_MAX_PORTS)
		return "more than 16 \"ports\"";
	if (s->ignore.n > FLOW_RULES_MAX)
		return "more than 16 \"ignore\" rules";
	for (size_t i = 0; i < s->n_ports; i++) {
		if (s->ports[i].host_port == 0)
			return "a port's \"host_port\" is 0";
		if (!memchr(s->ports[i].host_ip, '\0', sizeof(s->ports[i].host_ip)))
			return "a port's \"host_ip\" is too long";
	}
	return NULL;
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
		    get_port_number(p, "container_port", 1, &out->container_port) < 0) {
			*why = "a port is not {\"host_port\": 1-65535, \"container_port\": "
			       "1-65535}";
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

	if (json_object_object_get_ex(entry, "idle", &v)) {
		/* "never" only: a duration is "idle_ms", as ever. */
		if (!json_object_is_type(v, json_type_string) ||
		    strcmp(json_object_get_string(v), "never") != 0 ||
		    (size_t)json_object_get_string_len(v) != strlen("never")) {
			*why = "\"idle\" is not \"never\"";
			return -EBADMSG;
		}
		if (json_object_object_get_ex(entry, "idle_ms", NULL)) {
			*why = "both \"idle\" and \"idle_ms\"";
			return -EBADMSG;
		}
		s->idle_us = DOZED_IDLE_NEVER;
	}

	if (json_object_object_get_ex(entry, "freeze_after_ms", &v)) {
		int64_t ms = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
		if (ms < 0) {
			*why = "\"freeze_after_ms\" is not a number of milliseconds";
			return -EBADMSG;
		}
		if ((uint64_t)ms > DURATION_MAX_US / 1000) {
			*why = "\"freeze_after_ms\" is longer than " DURATION_MAX_TEXT;
			return -EBADMSG;
		}
		s->freeze_after_us = (uint64_t)ms * 1000;
	}

	if (json_object_object_get_ex(entry, "reclaim_frozen", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			*why = "\"reclaim_frozen\" is neither true nor false";
			return -EBADMSG;
		}
		s->reclaim_frozen = json_object_get_boolean(v);
	}

	if (json_object_object_get_ex(entry, "ports", &v) && ports_from_json(v, s, why) < 0)
		return -EBADMSG;

	if (json_object_object_get_ex(entry, "wake_on", &v)) {
		const char *w =
		    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		const char *expected;
		if (settings_parse_wake_on(w, &s->wake_on_data, &expected) < 0) {
			*why = "\"wake_on\" is neither \"connect\" nor \"data\"";
			return -EBADMSG;
		}
	}

	if (json_object_object_get_ex(entry, "probe", &v)) {
		const char *p =
		    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		const char *expected;
		if (settings_parse_probe(p, &s->probe, &expected) < 0) {
			*why = "\"probe\" is no probe kind (auto, tcp, http[:/PATH], postgres, "
			       "redis, mysql, healthcheck)";
			return -EBADMSG;
		}
	}

	if (json_object_object_get_ex(entry, "ignore", &v)) {
		/* The parser's message names the rule: kept until the entry is
		 * reported, before any other entry is read. */
		static char ignore_why[1024];
		const char *expected;
		if (!json_object_is_type(v, json_type_string) ||
		    (size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v))) {
			*why = "\"ignore\" is not a plain string";
			return -EBADMSG;
		}
		if (flow_rules_parse(json_object_get_string(v), &s->ignore, &expected) < 0) {
			snprintf(ignore_why, sizeof(ignore_why), "\"ignore\": %s", expected);
			*why = ignore_why;
			return -EBADMSG;
		}
		s->ignore_set = true;
	}

	if (json_object_object_get_ex(entry, "keep_awake", &v)) {
		const char *k =
		    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		const char *expected;
		if (settings_parse_keep_awake(k, &s->keep_awake_connections, &expected) < 0) {
			*why = "\"keep_awake\" is neither \"connections\" nor \"none\"";
			return -EBADMSG;
		}
	}

	*why = state_service_invalid(s);
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

/* Two services never share a host port: the redirect set could not tell them apart. */
static bool port_taken(const struct state_service *s, size_t n, const struct state_service *e)
{
	for (size_t i = 0; i < n; i++)
		for (size_t a = 0; a < s[i].n_ports; a++)
			for (size_t b = 0; b < e->n_ports; b++)
				if (s[i].ports[a].host_port == e->ports[b].host_port)
					return true;
	return false;
}

/* Whether text[from, len) is all JSON white space; text need not end in a NUL. */
static bool all_space(const char *text, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++)
		if (!strchr(" \t\r\n", text[i]) || text[i] == '\0')
			return false;
	return true;
}

int state_store_parse(const char *text, size_t len, struct state_service **out, size_t *n,
		      size_t *n_bad, state_bad_entry_fn bad, void *userdata, char *why,
		      size_t why_len)
{
	*out = NULL;
	*n = *n_bad = 0;
	if (all_space(text, 0, len)) {
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
	if (!all_space(text, end, len)) {
		snprintf(why, why_len, "text follows the JSON array at byte %zu", end);
		return -EBADMSG;
	}
	if (!json_object_is_type(root, json_type_array)) {
		snprintf(why, why_len, "it is not a JSON array");
		return -EBADMSG;
	}
	/* Judged as json-c writes it back: a bad entry is saved again as json-c
	 * prints it, and a number json-c read loosely ("0000E") may print as one
	 * it reads otherwise ("0000", an integer), which would turn a bad entry
	 * into a good one a restart later. Reading the printed form makes both
	 * the same. */
	_cleanup_(json_putp) struct json_object *printed =
	    json_tokener_parse(json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (!printed || !json_object_is_type(printed, json_type_array))
		return -ENOMEM;
	json_object_put(root);
	root = TAKE_PTR(printed);

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
		else if (r == 0 && port_taken(services, good, s))
			reason = "another entry has one of its \"ports\"", r = -EBADMSG;
		if (r < 0) {
			if (bad)
				bad(userdata, i + 1, s->name && s->name[0] ? s->name : NULL,
				    reason ? reason : "unreadable",
				    json_object_to_json_string_ext(
					json_object_array_get_idx(root, i),
					JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
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
	    (s->idle_us == DOZED_IDLE_NEVER &&
	     add_field(o, "idle", json_object_new_string("never")) < 0) ||
	    (s->idle_us && s->idle_us != DOZED_IDLE_NEVER &&
	     add_field(o, "idle_ms", json_object_new_int64((int64_t)(s->idle_us / 1000))) < 0) ||
	    add_field(o, "wake_on",
		      json_object_new_string(settings_wake_on_to_string(s->wake_on_data))) < 0)
		return NULL;
	char probe[PROBE_HTTP_PATH_MAX + 16];
	if (s->probe.kind != PROBE_AUTO &&
	    add_field(o, "probe",
		      json_object_new_string(
			  settings_probe_to_string(&s->probe, probe, sizeof(probe)))) < 0)
		return NULL;
	char ignore[1024];
	if (s->ignore_set && add_field(o, "ignore",
				       json_object_new_string(flow_rules_to_string(
					   &s->ignore, ignore, sizeof(ignore)))) < 0)
		return NULL;
	if (s->keep_awake_connections &&
	    add_field(o, "keep_awake", json_object_new_string("connections")) < 0)
		return NULL;
	if (s->freeze_after_us &&
	    add_field(o, "freeze_after_ms",
		      json_object_new_int64((int64_t)(s->freeze_after_us / 1000))) < 0)
		return NULL;
	if (s->reclaim_frozen && add_field(o, "reclaim_frozen", json_object_new_boolean(1)) < 0)
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

int state_store_format(const struct state_service *s, size_t n, const struct state_aside *aside,
		       char **out)
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
	for (size_t i = 0; aside && i < aside->n; i++) {
		/* Parsed from the file once: it parses again. A JSON null is
		 * an entry too (NULL, not an error): written back as it was. */
		enum json_tokener_error jerr = json_tokener_success;
		struct json_object *o = json_tokener_parse_verbose(aside->entries[i], &jerr);
		if (jerr != json_tokener_success)
			return -EBADMSG;
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

void state_aside_clear(struct state_aside *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->entries[i]);
	free(a->entries);
	*a = (struct state_aside){0};
}
