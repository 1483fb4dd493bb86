// SPDX-License-Identifier: MIT
#include "local_addr.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dozed/log.h"

struct local_addr {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
};

int local_addr_new(struct local_addr **out)
{
	struct local_addr *la = calloc(1, sizeof(*la));
	if (!la)
		return log_error_errno(ENOMEM, "Failed to allocate the local address check");
	la->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!la->nl || mnl_socket_bind(la->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		local_addr_free(la);
		return log_error_errno(r, "Failed to open a route netlink socket for the "
					  "activator's local address check");
	}
	la->portid = mnl_socket_get_portid(la->nl);
	la->seq = (uint32_t)time(NULL);
	*out = la;
	return 0;
}

void local_addr_free(struct local_addr *la)
{
	if (!la)
		return;
	if (la->nl)
		mnl_socket_close(la->nl);
	free(la);
}

/* The address to ask about, with a v4-mapped IPv6 one asked as the IPv4 it is. */
static int addr_of(const struct sockaddr_storage *sa, uint8_t *family, void *buf, size_t *len)
{
	if (sa->ss_family == AF_INET) {
		memcpy(buf, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
		*len = 4;
		return 0;
	}
	if (sa->ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(buf, &a6->s6_addr[12], 4);
		*family = AF_INET;
		*len = 4;
	} else {
		memcpy(buf, a6, 16);
		*family = AF_INET6;
		*len = 16;
	}
	return 0;
}

int local_addr_check(struct local_addr *la, const struct sockaddr_storage *addr)
{
	uint8_t family;
	unsigned char a[16];
	size_t alen;
	if (addr_of(addr, &family, a, &alen) < 0)
		return 0;

	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++la->seq;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = (unsigned char)(alen * 8);
	mnl_attr_put(nlh, RTA_DST, alen, a);
	if (mnl_socket_sendto(la->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	/* The answer is queued by the time sendto() returns; replies with
	 * another sequence number are late answers to an earlier question. */
	for (;;) {
		ssize_t got = mnl_socket_recvfrom(la->nl, buf, sizeof(buf));
		if (got < 0)
			return errno == EAGAIN ? -ETIME : -errno;
		int n = (int)got;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, n);
		     m = mnl_nlmsg_next(m, &n)) {
			if (m->nlmsg_seq != la->seq || m->nlmsg_pid != la->portid)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
				/* No route at all (unreachable, prohibited): not ours. */
				return e->error == 0 ? -EPROTO : 0;
			}
			if (m->nlmsg_type != RTM_NEWROUTE)
				return -EPROTO;
			const struct rtmsg *r = mnl_nlmsg_get_payload(m);
			return r->rtm_type == RTN_LOCAL ? 1 : 0;
		}
	}
}

bool sockaddr_is_loopback(const struct sockaddr_storage *addr)
{
	uint8_t family;
	unsigned char a[16];
	size_t alen;
	if (addr_of(addr, &family, a, &alen) < 0)
		return false;
	if (family == AF_INET)
		return a[0] == 127;
	return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a);
}
