/* SPDX-License-Identifier: MIT */
#pragma once

/* TCP sockets for tests. addr is a numeric IPv4 or IPv6 address. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Fills *sa from addr and port; -EINVAL if addr is not numeric. */
int tcp_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *sa, socklen_t *len);
/* A listening socket (SO_REUSEADDR, backlog 4096), or -errno. */
int tcp_listen(const char *addr, uint16_t port);
/* A connected blocking socket with 20 s send/receive timeouts, or -errno.
 * mark != 0 sets SO_MARK first. */
int tcp_connect(const char *addr, uint16_t port, uint32_t mark);
/* Non-blocking connect: true when it completed within ms. */
bool tcp_connect_completes(const char *addr, uint16_t port, unsigned ms);
/* accept4() waiting at most ms; -ETIMEDOUT when nobody came. */
int tcp_accept_within(int lfd, unsigned ms);

int tcp_write_all(int fd, const void *buf, size_t n);
/* Reads until EOF, error or cap bytes; returns bytes read or -errno. */
ssize_t tcp_read_all(int fd, char *buf, size_t cap);
