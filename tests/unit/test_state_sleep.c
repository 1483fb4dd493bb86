// SPDX-License-Identifier: MIT
/* services.json and light sleep: freeze_after_ms, reclaim_frozen and idle
 * "never" round trip; older files load as before; bad values set the entry
 * aside, saying why. */
#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "dozed/state_store.h"
#include "harness.h"

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct bad_seen {
	size_t n;
	char why[256];
};

static void on_bad(void *userdata, size_t index, const char *name, const char *why, const char *raw)
{
	struct bad_seen *b = userdata;
	(void)index, (void)name, (void)raw;
	b->n++;
	snprintf(b->why, sizeof(b->why), "%s", why);
}

/* text parsed: n good entries into *out, the last bad one's why into bad. */
static size_t parse(const char *text, struct state_service **out, struct bad_seen *bad)
{
	size_t n = 0, n_bad = 0;
	char why[256] = "";
	*bad = (struct bad_seen){0};
	int r =
	    state_store_parse(text, strlen(text), out, &n, &n_bad, on_bad, bad, why, sizeof(why));
	if (r < 0)
		FAIL("the file as a whole was refused: %s", why);
	if (n_bad != bad->n)
		FAIL("%zu set aside, %zu told", n_bad, bad->n);
	return n;
}

static struct json_object *entry_of(const char *text, size_t i)
{
	struct json_object *root = json_tokener_parse(text);
	if (!root || !json_object_is_type(root, json_type_array))
		FAIL("not a JSON array: %s", text);
	struct json_object *e = json_object_get(json_object_array_get_idx(root, i));
	json_object_put(root);
	return e;
}

