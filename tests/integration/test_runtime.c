// SPDX-License-Identifier: MIT
/*
 * The runtime client against real runtimes: `podman system service` (Podman
 * 4.3) and dockerd (Docker 20.10), both from Debian. tests/runtime-env.sh
 * brings them up once per suite, each in network and mount namespaces and a
 * cgroup of its own, and test_suite_teardown stops them. Every behaviour is
 * checked on both runtimes: test_podman_* and test_docker_*.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dozed/config.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"
#include "rtenv.h"

/* Each runtime test gets its own host port, so a leftover never collides. */
#define PORT_INSPECT 18101
#define PORT_STOP    18102
#define PORT_START   18103
#define PORT_EVENTS  18104
#define PORT_BLOCK   18105
#define PORT_CANCEL  18106
#define PORT_HOST    18107

void test_suite_teardown(void)
{
	rtenv_teardown();
}

BOTH_RUNTIMES(inspect_gives_port_pid_and_cgroup_of_running_container)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *id =
	    rtenv_create(env, "web-inspect", PORT_INSPECT, "dozed.enable=true");

	const struct rtenv_result *r = rtenv_inspect(base, rt, "web-inspect");
	rtenv_expect_ok(r, "inspect");
	const struct runtime_container *c = r->c;
	ASSERT_STREQ(c->id, id);
	ASSERT_STREQ(c->name, "web-inspect");
	ASSERT_TRUE(c->running);
	ASSERT_STREQ(c->state, "running");
	ASSERT_TRUE(c->pid > 1);
	ASSERT_STREQ(runtime_container_label(c, "dozed.enable"), "true");
	ASSERT_EQ_U(c->n_ports, 1);
	ASSERT_STREQ(c->ports[0].host_ip, "127.0.0.1");
	ASSERT_EQ_U(c->ports[0].host_port, PORT_INSPECT);
	ASSERT_EQ_U(c->ports[0].container_port, 80);
	/* Its own cgroup v2 directory, under the one the environment owns,
	 * holding the container's init. */
	rtenv_expect_own_cgroup(env, c);
	fprintf(stderr, "%s: init PID %d, cgroup v2 %s\n", env->name, (int)c->pid, c->cgroup_dir);

	/* By id as well as by name. */
	const struct rtenv_result *by_id = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(by_id, "inspect by id");
	ASSERT_STREQ(by_id->c->name, "web-inspect");
}

BOTH_RUNTIMES(stop_then_inspect_says_not_running)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *id = rtenv_create(env, "web-stop", PORT_STOP, NULL);

	const struct rtenv_result *before = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(before, "inspect");
	_cleanup_free_ char *cgroup = strdup(before->c->cgroup_dir);

	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop");
	const struct rtenv_result *after = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(after, "inspect after stop");
	ASSERT_TRUE(!after->c->running);
	ASSERT_EQ_U(after->c->pid, 0);
	ASSERT_TRUE(after->c->cgroup_dir == NULL);
	/* The runtime removed the container's cgroup with it. */
	ASSERT_TRUE(access(cgroup, F_OK) < 0 && errno == ENOENT);
	/* A stopped container's ports are still known (the daemon needs them asleep). */
	ASSERT_EQ_U(after->c->n_ports, 1);
	ASSERT_EQ_U(after->c->ports[0].host_port, PORT_STOP);

	/* Stopping a stopped container and starting a started one succeed
	 * (Docker 304; Podman 304, or 204 for a container that never ran). */
	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop of a stopped container");
	rtenv_expect_ok(rtenv_start(base, rt, id), "start");
	rtenv_expect_ok(rtenv_start(base, rt, id), "start of a started container");
}

BOTH_RUNTIMES(start_makes_http_answer_on_published_port)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *id = rtenv_create(env, "web-start", PORT_START, NULL);
	rtenv_wait_http(env, PORT_START, 10000);

	const struct rtenv_result *first = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(first, "inspect");
	struct stat st_first;
	ASSERT_OK(stat(first->c->cgroup_dir, &st_first));

	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop");
	ASSERT_TRUE(!rtenv_http_get(env, PORT_START, NULL, 0));

	rtenv_expect_ok(rtenv_start(base, rt, id), "start");
	rtenv_wait_http(env, PORT_START, 10000);

	/* A new cgroup directory at the same path: attach the counter again. */
	const struct rtenv_result *again = rtenv_inspect(base, rt, id);
	rtenv_expect_ok(again, "inspect after start");
	ASSERT_TRUE(again->c->running);
	rtenv_expect_own_cgroup(env, again->c);
	struct stat st_again;
	ASSERT_OK(stat(again->c->cgroup_dir, &st_again));
	ASSERT_STREQ(again->c->cgroup_dir, first->c->cgroup_dir);
	ASSERT_TRUE(st_again.st_ino != st_first.st_ino);
}

