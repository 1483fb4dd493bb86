// SPDX-License-Identifier: MIT
/*
 * The control protocol on real unix sockets in a temporary directory. A fake
 * handler plays the daemon: "echo" answers at once, "later" is answered by the
 * test, "follow" subscribes. Clients are non-blocking sockets in the test's
 * own thread, driven by the same event loop as the server.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS 5000

struct fixture {
	struct event_base *base;
	struct control *ctl;
	struct control_config cfg;
	char path[128];
	uint64_t later_client; /* the last "later" request, 0: none */
	unsigned requests;
};

static void handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct fixture *f = ud;
	f->requests++;
	if (strcmp(cmd, "echo") == 0) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "ok", json_object_new_boolean(1));
		json_object_object_add(r, "echo", json_object_get(req));
		control_reply(f->ctl, id, r);
	} else if (strcmp(cmd, "later") == 0) {
		f->later_client = id;
	} else if (strcmp(cmd, "follow") == 0) {
		control_subscribe(f->ctl, id);
		control_reply(f->ctl, id, json_tokener_parse("{\"ok\":true}"));
	} else {
		control_reply_error(f->ctl, id, "unknown command: %s", cmd);
	}
}

static void fixture_free(void *arg)
{
	struct fixture *f = arg;
	control_free(f->ctl);
	event_base_free(f->base);
	free(f);
}

/* A fixture with a temporary directory and no server yet. */
static struct fixture *fixture_bare(void)
{
	signal(SIGPIPE, SIG_IGN);
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		FAIL("out of memory");
	char *dir = lineclient_tmpdir("dozed-ctl");
	snprintf(f->path, sizeof(f->path), "%s/control.sock", dir);
	free(dir);
	f->base = event_base_new();
	if (!f->base)
		FAIL("event_base_new failed");
	test_defer(fixture_free, f);
	control_config_defaults(&f->cfg);
	f->cfg.path = f->path;
	return f;
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = fixture_bare();
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	return f;
}

static struct lineclient *conn_open(struct fixture *f)
{
	return lineclient_open(f->base, f->path);
}

static struct control_counters counters(struct fixture *f)
{
	struct control_counters k;
	control_get_counters(f->ctl, &k);
	return k;
}

TEST(test_request_gets_its_reply)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
	_cleanup_free_ char *reply = lineclient_request(c, "{\"cmd\":\"echo\",\"x\":[1,2]}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\",\"x\":[1,2]}}");
	ASSERT_EQ_U(f->requests, 1);
}

TEST(test_pipelined_requests_are_answered_in_order)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
	ASSERT_TRUE(
	    lineclient_send(c, "{\"cmd\":\"echo\",\"n\":1}\n{\"cmd\":\"echo\",\"n\":2}\r\n", 44));
	_cleanup_free_ char *one = lineclient_read_line(c);
	_cleanup_free_ char *two = lineclient_read_line(c);
	ASSERT_CONTAINS(one, "\"n\":1");
	ASSERT_CONTAINS(two, "\"n\":2");
}

TEST(test_request_arriving_in_pieces_is_answered_once_complete)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = lineclient_open(f->base, f->path);
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
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
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
	ASSERT_EQ_U(counters(f).bad_requests, 4);
	ASSERT_EQ_U(f->requests, 1);
}

TEST(test_oversized_request_gets_an_error_and_close_and_others_are_unaffected)
{
	struct fixture *f = fixture_new();
	struct lineclient *other = conn_open(f);
	struct lineclient *big = conn_open(f);
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
	ASSERT_EQ_U(counters(f).too_long, 1);

	_cleanup_free_ char *reply = lineclient_request(other, "ho\"}\n");
	ASSERT_STREQ(reply, "{\"ok\":true,\"echo\":{\"cmd\":\"echo\"}}");
}

TEST(test_request_of_exactly_the_limit_is_accepted)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
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
	return ((struct fixture *)arg)->later_client != 0;
}

static bool no_clients(void *arg)
{
	return counters(arg).clients_now == 0;
}

