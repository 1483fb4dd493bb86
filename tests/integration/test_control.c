// SPDX-License-Identifier: MIT
/*
 * The control protocol on real unix sockets in a temporary directory. The
 * fixture's handler (control_fixture.h) plays the daemon: "echo" answers at
 * once, "later" is answered by the test, "follow" subscribes. Clients are
 * non-blocking sockets in the test's own thread, driven by the same event loop
 * as the server. The real daemon is tested last, on requests it must refuse
 * before acting.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
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

#define WAIT_MS 5000

TEST(test_request_gets_its_reply)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\",\"x\":[1,2]}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"x\":[1,2]}}");
	ASSERT_EQ_U(f->requests, 1);
}

TEST(test_pipelined_requests_are_answered_in_order)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	ASSERT_TRUE(
	    lineclient_send(c, "{\"cmd\":\"echo\",\"n\":1}\n{\"cmd\":\"echo\",\"n\":2}\r\n", 44));
	_cleanup_free_ char *one = lineclient_read_line(c);
	_cleanup_free_ char *two = lineclient_read_line(c);
	ASSERT_CONTAINS(one, "\"n\":1");
	ASSERT_CONTAINS(two, "\"n\":2");
}

TEST(test_request_arriving_in_pieces_is_answered_once_complete)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	const char *pieces[] = {"{\"cmd\":", "\"echo\",", "\"n\":3", "}"};
	for (size_t i = 0; i < ARRAY_SIZE(pieces); i++) {
		ASSERT_TRUE(lineclient_send(c, pieces[i], strlen(pieces[i])));
		ASSERT_TRUE(lineclient_silent_for(c, 10));
	}
	ASSERT_EQ_U(f->requests, 0);
	_cleanup_free_ char *reply = lineclient_request(c, "\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"n\":3}}");
}

TEST(test_malformed_requests_get_errors_and_the_connection_stays_usable)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *bad_json = lineclient_request(c, "{not json\n");
	ASSERT_CONTAINS(bad_json, "{\"ok\":false,\"error\":\"invalid JSON");
	_cleanup_free_ char *not_object = lineclient_request(c, "[1,2]\n");
	ASSERT_STREQ(not_object, "{\"ok\":false,\"error\":\"a request must be a JSON object\"}");
	_cleanup_free_ char *no_cmd = lineclient_request(c, "{\"cmd\":7}\n");
	ASSERT_STREQ(no_cmd, "{\"ok\":false,\"error\":\"a request needs a string \\\"cmd\\\"\"}");
	_cleanup_free_ char *trailing = lineclient_request(c, "{\"cmd\":\"echo\"} x\n");
	ASSERT_CONTAINS(trailing, "\"ok\":false");
	_cleanup_free_ char *good = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_STREQ(good, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
	ASSERT_EQ_U(control_fixture_counters(f).bad_requests, 4);
	ASSERT_EQ_U(f->requests, 1);
}

TEST(test_oversized_request_gets_an_error_and_close_and_others_are_unaffected)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *other = control_fixture_connect(f);
	struct lineclient *big = control_fixture_connect(f);
	/* The other client is in the middle of its own request. */
	ASSERT_TRUE(lineclient_send(other, "{\"cmd\":\"ec", 10));

	size_t n = 100 * 1024;
	_cleanup_free_ char *data = malloc(n);
	memset(data, 'a', n);
	data[0] = '"';
	lineclient_send(big, data, n);
	_cleanup_free_ char *err = lineclient_read_line(big);
	ASSERT_STREQ(err, "{\"ok\":false,\"error\":\"request too long (limit 65536 bytes)\"}");
	lineclient_assert_closed(big);
	ASSERT_EQ_U(control_fixture_counters(f).too_long, 1);

	_cleanup_free_ char *reply = lineclient_request(other, "ho\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
}

TEST(test_request_of_exactly_the_limit_is_accepted)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	size_t limit = CONTROL_MAX_REQUEST_DEFAULT;
	_cleanup_free_ char *line = malloc(limit + 2);
	const char *head = "{\"cmd\":\"echo\",\"pad\":\"";
	memset(line, 'p', limit);
	memcpy(line, head, strlen(head));
	memcpy(line + limit - 2, "\"}\n", 3);
	line[limit + 1] = '\0';
	ASSERT_TRUE(lineclient_send(c, line, limit + 1));
	_cleanup_free_ char *reply = lineclient_read_line(c);
	ASSERT_CONTAINS(reply, "{\"ok\":true");
}

