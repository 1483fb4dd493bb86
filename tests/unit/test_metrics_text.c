// SPDX-License-Identifier: MIT
/*
 * The Prometheus text writer (metrics.h): label values and HELP text escaped
 * as the format requires, bytes that are not UTF-8 replaced, histograms
 * cumulative with +Inf, _sum and _count, and Prometheus' own promtool
 * accepting what it writes for names a runtime may allow.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dozed/macro.h"
#include "dozed/metrics.h"
#include "harness.h"
#include "promtool.h"

static void text_free(void *arg)
{
	metrics_text_free(arg);
}

static struct metrics_text *text_new(void)
{
	struct metrics_text *m = calloc(1, sizeof(*m));
	if (!m)
		FAIL("out of memory");
	metrics_text_init(m);
	test_defer(free, m);
	test_defer(text_free, m);
	return m;
}

static const char *done(struct metrics_text *m)
{
	ASSERT_OK(metrics_text_error(m));
	ASSERT_TRUE(m->buf != NULL);
	ASSERT_EQ_U(strlen(m->buf), m->len);
	return m->buf;
}

TEST(test_a_family_and_plain_samples)
{
	struct metrics_text *m = text_new();
	metrics_family(m, "dozed_services", "gauge", "Enabled services.");
	metrics_sample_u64(m, "dozed_services", NULL, 0, 3);
	struct metrics_label l[] = {{"service", "web"}, {"state", "awake"}};
	metrics_sample_u64(m, "dozed_service_state", l, 2, 1);
	metrics_sample_double(m, "dozed_x", l, 1, 0.25);
	metrics_sample_u64(m, "dozed_big", NULL, 0, UINT64_MAX);
	ASSERT_STREQ(done(m), "# HELP dozed_services Enabled services.\n"
			      "# TYPE dozed_services gauge\n"
			      "dozed_services 3\n"
			      "dozed_service_state{service=\"web\",state=\"awake\"} 1\n"
			      "dozed_x{service=\"web\"} 0.25\n"
			      "dozed_big 18446744073709551615\n");
}

TEST(test_label_values_escape_backslash_quote_and_newline)
{
	struct metrics_text *m = text_new();
	struct metrics_label l[] = {{"service", "a\\b\"c\nd"}};
	metrics_sample_u64(m, "x", l, 1, 1);
	ASSERT_STREQ(done(m), "x{service=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(test_an_empty_or_missing_label_value_is_empty_quotes)
{
	struct metrics_text *m = text_new();
	struct metrics_label l[] = {{"a", ""}, {"b", NULL}};
	metrics_sample_u64(m, "x", l, 2, 0);
	ASSERT_STREQ(done(m), "x{a=\"\",b=\"\"} 0\n");
}

TEST(test_invalid_utf8_is_replaced_and_valid_utf8_kept)
{
	struct metrics_text *m = text_new();
	/* A lone continuation byte, a cut 3-byte sequence, an overlong '/',
	 * a surrogate, then valid é and an emoji. */
	struct metrics_label l[] = {{"service", "a\x80z\xe2\x82|\xc0\xaf|\xed\xa0\x80|é🙂"}};
	metrics_sample_u64(m, "x", l, 1, 1);
	const char *want =
	    "x{service=\"a\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd|"
	    "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|é🙂\"} 1\n";
	ASSERT_STREQ(done(m), want);
}

TEST(test_help_escapes_backslash_and_newline_but_not_quotes)
{
	struct metrics_text *m = text_new();
	metrics_family(m, "x", "counter", "a \"b\" c\\d\ne\xff");
	ASSERT_STREQ(done(m), "# HELP x a \"b\" c\\\\d\\ne\xef\xbf\xbd\n# TYPE x counter\n");
}