BOTH_RUNTIMES(events_deliver_start_and_die_with_the_id)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	struct rtenv_events *log = rtenv_events_new(rt);
	rtenv_wait_connected(base, log, 1);

	_cleanup_free_ char *id = rtenv_create(env, "web-events", PORT_EVENTS, NULL);
	const struct rtenv_event *start = rtenv_wait_event(base, log, RUNTIME_EVENT_START, id);
	ASSERT_STREQ(start->name, "web-events");

	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop");
	/* "die", not "stop": Podman does not send "stop" events. */
	const struct rtenv_event *die = rtenv_wait_event(base, log, RUNTIME_EVENT_DIE, id);
	ASSERT_STREQ(die->name, "web-events");
	ASSERT_EQ_U(die->exit_code, 0); /* the image's init exits 0 on SIGTERM */

	rtenv_expect_ok(rtenv_start(base, rt, id), "start");
	rtenv_wait_event_count(base, log, RUNTIME_EVENT_START, id, 2);

	rtenv_cli(env, "rm", "-f", "web-events");
	rtenv_wait_event(base, log, RUNTIME_EVENT_DESTROY, id);
}

BOTH_RUNTIMES(list_by_label_finds_only_labelled_containers)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *yes = rtenv_create(env, "list-yes", 0, "dozed.enable=true");
	_cleanup_free_ char *no = rtenv_create(env, "list-no", 0, NULL);
	_cleanup_free_ char *other = rtenv_create(env, "list-false", 0, "dozed.enable=false");
	/* Stopped containers are listed too: a sleeping service is one. */
	_cleanup_free_ char *stopped = rtenv_create(env, "list-stopped", 0, "dozed.enable=true");
	rtenv_expect_ok(rtenv_stop(base, rt, stopped, 10), "stop");

	const struct rtenv_result *r = rtenv_list(base, rt, "dozed.enable=true");
	rtenv_expect_ok(r, "list");
	bool seen_yes = false, seen_stopped = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct runtime_container *c = r->cs[i];
		ASSERT_STREQ(runtime_container_label(c, "dozed.enable"), "true");
		ASSERT_TRUE(strcmp(c->id, no) != 0 && strcmp(c->id, other) != 0);
		if (strcmp(c->id, yes) == 0) {
			seen_yes = true;
			ASSERT_STREQ(c->name, "list-yes");
			ASSERT_TRUE(c->running);
		}
		if (strcmp(c->id, stopped) == 0) {
			seen_stopped = true;
			ASSERT_TRUE(!c->running);
		}
	}
	ASSERT_TRUE(seen_yes);
	ASSERT_TRUE(seen_stopped);

	const struct rtenv_result *all = rtenv_list(base, rt, NULL);
	rtenv_expect_ok(all, "list of all");
	ASSERT_GE_U(all->n, 4);
}

BOTH_RUNTIMES(unknown_container_error_names_it)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	static const char name[] = "no-such-container-dozed";

	const struct rtenv_result *results[] = {
	    rtenv_inspect(base, rt, name),
	    rtenv_start(base, rt, name),
	    rtenv_stop(base, rt, name, 1),
	};
	for (size_t i = 0; i < ARRAY_SIZE(results); i++) {
		const struct rtenv_result *r = results[i];
		ASSERT_ERR(r->err, ENOENT);
		ASSERT_EQ_U(r->http_status, 404);
		ASSERT_CONTAINS(r->message, name);
		ASSERT_TRUE(r->c == NULL);
	}
	fprintf(stderr, "%s says: %s\n", env->name, results[0]->message);
}

TEST(test_missing_socket_error_names_the_path)
{
	char path[128];
	snprintf(path, sizeof(path), "/tmp/dozed-no-runtime.%d/docker.sock", (int)getpid());
	struct event_base *base = rtenv_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.reconnect_min_us = 20000;
	cfg.reconnect_max_us = 40000;
	struct runtime *rt = rtenv_runtime_new(base, path, &cfg);

	const struct rtenv_result *r = rtenv_inspect(base, rt, "web");
	ASSERT_ERR(r->err, ENOENT);
	ASSERT_EQ_U(r->http_status, 0);
	ASSERT_CONTAINS(r->message, path);
	ASSERT_CONTAINS(r->message, "Cannot connect to the container runtime");

	/* The event stream keeps trying, and says where. */
	struct rtenv_events *log = rtenv_events_new(rt);
	rtenv_wait_disconnected(base, log, 3);
	ASSERT_ERR(log->last_err, ENOENT);
	ASSERT_CONTAINS(log->last_message, path);
	ASSERT_EQ_U(log->connected, 0);
}

