// SPDX-License-Identifier: MIT
/* The JSON inputs of dozectl's output tests: see json_fixture.h. */
#include "json_fixture.h"

#include "harness.h"

struct json_object *json_fixture_parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	if (!o)
		FAIL("bad JSON in the test: %s", text);
	return o;
}

char *json_fixture_print(void (*fn)(FILE *, struct json_object *), const char *json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		FAIL("open_memstream failed");
	struct json_object *o = json_fixture_parse(json);
	fn(out, o);
	fclose(out);
	json_object_put(o);
	return text;
}