TEST(test_histogram_buckets_are_cumulative_with_inf_sum_and_count)
{
	struct metrics_text *m = text_new();
	const double bounds[] = {0.005, 0.5, 1, 2.5};
	const uint64_t counts[] = {1, 0, 3, 2, 4}; /* the last: above 2.5 */
	struct metrics_label l[] = {{"service", "web"}};
	metrics_histogram(m, "dozed_wake_seconds", l, 1, bounds, counts, 4, 42.125);
	ASSERT_STREQ(done(m), "dozed_wake_seconds_bucket{service=\"web\",le=\"0.005\"} 1\n"
			      "dozed_wake_seconds_bucket{service=\"web\",le=\"0.5\"} 1\n"
			      "dozed_wake_seconds_bucket{service=\"web\",le=\"1\"} 4\n"
			      "dozed_wake_seconds_bucket{service=\"web\",le=\"2.5\"} 6\n"
			      "dozed_wake_seconds_bucket{service=\"web\",le=\"+Inf\"} 10\n"
			      "dozed_wake_seconds_sum{service=\"web\"} 42.125\n"
			      "dozed_wake_seconds_count{service=\"web\"} 10\n");
}

TEST(test_histogram_without_labels)
{
	struct metrics_text *m = text_new();
	const double bounds[] = {1};
	const uint64_t counts[] = {0, 0};
	metrics_histogram(m, "h", NULL, 0, bounds, counts, 1, 0);
	ASSERT_STREQ(done(m),
		     "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST(test_doubles_read_back_exactly_and_special_values)
{
	struct metrics_text *m = text_new();
	metrics_sample_double(m, "a", NULL, 0, 0.1);
	metrics_sample_double(m, "b", NULL, 0, 1e21);
	metrics_sample_double(m, "c", NULL, 0, 1.0 / 3);
	metrics_sample_double(m, "d", NULL, 0, 1.0 / 0.0);
	metrics_sample_double(m, "e", NULL, 0, -1.0 / 0.0);
	metrics_sample_double(m, "f", NULL, 0, 0.0 / 0.0);
	ASSERT_STREQ(done(m), "a 0.1\nb 1e+21\nc 0.3333333333333333\nd +Inf\ne -Inf\nf NaN\n");
}

/* Seconds from microseconds are written from their digits, without printf:
 * still the plain spelling, and still read back exactly. */
TEST(test_microsecond_seconds_are_plain_and_exact)
{
	struct metrics_text *m = text_new();
	metrics_sample_double(m, "a", NULL, 0, 0.005);
	metrics_sample_double(m, "b", NULL, 0, 2.5);
	metrics_sample_double(m, "c", NULL, 0, 10);
	metrics_sample_double(m, "d", NULL, 0, (double)123456789 / 1e6);
	metrics_sample_double(m, "e", NULL, 0, -0.000001);
	metrics_sample_double(m, "f", NULL, 0, 0);
	metrics_sample_double(m, "g", NULL, 0, 0.1 + 0.2);
	metrics_sample_double(m, "h", NULL, 0, 1e-7);
	ASSERT_STREQ(done(m), "a 0.005\nb 2.5\nc 10\nd 123.456789\ne -0.000001\nf 0\n"
			      "g 0.30000000000000004\nh 1e-07\n");
	/* Many: microsecond values and arbitrary bits, each read back. */
	struct metrics_text *n = text_new();
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		if (i % 2)
			v = (double)(x % 100000000000000ull) / 1e6;
		else
			memcpy(&v, &x, sizeof(v));
		if (v != v || v - v != 0)
			continue;
		size_t at = n->len;
		metrics_sample_double(n, "v", NULL, 0, v);
		ASSERT_OK(metrics_text_error(n));
		double back = strtod(n->buf + at + 2, NULL);
		if (back != v)
			FAIL("%.17g written as %.*s", v, (int)(n->len - at - 3), n->buf + at + 2);
	}
}

TEST(test_a_blob_takes_the_text_and_lives_until_its_last_reference)
{
	struct metrics_text m;
	metrics_text_init(&m);
	metrics_sample_u64(&m, "x", NULL, 0, 18446744073709551615ull);
	char *buf = m.buf;
	struct metrics_blob *b = metrics_blob_take(&m);
	ASSERT_TRUE(b != NULL);
	ASSERT_TRUE(b->text == buf && m.buf == NULL && m.len == 0);
	ASSERT_STREQ(b->text, "x 18446744073709551615\n");
	ASSERT_EQ_U(b->len, strlen(b->text));
	ASSERT_TRUE(metrics_blob_ref(b) == b);
	ASSERT_EQ_U(b->refs, 2);
	metrics_blob_unref(b);
	ASSERT_EQ_U(b->refs, 1);
	metrics_blob_unref(b);
	metrics_blob_unref(NULL);
	struct metrics_text empty;
	metrics_text_init(&empty);
	b = metrics_blob_take(&empty);
	ASSERT_TRUE(b != NULL && b->len == 0 && b->text[0] == '\0');
	metrics_blob_unref(b);
}

TEST(test_a_long_text_grows_and_stays_terminated)
{
	struct metrics_text *m = text_new();
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	struct metrics_label l[] = {{"service", name}};
	for (int i = 0; i < 1000; i++)
		metrics_sample_u64(m, "x", l, 1, (uint64_t)i);
	const char *t = done(m);
	ASSERT_TRUE(m->len > 300000);
	ASSERT_TRUE(strstr(t, "} 999\n") == t + m->len - 6);
}

TEST(test_free_accepts_an_unused_text)
{
	struct metrics_text m;
	metrics_text_init(&m);
	ASSERT_OK(metrics_text_error(&m));
	ASSERT_TRUE(m.buf == NULL);
	metrics_text_free(&m);
	metrics_text_free(NULL);
}

TEST(test_promtool_accepts_the_writers_output_with_nasty_names)
{
	struct metrics_text *m = text_new();
	const char *names[] = {"web",	      "a\\b",	     "say \"hi\"", "two\nlines",
			       "caf\xc3\xa9", "bad\xff\xfe", "{}=,",	   ""};
	metrics_family(m, "dozed_service_state", "gauge",
		       "1 for the service's state, 0 for the others; \"quoted\" \\ and\nnewline.");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct metrics_label l[] = {{"service", names[i]}, {"state", "awake"}};
		metrics_sample_u64(m, "dozed_service_state", l, 2, i % 2);
	}
	metrics_family(m, "dozed_wakes_total", "counter", "Wakes by trigger.");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct metrics_label l[] = {{"service", names[i]}, {"trigger", "connection"}};
		metrics_sample_u64(m, "dozed_wakes_total", l, 2, i);
	}
	metrics_family(m, "dozed_wake_seconds", "histogram", "Connect to first byte.");
	const double bounds[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30};
	const uint64_t counts[13] = {1, 2, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct metrics_label l[] = {{"service", names[i]}};
		metrics_histogram(m, "dozed_wake_seconds", l, 1, bounds, counts, ARRAY_SIZE(bounds),
				  31.5);
	}
	metrics_family(m, "dozed_build_info", "gauge", "The version.");
	struct metrics_label v[] = {{"version", "0.2.0"}};
	metrics_sample_u64(m, "dozed_build_info", v, 1, 1);
	metrics_family(m, "dozed_ratio", "gauge", "A float.");
	metrics_sample_double(m, "dozed_ratio", NULL, 0, 0.0 / 0.0);

	char out[4096];
	int status = promtool_check(done(m), out, sizeof(out));
	if (status != 0)
		FAIL("promtool check metrics exited %d: %s\non:\n%s", status, out, m->buf);
}

/* The check itself catches what it should: a broken text fails it. */
TEST(test_promtool_refuses_an_unescaped_value)
{
	char out[4096];
	int status = promtool_check("# HELP x_total a\n# TYPE x_total counter\n"
				    "x_total{service=\"a\"b\"} 1\n",
				    out, sizeof(out));
	ASSERT_TRUE(status != 0);
}
