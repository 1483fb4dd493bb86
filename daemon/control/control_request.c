// SPDX-License-Identifier: MIT
/* Control request lines: bytes, JSON and field types checked before a command sees them. */
#include "dozed/control_request.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dozed/utf8.h"

/* A \u0000 escape: a valid JSON text has backslashes only inside strings, each starting one escape.
 */
static bool has_nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
			return true;
		i++; /* the escaped character, which may be a backslash */
	}
	return false;
}

/* Every decoded string and key is UTF-8 and holds no NUL (escapes can make either). */
static bool strings_valid(struct json_object *o, unsigned depth)
{
	if (depth > 64)
		return false;
	switch (json_object_get_type(o)) {
	case json_type_string: {
		const char *s = json_object_get_string(o);
		size_t len = (size_t)json_object_get_string_len(o);
		return strlen(s) == len && utf8_valid(s, len);
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (!strings_valid(json_object_array_get_idx(o, i), depth + 1))
				return false;
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			if (!utf8_valid(key, strlen(key)) || !strings_valid(val, depth + 1))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

static bool all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int control_request_parse(const char *line, size_t len, struct json_object **out, char *err,
			  size_t errlen)
{
	*out = NULL;
	if (len > CONTROL_REQUEST_MAX) {
		snprintf(err, errlen, "request too long (limit %d bytes)", CONTROL_REQUEST_MAX);
		return -EINVAL;
	}
	if (memchr(line, '\0', len) || has_nul_escape(line, len)) {
		snprintf(err, errlen, "a request must not contain NUL characters");
		return -EINVAL;
	}
	if (!utf8_valid(line, len)) {
		snprintf(err, errlen, "a request must be UTF-8 text");
		return -EINVAL;
	}

	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct json_object *req = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	struct json_object *cmd = NULL;
	if (jerr == json_tokener_continue || (!req && jerr == json_tokener_success))
		snprintf(err, errlen, "invalid JSON: the line ends inside a value");
	else if (jerr != json_tokener_success)
		snprintf(err, errlen, "invalid JSON: %s", json_tokener_error_desc(jerr));
	else if (end < len && !all_space(line + end, len - end))
		snprintf(err, errlen, "invalid JSON: more after the request object");
	else if (!json_object_is_type(req, json_type_object))
		snprintf(err, errlen, "a request must be a JSON object");
	else if (!strings_valid(req, 0))
		snprintf(err, errlen, "a request's strings must be UTF-8 without NUL characters");
	else if (!json_object_object_get_ex(req, "cmd", &cmd) ||
		 !json_object_is_type(cmd, json_type_string))
		snprintf(err, errlen, "a request needs a string \"cmd\"");
	else {
		*out = req;
		return 0;
	}
	json_object_put(req);
	return -EINVAL;
}

static const char *type_name(enum control_field_type t)
{
	return t == CONTROL_FIELD_BOOL	 ? "true or false"
	       : t == CONTROL_FIELD_UINT ? "a whole number, 0 or more"
					 : "a string";
}

static bool has_type(struct json_object *v, enum control_field_type t)
{
	switch (t) {
	case CONTROL_FIELD_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case CONTROL_FIELD_UINT:
		/* json-c keeps integers past INT64_MAX as unsigned: positive. */
		return json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0;
	case CONTROL_FIELD_STRING:
		break;
	}
	return json_object_is_type(v, json_type_string);
}

static void list_fields(const struct control_field *fields, size_t n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", fields[i].name);
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

int control_request_check_fields(struct json_object *req, const char *cmd,
				 const struct control_field *fields, size_t n_fields, char *err,
				 size_t errlen)
{
	json_object_object_foreach(req, key, val)
	{
		if (strcmp(key, "cmd") == 0)
			continue;
		const struct control_field *f = NULL;
		for (size_t i = 0; i < n_fields && !f; i++)
			if (strcmp(fields[i].name, key) == 0)
				f = &fields[i];
		if (!f) {
			char names[160];
			list_fields(fields, n_fields, names, sizeof(names));
			int shown = (int)utf8_prefix(key, strlen(key), 64);
			snprintf(err, errlen, "%.*s: unknown field (%s takes %s)", shown, key, cmd,
				 n_fields ? names : "none");
			return -EINVAL;
		}
		if (!has_type(val, f->type)) {
			snprintf(err, errlen, "%s: expected %s", f->name,
				 f->expected ? f->expected : type_name(f->type));
			return -EINVAL;
		}
	}
	return 0;
}

const char *control_request_get_string(struct json_object *req, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool control_request_get_bool(struct json_object *req, const char *key, bool dflt)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

uint64_t control_request_get_uint(struct json_object *req, const char *key, uint64_t dflt)
{
	struct json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !has_type(v, CONTROL_FIELD_UINT))
		return dflt;
	return json_object_get_uint64(v);
}