static bool got_later(void *arg)
{
	return ((struct control_fixture *)arg)->later_client != 0;
}

TEST(test_delayed_reply_reaches_the_client)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	ASSERT_TRUE(lineclient_send(c, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the delayed request");
	ASSERT_TRUE(lineclient_silent_for(c, 20));
	ASSERT_OK(
	    control_reply(f->ctl, f->later_client, json_tokener_parse("{\"ok\":true,\"n\":1}")));
	_cleanup_free_ char *reply = lineclient_read_line(c);
	ASSERT_STREQ(reply, "{\"ok\":true,\"n\":1}");
}

TEST(test_reply_to_a_client_that_left_is_enoent)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	ASSERT_TRUE(lineclient_send(c, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the delayed request");
	uint64_t gone = f->later_client;
	lineclient_close(c);
	control_fixture_wait_clients(f, 0, "the client to be cleaned up");

	ASSERT_ERR(control_reply(f->ctl, gone, json_tokener_parse("{\"ok\":true}")), ENOENT);
	ASSERT_ERR(control_reply_error(f->ctl, gone, "too late"), ENOENT);
	ASSERT_ERR(control_subscribe(f->ctl, gone), ENOENT);

	/* Ids are never reused: the next client's "later" comes with a new one. */
	f->later_client = 0;
	struct lineclient *next = control_fixture_connect(f);
	ASSERT_TRUE(lineclient_send(next, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the second delayed request");
	ASSERT_TRUE(f->later_client != gone);
	ASSERT_ERR(control_reply(f->ctl, gone, json_tokener_parse("{\"ok\":true}")), ENOENT);
	ASSERT_TRUE(lineclient_silent_for(next, 20));
}

TEST(test_client_that_half_closes_still_gets_its_reply)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	/* The last request may even come without its newline, as from printf | socat. */
	ASSERT_TRUE(lineclient_send(c, "{\"cmd\":\"later\"}\n{\"cmd\":\"echo\"}", 30));
	shutdown(c->fd, SHUT_WR);
	_cleanup_free_ char *echo = lineclient_read_line(c);
	ASSERT_STREQ(echo, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
	ASSERT_TRUE(f->later_client != 0);
	ASSERT_TRUE(lineclient_silent_for(c, 20));
	ASSERT_OK(control_reply(f->ctl, f->later_client, json_tokener_parse("{\"ok\":true}")));
	_cleanup_free_ char *later = lineclient_read_line(c);
	ASSERT_STREQ(later, "{\"ok\":true}");
	lineclient_assert_closed(c);
	control_fixture_wait_clients(f, 0, "the client to be cleaned up");
}

static struct json_object *event_numbered(unsigned i, size_t pad)
{
	struct json_object *e = json_object_new_object();
	json_object_object_add(e, "event", json_object_new_string("sleep"));
	json_object_object_add(e, "seq", json_object_new_int((int)i));
	if (pad) {
		char *p = malloc(pad + 1);
		memset(p, 'x', pad);
		p[pad] = '\0';
		json_object_object_add(e, "pad", json_object_new_string(p));
		free(p);
	}
	return e;
}

static void broadcast(struct control_fixture *f, unsigned i, size_t pad)
{
	struct json_object *e = event_numbered(i, pad);
	control_broadcast(f->ctl, e);
	json_object_put(e);
}

TEST(test_subscribers_get_broadcasts_and_others_do_not)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *sub1 = control_fixture_connect(f), *sub2 = control_fixture_connect(f),
			  *plain = control_fixture_connect(f);
	_cleanup_free_ char *r1 = lineclient_request(sub1, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r2 = lineclient_request(sub2, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r3 = lineclient_request(plain, "{\"cmd\":\"echo\"}\n");
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_now, 2);

	broadcast(f, 1, 0);
	_cleanup_free_ char *e1 = lineclient_read_line(sub1);
	_cleanup_free_ char *e2 = lineclient_read_line(sub2);
	ASSERT_STREQ(e1, "{\"event\":\"sleep\",\"seq\":1}");
	ASSERT_STREQ(e2, "{\"event\":\"sleep\",\"seq\":1}");
	ASSERT_TRUE(lineclient_silent_for(plain, 20));

	/* A subscriber that leaves is cleaned up; the others keep getting events. */
	lineclient_close(sub1);
	control_fixture_wait_clients(f, 2, "the subscriber that left to be cleaned up");
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_now, 1);
	broadcast(f, 2, 0);
	_cleanup_free_ char *e3 = lineclient_read_line(sub2);
	ASSERT_STREQ(e3, "{\"event\":\"sleep\",\"seq\":2}");
}

TEST(test_slow_subscriber_is_dropped_without_affecting_others)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.max_backlog = 64 * 1024;
	control_fixture_start(f, NULL, NULL);
	struct lineclient *slow = control_fixture_connect(f), *fast = control_fixture_connect(f),
			  *plain = control_fixture_connect(f);
	_cleanup_free_ char *r1 = lineclient_request(slow, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r2 = lineclient_request(fast, "{\"cmd\":\"follow\"}\n");

	unsigned i;
	for (i = 0; i < 10000 && control_fixture_counters(f).subscribers_dropped == 0; i++) {
		broadcast(f, i, 1000);
		_cleanup_free_ char *line = lineclient_read_line(fast);
		char want[32];
		snprintf(want, sizeof(want), "\"seq\":%u,", i);
		ASSERT_CONTAINS(line, want);
	}
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_dropped, 1);
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_now, 1);

	/* What reached the slow one's socket is still there, then the end. */
	lineclient_assert_closed(slow);
	broadcast(f, i, 0);
	_cleanup_free_ char *after = lineclient_read_line(fast);
	ASSERT_CONTAINS(after, "\"seq\"");
	_cleanup_free_ char *echo = lineclient_request(plain, "{\"cmd\":\"echo\"}\n");
	ASSERT_CONTAINS(echo, "\"ok\":true");
}

static int shout_reply = 1; /* what control_reply() returned to the shouter; 1: not called */

/* "shout" broadcasts an event over any subscriber's backlog, then answers. */
static void shouting_handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct control_fixture *f = ud;
	if (strcmp(cmd, "shout") != 0) {
		control_fixture_handler(ud, id, cmd, req);
		return;
	}
	f->requests++;
	broadcast(f, 0, 2 * f->cfg.max_backlog);
	shout_reply = control_reply(f->ctl, id, json_tokener_parse("{\"ok\":true}"));
}

