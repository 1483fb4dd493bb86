// SPDX-License-Identifier: MIT
#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "dozed/macro.h"

int tcp_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int tcp_listen(const char *addr, uint16_t port)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int r = tcp_sockaddr(addr, port, &sa, &len);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 4096) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int tcp_socket_for(const struct sockaddr_storage *sa, uint32_t mark, int flags)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int tcp_connect(const char *addr, uint16_t port, uint32_t mark)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int r = tcp_sockaddr(addr, port, &sa, &len);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = tcp_socket_for(&sa, mark, 0);
	if (fd < 0)
		return fd;
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		return -errno;
	return TAKE_FD(fd);
}

bool tcp_connect_completes(const char *addr, uint16_t port, unsigned ms)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (tcp_sockaddr(addr, port, &sa, &len) < 0)
		return false;
	_cleanup_close_ int fd = tcp_socket_for(&sa, 0, SOCK_NONBLOCK);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, len) == 0)
		return true;
	if (errno != EINPROGRESS)
		return false;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, (int)ms) != 1)
		return false;
	int err = 0;
	socklen_t elen = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	return err == 0;
}

int tcp_accept_within(int lfd, unsigned ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int n = poll(&p, 1, (int)ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int tcp_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t tcp_read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}
