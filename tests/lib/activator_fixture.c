// SPDX-License-Identifier: MIT
#include "activator_fixture.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/log.h"
#include "dozed/nft.h"
#include "evloop.h"
#include "harness.h"
#include "netns.h"
#include "tcp.h"

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int route_lookup(void *ud, const struct sockaddr_storage *dst, struct activator_route *route)
{
	struct fixture *f = ud;
	uint16_t port = dst->ss_family == AF_INET6
			    ? ntohs(((const struct sockaddr_in6 *)dst)->sin6_port)
			    : ntohs(((const struct sockaddr_in *)dst)->sin_port);
	if (port != SERVICE_PORT)
		return -ENOENT;
	*route =
	    (struct activator_route){.service_id = SERVICE_ID, .wake_min_bytes = f->wake_min_bytes};
	return 0;
}

static void wake_requested(void *ud, uint64_t id, const struct sockaddr_storage *client)
{
	(void)client;
	struct fixture *f = ud;
	f->wakes_requested++;
	if (f->start_on_wake && activator_service_starting(f->act, id, NULL) < 0)
		FAIL("activator_service_starting failed");
}

static void service_ready(void *ud, uint64_t id, uint64_t probe_us, uint64_t total_us)
{
	(void)id;
	(void)total_us;
	struct fixture *f = ud;
	f->ready_at_us = now_us();
	f->probe_us = probe_us;
	f->ready++;
	/* As the daemon does: new connections go straight to the service. */
	uint16_t port = SERVICE_PORT;
	if (nft_set_remove_ports(f->nft, &port, 1) < 0)
		FAIL("removing the port from the set failed");
}

static void wake_failed(void *ud, uint64_t id, int reason, const char *last_answer)
{
	(void)id;
	struct fixture *f = ud;
	snprintf(f->last_answer, sizeof(f->last_answer), "%s", last_answer);
	f->fail_reason = reason;
	f->failed++;
}

static const struct activator_ops test_ops = {
    .route_lookup = route_lookup,
    .wake_requested = wake_requested,
    .service_ready = service_ready,
    .wake_failed = wake_failed,
};

static void first_response(void *ud, uint64_t service_id, uint64_t us)
{
	struct fixture *f = ud;
	f->first_response(f->first_response_ud, service_id, us);
}

/* test_ops and first_response: an activator with it does more (it watches
 * for the first answer), so the other tests keep test_ops. */
static const struct activator_ops first_response_ops = {
    .route_lookup = route_lookup,
    .wake_requested = wake_requested,
    .service_ready = service_ready,
    .wake_failed = wake_failed,
    .first_response = first_response,
};

static void fixture_free(void *arg)
{
	struct fixture *f = arg;
	activator_free(f->act);
	nft_ctx_free(f->nft);
	if (f->base)
		event_base_free(f->base);
	free(f);
}

struct fixture *fixture_new(uint64_t wake_timeout_ms, bool with_nft)
{
	return fixture_new_config(wake_timeout_ms, with_nft, NULL);
}

struct fixture *fixture_new_config(uint64_t wake_timeout_ms, bool with_nft,
				   const struct activator_config *cfg)
{
	ASSERT_OK(netns_enter_private());
	signal(SIGPIPE, SIG_IGN);
	if (getenv("DOZED_TEST_DEBUG"))
		log_set_max_level(LOG_DEBUG);
	struct fixture *f = calloc(1, sizeof(*f));
	ASSERT_TRUE(f);
	test_defer(fixture_free, f);
	f->start_on_wake = true;
	f->base = event_base_new();
	ASSERT_TRUE(f->base);
	if (cfg)
		f->cfg = *cfg;
	else
		activator_config_defaults(&f->cfg);
	f->cfg.port = ACTIVATOR_PORT;
	f->cfg.mark = MARK;
	f->cfg.wake_timeout_us = wake_timeout_ms * 1000;
	if (with_nft) {
		ASSERT_OK(nft_ctx_new(&f->nft, "dozedtest", MARK, ACTIVATOR_PORT));
		ASSERT_OK(nft_table_create(f->nft));
		uint16_t ports[] = {SERVICE_PORT, OTHER_PORT};
		ASSERT_OK(nft_set_add_ports(f->nft, ports, 2));
	}
	ASSERT_OK(activator_new(f->base, &f->cfg, &test_ops, f, &f->act));
	return f;
}

void fixture_report_first_response(struct fixture *f,
				   void (*fn)(void *ud, uint64_t service_id, uint64_t us), void *ud)
{
	f->first_response = fn;
	f->first_response_ud = ud;
	activator_free(f->act);
	f->act = NULL;
	ASSERT_OK(activator_new(f->base, &f->cfg, &first_response_ops, f, &f->act));
}

void fixture_listen_dual_stack(struct fixture *f)
{
	activator_free(f->act);
	f->act = NULL;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int zero = 0, one = 1;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(ACTIVATOR_PORT)};
	sa.sin6_addr = in6addr_any;
	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0)
		FAIL("a dual-stack listener on [::]:%d: %s", ACTIVATOR_PORT, strerror(errno));
	ASSERT_OK(activator_new_from_fds(f->base, &f->cfg, &test_ops, f, &fd, 1, &f->act));
}

struct activator_counters counters(struct fixture *f)
{
	struct activator_counters c;
	activator_get_counters(f->act, &c);
	return c;
}

/* --- sockets and threads ---------------------------------------------------- */

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	t->fn(t->arg);
	t->done = true;
	return NULL;
}

void thread_start(struct thread *t, void *(*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->done = false;
	if (pthread_create(&t->tid, NULL, thread_main, t) != 0)
		FAIL("pthread_create failed");
}

static bool thread_is_done(void *arg)
{
	return ((struct thread *)arg)->done;
}

void thread_finish(struct fixture *f, struct thread *t, unsigned timeout_ms, const char *what)
{
	evloop_run_until(f->base, thread_is_done, t, timeout_ms, what);
	pthread_join(t->tid, NULL);
}

void fixture_raise_nofile(unsigned long need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		FAIL("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
	if (rl.rlim_cur >= need)
		return;
	rlim_t hard = rl.rlim_max;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		FAIL("raising RLIMIT_NOFILE to %lu: %s (the hard limit is %llu; raising it needs "
		     "CAP_SYS_RESOURCE)",
		     need, strerror(errno), (unsigned long long)hard);
}

int tcp_connect_from(const char *src_addr, const char *addr, uint16_t port)
{
	struct sockaddr_storage src, dst;
	socklen_t slen, dlen;
	if (tcp_sockaddr(src_addr, 0, &src, &slen) < 0 || tcp_sockaddr(addr, port, &dst, &dlen) < 0)
		return -EINVAL;
	int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&src, slen) < 0 ||
	    connect(fd, (struct sockaddr *)&dst, dlen) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int accept_client(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return -errno;
		char b;
		ssize_t r = recv(fd, &b, 1, MSG_PEEK);
		if (r > 0)
			return fd;
		close(fd);
	}
}

int answer_request(int fd)
{
	char req[64] = {0};
	size_t n = 0;
	while (n < sizeof(req) - 1 && (n == 0 || req[n - 1] != '\n')) {
		ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (n == 0 || req[0] != 'R')
		return -EPROTO;
	req[0] = 'A';
	return tcp_write_all(fd, req, n);
}
