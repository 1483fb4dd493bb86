// SPDX-License-Identifier: MIT
/* A service's settings in a control request (enable): checked as the daemon
 * checks them, with the messages a client reads back. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "dozed/control_request.h"
#include "dozed/control_settings.h"
#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/utf8.h"
#include "harness.h"

#define DEFAULT_IDLE (10 * DURATION_US_PER_MIN)

static const struct control_field enable_fields[] = {
    {"container", CONTROL_FIELD_STRING, "a string: a container's name or id"},
    CONTROL_SETTINGS_FIELDS,
};

/* The line's fields checked, then its settings read: NULL and *out, or the error. */
static const char *settings_of(const char *line, struct service_settings *out, char *err,
			       size_t len)
{
	struct json_object *req = NULL;
	if (control_request_parse(line, strlen(line), &req, err, len) < 0)
		FAIL("%s: refused as a line: %s", line, err);
	int r = control_request_check_fields(req, "enable", enable_fields,
					     ARRAY_SIZE(enable_fields), err, len);
	if (r == 0) {
		r = control_request_settings(req, DEFAULT_IDLE, out, err, len);
		if (r < 0 && r != -EINVAL)
			FAIL("%s: %d, not -EINVAL", line, r);
	}
	json_object_put(req);
	return r == 0 ? NULL : err;
}

static void assert_refused(const char *line, const char *want)
{
	struct service_settings s = {.idle_us = 42};
	char err[256] = "";
	const char *got = settings_of(line, &s, err, sizeof(err));
	if (!got)
		FAIL("%s: accepted", line);
	if (strcmp(got, want) != 0)
		FAIL("%s: got \"%s\", expected \"%s\"", line, got, want);
	ASSERT_EQ_U(s.idle_us, 42);
}

TEST(test_enable_takes_freeze_after_and_reclaim_frozen)
{
	struct service_settings s;
	char err[256];
	ASSERT_TRUE(settings_of("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"10m\","
				"\"freeze_after\":\"30s\",\"reclaim_frozen\":true}",
				&s, err, sizeof(err)) == NULL);
	ASSERT_TRUE(s.idle_set);
	ASSERT_EQ_U(s.idle_us, 10 * DURATION_US_PER_MIN);
	ASSERT_EQ_U(s.freeze_after_us, 30 * DURATION_US_PER_SEC);
	ASSERT_TRUE(s.reclaim_frozen);

	/* Left out: no light sleep, nothing reclaimed (a settings change is whole). */
	ASSERT_TRUE(
	    settings_of("{\"cmd\":\"enable\",\"container\":\"pg\"}", &s, err, sizeof(err)) == NULL);
	ASSERT_EQ_U(s.freeze_after_us, 0);
	ASSERT_TRUE(!s.reclaim_frozen && !s.idle_set);

	ASSERT_TRUE(settings_of("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"never\","
				"\"freeze_after\":\"8760h\",\"reclaim_frozen\":false}",
				&s, err, sizeof(err)) == NULL);
	ASSERT_TRUE(s.idle_us == DOZED_IDLE_NEVER);
	ASSERT_EQ_U(s.freeze_after_us, DURATION_MAX_US);
	ASSERT_TRUE(!s.reclaim_frozen);

	ASSERT_TRUE(settings_of("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":"
				"\"none\",\"keep_awake\":\"connections\",\"wake_on\":\"data\"}",
				&s, err, sizeof(err)) == NULL);
	ASSERT_EQ_U(s.freeze_after_us, 0);
	ASSERT_TRUE(s.keep_awake_connections && s.wake_on_data);
}

