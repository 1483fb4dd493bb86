// SPDX-License-Identifier: MIT
#include "conntrack.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dozed/log.h"
#include "dozed/socket_util.h"

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

/* A ctnetlink request in buf (MNL_SOCKET_BUFFER_SIZE bytes), numbered next. */
static struct nlmsghdr *ct_request(struct conntrack *ct, char *buf, uint8_t type, uint16_t flags,
				   uint8_t family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++ct->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

/* Sends a delete; best effort, failures at debug level. */
static void ct_delete(struct conntrack *ct, struct nlmsghdr *nlh, char *buf, const char *what)
{
	if (mnl_socket_sendto(ct->nl, nlh, nlh->nlmsg_len) < 0) {
		log_debug_errno(errno, "Cannot delete the conntrack entry of %s", what);
		return;
	}
	/* The kernel answered inside sendto(): drain the acks, never wait. */
	while (mnl_socket_recvfrom(ct->nl, buf, MNL_SOCKET_BUFFER_SIZE) > 0)
		;
}

/* Deletes the entry whose reply tuple is local -> peer. */
static void conntrack_delete_reply(struct conntrack *ct, const struct sockaddr_storage *local,
				   const struct sockaddr_storage *peer)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh =
	    ct_request(ct, buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, (uint8_t)local->ss_family);
	put_tuple(nlh, CTA_TUPLE_REPLY, local, peer);
	ct_delete(ct, nlh, buf, "a reset client");
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
	sockaddr_unmap_v4(&local);
	sockaddr_unmap_v4(&peer);
	if (local.ss_family == peer.ss_family &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6))
		conntrack_delete_reply(ct, &local, &peer);
}

/* --- connections the runtime NATed before the ports were redirected ------------------- */

#define FORGET_MAX 4096 /* entries deleted per call: a bound, not a table size */

struct forget {
	const uint16_t *ports; /* network order */
	size_t n_ports;
	uint16_t activator_port; /* network order */
	/* The original tuples to delete, as the kernel sent them. */
	char (*tuples)[128];
	uint16_t *tuple_len;
	uint32_t *ids;
	size_t n;
};

static bool forget_port(const struct forget *f, uint16_t port)
{
	for (size_t i = 0; i < f->n_ports; i++)
		if (f->ports[i] == port)
			return true;
	return false;
}

/* A tuple's TCP ports, or false. */
static bool tuple_ports(const struct nlattr *tuple, uint16_t *sport, uint16_t *dport)
{
	const struct nlattr *a, *b;
	bool tcp = false, have = false;
	mnl_attr_for_each_nested(a, tuple)
	{
		if (mnl_attr_get_type(a) != CTA_TUPLE_PROTO)
			continue;
		mnl_attr_for_each_nested(b, a)
		{
			switch (mnl_attr_get_type(b)) {
			case CTA_PROTO_NUM:
				tcp = mnl_attr_get_u8(b) == IPPROTO_TCP;
				break;
			case CTA_PROTO_SRC_PORT:
				*sport = mnl_attr_get_u16(b);
				break;
			case CTA_PROTO_DST_PORT:
				*dport = mnl_attr_get_u16(b);
				have = true;
				break;
			}
		}
	}
	return tcp && have;
}

/* An attempt not yet answered, or answered and not yet acknowledged: a
 * client's next SYN from the same port would be taken as part of it, NAT and
 * all. (A SYN on a TIME_WAIT or CLOSE entry starts a new one, which the
 * redirect sees: those, thousands after a busy while, are left alone.) */
static bool stale_state(const struct nlattr *protoinfo)
{
	const struct nlattr *a, *b;
	mnl_attr_for_each_nested(a, protoinfo)
	{
		if (mnl_attr_get_type(a) != CTA_PROTOINFO_TCP)
			continue;
		mnl_attr_for_each_nested(b, a)
		{
			if (mnl_attr_get_type(b) != CTA_PROTOINFO_TCP_STATE)
				continue;
			uint8_t st = mnl_attr_get_u8(b);
			return st == TCP_CONNTRACK_SYN_SENT || st == TCP_CONNTRACK_SYN_RECV ||
			       st == TCP_CONNTRACK_SYN_SENT2;
		}
	}
	return false;
}

