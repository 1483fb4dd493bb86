/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One control request line, checked before anything acts on it. Pure: no
 * logging, no state, so the fuzzer calls it as the server does.
 *
 * A request is refused as a whole, never half-read: a line over
 * CONTROL_REQUEST_MAX bytes, a raw NUL byte or a \u0000 escape anywhere (C
 * strings would stop there, so "list\u0000x" would run list), bytes that are
 * not UTF-8 and escapes that decode to none (they would be echoed back raw),
 * text that is not exactly one JSON object, or an object without a string
 * "cmd". Error texts never quote the offending bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The longest request line, newline excluded; struct control_config.max_request is at most this. */
#define CONTROL_REQUEST_MAX (64 * 1024)

/* 0 and *out (a new reference to the request object), or -EINVAL with err set; -ENOMEM. */
int control_request_parse(const char *line, size_t len, struct json_object **out, char *err,
			  size_t errlen);

enum control_field_type {
	CONTROL_FIELD_STRING,
	CONTROL_FIELD_BOOL,
	CONTROL_FIELD_UINT, /* a JSON integer, 0 or more */
};

struct control_field {
	const char *name;
	enum control_field_type type;
	const char *expected; /* for the message, e.g. "a string like \"10m\"" */
};

/*
 * Checks that every member of req other than "cmd" is one of fields, with its
 * type. 0, or -EINVAL with err naming the field: "idle: expected a string like
 * \"10m\"", "frobs: unknown field (enable takes container, idle, wake_on, probe)".
 * A field with the wrong type is refused rather than ignored: ignoring it would
 * apply the default in its place.
 */
int control_request_check_fields(struct json_object *req, const char *cmd,
				 const struct control_field *fields, size_t n_fields, char *err,
				 size_t errlen);

/* The string member key, or NULL when absent (types checked by control_request_check_fields). */
const char *control_request_get_string(struct json_object *req, const char *key);
/* The bool member key, or dflt when absent. */
bool control_request_get_bool(struct json_object *req, const char *key, bool dflt);
/* The integer member key (CONTROL_FIELD_UINT), or dflt when absent or negative. */
uint64_t control_request_get_uint(struct json_object *req, const char *key, uint64_t dflt);