BOTH_RUNTIMES(events_reconnect_once_the_runtime_is_back)
{
	struct event_base *base = rtenv_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.reconnect_min_us = 50000;
	cfg.reconnect_max_us = 200000;
	struct runtime *rt = rtenv_runtime_new(base, env->sock, &cfg);
	struct rtenv_events *log = rtenv_events_new(rt);
	rtenv_wait_connected(base, log, 1);

	rtenv_daemon_stop(env);
	/* The stream ends, then attempts fail while the socket is gone. */
	rtenv_wait_disconnected(base, log, 3);
	ASSERT_CONTAINS(log->last_message, env->sock);
	ASSERT_EQ_U(log->connected, 1);

	rtenv_daemon_start(env);
	rtenv_wait_connected(base, log, 2);

	/* And events flow again. */
	_cleanup_free_ char *id = rtenv_create(env, "web-reconnect", 0, NULL);
	rtenv_wait_event(base, log, RUNTIME_EVENT_START, id);
}

struct ticker {
	uint64_t last_us;
	uint64_t max_gap_us;
	unsigned ticks;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ticker *t = arg;
	uint64_t now = now_us();
	if (now - t->last_us > t->max_gap_us)
		t->max_gap_us = now - t->last_us;
	t->last_us = now;
	t->ticks++;
}

static void free_event(void *ev)
{
	event_free(ev);
}

BOTH_RUNTIMES(loop_keeps_ticking_during_start_and_stop)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *id = rtenv_create(env, "web-block", PORT_BLOCK, NULL);
	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop");

	struct ticker t = {0};
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &t);
	ASSERT_TRUE(tick);
	test_defer(free_event, tick);
	struct timeval every = {.tv_sec = 0, .tv_usec = 10000};
	t.last_us = now_us();
	ASSERT_OK(event_add(tick, &every));

	uint64_t t0 = now_us();
	rtenv_expect_ok(rtenv_start(base, rt, id), "start");
	uint64_t t1 = now_us();
	rtenv_expect_ok(rtenv_stop(base, rt, id, 10), "stop");
	uint64_t t2 = now_us();
	event_del(tick);

	fprintf(stderr, "%s: start %llu ms, stop %llu ms, %u ticks, longest gap %llu ms\n",
		env->name, (unsigned long long)(t1 - t0) / 1000,
		(unsigned long long)(t2 - t1) / 1000, t.ticks,
		(unsigned long long)t.max_gap_us / 1000);
	/* A blocking check, not a performance one: a blocked loop misses
	 * whole start or stop durations (hundreds of ms). */
	ASSERT_TRUE(t.max_gap_us < 200000);
	ASSERT_GE_U(t.ticks, (t2 - t0) / 10000 / 4);
}

static void on_cancelled(int err, const struct runtime_error *e, const struct runtime_container *c,
			 void *userdata)
{
	(void)err;
	(void)e;
	(void)c;
	*(bool *)userdata = true;
}

BOTH_RUNTIMES(cancelled_and_freed_calls_never_call_back)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, env->sock, NULL);
	_cleanup_free_ char *id = rtenv_create(env, "web-cancel", PORT_CANCEL, NULL);

	bool called = false;
	ASSERT_OK(runtime_inspect(rt, id, on_cancelled, &called));
	ASSERT_OK(runtime_inspect(rt, id, on_cancelled, &called));
	ASSERT_EQ_U(runtime_cancel(rt, &called), 2);
	ASSERT_EQ_U(runtime_cancel(rt, &called), 0);
	/* Later calls are answered after the cancelled ones would have been. */
	rtenv_expect_ok(rtenv_inspect(base, rt, id), "inspect");
	rtenv_expect_ok(rtenv_inspect(base, rt, id), "inspect");
	ASSERT_TRUE(!called);

	/* runtime_free with calls and a stream pending: no callback, no leak. */
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = env->sock;
	struct runtime *other = NULL;
	ASSERT_OK(runtime_new(base, &cfg, &other));
	ASSERT_OK(runtime_inspect(other, id, on_cancelled, &called));
	struct rtenv_events *log = rtenv_events_new(other);
	runtime_free(other);
	rtenv_expect_ok(rtenv_inspect(base, rt, id), "inspect");
	ASSERT_TRUE(!called);
	ASSERT_EQ_U(log->connected + log->disconnected + log->n, 0);
}

BOTH_RUNTIMES(docker_host_selects_the_runtime)
{
	/* The config is the one reader of DOCKER_HOST; the client is given the
	 * socket it found, as the daemon gives it. */
	char host[256];
	snprintf(host, sizeof(host), "unix://%s", env->sock);
	_cleanup_(dozed_config_free) struct dozed_config conf = {0};
	_cleanup_free_ char *err_msg = NULL;
	ASSERT_OK(dozed_config_defaults(&conf));
	ASSERT_OK(dozed_config_apply_docker_host(&conf, host, &err_msg));
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = rtenv_runtime_new(base, conf.runtime_socket, NULL);
	ASSERT_STREQ(runtime_socket_path(rt), env->sock);
	_cleanup_free_ char *id = rtenv_create(env, "web-host", PORT_HOST, NULL);
	const struct rtenv_result *res = rtenv_inspect(base, rt, "web-host");
	rtenv_expect_ok(res, "inspect through DOCKER_HOST");
	ASSERT_STREQ(res->c->id, id);
}
