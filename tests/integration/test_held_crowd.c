// SPDX-License-Identifier: MIT
/*
 * Held clients that misbehave cost nothing they should not, and silent ones
 * never crowd out real ones (tests/lib/activator_fixture.h, real sockets
 * behind our nft table): a client that sends and half-closes does not make
 * the loop spin; running out of descriptors pauses accepting, logs once and
 * recovers; a full service lets a silent client go for a real one during a
 * wake too, and with wake on connect; a real client whose bytes are there is
 * never evicted by those accepted after it; an IPv6 client is its /64.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "capture.h"
#include "evloop.h"
#include "harness.h"
#include "netns.h"
#include "activator_fixture.h"
#include "tcp.h"

#define LOOP_TURNS 1000

static int connect_from(const char *src)
{
	int fd = tcp_connect_from(src, "127.0.0.1", SERVICE_PORT);
	if (fd < 0)
		FAIL("connect from %s: %s", src, strerror(-fd));
	test_defer_close(fd);
	return fd;
}

/* Turns of the loop that wait for nothing: a ready event is handled each turn. */
static void loop_turns(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static bool handled_one(void *arg)
{
	struct activator_counters c = counters(arg);
	return c.held_now >= 1 && c.held_events >= 1;
}

/* --- D2: send, then half-close ------------------------------------------------ */

static void assert_half_closed_client_is_not_handled_again_and_again(size_t wake_min_bytes)
{
	struct fixture *f = fixture_new(10000, true);
	f->start_on_wake = false; /* a slow start: the client stays held */
	f->wake_min_bytes = wake_min_bytes;
	int fd = connect_from("127.0.0.2");
	ASSERT_OK(tcp_write_all(fd, "R1\n", 3));
	ASSERT_TRUE(shutdown(fd, SHUT_WR) == 0);
	evloop_run_until(f->base, handled_one, f, 5000, "the client held and its FIN seen");
	uint64_t before = counters(f).held_events;
	loop_turns(f, LOOP_TURNS);
	uint64_t after = counters(f).held_events;
	/* At most its FIN once more; spinning, it would be every turn. */
	if (after - before > 2)
		FAIL("a held half-closed client was handled %llu times in %d turns of the loop",
		     (unsigned long long)(after - before), LOOP_TURNS);
	ASSERT_EQ_U(counters(f).held_now, 1);
	ASSERT_EQ_U(f->wakes_requested, 1);
}

TEST(test_held_client_that_sent_and_half_closed_does_not_spin_wake_on_data)
{
	assert_half_closed_client_is_not_handled_again_and_again(1);
}

TEST(test_held_client_that_sent_and_half_closed_does_not_spin_wake_on_connect)
{
	assert_half_closed_client_is_not_handled_again_and_again(0);
}

/* --- D3: out of descriptors ------------------------------------------------- */

struct backend {
	int lfd;
	int served;
};

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	int fd = accept_client(b->lfd);
	if (fd >= 0 && answer_request(fd) == 0)
		b->served++;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static pid_t client_pid = -1;
static int client_status = -1;

static void client_kill(void *arg)
{
	(void)arg;
	if (client_pid > 0 && client_status < 0) {
		kill(client_pid, SIGKILL);
		waitpid(client_pid, NULL, 0);
	}
}

static bool client_exited(void *arg)
{
	(void)arg;
	int st;
	if (waitpid(client_pid, &st, WNOHANG) == client_pid)
		client_status = st;
	return client_status >= 0;
}

static size_t lines_with(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

TEST(test_out_of_descriptors_accepting_pauses_logs_once_and_recovers)
{
	struct fixture *f = fixture_new(10000, true);
	struct backend b = {.lfd = tcp_listen("127.0.0.1", SERVICE_PORT)};
	ASSERT_TRUE(b.lfd >= 0);
	test_defer_close(b.lfd);
	int go[2], connected[2];
	ASSERT_TRUE(pipe(go) == 0 && pipe(connected) == 0);
	client_pid = fork();
	ASSERT_TRUE(client_pid >= 0);
	if (client_pid == 0) {
		/* Its own descriptors: a client of the host, told when to go. */
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
		if (fd < 0 || write(connected[1], "c", 1) != 1 || tcp_write_all(fd, "R1\n", 3) < 0)
			_exit(3);
		char reply[8] = {0};
		ssize_t n = read(fd, reply, sizeof(reply) - 1);
		_exit(n == 3 && memcmp(reply, "A1\n", 3) == 0 ? 0 : 4);
	}
	test_defer(client_kill, NULL);
	struct rlimit was;
	ASSERT_TRUE(getrlimit(RLIMIT_NOFILE, &was) == 0);
	capture_stderr_begin();
	/* No descriptor left: the lowest free one is past the limit. */
	int lowest = dup(0);
	ASSERT_TRUE(lowest >= 0);
	close(lowest);
	struct rlimit none = {.rlim_cur = (rlim_t)lowest, .rlim_max = was.rlim_max};
	ASSERT_TRUE(setrlimit(RLIMIT_NOFILE, &none) == 0);
	char c;
	ASSERT_TRUE(write(go[1], "g", 1) == 1 && read(connected[0], &c, 1) == 1);
	/* The client waits in the listener's queue, the listener readable. */
	loop_turns(f, LOOP_TURNS);
	uint64_t accepted_without_fds = counters(f).accepted;
	ASSERT_TRUE(setrlimit(RLIMIT_NOFILE, &was) == 0);
	struct thread t;
	thread_start(&t, backend_main, &b);
	evloop_run_until(f->base, client_exited, NULL, 15000, "the client to be served");
	thread_finish(f, &t, 5000, "the backend");
	char *log = capture_stderr_end();
	size_t failures = lines_with(log, "Failed to accept on the activator port");
	free(log);
	ASSERT_EQ_U(accepted_without_fds, 0);
	if (failures > 1)
		FAIL("%zu messages for one lack of descriptors in %d turns of the loop", failures,
		     LOOP_TURNS);
	ASSERT_EQ_U(failures, 1);
	ASSERT_TRUE(WIFEXITED(client_status) && WEXITSTATUS(client_status) == 0);
	ASSERT_EQ_U(b.served, 1);
	ASSERT_GE_U(counters(f).accept_paused, 1);
}

static bool rejected_over_total(void *arg)
{
	return counters(arg).rejected_full >= 1;
}

TEST(test_held_connections_across_services_are_bounded_by_max_held_total)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.max_held_total = 3;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->start_on_wake = false;
	for (int i = 0; i < 4; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", 2 + i);
		int fd = connect_from(src);
		ASSERT_OK(tcp_write_all(fd, "R1\n", 3)); /* real: none is evicted */
	}
	evloop_run_until(f->base, rejected_over_total, f, 5000, "the fourth client refused");
	ASSERT_EQ_U(counters(f).held_now, 3);
	ASSERT_EQ_U(counters(f).rejected_full, 1);
}

/* --- D4: silent clients crowding real ones out -------------------------------- */

static bool wake_asked(void *arg)
{
	return ((struct fixture *)arg)->wakes_requested > 0;
}

static size_t want_held;
static bool held_as_wanted(void *arg)
{
	return counters(arg).held_now >= want_held;
}

static bool room_decided(void *arg)
{
	struct activator_counters c = counters(arg);
	return c.held_evicted + c.rejected_full >= 1;
}

/* Not reset: nothing to read yet, and no error. */
static void assert_still_held(int fd, const char *who)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	if (!(n < 0 && errno == EAGAIN))
		FAIL("%s was reset or closed (recv: %zd, %s)", who, n,
		     n < 0 ? strerror(errno) : "-");
}

