// SPDX-License-Identifier: MIT
/*
 * The eBPF flow counter's totals on the real kernel: test cgroups under the
 * cgroup2 mount, traffic over loopback in a private network namespace (what
 * the egress counter's tests asserted, for its egress totals), the flow
 * map's bound and its deletions. What counts as activity is
 * test_flows_net.c's, test_flows_rules.c's and test_flows_tcp.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/cgroup.h"
#include "dozed/flow_counter.h"
#include "dozed/macro.h"
#include "harness.h"
#include "netns.h"
#include "testcg.h"

void test_suite_teardown(void)
{
	testcg_remove_all();
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void free_counter(void *c)
{
	flow_counter_free(c);
}

static void detach(void *a)
{
	flow_counter_detach(a);
}

static struct flow_counter *counter_new(void)
{
	struct flow_counter *c = NULL;
	ASSERT_OK(flow_counter_new(0, &c));
	test_defer(free_counter, c);
	return c;
}

static struct flow_attachment *attach(struct flow_counter *c, const char *dir)
{
	struct flow_attachment *a = NULL;
	ASSERT_OK(flow_counter_attach(c, dir, &a));
	test_defer(detach, a);
	return a;
}

static int listen_loopback(unsigned short *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_TRUE(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(fd, 16));
	socklen_t len = sizeof(sa);
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&sa, &len));
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Sends n bytes from a process in cgroup dir; returns what the listener received. */
static size_t send_from_cgroup(const char *dir, size_t n)
{
	unsigned short port;
	_cleanup_close_ int lfd = listen_loopback(&port);
	pid_t pid = testcg_spawn_sender(dir, port, n);
	_cleanup_close_ int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_TRUE(cfd >= 0);
	size_t got = 0;
	char buf[65536];
	for (;;) {
		ssize_t r = read(cfd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		ASSERT_TRUE(r >= 0);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	testcg_wait_ok(pid);
	return got;
}

static struct flow_totals read_totals(struct flow_counter *c, struct flow_attachment *a)
{
	struct flow_totals t;
	ASSERT_OK(flow_counter_read(c, a, &t));
	return t;
}

TEST(test_counts_bytes_packets_and_last_activity_of_attached_cgroup)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *dir = testcg_create("sender");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, dir);

	struct flow_totals before = read_totals(c, a);
	ASSERT_EQ_U(before.egress_bytes, 0);
	ASSERT_EQ_U(before.egress_packets, 0);
	ASSERT_EQ_U(before.egress_last_ns, 0);

	const size_t sent = 1 << 20;
	/* The counter stamps packets with the coarse clock: a packet sent after
	 * t0 is stamped no earlier than the coarse clock read at t0. */
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC_COARSE);
	/* Every byte arrives: counting never drops or alters a packet. */
	ASSERT_EQ_U(send_from_cgroup(dir, sent), sent);
	uint64_t t1 = clock_ns(CLOCK_MONOTONIC);

	struct flow_totals after = read_totals(c, a);
	ASSERT_GE_U(after.egress_bytes, sent);
	ASSERT_TRUE(after.egress_packets > 0);
	ASSERT_TRUE(after.egress_last_ns >= t0 && after.egress_last_ns <= t1);
}

TEST(test_traffic_of_unattached_cgroup_is_not_counted)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *watched = testcg_create("watched");
	_cleanup_free_ char *other = testcg_create("other");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, watched);

	ASSERT_EQ_U(send_from_cgroup(other, 100000), 100000);

	struct flow_totals t = read_totals(c, a);
	ASSERT_EQ_U(t.egress_bytes, 0);
	ASSERT_EQ_U(t.egress_packets, 0);
	ASSERT_EQ_U(t.egress_last_ns, 0);
}

TEST(test_traffic_of_child_cgroup_counts_for_parent)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *parent = testcg_create("container");
	_cleanup_free_ char *child = testcg_create("container/worker/inner");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, parent);

	ASSERT_EQ_U(send_from_cgroup(child, 300000), 300000);

	struct flow_totals t = read_totals(c, a);
	ASSERT_GE_U(t.egress_bytes, 300000);
	ASSERT_TRUE(t.egress_packets > 0);
}

TEST(test_each_attached_cgroup_has_its_own_totals)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *one = testcg_create("one");
	_cleanup_free_ char *two = testcg_create("two");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a1 = attach(c, one);
	struct flow_attachment *a2 = attach(c, two);

	ASSERT_EQ_U(send_from_cgroup(two, 200000), 200000);

	ASSERT_EQ_U(read_totals(c, a1).egress_bytes, 0);
	ASSERT_GE_U(read_totals(c, a2).egress_bytes, 200000);
}

