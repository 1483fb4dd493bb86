/* SPDX-License-Identifier: MIT */
#pragma once

/* Socket and address helpers shared by every part. No state, no logging. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

socklen_t sockaddr_len(const struct sockaddr_storage *sa);
/* The port of an AF_INET or AF_INET6 address, in host order. */
uint16_t sockaddr_port(const struct sockaddr_storage *sa);
/* "1.2.3.4:80" or "[::1]:80"; returns buf. */
const char *sockaddr_to_string(const struct sockaddr_storage *sa, char *buf, size_t len);
/* A v4-mapped IPv6 address (a dual-stack socket's IPv4 peer) becomes AF_INET. */
void sockaddr_unmap_v4(struct sockaddr_storage *sa);

/* Sets SO_LINGER 0 and closes: the peer sees a reset, not a FIN. */
void socket_close_with_reset(int fd);
/* A non-blocking TCP socket for dst's family carrying SO_MARK = mark, connect started. */
int socket_connect_marked(const struct sockaddr_storage *dst, uint32_t mark);
/* Of such a socket's connect: 0 when connected, -EINPROGRESS while still
 * connecting, else why it failed. */
int socket_connect_result(int fd);
