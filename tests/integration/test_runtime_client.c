// SPDX-License-Identifier: MIT
/*
 * The runtime client against a fake runtime (tests/lib/fake_runtime.h): a
 * child process on a unix socket that answers each connection with canned
 * bytes (some captured from the real runtimes, tests/unit/fixtures/runtime),
 * or not at all. For what a real runtime will not do on demand: hang, cut an
 * answer short, send too much, break a stream in odd ways.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "evloop.h"
#include "fake_runtime.h"
#include "fixture.h"
#include "harness.h"
#include "rtenv.h"

static struct runtime *client(struct event_base *base, const struct fake_runtime *f,
			      uint64_t timeout_us, size_t max_bytes)
{
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.timeout_us = timeout_us;
	cfg.reconnect_min_us = 20000;
	cfg.reconnect_max_us = 50000;
	if (max_bytes)
		cfg.max_response_bytes = max_bytes;
	return rtenv_runtime_new(base, f->path, &cfg);
}

TEST(test_call_without_answer_times_out_naming_the_socket)
{
	static const char *const answers[] = {NULL};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 300000, 0);

	uint64_t t0 = test_now_ms();
	const struct rtenv_result *r = rtenv_inspect(base, rt, "web");
	uint64_t took = test_now_ms() - t0;
	ASSERT_ERR(r->err, ETIMEDOUT);
	ASSERT_EQ_U(r->http_status, 0);
	ASSERT_CONTAINS(r->message, "No answer from the container runtime at");
	ASSERT_CONTAINS(r->message, f->path);
	ASSERT_GE_U(took, 290);
	ASSERT_TRUE(took < 3000);
}

TEST(test_answer_cut_short_is_a_connection_reset)
{
	static const char *const answers[] = {
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
	    "100\r\n\r\n{\"Id\":"};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	const struct rtenv_result *r = rtenv_inspect(base, rt, "web");
	ASSERT_ERR(r->err, ECONNRESET);
	ASSERT_CONTAINS(r->message, "closed the connection before answering GET");
}

TEST(test_answer_over_the_size_bound_is_refused)
{
	static char big[8192];
	snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
	size_t head = strlen(big);
	memset(big + head, ' ', 5000);
	big[head + 5000] = '\0';
	const char *const answers[] = {big};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 1024);
	const struct rtenv_result *r = rtenv_inspect(base, rt, "web");
	ASSERT_ERR(r->err, EMSGSIZE);
	ASSERT_CONTAINS(r->message, "over the size limit (1024 bytes)");
}

TEST(test_http_error_without_json_gives_status_and_text)
{
	static const char *const answers[] = {
	    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\n\r\nboom happened\n"};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	const struct rtenv_result *r = rtenv_start(base, rt, "web");
	ASSERT_ERR(r->err, EIO);
	ASSERT_EQ_U(r->http_status, 500);
	ASSERT_CONTAINS(r->message, "HTTP 500");
	ASSERT_CONTAINS(r->message, "boom happened");
}

TEST(test_answer_that_is_not_a_container_is_ebadmsg)
{
	static const char *const answers[] = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1,2]"};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	const struct rtenv_result *r = rtenv_inspect(base, rt, "web");
	ASSERT_ERR(r->err, EBADMSG);
	ASSERT_EQ_U(r->http_status, 200);
	ASSERT_CONTAINS(r->message, "Unexpected answer");
}

struct free_in_callback {
	struct runtime *rt;
	unsigned calls;
};

static void free_runtime_cb(int err, const struct runtime_error *e,
			    const struct runtime_container *c, void *userdata)
{
	(void)e;
	struct free_in_callback *s = userdata;
	s->calls++;
	if (err == 0 && c && strcmp(c->name, "web") == 0)
		runtime_free(s->rt);
}

static bool one_call(void *arg)
{
	return ((struct free_in_callback *)arg)->calls > 0;
}

TEST(test_runtime_freed_inside_a_callback_calls_nothing_more)
{
	/* dockerd's own bytes, chunked. */
	_cleanup_free_ char *raw =
	    fixture_read("unit/fixtures/runtime/docker-inspect-raw.http", NULL);
	const char *const answers[] = {raw};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = f->path;
	struct free_in_callback s = {0};
	ASSERT_OK(runtime_new(base, &cfg, &s.rt));
	for (int i = 0; i < 3; i++)
		ASSERT_OK(runtime_inspect(s.rt, "web", free_runtime_cb, &s));
	evloop_run_until(base, one_call, &s, 5000, "the first inspect answer");
	/* Asserting an absence: every answer is sent (or refused by a closed
	 * connection), and the loop has turned over whatever arrived. */
	struct fake_runtime_wait w = {f, 3};
	evloop_run_until(base, fake_runtime_served_enough, &w, 5000, "the fake's three answers");
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ASSERT_EQ_U(s.calls, 1);
}

