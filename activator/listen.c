// SPDX-License-Identifier: MIT
/* The activator's listening sockets, and what a redirected connection was meant for. */
#include "listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/socket_util.h"
#include "dozed/macro.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif

int socket_original_dst(int fd, int family, struct sockaddr_storage *dst)
{
	socklen_t len = sizeof(*dst);
	memset(dst, 0, sizeof(*dst));
	if (family == AF_INET6 && getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &len) == 0)
		return 0;
	/* A dual-stack listener (systemd's ListenStream=PORT) sees IPv4 clients
	 * as v4-mapped: their connection, and original destination, is IPv4. */
	len = sizeof(*dst);
	return getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, dst, &len) < 0 ? -errno : 0;
}

int activator_listen_on(int family, uint16_t port)
{
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	struct sockaddr_storage ss = {0};
	if (family == AF_INET6) {
		/* One socket per family: SO_ORIGINAL_DST differs between them. */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			return -errno;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_any;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
	}
	if (bind(fd, (struct sockaddr *)&ss, sockaddr_len(&ss)) < 0)
		return -errno;
	if (listen(fd, SOMAXCONN) < 0)
		return -errno;
	return TAKE_FD(fd);
}