static void assert_silent_gives_way_during_a_wake(size_t wake_min_bytes)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.max_held = 8;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->start_on_wake = false; /* a container that takes a while to start */
	f->wake_min_bytes = wake_min_bytes;
	int first = connect_from("127.0.4.1");
	ASSERT_OK(tcp_write_all(first, "R0\n", 3));
	evloop_run_until(f->base, wake_asked, f, 5000, "the wake asked for");
	for (int i = 0; i < 7; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", 2 + i);
		(void)connect_from(src);
	}
	want_held = 8;
	evloop_run_until(f->base, held_as_wanted, f, 5000, "eight clients held");
	int real = connect_from("127.0.3.1");
	ASSERT_OK(tcp_write_all(real, "R1\n", 3));
	evloop_run_until(f->base, room_decided, f, 5000, "room made for the real client, or not");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.rejected_full, 0);
	ASSERT_EQ_U(k.held_evicted, 1);
	ASSERT_EQ_U(k.held_now, 8);
	assert_still_held(real, "the real client");
	assert_still_held(first, "the client that asked for the wake");
}

TEST(test_during_a_wake_a_silent_client_gives_way_to_a_real_one_wake_on_data)
{
	assert_silent_gives_way_during_a_wake(1);
}

TEST(test_during_a_wake_a_silent_client_gives_way_to_a_real_one_wake_on_connect)
{
	assert_silent_gives_way_during_a_wake(0);
}