TEST(test_subscriber_dropped_by_its_own_request_is_closed_and_its_next_request_not_run)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.max_backlog = 4096;
	control_fixture_start(f, shouting_handler, f);
	struct lineclient *sub = control_fixture_connect(f);
	_cleanup_free_ char *r = lineclient_request(sub, "{\"cmd\":\"follow\"}\n");
	ASSERT_STREQ(r, "{\"ok\":true}");
	/* Its own broadcast drops it while the server is still reading its requests. */
	static const char reqs[] = "{\"cmd\":\"shout\"}\n{\"cmd\":\"echo\"}\n";
	ASSERT_TRUE(lineclient_send(sub, reqs, sizeof(reqs) - 1));
	lineclient_assert_closed(sub);
	ASSERT_ERR(shout_reply, ENOENT);
	ASSERT_EQ_U(f->requests, 2);
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_dropped, 1);
	ASSERT_EQ_U(control_fixture_counters(f).clients_now, 0);
	control_fixture_assert_serves(f);
}

TEST(test_nul_inside_a_request_is_refused_whole)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *escaped = lineclient_request(c, "{\"cmd\":\"echo\\u0000x\"}\n");
	ASSERT_STREQ(escaped,
		     "{\"ok\":false,\"error\":\"a request must not contain NUL characters\"}");
	_cleanup_free_ char *in_key = lineclient_request(c, "{\"cmd\":\"echo\",\"a\\u0000b\":1}\n");
	ASSERT_CONTAINS(in_key, "{\"ok\":false,\"error\":\"a request must not contain NUL");
	static const char raw[] = "{\"cmd\":\"echo\",\"x\":\"a\0b\"}\n";
	ASSERT_TRUE(lineclient_send(c, raw, sizeof(raw) - 1));
	_cleanup_free_ char *raw_reply = lineclient_read_line(c);
	ASSERT_CONTAINS(raw_reply, "{\"ok\":false,\"error\":\"a request must not contain NUL");
	/* An escaped backslash before u0000 is text, not a NUL. */
	_cleanup_free_ char *text =
	    lineclient_request(c, "{\"cmd\":\"echo\",\"x\":\"\\\\u0000\"}\n");
	ASSERT_STREQ(text, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"x\":\"\\\\u0000\"}}");
	ASSERT_EQ_U(f->requests, 1);
	ASSERT_EQ_U(control_fixture_counters(f).bad_requests, 3);
}