TEST(test_delayed_reply_reaches_the_client)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
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
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
	ASSERT_TRUE(lineclient_send(c, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the delayed request");
	uint64_t gone = f->later_client;
	lineclient_close(c);
	evloop_run_until(f->base, no_clients, f, WAIT_MS, "the client to be cleaned up");

	ASSERT_ERR(control_reply(f->ctl, gone, json_tokener_parse("{\"ok\":true}")), ENOENT);
	ASSERT_ERR(control_reply_error(f->ctl, gone, "too late"), ENOENT);
	ASSERT_ERR(control_subscribe(f->ctl, gone), ENOENT);

	/* Ids are never reused: the next client's "later" comes with a new one. */
	f->later_client = 0;
	struct lineclient *next = conn_open(f);
	ASSERT_TRUE(lineclient_send(next, "{\"cmd\":\"later\"}\n", 16));
	evloop_run_until(f->base, got_later, f, WAIT_MS, "the second delayed request");
	ASSERT_TRUE(f->later_client != gone);
	ASSERT_ERR(control_reply(f->ctl, gone, json_tokener_parse("{\"ok\":true}")), ENOENT);
	ASSERT_TRUE(lineclient_silent_for(next, 20));
}

TEST(test_client_that_half_closes_still_gets_its_reply)
{
	struct fixture *f = fixture_new();
	struct lineclient *c = conn_open(f);
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
	evloop_run_until(f->base, no_clients, f, WAIT_MS, "the client to be cleaned up");
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

static void broadcast(struct fixture *f, unsigned i, size_t pad)
{
	struct json_object *e = event_numbered(i, pad);
	control_broadcast(f->ctl, e);
	json_object_put(e);
}

TEST(test_subscribers_get_broadcasts_and_others_do_not)
{
	struct fixture *f = fixture_new();
	struct lineclient *sub1 = conn_open(f), *sub2 = conn_open(f), *plain = conn_open(f);
	_cleanup_free_ char *r1 = lineclient_request(sub1, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r2 = lineclient_request(sub2, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r3 = lineclient_request(plain, "{\"cmd\":\"echo\"}\n");
	ASSERT_EQ_U(counters(f).subscribers_now, 2);

	broadcast(f, 1, 0);
	_cleanup_free_ char *e1 = lineclient_read_line(sub1);
	_cleanup_free_ char *e2 = lineclient_read_line(sub2);
	ASSERT_STREQ(e1, "{\"event\":\"sleep\",\"seq\":1}");
	ASSERT_STREQ(e2, "{\"event\":\"sleep\",\"seq\":1}");
	ASSERT_TRUE(lineclient_silent_for(plain, 20));

	/* A subscriber that leaves is cleaned up; the others keep getting events. */
	lineclient_close(sub1);
	broadcast(f, 2, 0);
	_cleanup_free_ char *e3 = lineclient_read_line(sub2);
	ASSERT_STREQ(e3, "{\"event\":\"sleep\",\"seq\":2}");
	ASSERT_EQ_U(counters(f).subscribers_now, 1);
	ASSERT_EQ_U(counters(f).clients_now, 2);
}

TEST(test_slow_subscriber_is_dropped_without_affecting_others)
{
	struct fixture *f = fixture_bare();
	f->cfg.max_backlog = 64 * 1024;
	ASSERT_OK(control_new(f->base, &f->cfg, handler, f, &f->ctl));
	struct lineclient *slow = conn_open(f), *fast = conn_open(f), *plain = conn_open(f);
	_cleanup_free_ char *r1 = lineclient_request(slow, "{\"cmd\":\"follow\"}\n");
	_cleanup_free_ char *r2 = lineclient_request(fast, "{\"cmd\":\"follow\"}\n");

	unsigned i;
	for (i = 0; i < 10000 && counters(f).subscribers_dropped == 0; i++) {
		broadcast(f, i, 1000);
		_cleanup_free_ char *line = lineclient_read_line(fast);
		char want[32];
		snprintf(want, sizeof(want), "\"seq\":%u,", i);
		ASSERT_CONTAINS(line, want);
	}
	ASSERT_EQ_U(counters(f).subscribers_dropped, 1);
	ASSERT_EQ_U(counters(f).subscribers_now, 1);

	/* What reached the slow one's socket is still there, then the end. */
	lineclient_assert_closed(slow);
	broadcast(f, i, 0);
	_cleanup_free_ char *after = lineclient_read_line(fast);
	ASSERT_CONTAINS(after, "\"seq\"");
	_cleanup_free_ char *echo = lineclient_request(plain, "{\"cmd\":\"echo\"}\n");
	ASSERT_CONTAINS(echo, "\"ok\":true");
}