static bool accepted_as_wanted(void *arg)
{
	return counters(arg).accepted >= want_held;
}

TEST(test_a_real_client_is_not_evicted_by_clients_accepted_after_it_before_its_read)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.max_held = 4;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->start_on_wake = false;
	f->wake_min_bytes = 1;
	for (int i = 0; i < 4; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", 2 + i);
		(void)connect_from(src);
	}
	want_held = 4;
	evloop_run_until(f->base, held_as_wanted, f, 5000, "four silent clients held");
	/* While the loop stands still, all wait in the listener's queue: the
	 * real client with its request, then five silent ones. */
	int real = connect_from("127.0.3.1");
	ASSERT_OK(tcp_write_all(real, "R1\n", 3));
	for (int i = 0; i < 5; i++) {
		char src[32];
		snprintf(src, sizeof(src), "127.0.0.%d", 10 + i);
		(void)connect_from(src);
	}
	want_held = 10;
	evloop_run_until(f->base, accepted_as_wanted, f, 5000, "all ten accepted");
	assert_still_held(real, "the real client");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.held_now, 4);
	ASSERT_EQ_U(f->wakes_requested, 1);
}

TEST(test_ipv6_clients_of_one_64_share_the_per_client_bound)
{
	struct activator_config cfg;
	activator_config_defaults(&cfg);
	cfg.max_held_per_client = 2;
	struct fixture *f = fixture_new_config(10000, true, &cfg);
	f->start_on_wake = false;
	const char *addrs[] = {"fd00:dd::1", "fd00:dd::2", "fd00:dd::3", "fd00:dd::4",
			       "fd00:de::2"};
	for (size_t i = 0; i < 5; i++) {
		const char *argv[] = {"ip",  "-6", "addr",  "add", addrs[i],
				      "dev", "lo", "nodad", NULL};
		if (run_cmd(-1, argv, NULL) != 0)
			FAIL("ip -6 addr add %s dev lo failed: ip(8) is needed", addrs[i]);
	}
	/* Three of fd00:dd::/64 (bound 2), one of another /64. */
	for (size_t i = 1; i < 5; i++) {
		int fd = tcp_connect_from(addrs[i], "fd00:dd::1", SERVICE_PORT);
		ASSERT_TRUE(fd >= 0);
		test_defer_close(fd);
	}
	want_held = 4;
	evloop_run_until(f->base, accepted_as_wanted, f, 5000, "four clients accepted");
	struct activator_counters k = counters(f);
	ASSERT_EQ_U(k.rejected_per_client, 1);
	ASSERT_EQ_U(k.held_now, 3);
}
