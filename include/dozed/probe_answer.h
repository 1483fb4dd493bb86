/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a protocol probe sends once connected, and how the server's answer is
 * judged: pure functions (no I/O, no logging) of activator/probe_answer.c,
 * public for its unit tests and fuzzer only. The activator's prober
 * (activator/probe.c) reads an answer into a buffer of PROBE_ANSWER_MAX
 * bytes and asks after each read.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/probe_spec.h"

/* An answer this long without a verdict is not ready: garbage, or a stream
 * that never ends. Every answer judged ready fits (a PostgreSQL error, a
 * MariaDB greeting, an HTTP status line are each about 100 bytes). */
#define PROBE_ANSWER_MAX 1024
/* Room for any request probe_request_build() makes. */
#define PROBE_REQUEST_MAX (PROBE_HTTP_PATH_MAX + 128)
/* Room for any why probe_answer_judge() writes; longer ones are cut. */
#define PROBE_WHY_MAX 160

enum probe_verdict {
	PROBE_VERDICT_MORE,	 /* no verdict yet: read on */
	PROBE_VERDICT_READY,	 /* the service serves */
	PROBE_VERDICT_NOT_READY, /* it answered, or closed, but does not serve yet */
};

/*
 * The bytes a probe of spec sends once connected, into buf (cap bytes):
 * none for tcp and mysql (a MySQL server speaks first). 0 and *len, -EINVAL
 * for a kind the activator does not run (auto, healthcheck) or an HTTP path
 * not starting with '/', -ENOBUFS when cap is too small.
 */
int probe_request_build(const struct probe_spec *spec, char *buf, size_t cap, size_t *len);

/*
 * Judges the answer so far, buf[0..len) from its first byte; eof: the
 * server closed its side after it. why (why_len > 0) is always filled, in
 * words prefixed by the kind, printable ASCII (other bytes as '?'), cut to
 * fit: "postgres: the database system is starting up". An incomplete answer
 * at eof, and one of PROBE_ANSWER_MAX bytes or more still without a verdict,
 * are not ready. tcp has no answer: the prober calls a connect ready.
 */
enum probe_verdict probe_answer_judge(enum probe_kind kind, const uint8_t *buf, size_t len,
				      bool eof, char *why, size_t why_len);
