/* SPDX-License-Identifier: MIT */
#pragma once

/* Listening sockets and original destinations: internal to activator/. */

#include <stdint.h>
#include <sys/socket.h>

/* A non-blocking listening socket on the wildcard address of family (IPv6
 * only, for AF_INET6: SO_ORIGINAL_DST differs between families), or -errno. */
int activator_listen_on(int family, uint16_t port);
/* Where the redirected connection fd (accepted on a family socket) was going. */
int socket_original_dst(int fd, int family, struct sockaddr_storage *dst);
