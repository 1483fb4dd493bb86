// SPDX-License-Identifier: MIT
/*
 * The HTTP/1.1 response parser, on raw answers captured from dockerd 20.10
 * and podman 4.3 (curl --raw -i, the .http files of tests/unit/fixtures/runtime), fed
 * whole and byte by byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/http_unix.h"
#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "fixture.h"
#include "harness.h"

struct sink {
	char *data;
	size_t len, cap;
	size_t calls;
};

static int on_body(void *userdata, const char *data, size_t len)
{
	struct sink *s = userdata;
	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->data = realloc(s->data, s->cap);
		if (!s->data)
			return -ENOMEM;
	}
	memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
	s->calls++;
	return 0;
}

static void sink_free(void *arg)
{
	struct sink *s = arg;
	free(s->data);
	free(s);
}

static struct sink *sink_new(void)
{
	struct sink *s = calloc(1, sizeof(*s));
	ASSERT_TRUE(s);
	test_defer(sink_free, s);
	return s;
}

/* Feeds text in pieces of step bytes; returns the last feed's result. */
static int feed(struct http_response_parser *p, const char *text, size_t len, size_t step)
{
	int r = 0;
	for (size_t off = 0; off < len && r == 0; off += step) {
		size_t n = len - off < step ? len - off : step;
		size_t used = 0;
		r = http_response_parser_feed(p, text + off, n, &used);
		if (r == 0 && used != n)
			FAIL("the parser took %zu of %zu bytes but wants more", used, n);
	}
	return r;
}

static void parse_fixture(const char *name, size_t step, struct http_response_parser *p,
			  struct sink *s, int want)
{
	size_t len;
	_cleanup_free_ char *raw = fixture_read(name, &len);
	http_response_parser_init(p, on_body, s);
	int r = feed(p, raw, len, step);
	if (r != want)
		FAIL("parsing %s in steps of %zu gave %d, expected %d", name, step, r, want);
}

static void assert_chunked_inspect(const char *fixture, const char *id)
{
	static const size_t steps[] = {1, 7, 4096, 1 << 20};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		struct http_response_parser p;
		struct sink *s = sink_new();
		parse_fixture(fixture, steps[i], &p, s, 1);
		ASSERT_EQ_U(p.status, 200);
		ASSERT_TRUE(p.chunked);
		/* The de-chunked body is the whole JSON document. */
		struct runtime_container *c = NULL;
		ASSERT_OK(runtime_parse_inspect(s->data, s->len, &c));
		ASSERT_STREQ(c->id, id);
		runtime_container_free(c);
	}
}

TEST(test_docker_chunked_answer_is_reassembled_whatever_the_reads)
{
	assert_chunked_inspect("unit/fixtures/runtime/docker-inspect-raw.http",
			       "a9a78bb159fe92e8068892dc76d46ad942f1dee7cbb39ec9646dbfbb91a6f145");
}

TEST(test_podman_chunked_answer_is_reassembled_whatever_the_reads)
{
	assert_chunked_inspect("unit/fixtures/runtime/podman-inspect-raw.http",
			       "a406ba25134f5ab84cb85ac5953923d878e6d23e982efa8ca29d3096b35abc05");
}

static void assert_no_body(const char *fixture, int status)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	parse_fixture(fixture, 3, &p, s, 1);
	ASSERT_EQ_U(p.status, status);
	ASSERT_EQ_U(s->len, 0);
}

TEST(test_already_started_and_already_stopped_answers_end_without_a_body)
{
	assert_no_body("unit/fixtures/runtime/docker-start-started-raw.http", 304);
	assert_no_body("unit/fixtures/runtime/podman-start-started-raw.http", 304);
	assert_no_body("unit/fixtures/runtime/docker-stop-stopped-raw.http", 304);
	assert_no_body("unit/fixtures/runtime/podman-stop-stopped-raw.http", 304);
	/* A container that never ran: Docker 304, Podman 204. */
	assert_no_body("unit/fixtures/runtime/docker-stop-created-raw.http", 304);
	assert_no_body("unit/fixtures/runtime/podman-stop-created-raw.http", 204);
}

