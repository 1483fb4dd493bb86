// SPDX-License-Identifier: MIT
/*
 * Light sleep's settings through the real daemon: what services.json keeps
 * (freeze_after_ms, reclaim_frozen, idle never) comes back in the status a
 * client reads, and is written again, unchanged, by the next save.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dozed/config.h"
#include "dozed/control.h"
#include "dozed/daemon.h"
#include "dozed/macro.h"
#include "control_fixture.h"
#include "daemon_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"
#include "netns.h"

#define ID_CACHE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_DB	 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* Two saved services: one frozen only (never stopped), one on both tiers. */
#define SAVED                                                                                      \
	"[{\"container\": \"cache\", \"container_id\": \"" ID_CACHE "\", \"name\": \"cache\","     \
	" \"idle\": \"never\", \"wake_on\": \"connect\", \"freeze_after_ms\": 30000,"              \
	" \"reclaim_frozen\": true,"                                                               \
	" \"ports\": [{\"host_ip\": \"\", \"host_port\": 46379, \"container_port\": 6379}]},"      \
	" {\"container\": \"db\", \"container_id\": \"" ID_DB "\", \"name\": \"db\","              \
	" \"idle_ms\": 600000, \"wake_on\": \"connect\", \"freeze_after_ms\": 45000,"              \
	" \"ports\": [{\"host_ip\": \"\", \"host_port\": 45432, \"container_port\": 5432}]}]\n"

/* The reply's "service" object for a status request (a new reference). */
static struct json_object *status_of(struct daemon_fixture *df, const char *name)
{
	char req[128];
	snprintf(req, sizeof(req), "{\"cmd\":\"status\",\"service\":\"%s\"}\n", name);
	_cleanup_free_ char *reply = lineclient_request(df->c, req);
	struct json_object *o = json_tokener_parse(reply), *ok, *service;
	if (!o || !json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok) ||
	    !json_object_object_get_ex(o, "service", &service))
		FAIL("status %s: %s", name, reply);
	json_object_get(service);
	json_object_put(o);
	return service;
}

static struct json_object *member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		FAIL("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

TEST(test_saved_light_sleep_is_in_the_status)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-sleep", SAVED, 0);
	struct json_object *cache = status_of(df, "cache");
	ASSERT_EQ_U(json_object_get_int64(member(cache, "freeze_after_ms")), 30000);
	ASSERT_TRUE(json_object_get_boolean(member(cache, "reclaim_frozen")));
	/* never: null, not a number of milliseconds. */
	ASSERT_TRUE(member(cache, "idle_timeout_ms") == NULL);
	json_object_put(cache);

	struct json_object *db = status_of(df, "db");
	ASSERT_EQ_U(json_object_get_int64(member(db, "freeze_after_ms")), 45000);
	ASSERT_TRUE(!json_object_get_boolean(member(db, "reclaim_frozen")));
	ASSERT_EQ_U(json_object_get_int64(member(db, "idle_timeout_ms")), 600000);
	json_object_put(db);
}

TEST(test_a_save_writes_light_sleep_back_unchanged)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-sleep", SAVED, 0);
	/* A disable saves the state: the other service is written again. */
	_cleanup_free_ char *reply =
	    lineclient_request(df->c, "{\"cmd\":\"disable\",\"service\":\"db\"}\n");
	ASSERT_CONTAINS(reply, "\"ok\":true");
	_cleanup_free_ char *path = daemon_fixture_state_file(df);
	struct json_object *root = json_object_from_file(path);
	if (!root || !json_object_is_type(root, json_type_array))
		FAIL("%s is not a JSON array after the save", path);
	ASSERT_EQ_U(json_object_array_length(root), 1);
	struct json_object *cache = json_object_array_get_idx(root, 0);
	ASSERT_STREQ(json_object_get_string(member(cache, "name")), "cache");
	ASSERT_STREQ(json_object_get_string(member(cache, "idle")), "never");
	ASSERT_TRUE(!json_object_object_get_ex(cache, "idle_ms", NULL));
	ASSERT_EQ_U(json_object_get_int64(member(cache, "freeze_after_ms")), 30000);
	ASSERT_TRUE(json_object_get_boolean(member(cache, "reclaim_frozen")));
	json_object_put(root);
}

TEST(test_enable_refuses_a_freeze_after_not_shorter_than_the_daemons_idle)
{
	/* dozed --idle 2m: a service without its own idle is stopped after 2m. */
	struct daemon_fixture *df =
	    daemon_fixture_new("dozed-sleep", "[]\n", 2 * 60 * UINT64_C(1000000));
	_cleanup_free_ char *refused = lineclient_request(
	    df->c, "{\"cmd\":\"enable\",\"container\":\"web\",\"freeze_after\":\"2m\"}\n");
	ASSERT_CONTAINS(refused, "\"ok\":false");
	ASSERT_CONTAINS(refused, "freeze_after (2m) must be shorter than idle (2m): a service is "
				 "frozen first, stopped later");
	/* Shorter: past the settings, to the runtime (which is not there). */
	_cleanup_free_ char *asked = lineclient_request(
	    df->c, "{\"cmd\":\"enable\",\"container\":\"web\",\"freeze_after\":\"1m\"}\n");
	ASSERT_CONTAINS(asked, "\"ok\":false");
	if (strstr(asked, "freeze_after"))
		FAIL("freeze_after 1m under the daemon's idle 2m refused: %s", asked);
}
