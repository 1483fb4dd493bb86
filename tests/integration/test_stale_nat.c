// SPDX-License-Identifier: MIT
/*
 * A client that got no answer from an awake service (its SYN dropped by a
 * full backlog) leaves a conntrack entry NATed by the runtime. When the
 * service goes to sleep, a new client that happens to get the same source
 * port would have its SYN taken as that old connection's: NAT rules, our
 * redirect among them, are decided only for a new entry, so it goes to the
 * stopping container and is refused. Found by the soak test; here in a
 * private namespace with the runtime's DNAT imitated by a rule of our own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "activator_fixture.h"
#include "cmd.h"
#include "dozed/activator.h"
#include "dozed/nft.h"
#include "harness.h"
#include "netns.h"

#define SLEEPY_PORT  18090 /* published; goes to sleep in the test */
#define BEHIND_PORT  18190 /* where the "runtime" DNATs it: nothing listens */
#define STALE_PORT   40000
#define CONTROL_PORT 40004
#define FRESH_PORT   40002

/* The runtime's port forwarding, as netavark and Docker do it: a DNAT at
 * priority -100, after our redirect at -110. */
static void runtime_nat(void)
{
	cmd_run_ok(-1, (const char *const[]){"nft", "add", "table", "ip", "dozedtest_rt", NULL});
	cmd_run_ok(-1, (const char *const[]){"nft", "add", "chain", "ip", "dozedtest_rt", "out",
					     "{ type nat hook output priority -100 ; }", NULL});
	cmd_run_ok(-1,
		   (const char *const[]){"nft", "add", "rule", "ip", "dozedtest_rt", "out", "tcp",
					 "dport", "18090", "dnat", "to", "127.0.0.1:18190", NULL});
}

/* The same, with a full backlog behind it: SYNs dropped. */
static void runtime_nat_with_full_backlog(void)
{
	runtime_nat();
	cmd_run_ok(-1, (const char *const[]){"nft", "add", "chain", "ip", "dozedtest_rt", "in",
					     "{ type filter hook input priority 0 ; }", NULL});
	cmd_run_ok(-1, (const char *const[]){"nft", "add", "rule", "ip", "dozedtest_rt", "in",
					     "tcp", "dport", "18190", "drop", NULL});
}

static int socket_from(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &src.sin_addr);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		FAIL("cannot bind 127.0.0.1:%u: %s", port, strerror(errno));
	return fd;
}

static struct sockaddr_in local_addr(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A SYN that gets no answer, and a client that gives up: its entry stays. */
static void give_up_from(uint16_t port)
{
	int fd = socket_from(port);
	struct sockaddr_in sleepy = local_addr(SLEEPY_PORT);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, (const struct sockaddr *)&sleepy, sizeof(sleepy)) == 0 ||
	    errno != EINPROGRESS)
		FAIL("connect from %u: %s, expected it to be under way", port, strerror(errno));
	close(fd);
}

/* A blocking connect from port to 127.0.0.1:to: 0 when connected, else -errno. */
static int connect_to(uint16_t port, uint16_t to)
{
	int fd = socket_from(port);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in dst = local_addr(to);
	int r = connect(fd, (const struct sockaddr *)&dst, sizeof(dst)) == 0 ? 0 : -errno;
	close(fd);
	return r;
}

static int connect_from(uint16_t port)
{
	return connect_to(port, SLEEPY_PORT);
}

TEST(test_a_client_reusing_an_unanswered_port_is_redirected_once_its_entry_is_forgotten)
{
	struct fixture *f = fixture_new(1000, true);
	runtime_nat_with_full_backlog();
	give_up_from(STALE_PORT);
	give_up_from(CONTROL_PORT);

	/* Asleep: its port in the set, the container no longer behind it. */
	uint16_t port = SLEEPY_PORT;
	ASSERT_OK(nft_set_add_ports(f->nft, &port, 1));
	cmd_run_ok(
	    -1, (const char *const[]){"nft", "flush", "chain", "ip", "dozedtest_rt", "in", NULL});

	/* The kernel's part: an entry kept takes the redirect's place. */
	ASSERT_ERR(connect_from(CONTROL_PORT), ECONNREFUSED);

	int forgotten = activator_forget_unredirected(f->act, &port, 1);
	if (forgotten < 1)
		FAIL("forgot %d entries, expected those of the clients that gave up", forgotten);
	/* Now the activator takes it, as it takes a port never used before. */
	ASSERT_OK(connect_from(STALE_PORT));
	ASSERT_OK(connect_from(CONTROL_PORT));
	ASSERT_OK(connect_from(FRESH_PORT));
}

TEST(test_redirected_and_established_connections_are_not_forgotten)
{
	struct fixture *f = fixture_new(1000, true);
	/* A client redirected to the activator: its entry is ours, kept. */
	ASSERT_OK(connect_to(FRESH_PORT, SERVICE_PORT));
	uint16_t port = SERVICE_PORT;
	ASSERT_OK(activator_forget_unredirected(f->act, &port, 1));
	/* An established connection through the runtime's NAT: kept too. */
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in behind = {.sin_family = AF_INET, .sin_port = htons(BEHIND_PORT)};
	behind.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ASSERT_OK(bind(lfd, (struct sockaddr *)&behind, sizeof(behind)));
	ASSERT_OK(listen(lfd, 8));
	runtime_nat();
	int c = socket_from(STALE_PORT);
	struct sockaddr_in sleepy = local_addr(SLEEPY_PORT);
	ASSERT_OK(connect(c, (const struct sockaddr *)&sleepy, sizeof(sleepy)));
	port = SLEEPY_PORT;
	ASSERT_EQ_U(activator_forget_unredirected(f->act, &port, 1), 0);
	close(c);
	close(lfd);
}