struct cancel_in_callback {
	struct runtime *rt;
	unsigned calls;
	size_t cancelled;
};

static void cancel_others_cb(int err, const struct runtime_error *e,
			     const struct runtime_container *c, void *userdata)
{
	(void)err;
	(void)e;
	(void)c;
	struct cancel_in_callback *s = userdata;
	if (s->calls++ == 0)
		s->cancelled = runtime_cancel(s->rt, s);
}

static bool one_cancelling_call(void *arg)
{
	return ((struct cancel_in_callback *)arg)->calls > 0;
}

TEST(test_cancel_inside_a_callback_cancels_the_others_not_the_answered_one)
{
	_cleanup_free_ char *raw =
	    fixture_read("unit/fixtures/runtime/docker-inspect-raw.http", NULL);
	const char *const answers[] = {raw};
	struct fake_runtime *f = fake_runtime_start(answers, 1, false);
	struct event_base *base = rtenv_base_new();
	struct cancel_in_callback s = {.rt = client(base, f, 5000000, 0)};
	for (int i = 0; i < 3; i++)
		ASSERT_OK(runtime_inspect(s.rt, "web", cancel_others_cb, &s));
	evloop_run_until(base, one_cancelling_call, &s, 5000, "the first inspect answer");
	/* The answered call is no longer pending: only the other two count. */
	ASSERT_EQ_U(s.cancelled, 2);
	struct fake_runtime_wait w = {f, 3};
	evloop_run_until(base, fake_runtime_served_enough, &w, 5000, "the fake's three answers");
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ASSERT_EQ_U(s.calls, 1);
	/* The client still works. */
	rtenv_expect_ok(rtenv_inspect(base, s.rt, "web"), "inspect after the cancel");
}

TEST(test_client_without_a_socket_takes_the_default_not_docker_host)
{
	/* DOCKER_HOST is the config's to read (test_config.c); the client
	 * given no socket takes the default, whatever the environment says. */
	ASSERT_OK(setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1));
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = NULL;
	capture_stderr_begin();
	int r = runtime_new(base, NULL, &rt);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_OK(unsetenv("DOCKER_HOST"));
	ASSERT_OK(r);
	ASSERT_STREQ(runtime_socket_path(rt), "/var/run/docker.sock");
	ASSERT_STREQ(log, "");
	runtime_free(rt);
}

TEST(test_bad_configuration_is_refused_saying_only_what_is_wrong)
{
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = NULL;
	struct runtime_config cfg;
	char long_path[200];
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';

	runtime_config_defaults(&cfg);
	cfg.socket_path = long_path;
	capture_stderr_begin();
	int r = runtime_new(base, &cfg, &rt);
	_cleanup_free_ char *too_long = capture_stderr_end();
	ASSERT_ERR(r, ENAMETOOLONG);
	ASSERT_CONTAINS(too_long, "longer than a unix socket address allows");
	/* The message says what is wrong; no strerror() after it. */
	ASSERT_TRUE(!strstr(too_long, "File name too long"));

	runtime_config_defaults(&cfg);
	cfg.socket_path = "/run/x.sock";
	cfg.timeout_us = 0;
	capture_stderr_begin();
	r = runtime_new(base, &cfg, &rt);
	_cleanup_free_ char *zero = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(zero, "Invalid runtime client configuration");
	ASSERT_TRUE(!strstr(zero, "Invalid argument"));
}

struct stream_state {
	struct rtenv_events log;
	int last_http_status;
	struct runtime_events_counters at_free;
	struct runtime_events *stream;
	bool free_on_die;
	struct runtime *free_runtime_on_start; /* its streams go with it */
};

