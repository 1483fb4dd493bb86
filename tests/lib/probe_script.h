/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The protocol probes' tests: a scripted server (not ready answers, then
 * ready ones), a held client, and a fixture that starts the probe itself.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "activator_fixture.h"
#include "dozed/probe_spec.h"
#include "fixture.h"

#define MAX_CONNS 256

enum conn_state { CONN_NEW, CONN_CLIENT, CONN_LINGER, CONN_STREAM };

struct conn {
	int fd;
	enum conn_state state;
	char line[64];
	size_t len;
};

/*
 * A server on 127.0.0.1:SERVICE_PORT run by a thread: a connection whose
 * first byte is 'R' is a relayed client ("R<n>\n" gets "A<n>\n"); any other
 * is a probe, answered by the phase the test set: not_ready (NULL: silence,
 * the connection held open), an endless stream of garbage, or ready. A probe
 * answered stays open until the prober closes it, as Redis does.
 */
struct script {
	const void *not_ready;
	size_t not_ready_len;
	bool stream; /* phase 0: garbage without end */
	const void *ready;
	size_t ready_len;
	atomic_int phase; /* 0: not ready yet, 1: ready */
	atomic_bool stop;
	atomic_int probes[2];	/* probe connections answered in each phase */
	atomic_int served;	/* client requests answered */
	atomic_ullong ready_us; /* the first ready answer went out */
	atomic_ullong streamed; /* garbage bytes written */
	int lfd;
	int error;
	struct conn conns[MAX_CONNS];
	size_t n;
};

/* One held client: "R0\n", and whether "A0\n" came back. */
struct client {
	atomic_int answered;
	int error;
};

/* PostgreSQL 15's answer recorded as tests/unit/fixtures/probe/NAME.bin, freed with the test. */
char *pg_answer(const char *name, size_t *len);
/* On 127.0.0.1:SERVICE_PORT, unless s->lfd listens already. */
void script_start(struct script *s, struct thread *t);
void script_stop(struct fixture *f, struct script *s, struct thread *t);
void *client_main(void *arg);
bool held_one(void *arg);	 /* one client held for SERVICE_ID */
bool probes_answered(void *arg); /* three not-ready answers went out */
bool ready_or_failed(void *arg);
/* A fixture whose test starts the probe itself, once the client is held. */
struct fixture *held_fixture(uint64_t wake_timeout_ms, struct client *c, struct thread *ct);
void probe_with(struct fixture *f, enum probe_kind kind, bool during_stop);
