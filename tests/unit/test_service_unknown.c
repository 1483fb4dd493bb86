// SPDX-License-Identifier: MIT
/*
 * Saved services the runtime cannot be asked about yet (UNKNOWN), their
 * reconciliation once it answers, and containers that exit while they wake.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "dozed/service.h"
#include "dozed/utf8.h"
#include "harness.h"
#include "service_fake.h"

static const struct service_port port_8080[] = {{.host_port = 8080, .container_port = 80}};
static const struct service_port port_9090[] = {{.host_port = 9090, .container_port = 80}};

/* "web" as loaded from services.json, with the given saved ports. */
static struct service *unknown_service(const struct service_port *ports, size_t n, bool redirected)
{
	struct service *first = setup(true);
	service_remove(F.reg, first); /* setup's own service is not this test's */
	clear_log();
	struct service_spec spec = {.name = "web",
				    .container_id = "0123456789abcdef0123",
				    .idle_us = 10 * SEC,
				    .ports = ports,
				    .n_ports = n};
	struct service *s = NULL;
	ASSERT_OK(service_add_unknown(F.reg, &spec, redirected, "cannot connect", &s));
	return s;
}

static const char *json_field(struct service *s, const char *key)
{
	static char buf[512];
	struct json_object *o = service_to_json(F.reg, s), *v;
	buf[0] = '\0';
	if (o && json_object_object_get_ex(o, key, &v))
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	json_object_put(o);
	return buf;
}

TEST(test_saved_service_is_unknown_and_its_redirect_is_left_as_it_was)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_EQ_U(s->state, SERVICE_UNKNOWN);
	ASSERT_TRUE(s->redirected);
	ASSERT_STREQ(F.log, "");
	ASSERT_STREQ(json_field(s, "state"), "unknown");
	ASSERT_CONTAINS(json_field(s, "reason"), "not reconciled yet (cannot connect)");
	/* Its port stays its own: no other service can take it meanwhile. */
	ASSERT_TRUE(service_find_by_port(F.reg, 8080) == s);
}

TEST(test_unknown_service_found_stopped_is_asleep_and_redirected)
{
	struct service *s = unknown_service(port_8080, 1, false);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "redirect+ web;");
}

TEST(test_unknown_service_already_redirected_and_found_stopped_changes_nothing)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "");
}

TEST(test_unknown_service_found_running_is_awake_with_its_ports_released)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, true));
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "redirect- web;");
	ASSERT_EQ_U(F.timer_at, 107500000);
}

TEST(test_client_held_while_unknown_wakes_a_stopped_service_once_known)
{
	struct service *s = unknown_service(port_8080, 1, true);
	connect_client(s);
	ASSERT_STREQ(F.log, "");
	ASSERT_TRUE(service_accepts_clients(F.reg, s));
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_STREQ(F.log, "event wake web;start web;");
}

TEST(test_client_held_while_unknown_is_relayed_to_a_running_service_once_known)
{
	struct service *s = unknown_service(port_8080, 1, true);
	connect_client(s);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, true));
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "redirect- web;probe web;");
}

TEST(test_client_that_gave_up_while_unknown_wakes_nothing)
{
	struct service *s = unknown_service(port_8080, 1, true);
	connect_client(s);
	service_on_wake_failed(F.reg, s->id, -ETIMEDOUT, "");
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "");
}

TEST(test_service_saved_without_ports_takes_its_containers_ports)
{
	struct service *s = unknown_service(NULL, 0, true);
	ASSERT_TRUE(!s->redirected);
	ASSERT_TRUE(service_find_by_port(F.reg, 8080) == NULL);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "redirect+ web;");
	ASSERT_TRUE(service_find_by_port(F.reg, 8080) == s);
}

TEST(test_ports_changed_since_saved_move_the_redirect)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_9090, 1, false));
	ASSERT_STREQ(F.log, "redirect- web;redirect+ web;");
	ASSERT_TRUE(service_find_by_port(F.reg, 8080) == NULL);
	ASSERT_TRUE(service_find_by_port(F.reg, 9090) == s);
}

TEST(test_a_port_taken_meanwhile_keeps_it_unknown_and_names_the_owner)
{
	struct service *s = unknown_service(port_8080, 1, true);
	struct service_spec other = {.name = "api",
				     .container_id = "ffff",
				     .idle_us = SEC,
				     .ports = port_9090,
				     .n_ports = 1};
	struct service *api = NULL;
	ASSERT_OK(service_add(F.reg, &other, true, &api));
	clear_log();
	/* Its container publishes 9090 now, which api has. */
	ASSERT_ERR(service_reconcile(F.reg, s, "0123456789abcdef0123", port_9090, 1, false),
		   EADDRINUSE);
	ASSERT_EQ_U(s->state, SERVICE_UNKNOWN);
	ASSERT_CONTAINS(s->reason, "belongs to another service");
	/* The caller logs it once, as the registry words it. */
	ASSERT_STREQ(service_registry_error(F.reg),
		     "Cannot manage web: port 9090 is already api's");
	ASSERT_STREQ(F.log, ""); /* its redirect is kept as it was */
}