TEST(test_invalid_utf8_is_refused_and_never_echoed)
{
	struct control_fixture *f = control_fixture_new();
	struct lineclient *c = control_fixture_connect(f);
	const char *bad[] = {
	    "{\"cmd\":\"echo\",\"x\":\"\xff\"}\n",	   /* never a UTF-8 byte */
	    "{\"cmd\":\"echo\",\"x\":\"\xc0\xaf\"}\n",	   /* overlong '/' */
	    "{\"cmd\":\"echo\",\"x\":\"\xed\xa0\x80\"}\n", /* a surrogate */
	    "{\"cmd\":\"echo\",\"x\":\"\xe2\x82\"}\n",	   /* cut short */
	    "{\"cmd\":\"echo\",\"\xfe\":1}\n",		   /* in a key */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *reply = lineclient_request(c, bad[i]);
		ASSERT_STREQ(reply, "{\"ok\":false,\"error\":\"a request must be UTF-8 text\"}");
	}
	ASSERT_EQ_U(f->requests, 0);
	/* An escape that decodes to no character (a lone surrogate) comes back as U+FFFD. */
	_cleanup_free_ char *lone = lineclient_request(c, "{\"cmd\":\"echo\",\"x\":\"\\ud800\"}\n");
	ASSERT_STREQ(lone, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"x\":\"\xef\xbf\xbd\"}}");
	_cleanup_free_ char *good =
	    lineclient_request(c, "{\"cmd\":\"echo\",\"x\":\"caf\xc3\xa9\"}\n");
	ASSERT_STREQ(good, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"x\":\"caf\xc3\xa9\"}}");
}

static struct control_fixture *fixture_idle(uint64_t idle_timeout_us)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.idle_timeout_us = idle_timeout_us;
	control_fixture_start(f, NULL, NULL);
	return f;
}

TEST(test_idle_client_is_told_why_and_closed_after_the_idle_timeout)
{
	struct control_fixture *f = fixture_idle(500 * 1000);
	struct lineclient *c = control_fixture_connect(f);
	uint64_t start = test_now_ms();
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	ASSERT_CONTAINS(reply, "\"ok\":true");
	_cleanup_free_ char *why = lineclient_read_line(c);
	ASSERT_STREQ(why, "{\"ok\":false,\"error\":\"closed: no request for 500ms\"}");
	/* libevent's coarse clock may fire a few ms early; 450 is far from 0 still. */
	ASSERT_TRUE(test_now_ms() - start >= 450);
	lineclient_assert_closed(c);
	control_fixture_wait_clients(f, 0, "the idle client to be cleaned up");
	ASSERT_EQ_U(control_fixture_counters(f).idle_closed, 1);
}

