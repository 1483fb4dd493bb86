/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The built dozectl binary against a fake daemon, for tests/integration/
 * test_dozectl*.c: the real control server in the test's process with a
 * handler that records each request and answers from the canned JSON below.
 * dozectl runs as a child; its output goes to files in the fixture's
 * directory. Everything is freed when the test ends.
 */

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct json_object;

#define DOZECTL_WAIT_MS 10000

#define WEB_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WEB                                                                                        \
	"{\"name\":\"web\",\"container\":\"" WEB_ID "\",\"state\":\"awake\",\"ports\":[8080,"      \
	"8443],\"idle_timeout_ms\":600000,\"wake_on\":\"connect\",\"idle_for_ms\":184000,"         \
	"\"sleeps_in_ms\":416000,\"last_wake_ms\":412,\"wakes\":3,\"held\":0,\"waiting\":2,"       \
	"\"egress_bytes\":1234,\"egress_packets\":7,\"reason\":\"sent 1.2 kB 3 min ago; sleeps "   \
	"after 10 min of silence\"}"
#define DB                                                                                         \
	"{\"name\":\"postgres-main\",\"container\":\"fedcba\",\"state\":\"asleep\",\"ports\":["    \
	"5432],\"idle_timeout_ms\":120000,\"wake_on\":\"data\",\"idle_for_ms\":null,"              \
	"\"last_wake_ms\":null,\"wakes\":0,\"held\":0,\"egress_bytes\":0,\"egress_packets\":0}"
/* Frozen, as the daemon's status says it with light sleep. */
#define CACHE                                                                                      \
	"{\"name\":\"cache\",\"container\":\"abcdef\",\"state\":\"frozen\",\"ports\":[6379],"      \
	"\"idle_timeout_ms\":null,\"freeze_after_ms\":30000,\"reclaim_frozen\":true,"              \
	"\"freezes\":4,\"thaws\":3,\"last_thaw_us\":1800,\"idle_for_ms\":95000,"                   \
	"\"last_wake_ms\":null,\"wakes\":0,\"reason\":\"frozen after 30s idle\"}"
#define SLEEP_EVENT                                                                                \
	"{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"sleep\",\"service\":\"web\","            \
	"\"container\":\"" WEB_ID "\",\"idle_ms\":2000,\"egress_bytes\":1234,"                     \
	"\"egress_packets\":7}"
#define FLOWS                                                                                      \
	"{\"ok\":true,\"services\":[{\"service\":\"web\",\"state\":\"awake\",\"window_ms\":"       \
	"12000,\"flows\":[{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:41234\",\"local_port\":80,"      \
	"\"opened_by\":\"peer\",\"bytes_in\":412,\"bytes_out\":1200,\"packets_in\":5,"             \
	"\"packets_out\":4,\"payload_in\":150,\"payload_out\":1000,\"first_seen_ago_ms\":4000,"    \
	"\"last_seen_ago_ms\":3200,\"counted\":true}]}],\"flow_table\":{\"capacity\":"             \
	"4096,\"live\":1,\"evicted\":0}}"
#define READY_EVENT                                                                                \
	"{\"ts\":\"2026-11-24T22:58:05.000Z\",\"event\":\"ready\",\"service\":\"web\","            \
	"\"start_ms\":300,\"probe_ms\":1223,\"total_ms\":1523}"

struct dozectl_fixture {
	struct control_fixture *cf; /* the server, its base and directory */
	char dozectl[PATH_MAX];
	unsigned requests;
	char last_request[512];
	bool subscribed;
	uid_t run_as; /* dozectl's uid (and gid) when not 0 */
};

struct dozectl_result {
	int status; /* exit code, or -signal */
	char *out, *err;
};

struct dozectl_fixture *dozectl_fixture_new(void);
/* A file of the fixture's directory, emptied, open for dozectl's output. */
int dozectl_fixture_output(struct dozectl_fixture *f, const char *name);
/* Starts dozectl with args (NULL-terminated); control: the DOZED_CONTROL
 * variable, or NULL. */
pid_t dozectl_fixture_spawn(struct dozectl_fixture *f, const char *const args[],
			    const char *control, int out, int err);
/* Runs dozectl to its end while the fake daemon serves. */
struct dozectl_result *dozectl_fixture_run(struct dozectl_fixture *f, const char *control,
					   const char *const args[]);
#define DOZECTL_RUN(f, ...)                                                                        \
	dozectl_fixture_run((f), (f)->cf->path, (const char *const[]){__VA_ARGS__, NULL})
/* FAILs unless dozectl exited with want, saying what it printed. */
void dozectl_assert_exit(const struct dozectl_result *r, int want);
/* o as one line, as dozectl prints it. */
const char *dozectl_fixture_plain(struct json_object *o);
/* The string value of key in a request, "" when absent. */
const char *dozectl_fixture_arg(struct json_object *req, const char *key);