static void stream_event(const struct runtime_event *ev, void *userdata)
{
	struct stream_state *s = userdata;
	if (s->log.n < ARRAY_SIZE(s->log.ev)) {
		struct rtenv_event *e = &s->log.ev[s->log.n++];
		e->type = ev->type;
		e->exit_code = ev->exit_code;
		snprintf(e->id, sizeof(e->id), "%s", ev->id);
		snprintf(e->name, sizeof(e->name), "%s", ev->name ? ev->name : "");
	}
	if (s->free_runtime_on_start && ev->type == RUNTIME_EVENT_START) {
		runtime_free(TAKE_PTR(s->free_runtime_on_start));
		s->stream = NULL;
	}
	if (s->free_on_die && ev->type == RUNTIME_EVENT_DIE) {
		runtime_events_get_counters(s->stream, &s->at_free);
		runtime_events_free(s->stream);
		s->stream = NULL;
	}
}

static void stream_connected(void *userdata)
{
	((struct stream_state *)userdata)->log.connected++;
}

static void stream_disconnected(int err, const struct runtime_error *e, uint64_t retry_us,
				void *userdata)
{
	(void)retry_us;
	struct stream_state *s = userdata;
	s->log.disconnected++;
	s->log.last_err = err;
	snprintf(s->log.last_message, sizeof(s->log.last_message), "%s", e->message);
	s->last_http_status = e->http_status;
}

static void stream_free(void *arg)
{
	struct stream_state *s = arg;
	runtime_events_free(s->stream);
	free(s);
}

static struct stream_state *stream_new(struct runtime *rt, bool free_on_die)
{
	static const struct runtime_events_ops ops = {
	    .event = stream_event,
	    .connected = stream_connected,
	    .disconnected = stream_disconnected,
	};
	struct stream_state *s = calloc(1, sizeof(*s));
	ASSERT_TRUE(s);
	s->free_on_die = free_on_die;
	ASSERT_OK(runtime_events_new(rt, &ops, s, &s->stream));
	test_defer(stream_free, s);
	return s;
}

static bool n_events(void *arg)
{
	struct stream_state *s = arg;
	return s->log.n >= 2;
}

#define EV_START                                                                                   \
	"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"aaa\",\"Attributes\":"   \
	"{\"name\":\"web\"}},\"timeNano\":1}\n"
#define EV_DIE                                                                                     \
	"{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"aaa\",\"Attributes\":"     \
	"{\"name\":\"web\",\"exitCode\":\"3\"}},\"timeNano\":2}\n"

TEST(test_event_stream_drops_oversized_and_malformed_lines_and_keeps_going)
{
	/* One chunk per piece; the oversized line arrives in many. */
	size_t big = 70 * 1024;
	size_t cap = big + 4096;
	char *answer = malloc(cap);
	ASSERT_TRUE(answer);
	int n = snprintf(answer, cap,
			 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
			 strlen(EV_START), EV_START);
	for (size_t left = big; left > 0;) {
		size_t c = left < 4096 ? left : 4096;
		n += snprintf(answer + n, cap - (size_t)n, "%zx\r\n", c);
		memset(answer + n, 'x', c);
		n += (int)c;
		n += snprintf(answer + n, cap - (size_t)n, "\r\n");
		left -= c;
	}
	n += snprintf(answer + n, cap - (size_t)n, "b\r\n\nnot json\n\r\n%zx\r\n%s\r\n",
		      strlen(EV_DIE), EV_DIE);
	const char *const answers[] = {answer};
	struct fake_runtime *f = fake_runtime_start(answers, 1, true);
	free(answer);

	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	struct stream_state *s = stream_new(rt, true);
	evloop_run_until(base, n_events, s, 5000, "two events");
	ASSERT_EQ_U(s->log.connected, 1);
	ASSERT_EQ_U(s->log.ev[0].type, RUNTIME_EVENT_START);
	ASSERT_EQ_U(s->log.ev[1].type, RUNTIME_EVENT_DIE);
	ASSERT_EQ_U(s->log.ev[1].exit_code, 3);
	ASSERT_STREQ(s->log.ev[1].name, "web");
	/* Freed from its own callback; the counters were read just before. */
	ASSERT_TRUE(s->stream == NULL);
	ASSERT_EQ_U(s->at_free.oversized, 1);
	ASSERT_EQ_U(s->at_free.malformed, 1);
	ASSERT_EQ_U(s->at_free.events, 2);
}

static bool connected_twice(void *arg)
{
	struct stream_state *s = arg;
	return s->log.connected >= 1 && s->log.disconnected >= 1 && s->log.n >= 1;
}