TEST(test_light_sleep_settings_and_idle_never_round_trip)
{
	const struct state_service in[] = {
	    {.name = "db",
	     .container = "pg",
	     .container_id = ID_A,
	     .idle_us = 10 * DURATION_US_PER_MIN,
	     .freeze_after_us = 30 * DURATION_US_PER_SEC,
	     .reclaim_frozen = true},
	    {.name = "cache",
	     .container = "redis",
	     .idle_us = DOZED_IDLE_NEVER,
	     .freeze_after_us = 2 * DURATION_US_PER_MIN},
	    {.name = "web", .container = "web", .freeze_after_us = DURATION_US_PER_SEC},
	};
	_cleanup_free_ char *text = NULL;
	ASSERT_OK(state_store_format(in, ARRAY_SIZE(in), NULL, &text));

	/* The file as written: its documented fields. */
	struct json_object *db = entry_of(text, 0), *cache = entry_of(text, 1), *v;
	ASSERT_TRUE(json_object_object_get_ex(db, "freeze_after_ms", &v));
	ASSERT_EQ_U(json_object_get_int64(v), 30000);
	ASSERT_TRUE(json_object_object_get_ex(db, "reclaim_frozen", &v) &&
		    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
	ASSERT_TRUE(json_object_object_get_ex(db, "idle_ms", &v));
	ASSERT_EQ_U(json_object_get_int64(v), 600000);
	ASSERT_TRUE(json_object_object_get_ex(cache, "idle", &v));
	ASSERT_STREQ(json_object_get_string(v), "never");
	ASSERT_TRUE(!json_object_object_get_ex(cache, "idle_ms", NULL));
	ASSERT_TRUE(!json_object_object_get_ex(cache, "reclaim_frozen", NULL));
	json_object_put(db);
	json_object_put(cache);

	struct state_service *got = NULL;
	struct bad_seen bad;
	size_t n = parse(text, &got, &bad);
	ASSERT_EQ_U(n, 3);
	ASSERT_EQ_U(bad.n, 0);
	ASSERT_EQ_U(got[0].idle_us, 10 * DURATION_US_PER_MIN);
	ASSERT_EQ_U(got[0].freeze_after_us, 30 * DURATION_US_PER_SEC);
	ASSERT_TRUE(got[0].reclaim_frozen);
	ASSERT_TRUE(got[1].idle_us == DOZED_IDLE_NEVER);
	ASSERT_EQ_U(got[1].freeze_after_us, 2 * DURATION_US_PER_MIN);
	ASSERT_TRUE(!got[1].reclaim_frozen);
	ASSERT_EQ_U(got[2].idle_us, 0);
	ASSERT_EQ_U(got[2].freeze_after_us, DURATION_US_PER_SEC);
	/* Written again, the same text: nothing drifts over restarts. */
	_cleanup_free_ char *again = NULL;
	ASSERT_OK(state_store_format(got, n, NULL, &again));
	ASSERT_STREQ(again, text);
	state_services_free(got, n);
}

TEST(test_a_file_of_an_older_version_has_no_light_sleep)
{
	const char *old = "[{\"container\": \"web\", \"container_id\": \"\", \"name\": \"web\", "
			  "\"idle_ms\": 5000, \"wake_on\": \"connect\", \"ports\": "
			  "[{\"host_ip\": \"\", \"host_port\": 8080, \"container_port\": 80}]}]";
	struct state_service *got = NULL;
	struct bad_seen bad;
	size_t n = parse(old, &got, &bad);
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(got[0].idle_us, 5 * DURATION_US_PER_SEC);
	ASSERT_EQ_U(got[0].freeze_after_us, 0);
	ASSERT_TRUE(!got[0].reclaim_frozen);
	/* And a service without light sleep writes none of its fields. */
	_cleanup_free_ char *text = NULL;
	ASSERT_OK(state_store_format(got, n, NULL, &text));
	ASSERT_TRUE(!strstr(text, "freeze_after") && !strstr(text, "reclaim_frozen") &&
		    !strstr(text, "\"idle\""));
	state_services_free(got, n);
}

TEST(test_freeze_after_ms_0_is_none)
{
	struct state_service *got = NULL;
	struct bad_seen bad;
	size_t n =
	    parse("[{\"container\": \"a\", \"name\": \"a\", \"freeze_after_ms\": 0}]", &got, &bad);
	ASSERT_EQ_U(n, 1);
	ASSERT_EQ_U(got[0].freeze_after_us, 0);
	state_services_free(got, n);
}

static void assert_set_aside(const char *fields, const char *want)
{
	char text[512];
	/* A good neighbour: one bad entry never costs the others. */
	snprintf(text, sizeof(text),
		 "[{\"container\": \"ok\", \"name\": \"ok\", \"freeze_after_ms\": 1000},"
		 " {\"container\": \"bad\", \"name\": \"bad\", %s}]",
		 fields);
	struct state_service *got = NULL;
	struct bad_seen bad;
	size_t n = parse(text, &got, &bad);
	if (n != 1 || bad.n != 1 || strcmp(bad.why, want) != 0)
		FAIL("%s: %zu loaded, %zu set aside (why \"%s\"), want 1, 1 and \"%s\"", fields, n,
		     bad.n, bad.why, want);
	ASSERT_STREQ(got[0].name, "ok");
	state_services_free(got, n);
}

TEST(test_bad_light_sleep_fields_set_the_entry_aside_saying_why)
{
	assert_set_aside("\"freeze_after_ms\": \"30s\"",
			 "\"freeze_after_ms\" is not a number of milliseconds");
	assert_set_aside("\"freeze_after_ms\": -1",
			 "\"freeze_after_ms\" is not a number of milliseconds");
	assert_set_aside("\"freeze_after_ms\": 1.5",
			 "\"freeze_after_ms\" is not a number of milliseconds");
	assert_set_aside("\"freeze_after_ms\": 999",
			 "\"freeze_after_ms\" is neither 0 (none) nor 1000 (1s) or more");
	assert_set_aside("\"freeze_after_ms\": 31536000001",
			 "\"freeze_after_ms\" is longer than 8760h (a year)");
	assert_set_aside("\"reclaim_frozen\": \"true\"",
			 "\"reclaim_frozen\" is neither true nor false");
	assert_set_aside("\"reclaim_frozen\": 1", "\"reclaim_frozen\" is neither true nor false");
	assert_set_aside("\"reclaim_frozen\": null",
			 "\"reclaim_frozen\" is neither true nor false");
	assert_set_aside("\"idle\": \"10m\"", "\"idle\" is not \"never\"");
	assert_set_aside("\"idle\": true", "\"idle\" is not \"never\"");
	assert_set_aside("\"idle\": \"never\\u0000x\"", "\"idle\" is not \"never\"");
	assert_set_aside("\"idle\": \"never\", \"idle_ms\": 5000", "both \"idle\" and \"idle_ms\"");
	assert_set_aside("\"idle_ms\": 60000, \"freeze_after_ms\": 60000",
			 "\"freeze_after_ms\" is not shorter than \"idle_ms\"");
	assert_set_aside("\"idle_ms\": 60000, \"freeze_after_ms\": 120000",
			 "\"freeze_after_ms\" is not shorter than \"idle_ms\"");
}

TEST(test_idle_never_takes_any_freeze_after)
{
	struct state_service *got = NULL;
	struct bad_seen bad;
	size_t n = parse("[{\"container\": \"a\", \"name\": \"a\", \"idle\": \"never\", "
			 "\"freeze_after_ms\": 31536000000}]",
			 &got, &bad);
	ASSERT_EQ_U(n, 1);
	ASSERT_TRUE(got[0].idle_us == DOZED_IDLE_NEVER);
	ASSERT_EQ_U(got[0].freeze_after_us, DURATION_MAX_US);
	state_services_free(got, n);
}

TEST(test_save_refuses_what_load_would_set_aside)
{
	const struct state_service bad[] = {
	    {.name = "a", .container = "a", .freeze_after_us = 999999},
	    {.name = "a", .container = "a", .freeze_after_us = DURATION_MAX_US + 1},
	    {.name = "a",
	     .container = "a",
	     .idle_us = DURATION_US_PER_MIN,
	     .freeze_after_us = DURATION_US_PER_MIN},
	    {.name = "a", .container = "a", .idle_us = DURATION_MAX_US + 1},
	};
	const char *want[] = {
	    "\"freeze_after_ms\" is neither 0 (none) nor 1000 (1s) or more",
	    "\"freeze_after_ms\" is longer than 8760h (a year)",
	    "\"freeze_after_ms\" is not shorter than \"idle_ms\"",
	    "\"idle_ms\" is longer than 8760h (a year)",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ASSERT_STREQ(state_service_invalid(&bad[i]), want[i]);
	const struct state_service never = {
	    .name = "a", .container = "a", .idle_us = DOZED_IDLE_NEVER};
	ASSERT_TRUE(state_service_invalid(&never) == NULL);
}
