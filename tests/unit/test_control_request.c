// SPDX-License-Identifier: MIT
/* The control request parser, pure: what it refuses, and what it says. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/control_request.h"
#include "dozed/utf8.h"
#include "dozed/macro.h"
#include "harness.h"

/* The error for a line that must be refused. */
static void assert_refused(const char *line, size_t len, const char *want)
{
	struct json_object *req = (struct json_object *)1;
	char err[256] = "";
	ASSERT_ERR(control_request_parse(line, len, &req, err, sizeof(err)), EINVAL);
	ASSERT_TRUE(req == NULL);
	ASSERT_STREQ(err, want);
}

#define REFUSED(lit, want) assert_refused((lit), sizeof(lit) - 1, (want))

static struct json_object *parsed(const char *line)
{
	struct json_object *req = NULL;
	char err[256] = "";
	int r = control_request_parse(line, strlen(line), &req, err, sizeof(err));
	if (r < 0)
		FAIL("%s refused: %s", line, err);
	return req;
}

TEST(test_a_request_object_with_a_string_cmd_is_accepted)
{
	struct json_object *req = parsed("{\"cmd\":\"list\"}  \r");
	struct json_object *cmd = NULL;
	ASSERT_TRUE(json_object_object_get_ex(req, "cmd", &cmd));
	ASSERT_STREQ(json_object_get_string(cmd), "list");
	json_object_put(req);
	json_object_put(parsed("{\"cmd\":\"enable\",\"container\":\"caf\xc3\xa9\",\"x\":[1,{}]}"));
}

TEST(test_nul_raw_or_escaped_is_refused_anywhere)
{
	const char *want = "a request must not contain NUL characters";
	REFUSED("{\"cmd\":\"list\\u0000x\"}", want);
	REFUSED("{\"cmd\":\"list\",\"k\\u0000\":1}", want);
	REFUSED("{\"cmd\":\"list\",\"x\":[\"\\u0000\"]}", want);
	REFUSED("{\"cmd\":\"li\0st\"}", want);
	REFUSED("{\"cmd\":\"list\"}\0", want);
	/* "\\u0000" is a backslash and text. */
	json_object_put(parsed("{\"cmd\":\"list\",\"x\":\"\\\\u0000\"}"));
	json_object_put(parsed("{\"cmd\":\"list\",\"x\":\"\\u0001\\u00e9\"}"));
}

TEST(test_bytes_that_are_not_utf8_are_refused)
{
	const char *want = "a request must be UTF-8 text";
	REFUSED("{\"cmd\":\"list\xff\"}", want);
	REFUSED("{\"cmd\":\"list\",\"x\":\"\xc0\xaf\"}", want);
	REFUSED("{\"cmd\":\"list\",\"x\":\"\xed\xa0\x80\"}", want);
	REFUSED("{\"cmd\":\"list\",\"x\":\"\xf4\x90\x80\x80\"}", want);
	REFUSED("{\"cmd\":\"list\",\"x\":\"\xe2\x82\"}", want);
	REFUSED("{\"cmd\":\"list\",\"\x80\":1}", want);
}

TEST(test_utf8_validation_follows_the_standard)
{
	struct {
		const char *s;
		bool valid;
	} cases[] = {
	    {"", true},
	    {"ascii", true},
	    {"\xc2\x80", true},
	    {"\xdf\xbf", true},
	    {"\xe0\xa0\x80", true},
	    {"\xef\xbf\xbd", true},
	    {"\xf0\x90\x80\x80", true},
	    {"\xf4\x8f\xbf\xbf", true},
	    {"\xc1\xbf", false},	 /* overlong */
	    {"\xe0\x9f\xbf", false},	 /* overlong */
	    {"\xf0\x8f\xbf\xbf", false}, /* overlong */
	    {"\xed\xbf\xbf", false},	 /* surrogate */
	    {"\xf4\x90\x80\x80", false}, /* past U+10FFFF */
	    {"\xf5\x80\x80\x80", false},
	    {"\x80", false},
	    {"\xc2", false},
	    {"\xe0\xa0", false},
	    {"\xc2\x41", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].valid)
			FAIL("case %zu: expected %s", i, cases[i].valid ? "valid" : "invalid");
}

TEST(test_a_cut_never_splits_a_character)
{
	const char *s = "ab\xc3\xa9\xe2\x82\xac";
	ASSERT_EQ_U(utf8_prefix(s, 7, 10), 7);
	ASSERT_EQ_U(utf8_prefix(s, 7, 6), 4);
	ASSERT_EQ_U(utf8_prefix(s, 7, 5), 4);
	ASSERT_EQ_U(utf8_prefix(s, 7, 4), 4);
	ASSERT_EQ_U(utf8_prefix(s, 7, 3), 2);
}

TEST(test_what_is_not_one_request_object_is_refused)
{
	REFUSED("{not json", "invalid JSON: quoted object property name expected");
	REFUSED("{\"cmd\":", "invalid JSON: the line ends inside a value");
	REFUSED("[1,2]", "a request must be a JSON object");
	REFUSED("{\"cmd\":7}", "a request needs a string \"cmd\"");
	REFUSED("{\"x\":\"list\"}", "a request needs a string \"cmd\"");
	REFUSED("{\"cmd\":\"list\"} {}", "invalid JSON: more after the request object");
	REFUSED("", "invalid JSON: the line ends inside a value");
}

