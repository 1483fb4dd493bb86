/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Real container runtimes for tests, from tests/runtime-env.sh: brought up in
 * /tmp/dozed-rtenv.<suite pid> by the first test that asks (rtenv_get), taken
 * down by rtenv_teardown() from test_suite_teardown(). When they cannot come
 * up, every test that needs them fails with the script's reason (what is
 * missing), never skips. Plus synchronous wrappers of the asynchronous
 * runtime client, for tests only.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/runtime.h"

struct event_base;

struct rtenv {
	const char *name;      /* "podman" or "docker" */
	char dir[128];	       /* the environment's directory */
	char sock[192];	       /* the runtime's API socket */
	char netns[192];       /* its network namespace (published ports live there) */
	char cgroup[PATH_MAX]; /* the cgroup v2 directory the environment owns */
};

/* Runs the test body on each runtime: test_podman_NAME and test_docker_NAME. */
#define BOTH_RUNTIMES(name)                                                                        \
	static void name(const struct rtenv *env);                                                 \
	TEST(test_podman_##name)                                                                   \
	{                                                                                          \
		name(rtenv_get("podman"));                                                         \
	}                                                                                          \
	TEST(test_docker_##name)                                                                   \
	{                                                                                          \
		name(rtenv_get("docker"));                                                         \
	}                                                                                          \
	static void name(const struct rtenv *env)

/* The runtime's environment, up; fails the test when it cannot be. */
const struct rtenv *rtenv_get(const char *runtime);
void rtenv_teardown(void);

/* Creates and starts a busybox httpd container; port 80 published on
 * 127.0.0.1:port unless port is 0; label ("k=v") may be NULL. Returns its id
 * (malloc'd); its removal is deferred. */
char *rtenv_create(const struct rtenv *env, const char *name, unsigned port, const char *label);
/* `run -d` (or `create` when !start) of the busybox test image with extra
 * options (NULL-terminated, may be NULL) and a `sh -c` command (NULL: the
 * image's own); its forced removal is deferred. Fails the test if the CLI
 * does. */
void rtenv_make(const struct rtenv *env, const char *name, bool start, const char *const *opts,
		const char *sh);
/* Runs the runtime's CLI against its socket; fails the test unless it exits 0. */
void rtenv_cli_argv(const struct rtenv *env, const char *const *args);
#define rtenv_cli(env, ...) rtenv_cli_argv((env), (const char *const[]){__VA_ARGS__, NULL})
/* Stops or starts the runtime's daemon (containers survive in its storage).
 * A stop defers a start, so later tests find it running. */
void rtenv_daemon_stop(const struct rtenv *env);
void rtenv_daemon_start(const struct rtenv *env);

/* GET / on 127.0.0.1:port in the runtime's network namespace: true when the
 * test page came back; why not in err otherwise. */
bool rtenv_http_get(const struct rtenv *env, unsigned port, char *err, size_t err_len);
void rtenv_wait_http(const struct rtenv *env, unsigned port, unsigned timeout_ms);
/* c has a cgroup v2 directory of its own, under env->cgroup, holding c->pid. */
void rtenv_expect_own_cgroup(const struct rtenv *env, const struct runtime_container *c);

/* --- the client, synchronously ------------------------------------------------------ */

struct event_base *rtenv_base_new(void);
/* socket: overrides cfg's; both NULL: DOZED_RUNTIME_SOCKET_DEFAULT (the client reads
 * no DOCKER_HOST). Freed at the end. */
struct runtime *rtenv_runtime_new(struct event_base *base, const char *socket,
				  const struct runtime_config *cfg);

struct rtenv_result {
	bool done;
	int err;
	int http_status;
	char message[512];
	struct runtime_container *c;   /* inspect */
	struct runtime_container **cs; /* list */
	size_t n;
};

const struct rtenv_result *rtenv_inspect(struct event_base *base, struct runtime *rt,
					 const char *id);
const struct rtenv_result *rtenv_start(struct event_base *base, struct runtime *rt, const char *id);
const struct rtenv_result *rtenv_stop(struct event_base *base, struct runtime *rt, const char *id,
				      unsigned grace_seconds);
const struct rtenv_result *rtenv_list(struct event_base *base, struct runtime *rt,
				      const char *label);
/* Fails the test with the call's error message unless it succeeded. */
void rtenv_expect_ok(const struct rtenv_result *r, const char *what);

struct rtenv_event {
	enum runtime_event_type type;
	char id[80];
	char name[80];
	int exit_code;
};

struct rtenv_events {
	unsigned connected, disconnected;
	int last_err;
	char last_message[512];
	size_t n;
	struct rtenv_event ev[256];
};

/* Follows rt's events into a log; runtime_free(rt) ends it. */
struct rtenv_events *rtenv_events_new(struct runtime *rt);
void rtenv_wait_connected(struct event_base *base, struct rtenv_events *log, unsigned n);
void rtenv_wait_disconnected(struct event_base *base, struct rtenv_events *log, unsigned n);
/* The first event of that type for id, once it came. */
const struct rtenv_event *rtenv_wait_event(struct event_base *base, struct rtenv_events *log,
					   enum runtime_event_type type, const char *id);
void rtenv_wait_event_count(struct event_base *base, struct rtenv_events *log,
			    enum runtime_event_type type, const char *id, unsigned count);