TEST(test_enable_checks_freeze_after_against_the_daemons_idle_when_it_has_none)
{
	struct service_settings s;
	char err[256];
	/* 9m under the daemon's 10m: fine; 10m is not. */
	ASSERT_TRUE(settings_of("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":\"9m\"}",
				&s, err, sizeof(err)) == NULL);
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":\"10m\"}",
		       "freeze_after (10m) must be shorter than idle (10m): a service is frozen "
		       "first, stopped later");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"5m\",\"freeze_after\":"
		       "\"10m\"}",
		       "freeze_after (10m) must be shorter than idle (5m): a service is frozen "
		       "first, stopped later");
	/* Its own idle, longer than the daemon's. */
	ASSERT_TRUE(settings_of("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"2h\","
				"\"freeze_after\":\"1h\"}",
				&s, err, sizeof(err)) == NULL);
}

TEST(test_enable_refuses_bad_values_naming_the_key_and_the_value)
{
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":\"500ms\"}",
		       "freeze_after 500ms: expected a duration of 1s or more, like 30s, 10m or "
		       "2h, or none");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":\"never\"}",
		       "freeze_after never: expected a duration of 1s or more, like 30s, 10m or "
		       "2h, or none");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":30}",
		       "freeze_after: expected a string like \"30s\" or \"none\"");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"reclaim_frozen\":\"true\"}",
		       "reclaim_frozen: expected true or false");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"reclaim_frozen\":1}",
		       "reclaim_frozen: expected true or false");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"999ms\"}",
		       "idle 999ms: expected a duration of 1s or more, like 30s, 10m or 2h, or "
		       "never");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"idle\":\"Never\"}",
		       "idle Never: expected a duration of 1s or more, like 30s, 10m or 2h, or "
		       "never");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"wake_on\":\"sometimes\"}",
		       "wake_on sometimes: expected connect or data");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"keep_awake\":\"yes\"}",
		       "keep_awake yes: expected connections or none");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"probe\":\"ftp\"}",
		       "probe ftp: expected auto, tcp, http, http:/PATH, postgres, redis, mysql or "
		       "healthcheck");
	assert_refused("{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze-after\":\"30s\"}",
		       "freeze-after: unknown field (enable takes container, idle, wake_on, probe, "
		       "ignore, keep_awake, freeze_after, reclaim_frozen)");
}

TEST(test_a_long_bad_value_is_cut_between_characters)
{
	/* 100 two-byte characters: the first 64 bytes are shown, then "...". */
	char line[512], value[201] = {0};
	for (int i = 0; i < 100; i++)
		memcpy(value + 2 * i, "\xc3\xa9", 2);
	snprintf(line, sizeof(line),
		 "{\"cmd\":\"enable\",\"container\":\"pg\",\"freeze_after\":\"%s\"}", value);
	char want[512];
	snprintf(want, sizeof(want),
		 "freeze_after %.64s...: expected a duration of 1s or more, like 30s, 10m or 2h, "
		 "or none",
		 value);
	assert_refused(line, want);

	/* A buffer too small for the message: cut, still UTF-8. */
	struct json_object *req = NULL;
	char err[40];
	ASSERT_OK(control_request_parse(line, strlen(line), &req, err, sizeof(err)));
	struct service_settings s;
	ASSERT_ERR(control_request_settings(req, DEFAULT_IDLE, &s, err, 16), EINVAL);
	ASSERT_TRUE(utf8_valid(err, strlen(err)));
	ASSERT_STREQ(err, "freeze_after \xc3\xa9");
	/* Room for half of the character: none of it. */
	ASSERT_ERR(control_request_settings(req, DEFAULT_IDLE, &s, err, 15), EINVAL);
	ASSERT_STREQ(err, "freeze_after ");
	json_object_put(req);
}

TEST(test_a_bad_rule_is_quoted_by_the_rule_parser_not_echoed_whole)
{
	struct service_settings s;
	char err[256];
	const char *got = settings_of(
	    "{\"cmd\":\"enable\",\"container\":\"pg\",\"ignore\":\"tcp/80,10.0.0.0/33\"}", &s, err,
	    sizeof(err));
	ASSERT_TRUE(got != NULL);
	ASSERT_TRUE(
	    strncmp(got, "ignore: rule \"10.0.0.0/33\": the prefix length is over 32; ",
		    strlen("ignore: rule \"10.0.0.0/33\": the prefix length is over 32; ")) == 0);
}