TEST(test_a_line_over_the_limit_is_refused_unread)
{
	size_t len = CONTROL_REQUEST_MAX + 1;
	_cleanup_free_ char *line = malloc(len);
	ASSERT_TRUE(line != NULL);
	memset(line, ' ', len);
	memcpy(line, "{\"cmd\":\"list\"}", 14);
	assert_refused(line, len, "request too long (limit 65536 bytes)");
	json_object_put(parsed("{\"cmd\":\"list\"}"));
}

static const struct control_field fields[] = {
    {"idle", CONTROL_FIELD_STRING, "a string like \"10m\""},
    {"follow", CONTROL_FIELD_BOOL, NULL},
};

static const char *check(const char *line, char *err, size_t len)
{
	struct json_object *req = parsed(line);
	int r = control_request_check_fields(req, "enable", fields, ARRAY_SIZE(fields), err, len);
	json_object_put(req);
	return r == 0 ? NULL : err;
}

TEST(test_fields_of_the_wrong_type_are_named)
{
	char err[256];
	ASSERT_TRUE(check("{\"cmd\":\"enable\",\"idle\":\"5m\",\"follow\":true}", err,
			  sizeof(err)) == NULL);
	ASSERT_TRUE(check("{\"cmd\":\"enable\"}", err, sizeof(err)) == NULL);
	ASSERT_STREQ(check("{\"cmd\":\"enable\",\"idle\":5}", err, sizeof(err)),
		     "idle: expected a string like \"10m\"");
	ASSERT_STREQ(check("{\"cmd\":\"enable\",\"idle\":null}", err, sizeof(err)),
		     "idle: expected a string like \"10m\"");
	ASSERT_STREQ(check("{\"cmd\":\"enable\",\"follow\":\"true\"}", err, sizeof(err)),
		     "follow: expected true or false");
	ASSERT_STREQ(check("{\"cmd\":\"enable\",\"idel\":\"5m\"}", err, sizeof(err)),
		     "idel: unknown field (enable takes idle, follow)");

	struct json_object *req = parsed("{\"cmd\":\"enable\",\"idle\":\"5m\",\"follow\":true}");
	ASSERT_STREQ(control_request_get_string(req, "idle"), "5m");
	ASSERT_TRUE(control_request_get_string(req, "none") == NULL);
	ASSERT_TRUE(control_request_get_bool(req, "follow", false));
	ASSERT_TRUE(!control_request_get_bool(req, "none", false));
	json_object_put(req);
}

TEST(test_an_unknown_field_is_named_whole_characters_only)
{
	char err[256], line[256];
	/* 40 two-byte characters: 80 bytes, cut to 64 between two of them. */
	char key[81] = {0};
	for (int i = 0; i < 40; i++)
		memcpy(key + 2 * i, "\xc3\xa9", 2);
	snprintf(line, sizeof(line), "{\"cmd\":\"enable\",\"%s\":1}", key);
	const char *msg = check(line, err, sizeof(err));
	ASSERT_TRUE(msg != NULL);
	ASSERT_TRUE(utf8_valid(msg, strlen(msg)));
	ASSERT_TRUE(strncmp(msg, key, 64) == 0 && msg[64] == ':');
}

TEST(test_a_number_field_takes_whole_numbers_from_0_only)
{
	static const struct control_field num[] = {
	    {"since_ms", CONTROL_FIELD_UINT, "a number of milliseconds"},
	};
	const char *good[] = {"0", "60000", "18446744073709551615"};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char line[128], err[256];
		snprintf(line, sizeof(line), "{\"cmd\":\"flows\",\"since_ms\":%s}", good[i]);
		struct json_object *req = parsed(line);
		ASSERT_OK(control_request_check_fields(req, "flows", num, 1, err, sizeof(err)));
		ASSERT_EQ_U(control_request_get_uint(req, "since_ms", 7),
			    strtoull(good[i], NULL, 10));
		json_object_put(req);
	}
	const char *bad[] = {"-1", "1.5", "\"60000\"", "true", "null", "[1]"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char line[128], err[256];
		snprintf(line, sizeof(line), "{\"cmd\":\"flows\",\"since_ms\":%s}", bad[i]);
		struct json_object *req = parsed(line);
		ASSERT_ERR(control_request_check_fields(req, "flows", num, 1, err, sizeof(err)),
			   EINVAL);
		ASSERT_STREQ(err, "since_ms: expected a number of milliseconds");
		ASSERT_EQ_U(control_request_get_uint(req, "since_ms", 7), 7);
		json_object_put(req);
	}
	static const struct control_field unnamed[] = {{"n", CONTROL_FIELD_UINT, NULL}};
	char err[256];
	struct json_object *req = parsed("{\"cmd\":\"flows\",\"n\":-5}");
	ASSERT_ERR(control_request_check_fields(req, "flows", unnamed, 1, err, sizeof(err)),
		   EINVAL);
	ASSERT_STREQ(err, "n: expected a whole number, 0 or more");
	json_object_put(req);
}
