// SPDX-License-Identifier: MIT
/*
 * The metrics listener (metrics_http.h) for real: evhttp on loopback,
 * scrapes, HEAD, 404 and 405, the address parser and the bind errors.
 */
#include <errno.h>

#include "dozed/socket_util.h"
#include "metrics_http_fixture.h"

/* --- tests ------------------------------------------------------------------------ */

TEST(test_get_metrics_answers_the_text_with_its_content_type)
{
	struct fixture *f = fixture_new(1000);
	assert_scraped(scrape(f, GET_METRICS));
	assert_scraped(scrape(f, "GET /metrics?x=1 HTTP/1.0\r\n\r\n"));
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, 2);
}

TEST(test_head_answers_the_headers_alone)
{
	struct fixture *f = fixture_new(1000);
	struct job *j = scrape(f, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	ASSERT_EQ_U(j->status, 200);
	ASSERT_STREQ(j->content_type, METRICS_HTTP_CONTENT_TYPE);
	ASSERT_EQ_U(j->body_len, 0);
	ASSERT_TRUE(j->content_length > 1000);
}

TEST(test_another_path_is_404_and_another_method_405)
{
	struct fixture *f = fixture_new(1000);
	ASSERT_EQ_U(scrape(f, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")->status,
		    404);
	ASSERT_EQ_U(scrape(f, "GET /metricsx HTTP/1.1\r\nConnection: close\r\n\r\n")->status, 404);
	struct job *j = scrape(f, "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
				  "Content-Length: 2\r\n\r\nab");
	ASSERT_EQ_U(j->status, 405);
	ASSERT_STREQ(j->allow, "GET, HEAD");
	ASSERT_EQ_U(scrape(f, "DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")->status,
		    405);
	ASSERT_EQ_U(atomic_load(&f->renders), 0);
	ASSERT_EQ_U(metrics_http_counters(f->h).refused, 4);
}

TEST(test_listen_parse_accepts_numeric_addresses)
{
	const char *ok[][2] = {{"127.0.0.1:9321", "127.0.0.1:9321"},
			       {"[::1]:9321", "[::1]:9321"},
			       {"0.0.0.0:1", "0.0.0.0:1"},
			       {"[::]:65535", "[::]:65535"}};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct sockaddr_storage a = addr_of(ok[i][0]);
		char back[METRICS_LISTEN_TEXT_MAX];
		ASSERT_STREQ(sockaddr_to_string(&a, back, sizeof(back)), ok[i][1]);
	}
}

TEST(test_listen_parse_refuses_bad_ones_saying_why)
{
	const char *bad[][2] = {
	    {"127.0.0.1", "expected ADDR:PORT with a numeric address"},
	    {"127.0.0.1:0", "expected a port 1-65535"},
	    {"127.0.0.1:65536", "expected a port 1-65535"},
	    {"127.0.0.1:09321", "expected a port 1-65535"},
	    {"127.0.0.1:93a", "expected a port 1-65535"},
	    {"localhost:9321", "localhost is not an IPv4 address"},
	    {"::1:9321", "(an IPv6 address in brackets)"},
	    {"[::1]", "expected ADDR:PORT"},
	    {"[::1]9321", "expected ADDR:PORT"},
	    {"[127.0.0.1]:9321", "[127.0.0.1] is not an IPv6 address"},
	    {"", "expected ADDR:PORT"},
	    {":9321", "expected ADDR:PORT"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct sockaddr_storage a;
		char why[256] = "";
		int r = metrics_listen_parse(bad[i][0], &a, why, sizeof(why));
		if (r != -EINVAL || !strstr(why, bad[i][1]))
			FAIL("metrics_listen_parse(\"%s\") = %d, why \"%s\"; expected -EINVAL and "
			     "\"%s\"",
			     bad[i][0], r, why, bad[i][1]);
	}
}

TEST(test_a_taken_port_is_eaddrinuse_naming_the_address_and_the_reason)
{
	struct fixture *f = fixture_new(100);
	struct sockaddr_storage a = addr_of("127.0.0.1:9321");
	struct metrics_http *second = NULL;
	char why[256] = "";
	ASSERT_ERR(metrics_http_new(f->base, &a, render, f, &second, why, sizeof(why)), EADDRINUSE);
	ASSERT_TRUE(second == NULL);
	ASSERT_CONTAINS(why, "127.0.0.1:9321");
	ASSERT_CONTAINS(why, "Address already in use");
	ASSERT_CONTAINS(why, "another port");

	/* No such address on this host. */
	a = addr_of("192.0.2.1:9321");
	ASSERT_ERR(metrics_http_new(f->base, &a, render, f, &second, why, sizeof(why)),
		   EADDRNOTAVAIL);
	ASSERT_CONTAINS(why, "192.0.2.1:9321");
	ASSERT_CONTAINS(why, strerror(EADDRNOTAVAIL));
	/* The first one still serves. */
	assert_scraped(scrape(f, GET_METRICS));
}

TEST(test_ipv6_loopback_serves)
{
	ASSERT_OK(netns_enter_private());
	struct event_base *base = event_base_new();
	struct fixture f = {.base = base, .body_bytes = 10};
	struct sockaddr_storage a = addr_of("[::1]:9321");
	char why[256] = "";
	int r = metrics_http_new(base, &a, render, &f, &f.h, why, sizeof(why));
	if (r < 0)
		FAIL("metrics_http_new on [::1]: %s", why);
	metrics_http_free(f.h);
	event_base_free(base);
}