static int forget_entry_cb(const struct nlmsghdr *nlh, void *data)
{
	struct forget *f = data;
	const struct nlattr *a, *orig = NULL, *reply = NULL, *proto = NULL;
	uint32_t id = 0;
	bool have_id = false;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG:
			orig = a;
			break;
		case CTA_TUPLE_REPLY:
			reply = a;
			break;
		case CTA_PROTOINFO:
			proto = a;
			break;
		case CTA_ID:
			id = mnl_attr_get_u32(a);
			have_id = true;
			break;
		}
	}
	uint16_t osport = 0, odport = 0, rsport = 0, rdport = 0;
	if (!orig || !reply || !proto || !tuple_ports(orig, &osport, &odport) ||
	    !tuple_ports(reply, &rsport, &rdport))
		return MNL_CB_OK;
	/* Redirected ones answer from the activator: those are ours. */
	if (!forget_port(f, odport) || rsport == f->activator_port || !stale_state(proto))
		return MNL_CB_OK;
	uint16_t len = mnl_attr_get_payload_len(orig);
	if (f->n >= FORGET_MAX || len > sizeof(f->tuples[0]))
		return MNL_CB_OK;
	memcpy(f->tuples[f->n], mnl_attr_get_payload(orig), len);
	f->tuple_len[f->n] = len;
	f->ids[f->n] = have_id ? id : 0;
	f->n++;
	return MNL_CB_OK;
}

/* Dumps family's entries into f. The kernel fills each part of a dump as
 * it is read, so this never waits. */
static int forget_dump(struct conntrack *ct, uint8_t family, struct forget *f)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = ct_request(ct, buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family);
	uint32_t seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(ct->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	unsigned portid = mnl_socket_get_portid(ct->nl);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(ct->nl, buf, sizeof(buf));
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		int r = mnl_cb_run(buf, (size_t)n, seq, portid, forget_entry_cb, f);
		if (r <= MNL_CB_STOP)
			return r < 0 ? -errno : 0;
	}
}

static void forget_delete(struct conntrack *ct, uint8_t family, const struct forget *f, size_t i)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = ct_request(ct, buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family);
	mnl_attr_put(nlh, CTA_TUPLE_ORIG, f->tuple_len[i], f->tuples[i]);
	/* The id: a new connection that took the tuple meanwhile is not ours to delete. */
	if (f->ids[i])
		mnl_attr_put_u32(nlh, CTA_ID, f->ids[i]);
	ct_delete(ct, nlh, buf, "an unanswered NATed connection");
}

int conntrack_forget_unredirected(struct conntrack *ct, const uint16_t *ports, size_t n_ports,
				  uint16_t activator_port)
{
	if (!ct || n_ports == 0)
		return 0;
	uint16_t net[16];
	size_t n = n_ports < 16 ? n_ports : 16;
	for (size_t i = 0; i < n; i++)
		net[i] = htons(ports[i]);
	struct forget f = {.ports = net, .n_ports = n, .activator_port = htons(activator_port)};
	f.tuples = malloc(FORGET_MAX * sizeof(*f.tuples));
	f.tuple_len = malloc(FORGET_MAX * sizeof(*f.tuple_len));
	f.ids = malloc(FORGET_MAX * sizeof(*f.ids));
	int r = f.tuples && f.tuple_len && f.ids ? 0 : -ENOMEM;
	size_t forgotten = 0;
	static const uint8_t families[] = {AF_INET, AF_INET6};
	for (size_t k = 0; r == 0 && k < sizeof(families); k++) {
		f.n = 0;
		r = forget_dump(ct, families[k], &f);
		for (size_t i = 0; r == 0 && i < f.n; i++)
			forget_delete(ct, families[k], &f, i);
		forgotten += f.n;
	}
	free(f.tuples);
	free(f.tuple_len);
	free(f.ids);
	if (r < 0)
		return log_warning_errno(r, "Cannot forget the runtime's unanswered connections "
					    "to newly redirected ports");
	if (forgotten)
		log_debug("Forgot %zu unanswered connections NATed before their ports were "
			  "redirected",
			  forgotten);
	return (int)forgotten;
}