TEST(test_waiting_and_subscribed_clients_are_not_idle)
{
	struct control_fixture *f = fixture_idle(300 * 1000);
	struct lineclient *waiting = control_fixture_connect(f);
	ASSERT_TRUE(lineclient_send(waiting, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the delayed request");
	struct lineclient *sub = control_fixture_connect(f);
	_cleanup_free_ char *r = lineclient_request(sub, "{\"cmd\":\"follow\"}\n");
	struct lineclient *idle = control_fixture_connect(f);
	lineclient_assert_closed(idle);
	/* Several idle timeouts later, both are still there. */
	ASSERT_TRUE(lineclient_silent_for(waiting, 1000));
	ASSERT_TRUE(lineclient_silent_for(sub, 10));
	ASSERT_EQ_U(control_fixture_counters(f).clients_now, 2);
	broadcast(f, 1, 0);
	_cleanup_free_ char *e = lineclient_read_line(sub);
	ASSERT_STREQ(e, "{\"event\":\"sleep\",\"seq\":1}");
	/* Once answered, the waiting one is idle like any other. */
	ASSERT_OK(control_reply(f->ctl, f->later_client, json_tokener_parse("{\"ok\":true}")));
	_cleanup_free_ char *answer = lineclient_read_line(waiting);
	ASSERT_STREQ(answer, "{\"ok\":true}");
	lineclient_assert_closed(waiting);
	ASSERT_EQ_U(control_fixture_counters(f).idle_closed, 2);
	ASSERT_EQ_U(control_fixture_counters(f).subscribers_now, 1);
}

TEST(test_request_trickling_in_does_not_keep_a_client_open)
{
	struct control_fixture *f = fixture_idle(200 * 1000);
	struct lineclient *c = control_fixture_connect(f);
	ASSERT_TRUE(lineclient_send(c, "{\"cmd\":\"echo\",\"pad\":\"", 22));
	/* A byte every 20 ms never completes a request: the deadline is not moved. */
	uint64_t deadline = test_now_ms() + WAIT_MS;
	bool open = true;
	while (open && test_now_ms() < deadline) {
		open = lineclient_send(c, "p", 1) && lineclient_silent_for(c, 20);
	}
	ASSERT_TRUE(!open);
	lineclient_assert_closed(c);
	ASSERT_EQ_U(control_fixture_counters(f).idle_closed, 1);
	ASSERT_EQ_U(f->requests, 0);
}

struct flood {
	struct control_fixture *f;
	int fd;
};

/* Sends requests as fast as the socket takes them, never reading; true once the server closed it.
 */
static bool flood_until_closed(void *arg)
{
	struct flood *fl = arg;
	static const char req[] = "{\"cmd\":\"echo\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n";
	while (send(fl->fd, req, sizeof(req) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
	}
	return control_fixture_counters(fl->f).clients_now == 0;
}

TEST(test_client_that_never_reads_is_closed_after_the_idle_timeout)
{
	struct control_fixture *f = control_fixture_bare("dozed-ctl");
	f->cfg.idle_timeout_us = 500 * 1000;
	f->cfg.max_backlog = 4096;
	control_fixture_start(f, NULL, NULL);
	struct lineclient *c = control_fixture_connect(f);
	_cleanup_free_ char *first = lineclient_request(c, "{\"cmd\":\"echo\"}\n");
	struct flood fl = {.f = f, .fd = c->fd};
	evloop_run_until(f->base, flood_until_closed, &fl, WAIT_MS,
			 "the client that does not read its replies to be closed");
	ASSERT_TRUE(f->requests > 1);
	ASSERT_EQ_U(control_fixture_counters(f).idle_closed, 1);
}

/* The real daemon: tests/lib/daemon_fixture.h. */
/* The daemon's error for this request line. */
static void assert_refused(struct daemon_fixture *df, const char *line, const char *want)
{
	char req[512];
	snprintf(req, sizeof(req), "%s\n", line);
	_cleanup_free_ char *reply = lineclient_request(df->c, req);
	struct json_object *o = json_tokener_parse(reply), *ok = NULL, *err = NULL;
	if (!o || !json_object_object_get_ex(o, "ok", &ok) || json_object_get_boolean(ok) ||
	    !json_object_object_get_ex(o, "error", &err))
		FAIL("%s: expected a refusal, got %s", line, reply);
	if (strcmp(json_object_get_string(err), want) != 0)
		FAIL("%s: got error '%s', expected '%s'", line, json_object_get_string(err), want);
	json_object_put(o);
}

TEST(test_daemon_refuses_fields_of_the_wrong_type_naming_them)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	/* Ignored, "idle":5 would re-enable web with the default idle time. */
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":5}",
		       "idle: expected a string like \"10m\"");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":7}",
		       "container: expected a string: a container's name or id");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"wake_on\":true}",
		       "wake_on: expected \"connect\" or \"data\"");
	const char *service_cmds[] = {"disable", "status", "sleep", "wake"};
	for (size_t i = 0; i < ARRAY_SIZE(service_cmds); i++) {
		char line[128];
		snprintf(line, sizeof(line), "{\"cmd\":\"%s\",\"service\":[\"web\"]}",
			 service_cmds[i]);
		assert_refused(df, line, "service: expected a string: the service's name");
		snprintf(line, sizeof(line), "{\"cmd\":\"%s\",\"service\":null}", service_cmds[i]);
		assert_refused(df, line, "service: expected a string: the service's name");
	}
	assert_refused(df, "{\"cmd\":\"events\",\"follow\":\"yes\"}",
		       "follow: expected true or false");
	assert_refused(df, "{\"cmd\":\"events\",\"follow\":1}", "follow: expected true or false");
	assert_refused(
	    df, "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":[\"tcp/80\"]}",
	    "ignore: expected a string of rules like \"10.0.0.0/8,tcp/9090\" or \"none\"");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"keep_awake\":true}",
		       "keep_awake: expected \"connections\" or \"none\"");
	assert_refused(df, "{\"cmd\":\"flows\",\"since_ms\":-1}",
		       "since_ms: expected a number of milliseconds");
	assert_refused(df, "{\"cmd\":\"flows\",\"since_ms\":\"30s\"}",
		       "since_ms: expected a number of milliseconds");
	assert_refused(df, "{\"cmd\":\"flows\",\"service\":1}",
		       "service: expected a string: the service's name");
}