TEST(test_a_failed_redirect_keeps_it_unknown_and_says_why)
{
	struct service *s = unknown_service(port_8080, 1, false);
	F.redirect_err = -ENOBUFS;
	ASSERT_ERR(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false),
		   ENOBUFS);
	ASSERT_EQ_U(s->state, SERVICE_UNKNOWN);
	ASSERT_CONTAINS(s->reason, "could not be added");
	F.redirect_err = 0;
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
}

TEST(test_sleep_and_wake_commands_wait_until_it_is_known)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_ERR(service_sleep_now(F.reg, s, "command"), EBUSY);
	ASSERT_ERR(service_wake_now(F.reg, s, "command"), EBUSY);
	ASSERT_STREQ(F.log, "");
}

TEST(test_reconciling_a_known_service_again_is_refused)
{
	struct service *s = unknown_service(port_8080, 1, true);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_ERR(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, true),
		   EALREADY);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
}

TEST(test_container_that_exits_while_waking_fails_the_wake_at_once)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_start_done(F.reg, s->id, 0, NULL);
	clear_log();
	service_on_wake_exited(F.reg, s->id, "the container exited with code 3 as it started");
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	/* Held clients reset now, not at the wake timeout; nothing left to stop. */
	ASSERT_STREQ(F.log, "reset-held web;event wake_failed web;");
	ASSERT_STREQ(fact_str("reason"), "the container exited with code 3 as it started");
	ASSERT_CONTAINS(s->reason, "exited with code 3");
}

TEST(test_exit_reported_after_the_wake_is_ignored)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_start_done(F.reg, s->id, 0, NULL);
	service_on_ready(F.reg, s->id, 0);
	clear_log();
	service_on_wake_exited(F.reg, s->id, "late");
	ASSERT_EQ_U(s->state, SERVICE_AWAKE);
	ASSERT_STREQ(F.log, "");
}

TEST(test_start_the_runtime_never_answers_fails_the_wake_at_its_timeout)
{
	struct service *s = asleep_service();
	service_registry_set_start_timeout(F.reg, 3 * SEC);
	connect_client(s);
	ASSERT_EQ_U(F.timer_at, 103 * SEC);
	/* Fired a little early by the loop's clock: armed again for the deadline. */
	F.now = 103 * SEC - 1;
	F.timer_at = 0;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
	ASSERT_EQ_U(F.timer_at, 103 * SEC);
	clear_log();
	F.now = 103 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "reset-held web;event wake_failed web;");
	ASSERT_STREQ(fact_str("reason"), "the runtime did not start it within 3s");
	/* Its answer, when it comes at last, changes nothing. */
	clear_log();
	service_on_start_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "");
}

TEST(test_a_start_in_time_leaves_the_probe_its_own_timeout)
{
	struct service *s = asleep_service();
	service_registry_set_start_timeout(F.reg, 3 * SEC);
	connect_client(s);
	F.now = 102 * SEC;
	service_on_start_done(F.reg, s->id, 0, NULL);
	ASSERT_EQ_U(F.timer_at, 0);
	F.now = 104 * SEC;
	service_on_timer(F.reg, s->id);
	ASSERT_EQ_U(s->state, SERVICE_WAKING);
}

TEST(test_a_reason_from_outside_is_utf8_even_when_cut)
{
	struct service *s = asleep_service();
	connect_client(s);
	service_on_start_done(F.reg, s->id, 0, NULL);
	char why[400];
	memset(why, 'x', sizeof(why));
	memcpy(why + 10, "\xff\xfe", 2);
	for (size_t i = 300; i + 2 < sizeof(why); i += 2)
		memcpy(why + i, "\xc3\xa9", 2);
	why[sizeof(why) - 1] = '\0';
	service_on_wake_exited(F.reg, s->id, why);
	ASSERT_TRUE(utf8_valid(s->reason, strlen(s->reason)));
	const char *fact = fact_str("reason");
	ASSERT_TRUE(utf8_valid(fact, strlen(fact)));
	ASSERT_TRUE(strstr(fact, "xx??xx") != NULL);
}

TEST(test_client_gone_before_the_runtime_answers_wakes_nothing)
{
	struct service *s = unknown_service(port_8080, 1, true);
	connect_client(s);
	F.held = 0; /* it closed its connection */
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", port_8080, 1, false));
	ASSERT_EQ_U(s->state, SERVICE_ASLEEP);
	ASSERT_STREQ(F.log, "");
}

TEST(test_same_ports_with_other_bytes_after_the_address_keep_the_redirect)
{
	struct service_port saved[1], seen[1];
	memset(saved, 0xaa, sizeof(saved));
	memset(seen, 0x55, sizeof(seen));
	snprintf(saved[0].host_ip, sizeof(saved[0].host_ip), "0.0.0.0");
	snprintf(seen[0].host_ip, sizeof(seen[0].host_ip), "0.0.0.0");
	saved[0].host_port = seen[0].host_port = 8080;
	saved[0].container_port = seen[0].container_port = 80;
	struct service *s = unknown_service(saved, 1, true);
	ASSERT_OK(service_reconcile(F.reg, s, "0123456789abcdef0123", seen, 1, false));
	/* No delete and add again: a client would meet a closed port between them. */
	ASSERT_STREQ(F.log, "");
}
