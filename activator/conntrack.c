// SPDX-License-Identifier: MIT
#include "conntrack.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dozed/log.h"
#include "relay.h"

struct conntrack {
	struct mnl_socket *nl;
	uint32_t seq;
};

int conntrack_new(struct conntrack **out)
{
	struct conntrack *ct = calloc(1, sizeof(*ct));
	if (!ct)
		return log_error_errno(ENOMEM, "Failed to allocate the conntrack socket");
	ct->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!ct->nl || mnl_socket_bind(ct->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		conntrack_free(ct);
		return log_error_errno(r, "Failed to open a conntrack netlink socket");
	}
	ct->seq = (uint32_t)time(NULL);
	*out = ct;
	return 0;
}

void conntrack_free(struct conntrack *ct)
{
	if (!ct)
		return;
	if (ct->nl)
		mnl_socket_close(ct->nl);
	free(ct);
}

/* A dual-stack socket's IPv4 peer is v4-mapped; its conntrack entry is IPv4's. */
static void unmap_v4(struct sockaddr_storage *sa)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	if (sa->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};
	memcpy(&in4.sin_addr, &s6->sin6_addr.s6_addr[12], sizeof(in4.sin_addr));
	memset(sa, 0, sizeof(*sa));
	memcpy(sa, &in4, sizeof(in4));
}

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct sockaddr_storage *src,
		      const struct sockaddr_storage *dst)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	uint16_t sport, dport;
	if (src->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
		mnl_attr_put(nlh, CTA_IP_V6_SRC, sizeof(s->sin6_addr), &s->sin6_addr);
		mnl_attr_put(nlh, CTA_IP_V6_DST, sizeof(d->sin6_addr), &d->sin6_addr);
		sport = s->sin6_port;
		dport = d->sin6_port;
	} else {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, s->sin_addr.s_addr);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, d->sin_addr.s_addr);
		sport = s->sin_port;
		dport = d->sin_port;
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, sport);
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, dport);
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

/* Deletes the entry whose reply tuple is local -> peer. */
static void conntrack_delete_reply(struct conntrack *ct, const struct sockaddr_storage *local,
				   const struct sockaddr_storage *peer)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++ct->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)local->ss_family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	put_tuple(nlh, CTA_TUPLE_REPLY, local, peer);
	if (mnl_socket_sendto(ct->nl, nlh, nlh->nlmsg_len) < 0) {
		log_debug_errno(errno, "Cannot delete the conntrack entry of a reset client");
		return;
	}
	/* The kernel answered inside sendto(): drain the acks, never wait. */
	while (mnl_socket_recvfrom(ct->nl, buf, sizeof(buf)) > 0)
		;
}

void conntrack_reset_client(struct conntrack *ct, int fd)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	bool known = ct && getsockname(fd, (struct sockaddr *)&local, &llen) == 0 &&
		     getpeername(fd, (struct sockaddr *)&peer, &plen) == 0;
	socket_close_with_reset(fd);
	if (!known)
		return;
	unmap_v4(&local);
	unmap_v4(&peer);
	if (local.ss_family == peer.ss_family &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6))
		conntrack_delete_reply(ct, &local, &peer);
}
