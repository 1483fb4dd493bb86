// SPDX-License-Identifier: MIT
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/macro.h"

static int link_set_up(const char *ifname)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

int netns_enter_private(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		int r = -errno;
		fprintf(stderr, "netns: unshare(CLONE_NEWNET) failed: %s (tests need root)\n",
			strerror(-r));
		return r;
	}
	return link_set_up("lo");
}

int netns_socket(int ns_fd, int domain, int type)
{
	if (ns_fd < 0) {
		int fd = socket(domain, type, 0);
		return fd < 0 ? -errno : fd;
	}

	_cleanup_close_ int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (here < 0)
		return -errno;
	if (setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	int fd = socket(domain, type, 0);
	int r = fd < 0 ? -errno : fd;
	if (setns(here, CLONE_NEWNET) < 0) {
		/* Being left in the wrong namespace would make the test lie. */
		perror("netns: returning to the test namespace");
		abort();
	}
	return r;
}

int run_cmd(int ns_fd, const char *const argv[], char **out)
{
	int pipefd[2] = {-1, -1};
	if (out && pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		if (out) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return r;
	}
	if (pid == 0) {
		if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) < 0)
			_exit(126);
		if (out && dup2(pipefd[1], STDOUT_FILENO) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "run_cmd: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int r = 0;
	if (out) {
		close(pipefd[1]);
		size_t cap = 4096, len = 0;
		char *buf = malloc(cap);
		for (;;) {
			if (!buf) {
				r = -ENOMEM;
				break;
			}
			if (len + 1 == cap) {
				char *bigger = realloc(buf, cap * 2);
				if (!bigger) {
					free(buf);
					buf = NULL;
					continue;
				}
				buf = bigger;
				cap *= 2;
			}
			ssize_t n = read(pipefd[0], buf + len, cap - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		close(pipefd[0]);
		if (buf)
			buf[len] = '\0';
		*out = buf;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (r < 0)
		return r;
	if (!WIFEXITED(status))
		return -ECHILD;
	return WEXITSTATUS(status);
}

int netns_new_veth_peer(const char *here_dev, const char *peer_dev, int *peer_fd)
{
	_cleanup_close_ int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (here < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	_cleanup_close_ int peer = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int r = peer < 0 ? -errno : link_set_up("lo");
	if (setns(here, CLONE_NEWNET) < 0) {
		perror("netns: returning to the test namespace");
		abort();
	}
	if (r < 0)
		return r;

	char peer_path[64];
	snprintf(peer_path, sizeof(peer_path), "/proc/%d/fd/%d", getpid(), peer);
	const char *add[] = {"ip",   "link", "add",    "dev",	here_dev,  "type", "veth",
			     "peer", "name", peer_dev, "netns", peer_path, NULL};
	const char *up_here[] = {"ip", "link", "set", here_dev, "up", NULL};
	const char *up_peer[] = {"ip", "link", "set", peer_dev, "up", NULL};
	if (run_cmd(-1, add, NULL) != 0 || run_cmd(-1, up_here, NULL) != 0 ||
	    run_cmd(peer, up_peer, NULL) != 0) {
		fprintf(stderr, "netns: setting up the veth pair with ip(8) failed\n");
		return -EIO;
	}
	*peer_fd = TAKE_FD(peer);
	return 0;
}

int netns_add_peer(const char *local_cidr, const char *peer_cidr, int *peer_fd)
{
	int peer;
	int r = netns_new_veth_peer("dzv0", "dzv1", &peer);
	if (r < 0)
		return r;
	const char *addr_here[] = {"ip", "addr", "add", local_cidr, "dev", "dzv0", NULL};
	const char *addr_peer[] = {"ip", "addr", "add", peer_cidr, "dev", "dzv1", NULL};
	if (run_cmd(-1, addr_here, NULL) != 0 || run_cmd(peer, addr_peer, NULL) != 0) {
		fprintf(stderr, "netns: addressing the veth pair with ip(8) failed\n");
		close(peer);
		return -EIO;
	}
	*peer_fd = peer;
	return 0;
}