TEST(test_error_answer_with_content_length_gives_status_and_message)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	parse_fixture("unit/fixtures/runtime/docker-error-404-raw.http", 5, &p, s, 1);
	ASSERT_EQ_U(p.status, 404);
	_cleanup_free_ char *msg = runtime_parse_error_message(s->data, s->len);
	ASSERT_STREQ(msg, "No such container: nosuch");

	struct sink *ps = sink_new();
	parse_fixture("unit/fixtures/runtime/podman-error-404-raw.http", 5, &p, ps, 1);
	ASSERT_EQ_U(p.status, 404);
	_cleanup_free_ char *pmsg = runtime_parse_error_message(ps->data, ps->len);
	ASSERT_CONTAINS(pmsg, "\"nosuch\"");
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_stream_cut(const char *fixture, size_t lines)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	/* Still open: every event so far delivered, the response not over. */
	parse_fixture(fixture, 11, &p, s, 0);
	ASSERT_EQ_U(p.status, 200);
	ASSERT_TRUE(p.head_done);
	ASSERT_EQ_U(count_lines(s->data), lines);
	/* The runtime went away before the last chunk. */
	ASSERT_ERR(http_response_parser_eof(&p), ECONNRESET);
}

TEST(test_docker_event_stream_delivers_every_event_before_it_ends)
{
	assert_stream_cut("unit/fixtures/runtime/docker-events-raw.http", 16);
}

TEST(test_podman_event_stream_delivers_every_event_before_it_ends)
{
	assert_stream_cut("unit/fixtures/runtime/podman-events-raw.http", 24);
}

static int parse_text(const char *text, struct sink *s, struct http_response_parser *p)
{
	http_response_parser_init(p, on_body, s);
	return feed(p, text, strlen(text), 1);
}

TEST(test_body_without_length_runs_until_close)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	ASSERT_EQ_U(parse_text("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello", s, &p),
		    0);
	ASSERT_EQ_U(http_response_parser_eof(&p), 1);
	ASSERT_STREQ(s->data, "hello");
}

TEST(test_chunk_extensions_trailers_and_interim_answers_are_understood)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	ASSERT_EQ_U(parse_text("HTTP/1.1 100 Continue\r\n\r\n"
			       "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
			       "5;name=v\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
			       s, &p),
		    1);
	ASSERT_EQ_U(p.status, 200);
	ASSERT_STREQ(s->data, "hello");
}

TEST(test_malformed_answers_are_eproto)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	ASSERT_ERR(parse_text("SSH-2.0-OpenSSH\r\n", s, &p), EPROTO);
	ASSERT_ERR(parse_text("HTTP/1.1 2x0 OK\r\n", s, &p), EPROTO);
	ASSERT_ERR(parse_text("HTTP/1.1 200 OK\r\nno colon\r\n", s, &p), EPROTO);
	ASSERT_ERR(
	    parse_text("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n", s, &p),
	    EPROTO);
	ASSERT_ERR(parse_text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", s, &p),
		   EPROTO);
	ASSERT_ERR(
	    parse_text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", s, &p),
	    EPROTO);
}

TEST(test_header_over_its_bound_is_emsgsize)
{
	struct http_response_parser p;
	struct sink *s = sink_new();
	http_response_parser_init(&p, on_body, s);
	static const char head[] = "HTTP/1.1 200 OK\r\nX-Long: ";
	ASSERT_EQ_U(http_response_parser_feed(&p, head, strlen(head), NULL), 0);
	char *big = malloc(HTTP_MAX_LINE);
	ASSERT_TRUE(big);
	memset(big, 'a', HTTP_MAX_LINE);
	int r = http_response_parser_feed(&p, big, HTTP_MAX_LINE, NULL);
	free(big);
	ASSERT_ERR(r, EMSGSIZE);
}

static int refuse_body(void *userdata, const char *data, size_t len)
{
	(void)data;
	(void)len;
	(*(size_t *)userdata)++;
	return -ENOSPC;
}

TEST(test_body_callback_error_stops_the_parse)
{
	struct http_response_parser p;
	size_t calls = 0;
	http_response_parser_init(&p, refuse_body, &calls);
	static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhi";
	ASSERT_ERR(http_response_parser_feed(&p, text, strlen(text), NULL), ENOSPC);
	ASSERT_EQ_U(calls, 1);
}