TEST(test_detach_stops_counting_and_attach_again_works)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *dir = testcg_create("cycled");
	struct flow_counter *c = counter_new();

	struct flow_attachment *a = NULL;
	ASSERT_OK(flow_counter_attach(c, dir, &a));
	ASSERT_EQ_U(send_from_cgroup(dir, 50000), 50000);
	struct flow_totals first = read_totals(c, a);
	ASSERT_GE_U(first.egress_bytes, 50000);
	flow_counter_detach(a);

	/* Detached: none of this may be counted. */
	ASSERT_EQ_U(send_from_cgroup(dir, 400000), 400000);

	/* The kernel may keep the cgroup's storage across detach (6.x does) or
	 * start afresh; either way the detached traffic is not in it. */
	struct flow_attachment *again = attach(c, dir);
	struct flow_totals t = read_totals(c, again);
	ASSERT_TRUE(
	    (t.egress_bytes == first.egress_bytes && t.egress_packets == first.egress_packets) ||
	    (t.egress_bytes == 0 && t.egress_packets == 0));
	uint64_t base = t.egress_bytes;

	ASSERT_EQ_U(send_from_cgroup(dir, 70000), 70000);
	t = read_totals(c, again);
	ASSERT_GE_U(t.egress_bytes, base + 70000);
	ASSERT_TRUE(t.egress_bytes < base + 400000);
}

TEST(test_loopback_traffic_is_only_ignored_as_loopback_and_makes_no_flow)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *dir = testcg_create("healthcheck");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, dir);

	/* A container's check of itself over its own loopback. */
	ASSERT_EQ_U(send_from_cgroup(dir, 100000), 100000);

	struct flow_totals t = read_totals(c, a);
	ASSERT_GE_U(t.egress_bytes, 100000);
	ASSERT_TRUE(t.ingress_packets > 0); /* the listener's ACKs */
	const struct flow_ignored_totals *lo = &t.ignored[FLOWS_IGN_LOOPBACK];
	ASSERT_EQ_U(lo->bytes, t.egress_bytes + t.ingress_bytes);
	ASSERT_EQ_U(lo->packets, t.egress_packets + t.ingress_packets);
	ASSERT_EQ_U(lo->packets_out, t.egress_packets);
	ASSERT_EQ_U(t.counted_bytes, 0);
	ASSERT_EQ_U(t.counted_packets, 0);
	ASSERT_EQ_U(t.counted_last_ns, 0);
	ASSERT_EQ_U(t.flows_created, 0);
	for (int k = FLOWS_IGN_NO_PAYLOAD; k < FLOWS_CLASS_MAX; k++)
		ASSERT_EQ_U(t.ignored[k].packets, 0);

	struct flow_info *flows = (struct flow_info *)1;
	size_t n = 1;
	ASSERT_OK(flow_counter_list(c, a, 0, &flows, &n));
	ASSERT_EQ_U(n, 0);
	ASSERT_TRUE(flows == NULL);
	struct flow_map_stats m;
	ASSERT_OK(flow_counter_map_stats(c, &m));
	ASSERT_EQ_U(m.live, 0);
	ASSERT_EQ_U(m.created, 0);
	ASSERT_EQ_U(m.capacity, FLOWS_MAP_MAX_ENTRIES);
}

TEST(test_a_cgroup_that_is_gone_reads_as_enoent)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *dir = testcg_create("stopped");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, dir);
	ASSERT_EQ_U(send_from_cgroup(dir, 1000), 1000);
	ASSERT_TRUE(read_totals(c, a).egress_packets > 0);

	/* The container stopped: its runtime removes its cgroup. */
	ASSERT_OK(rmdir(dir));
	struct flow_totals t;
	uint64_t deadline = test_now_ms() + 5000;
	int r;
	while ((r = flow_counter_read(c, a, &t)) == 0 && test_now_ms() < deadline)
		usleep(1000);
	ASSERT_ERR(r, ENOENT);
	struct flow_rules none = {0};
	ASSERT_ERR(flow_counter_set_rules(c, a, &none), ENOENT);
}

TEST(test_attach_to_path_that_is_not_cgroup2_is_a_clear_error)
{
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = NULL;

	capture_stderr_begin();
	int r = flow_counter_attach(c, "/tmp", &a);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_TRUE(a == NULL);
	ASSERT_CONTAINS(log, "/tmp: not a cgroup v2 directory");
}