TEST(test_daemon_refuses_unknown_fields_naming_the_known_ones)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"idel\":\"5m\"}",
		       "idel: unknown field (enable takes container, idle, wake_on, probe, ignore, "
		       "keep_awake, freeze_after, reclaim_frozen)");
	assert_refused(df, "{\"cmd\":\"list\",\"all\":true}",
		       "all: unknown field (list takes none)");
	assert_refused(df, "{\"cmd\":\"status\",\"name\":\"web\"}",
		       "name: unknown field (status takes service)");
}

TEST(test_daemon_refuses_an_idle_time_over_a_year_naming_the_limit)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"8761h\"}",
		       "idle 8761h: expected a duration of at most 8760h (a year)");
	assert_refused(df,
		       "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"18446744073709s\"}",
		       "idle 18446744073709s: expected a duration of at most 8760h (a year)");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"999ms\"}",
		       "idle 999ms: expected a duration of 1s or more, like 30s, 10m or 2h, or "
		       "never");
}

TEST(test_daemon_refuses_bad_light_sleep_settings_naming_the_key)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"freeze_after\":\"500ms\"}",
		       "freeze_after 500ms: expected a duration of 1s or more, like 30s, 10m or "
		       "2h, or none");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"freeze_after\":30}",
		       "freeze_after: expected a string like \"30s\" or \"none\"");
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"reclaim_frozen\":\"yes\"}",
		       "reclaim_frozen: expected true or false");
	assert_refused(df,
		       "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"5m\",\"freeze_after\":"
		       "\"10m\"}",
		       "freeze_after (10m) must be shorter than idle (5m): a service is frozen "
		       "first, stopped later");
}

TEST(test_daemon_refuses_a_bad_rule_or_keep_awake_naming_the_rule_and_the_forms)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	assert_refused(
	    df, "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"tcp/9090,10.0.0.0/33\"}",
	    "ignore: rule \"10.0.0.0/33\": the prefix length is over 32; " FLOW_RULE_FORMS);
	assert_refused(
	    df, "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"tcp/http\"}",
	    "ignore: rule \"tcp/http\": no IPv4 address, port or proto/port; " FLOW_RULE_FORMS);
	assert_refused(df,
		       "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"1,2,3,4,5,6,7,8,9,"
		       "10,11,12,13,14,15,16,17\"}",
		       "ignore: rule \"17\": more than 16 rules; " FLOW_RULE_FORMS);
	assert_refused(df, "{\"cmd\":\"enable\",\"container\":\"web\",\"keep_awake\":\"always\"}",
		       "keep_awake always: expected connections or none");
}

TEST(test_daemon_names_flows_among_the_commands)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-ctl", NULL, 0);
	assert_refused(df, "{\"cmd\":\"flow\"}",
		       "unknown command \"flow\" (expected enable, disable, list, status, sleep, "
		       "wake, events, flows or metrics)");
	assert_refused(df, "{\"cmd\":\"flows\",\"services\":\"web\"}",
		       "services: unknown field (flows takes service, since_ms)");
}
