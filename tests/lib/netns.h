/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Network namespaces for tests, so nothing a test does reaches the host's
 * network or ruleset. A test calls netns_enter_private() first; everything
 * it creates dies with its process.
 */

/* Moves the calling process into a new network namespace with lo up. */
int netns_enter_private(void);

/*
 * Creates a second namespace (a "remote host") joined to the current one by a
 * veth pair: here dev "dzv0" with local_cidr, there "dzv1" with peer_cidr
 * (e.g. "10.211.0.1/24"). Stores the peer namespace's fd in *peer_fd.
 */
int netns_add_peer(const char *local_cidr, const char *peer_cidr, int *peer_fd);
/* The same without addresses: a new namespace with lo up, joined by a veth
 * pair here_dev (here) <-> peer_dev (there), both up. */
int netns_new_veth_peer(const char *here_dev, const char *peer_dev, int *peer_fd);

/* Creates a socket in namespace ns_fd (-1: the current one); the caller stays here. */
int netns_socket(int ns_fd, int domain, int type);

/* Runs argv[0] (PATH lookup) in namespace ns_fd (-1: current), waits for it.
 * Returns its exit status (0..255) or -errno if it could not run. stdout is
 * captured into *out (malloc'd, NUL-terminated) when out is not NULL. */
int run_cmd(int ns_fd, const char *const argv[], char **out);
