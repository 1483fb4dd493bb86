/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The open TCP connections of a container, from its own network namespace's
 * socket table (sock_diag, with tcp_info): what a sleep would cut, and
 * whether a peer still waits for an answer. Read at the idle deadline and
 * for `dozectl status`, never per packet.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct open_conn {
	struct sockaddr_storage local, peer; /* v4-mapped peers unmapped */
	/* The peer opened it: its local port is one the namespace listens on. */
	bool inbound;
	/* The peer sent payload after the container last sent any: it waits
	 * for an answer (a long query, a command being processed). */
	bool unanswered;
	/* The peer closed its side (CLOSE_WAIT): it sent all it will, and
	 * may still wait for the answer. */
	bool half_closed;
	uint64_t last_recv_ms, last_sent_ms; /* ms since the last payload each way */
	uint64_t bytes_received, bytes_sent; /* payload, as tcp_info counts it */
};

/*
 * The established TCP connections (IPv4 and IPv6; CLOSE_WAIT ones too) of the network namespace
 * netns_fd (an fd of /proc/PID/ns/net), those with a loopback peer left out:
 * they never leave the container. *out is malloc()ed (NULL when none), the
 * caller frees it. 0; -errno, logged by the caller.
 */
int open_conns_list(int netns_fd, struct open_conn **out, size_t *n);

/*
 * The fullest listener of the namespace: how many connections wait in its
 * accept queue, and the queue's bound. A frozen service's listener fills
 * with connect-only clients, and the kernel then drops every new SYN.
 * 0 (*max 0: no listener); -errno.
 */
int open_conns_backlog(int netns_fd, unsigned *queued, unsigned *max);
