/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The activator under test with real redirection: our nft table in a private
 * network namespace sends connections for SERVICE_PORT to the activator, and
 * the fixture answers its callbacks as the daemon would. Clients and backends
 * run in threads; the event loop runs in the test's main thread.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "dozed/activator.h"

#define ACTIVATOR_PORT 15001
#define SERVICE_PORT   18080
#define OTHER_PORT     18081
#define MARK	       0x1d0
#define SERVICE_ID     7

struct event_base;
struct nft_ctx;

struct fixture {
	struct event_base *base;
	struct activator *act;
	struct nft_ctx *nft;
	struct activator_config cfg;
	size_t wake_min_bytes;
	bool start_on_wake; /* act as the daemon: "starting" as soon as asked */
	atomic_int wakes_requested;
	atomic_int ready;
	atomic_int failed;
	int fail_reason;
	char last_answer[160]; /* wake_failed's, the last time */
	uint64_t ready_at_us;
	uint64_t probe_us;
	/* Set by fixture_report_first_response: the activator's first_response, passed on. */
	void (*first_response)(void *ud, uint64_t service_id, uint64_t us);
	void *first_response_ud;
};

/* In a new private network namespace; freed when the test ends. With nft,
 * SERVICE_PORT and OTHER_PORT start in the redirect set. */
struct fixture *fixture_new(uint64_t wake_timeout_ms, bool with_nft);
/* The same, the activator made with cfg (its port, mark and wake timeout
 * are the fixture's); cfg NULL: activator_config_defaults(). */
struct fixture *fixture_new_config(uint64_t wake_timeout_ms, bool with_nft,
				   const struct activator_config *cfg);
struct activator_counters counters(struct fixture *f);
uint64_t now_us(void);

struct thread {
	pthread_t tid;
	atomic_bool done;
	void *(*fn)(void *);
	void *arg;
};

void thread_start(struct thread *t, void *(*fn)(void *), void *arg);
/* Runs the event loop until t is done (failing the test after timeout_ms), then joins it. */
void thread_finish(struct fixture *f, struct thread *t, unsigned timeout_ms, const char *what);

/* Replaces the activator with one whose ops have first_response too, passed
 * on to fn(ud, ...); the fixture's other callbacks stay as they are. */
void fixture_report_first_response(struct fixture *f,
				   void (*fn)(void *ud, uint64_t service_id, uint64_t us),
				   void *ud);

/* Replaces the activator with one on a single dual-stack socket [::]:ACTIVATOR_PORT
 * (IPv4 clients v4-mapped), as systemd's ListenStream=PORT hands over. */
void fixture_listen_dual_stack(struct fixture *f);

/* Raises this process's RLIMIT_NOFILE to at least need (the hard limit too,
 * which needs CAP_SYS_RESOURCE); fails the test naming the limit if it cannot. */
void fixture_raise_nofile(unsigned long need);

/* A blocking connect from src_addr (port chosen by the kernel) to addr:port,
 * with 20 s send/receive timeouts: the connected fd, or -errno. */
int tcp_connect_from(const char *src_addr, const char *addr, uint16_t port);

/* Accepts the next client that sends something: the activator's probes
 * connect and close without a byte, like any TCP health check. */
int accept_client(int lfd);
/* Reads a request line "R<n>\n" from fd (or what came before EOF) and
 * answers "A<n>\n": 0 once answered, else -errno. */
int answer_request(int fd);