TEST(test_event_stream_error_answer_is_reported_then_retried)
{
	static const char error[] = "{\"message\":\"events broken\"}\n";
	char first[256], second[512];
	snprintf(first, sizeof(first),
		 "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen(error), error);
	snprintf(second, sizeof(second),
		 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
		 strlen(EV_START), EV_START);
	const char *const answers[] = {first, second};
	struct fake_runtime *f = fake_runtime_start(answers, 2, true);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	struct stream_state *s = stream_new(rt, false);
	evloop_run_until(base, connected_twice, s, 5000,
			 "an error, then a connection and an event");
	ASSERT_ERR(s->log.last_err, EIO);
	ASSERT_STREQ(s->log.last_message, "events broken");
	ASSERT_EQ_U(s->last_http_status, 500);
	ASSERT_STREQ(s->log.ev[0].id, "aaa");

	struct runtime_events_counters c;
	runtime_events_get_counters(s->stream, &c);
	ASSERT_EQ_U(c.connects, 1);
	ASSERT_EQ_U(c.events, 1);
	struct runtime_counters rc;
	runtime_get_counters(rt, &rc);
	ASSERT_EQ_U(rc.calls[RUNTIME_CALL_EVENTS], 2);
	ASSERT_EQ_U(rc.errors[RUNTIME_CALL_EVENTS], 1);
}

static bool podman_events_in(void *arg)
{
	return ((struct stream_state *)arg)->log.n >= 10;
}

TEST(test_podman_event_stream_bytes_give_its_container_events)
{
	_cleanup_free_ char *raw =
	    fixture_read("unit/fixtures/runtime/podman-events-raw.http", NULL);
	const char *const answers[] = {raw};
	struct fake_runtime *f = fake_runtime_start(answers, 1, true);
	struct event_base *base = rtenv_base_new();
	struct runtime *rt = client(base, f, 5000000, 0);
	struct stream_state *s = stream_new(rt, false);
	evloop_run_until(base, podman_events_in, s, 5000, "the ten container events");
	static const enum runtime_event_type want[] = {
	    RUNTIME_EVENT_DIE,	   RUNTIME_EVENT_START,	  RUNTIME_EVENT_DESTROY, RUNTIME_EVENT_KILL,
	    RUNTIME_EVENT_DIE,	   RUNTIME_EVENT_DESTROY, RUNTIME_EVENT_DESTROY, RUNTIME_EVENT_DIE,
	    RUNTIME_EVENT_DESTROY, RUNTIME_EVENT_DESTROY,
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ASSERT_EQ_U(s->log.ev[i].type, want[i]);
	struct runtime_events_counters c;
	runtime_events_get_counters(s->stream, &c);
	ASSERT_EQ_U(c.events, 10);
	ASSERT_EQ_U(c.ignored, 14); /* cleanup, init, create, sync */
	ASSERT_EQ_U(c.malformed + c.oversized, 0);
}

static bool one_event(void *arg)
{
	return ((struct stream_state *)arg)->log.n >= 1;
}

TEST(test_runtime_freed_inside_an_event_callback_ends_its_stream_there)
{
	/* Two events in one chunk: the second is already read when the first
	 * frees the runtime, and must not be delivered. */
	char answer[1024];
	snprintf(answer, sizeof(answer),
		 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s%s\r\n",
		 strlen(EV_START) + strlen(EV_DIE), EV_START, EV_DIE);
	const char *const answers[] = {answer};
	struct fake_runtime *f = fake_runtime_start(answers, 1, true);
	struct event_base *base = rtenv_base_new();
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = f->path;
	cfg.reconnect_min_us = 20000;
	cfg.reconnect_max_us = 50000;
	struct runtime *rt = NULL;
	ASSERT_OK(runtime_new(base, &cfg, &rt));
	struct stream_state *s = stream_new(rt, false);
	s->free_runtime_on_start = rt;
	evloop_run_until(base, one_event, s, 5000, "the start event");
	ASSERT_TRUE(s->free_runtime_on_start == NULL);
	struct fake_runtime_wait w = {f, 1};
	evloop_run_until(base, fake_runtime_served_enough, &w, 5000, "the fake's answer");
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ASSERT_EQ_U(s->log.n, 1);
	ASSERT_EQ_U(s->log.ev[0].type, RUNTIME_EVENT_START);
	ASSERT_EQ_U(s->log.connected, 1);
	ASSERT_EQ_U(s->log.disconnected, 0);
}
