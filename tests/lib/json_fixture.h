/* SPDX-License-Identifier: MIT */
#pragma once

/* The JSON inputs of dozectl's output tests (tests/unit/test_dozectl_*.c). */

#include <json-c/json.h>
#include <stdio.h>

/* The JSON of a test's text; a FAIL when it is not JSON (the test's own mistake). */
struct json_object *json_fixture_parse(const char *text);

/* What fn printed for the JSON text (malloc'd). */
char *json_fixture_print(void (*fn)(FILE *, struct json_object *), const char *json);