TEST(test_attach_to_missing_path_is_a_clear_error)
{
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = NULL;

	capture_stderr_begin();
	int r = flow_counter_attach(c, "/nonexistent/dozed-cgroup", &a);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, ENOENT);
	ASSERT_CONTAINS(log, "/nonexistent/dozed-cgroup: no such cgroup directory");
}

TEST(test_attach_to_a_file_is_a_clear_error)
{
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = NULL;

	capture_stderr_begin();
	int r = flow_counter_attach(c, "/proc/self/status", &a);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_CONTAINS(log, "not a directory");
}

TEST(test_attach_twice_to_one_cgroup_is_refused)
{
	_cleanup_free_ char *dir = testcg_create("twice");
	struct flow_counter *c = counter_new();
	attach(c, dir);

	struct flow_attachment *second = NULL;
	capture_stderr_begin();
	int r = flow_counter_attach(c, dir, &second);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, EEXIST);
	ASSERT_TRUE(second == NULL);
	ASSERT_CONTAINS(log, "already counted");
}

TEST(test_attach_twice_does_not_count_twice)
{
	ASSERT_OK(netns_enter_private());
	_cleanup_free_ char *dir = testcg_create("once");
	struct flow_counter *c = counter_new();
	struct flow_attachment *a = attach(c, dir);
	struct flow_attachment *second = NULL;
	ASSERT_ERR(flow_counter_attach(c, dir, &second), EEXIST);

	const size_t sent = 100000;
	ASSERT_EQ_U(send_from_cgroup(dir, sent), sent);
	/* Headers add well under 2x the payload at loopback MTU. */
	struct flow_totals t = read_totals(c, a);
	ASSERT_GE_U(t.egress_bytes, sent);
	ASSERT_TRUE(t.egress_bytes < 2 * sent);
}

TEST(test_loading_without_root_says_to_run_as_root)
{
	/* Drop root in a child: the test itself keeps its privileges. */
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		struct flow_counter *c = NULL;
		capture_stderr_begin();
		int r = flow_counter_new(0, &c);
		char *log = capture_stderr_end();
		int ok = r == -EPERM && strstr(log, "run dozed as root") &&
			 strstr(log, "CAP_SYS_ADMIN") && strstr(log, "CAP_NET_ADMIN");
		free(log);
		flow_counter_free(c);
		_exit(ok ? 0 : 11);
	}
	testcg_wait_ok(pid);
}

static pid_t spawn_waiting_in(const char *dir, int *release_fd)
{
	int fds[2];
	ASSERT_OK(pipe(fds));
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		close(fds[1]);
		if (testcg_enter(dir) < 0)
			_exit(2);
		char b;
		/* Stays in the cgroup until the test closes the pipe. */
		while (read(fds[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(fds[0]);
	*release_fd = fds[1];
	return pid;
}

TEST(test_pid_resolves_to_its_nested_cgroup_directory)
{
	_cleanup_free_ char *dir = testcg_create("resolve/pod/app");
	int release;
	pid_t pid = spawn_waiting_in(dir, &release);

	/* The child may not have joined yet: wait for it, with a deadline. */
	_cleanup_free_ char *found = NULL;
	uint64_t deadline = test_now_ms() + 5000;
	do {
		free(found);
		found = NULL;
		ASSERT_OK(cgroup2_dir_from_pid(pid, &found));
	} while (strcmp(found, dir) != 0 && test_now_ms() < deadline && usleep(1000) == 0);
	close(release);
	testcg_wait_ok(pid);
	ASSERT_STREQ(found, dir);
}

TEST(test_pid_of_root_cgroup_resolves_to_the_mount_point)
{
	_cleanup_free_ char *mount = testcg_mount();
	_cleanup_free_ char *found = NULL;
	/* PID 1 of this machine sits in the root of the cgroup2 hierarchy or
	 * below it; either way the answer starts at the mount point. */
	ASSERT_OK(cgroup2_dir_from_pid(1, &found));
	ASSERT_TRUE(strncmp(found, mount, strlen(mount)) == 0);
}

TEST(test_missing_pid_is_a_clear_error)
{
	_cleanup_free_ char *found = NULL;
	capture_stderr_begin();
	/* Above the kernel's pid_max limit, so it cannot exist. */
	int r = cgroup2_dir_from_pid(1 << 23, &found);
	_cleanup_free_ char *log = capture_stderr_end();
	ASSERT_ERR(r, ESRCH);
	ASSERT_CONTAINS(log, "no such process");
}
