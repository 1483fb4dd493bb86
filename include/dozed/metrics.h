/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A writer of the Prometheus text exposition format (version 0.0.4): HELP
 * and TYPE lines, samples with escaped label values, histograms. Pure: no I/O,
 * no clock. The caller owns the struct and frees its text with
 * metrics_text_free(). Errors are sticky: after the first failed allocation
 * every call is a no-op and metrics_text_error() returns -ENOMEM, so a
 * renderer checks once, at the end.
 *
 * Label values may hold any byte (a container name is the runtime's to
 * choose): backslash, double quote and newline are escaped as the format
 * requires; bytes that are not valid UTF-8 are replaced with U+FFFD, since
 * Prometheus refuses a scrape that holds any.
 */

#include <stddef.h>
#include <stdint.h>

struct metrics_text {
	char *buf; /* NUL-terminated once anything was written; NULL before */
	size_t len, cap;
	int err; /* 0 or -ENOMEM */
};

struct metrics_label {
	const char *name; /* [a-zA-Z_][a-zA-Z0-9_]* */
	const char *value;
};

void metrics_text_init(struct metrics_text *m);
void metrics_text_free(struct metrics_text *m);
int metrics_text_error(const struct metrics_text *m);

/*
 * A rendered exposition, immutable and shared by reference: every scrape
 * that is answered with it, and the daemon's reuse of it, hold one
 * reference each, so that many slow scrapers of one render cost one copy of
 * its text. Single-threaded, like the loop it lives on.
 */
struct metrics_blob {
	unsigned refs;
	size_t len;
	char *text; /* len bytes and a NUL; "" when len is 0 */
};

/* A blob of m's text, taking its buffer (no copy; m is left empty), with one
 * reference; NULL when m holds an error or out of memory (m is freed). */
struct metrics_blob *metrics_blob_take(struct metrics_text *m);
struct metrics_blob *metrics_blob_ref(struct metrics_blob *b);
/* Drops one reference; the last frees the blob. Accepts NULL. */
void metrics_blob_unref(struct metrics_blob *b);

/* "# HELP name help" and "# TYPE name type"; type is "counter", "gauge" or
 * "histogram". Once per family, before its samples. */
void metrics_family(struct metrics_text *m, const char *name, const char *type, const char *help);

/* name{labels} value; n may be 0 (labels NULL). */
void metrics_sample_u64(struct metrics_text *m, const char *name,
			const struct metrics_label *labels, size_t n, uint64_t value);
void metrics_sample_double(struct metrics_text *m, const char *name,
			   const struct metrics_label *labels, size_t n, double value);

/*
 * One histogram's series: name_bucket{labels,le="B"} for each upper bound
 * bounds[0..n_bounds) (ascending, in the metric's unit), then le="+Inf",
 * name_sum and name_count. counts[0..n_bounds] are per bucket, not
 * cumulative: counts[i] is observations <= bounds[i] and > bounds[i-1];
 * counts[n_bounds] those above the last bound. The writer makes them
 * cumulative.
 */
void metrics_histogram(struct metrics_text *m, const char *name, const struct metrics_label *labels,
		       size_t n, const double *bounds, const uint64_t *counts, size_t n_bounds,
		       double sum);
