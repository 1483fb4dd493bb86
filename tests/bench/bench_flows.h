/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Flows for bench_fleet's test cgroups: a peer namespace across a veth pair,
 * every address of FLOWS_NET its own, and a process that walks the cgroups
 * sending one datagram to each of as many peer addresses from each: one flow
 * per (cgroup, address) in the flow counter's map, counted as activity (UDP
 * with payload, not DNS or NTP).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>

#include "bench.h"

#define FLOWS_LOCAL_CIDR "10.215.0.1/24"
#define FLOWS_PEER_CIDR	 "10.215.0.2/24"
#define FLOWS_PEER_ADDR	 "10.215.0.2"
#define FLOWS_NET	 "10.216.0.0/16" /* every address of it is the peer's */
#define FLOWS_BASE	 0x0ad80000u	 /* 10.216.0.0 */
#define FLOWS_PORT	 9000

/* The peer, its routes, and a socket there on FLOWS_PORT that takes the
 * datagrams (so that no ICMP comes back): its fd, or -errno. */
static inline int flows_peer_add(void)
{
	int peer_fd = -1;
	int r = netns_add_peer(FLOWS_LOCAL_CIDR, FLOWS_PEER_CIDR, &peer_fd);
	if (r < 0)
		return r;
	const char *const here[] = {"ip", "route", "add", FLOWS_NET, "via", FLOWS_PEER_ADDR, NULL};
	const char *const there[] = {"ip", "route", "add", "local", FLOWS_NET, "dev", "lo", NULL};
	r = run_cmd(-1, here, NULL);
	if (r == 0)
		r = run_cmd(peer_fd, there, NULL);
	if (r != 0) {
		fprintf(stderr, "bench: adding the routes to %s: %s\n", FLOWS_NET,
			r < 0 ? strerror(-r) : "ip route failed");
		close(peer_fd);
		return -EIO;
	}
	int fd = netns_socket(peer_fd, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC);
	close(peer_fd); /* the socket and the veth keep the namespace */
	if (fd < 0)
		return fd;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(FLOWS_PORT)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* In a child, so that the caller's cgroup and memory stay as they are: from
 * each of the n cgroups, a datagram to each of per_cgroup peer addresses. */
static inline int flows_make(const char *const *cgroups, size_t n, unsigned per_cgroup)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		static const char payload[64] = "a request";
		for (size_t i = 0; i < n; i++) {
			/* A socket counts for the cgroup its creator was in when made. */
			int r = bench_cgroup_enter(cgroups[i]);
			int fd = r < 0 ? -1 : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (fd < 0) {
				fprintf(stderr, "bench: flows from %s: %s\n", cgroups[i],
					strerror(r < 0 ? -r : errno));
				_exit(1);
			}
			struct sockaddr_in sa = {.sin_family = AF_INET,
						 .sin_port = htons(FLOWS_PORT)};
			for (unsigned k = 0; k < per_cgroup; k++) {
				sa.sin_addr.s_addr =
				    htonl(FLOWS_BASE | (k / 254) << 8 | (k % 254 + 1));
				if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&sa,
					   sizeof(sa)) < 0) {
					fprintf(stderr, "bench: a datagram from %s: %s\n",
						cgroups[i], strerror(errno));
					_exit(1);
				}
			}
			close(fd);
		}
		_exit(0);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}
