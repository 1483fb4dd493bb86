// SPDX-License-Identifier: MIT
#include "nft_batch.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dozed/log.h"
#include "dozed/macro.h"

/* A message never outgrows a page's overrun area: element lists are split
 * into messages well under this (see nft_set.c). */
#define BATCH_PAGE_SIZE	   (256 * 1024)
#define BATCH_PAGE_OVERRUN (128 * 1024)

struct nft_batch {
	struct nft_netlink *nl;
	struct nftnl_batch *b;
	uint32_t first_seq;
	size_t n_acked; /* messages sent with NLM_F_ACK */
};

int nft_netlink_open(struct nft_netlink *nl)
{
	nl->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl->nl)
		return log_error_errno(errno, "Failed to open a netfilter netlink socket");
	if (mnl_socket_bind(nl->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = log_error_errno(errno, "Failed to bind the netfilter netlink socket");
		nft_netlink_close(nl);
		return r;
	}
	int fd = mnl_socket_get_fd(nl->nl);
	int on = 1;
	/* Acks without the echoed request, and with the kernel's own words. */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
	nl->portid = mnl_socket_get_portid(nl->nl);
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

void nft_netlink_close(struct nft_netlink *nl)
{
	if (nl->nl)
		mnl_socket_close(nl->nl);
	nl->nl = NULL;
}

int nft_batch_new(struct nft_netlink *nl, struct nft_batch **out)
{
	struct nft_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return log_error_errno(ENOMEM, "Failed to allocate an nftables batch");
	b->nl = nl;
	b->b = nftnl_batch_alloc(BATCH_PAGE_SIZE, BATCH_PAGE_OVERRUN);
	if (!b->b) {
		free(b);
		return log_error_errno(ENOMEM, "Failed to allocate an nftables batch");
	}
	nftnl_batch_begin(nftnl_batch_buffer(b->b), nl->seq++);
	int r = nftnl_batch_update(b->b);
	if (r < 0) {
		nft_batch_free(b);
		return log_error_errno(ENOMEM, "Failed to allocate an nftables batch");
	}
	b->first_seq = nl->seq;
	*out = b;
	return 0;
}

void nft_batch_free(struct nft_batch *b)
{
	if (!b)
		return;
	nftnl_batch_free(b->b);
	free(b);
}

struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type, uint16_t flags)
{
	b->n_acked++;
	return nftnl_nlmsg_build_hdr(nftnl_batch_buffer(b->b), type, NFPROTO_INET,
				     flags | NLM_F_ACK, b->nl->seq++);
}

int nft_batch_commit_msg(struct nft_batch *b)
{
	if (nftnl_batch_update(b->b) < 0)
		return log_error_errno(ENOMEM, "Failed to grow an nftables batch");
	return 0;
}

/* The kernel's explanation in an extended ack, if it gave one. */
static const char *extack_message(const struct nlmsghdr *nlh)
{
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += mnl_nlmsg_get_payload_len(&err->msg);
	const struct nlattr *attr;
	mnl_attr_for_each(attr, nlh, off)
	{
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	}
	return NULL;
}

static int ensure_sndbuf(int fd, size_t len)
{
	int cur = 0;
	socklen_t sl = sizeof(cur);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &sl) == 0 && (size_t)cur / 2 > len + 4096)
		return 0;
	int want = (int)(len + 65536);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) < 0)
		return -errno;
	return 0;
}

const char *nft_errno_hint(int err)
{
	if (err == -EPERM)
		return " (dozed needs CAP_NET_ADMIN: run it as root)";
	if (err == -EOPNOTSUPP || err == -EPROTONOSUPPORT)
		return " (is the kernel's nf_tables support loaded?)";
	return "";
}

int nft_batch_send(struct nft_batch *b, const char *op)
{
	nftnl_batch_end(nftnl_batch_buffer(b->b), b->nl->seq++);
	int r = nft_batch_commit_msg(b);
	if (r < 0)
		return r;

	int fd = mnl_socket_get_fd(b->nl->nl);
	int n_iov = nftnl_batch_iovec_len(b->b);
	_cleanup_free_ struct iovec *iov = calloc((size_t)n_iov, sizeof(*iov));
	if (!iov)
		return log_error_errno(SYNTHETIC_ERRNO(ENOMEM), "Failed to %s: out of memory", op);
	nftnl_batch_iovec(b->b, iov, (uint32_t)n_iov);
	size_t total = 0;
	for (int i = 0; i < n_iov; i++)
		total += iov[i].iov_len;
	r = ensure_sndbuf(fd, total);
	if (r < 0)
		return log_error_errno(r, "Failed to %s: cannot size the netlink send buffer", op);

	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct msghdr msg = {
	    .msg_name = &kernel,
	    .msg_namelen = sizeof(kernel),
	    .msg_iov = iov,
	    .msg_iovlen = (size_t)n_iov,
	};
	if (sendmsg(fd, &msg, 0) < 0)
		return log_error_errno(errno, "Failed to %s: sending the netlink batch", op);

	/*
	 * The kernel runs the whole transaction inside sendmsg(), so every ack
	 * is queued by now; an error ack may also come for the batch itself
	 * (EPERM without CAP_NET_ADMIN), with no ack for the messages.
	 */
	char buf[MNL_SOCKET_BUFFER_SIZE];
	size_t acks = 0;
	int first_err = 0;
	char kernel_msg[256] = "";
	while (acks < b->n_acked) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && first_err)
				break;
			return log_error_errno(errno, "Failed to %s: reading the kernel's answer",
					       op);
		}
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != b->nl->portid)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			acks++;
			if (e->error && !first_err) {
				first_err = e->error;
				const char *m = extack_message(nlh);
				if (m)
					snprintf(kernel_msg, sizeof(kernel_msg), ": %s", m);
			}
		}
	}
	if (!first_err)
		return 0;
	return log_error_errno(first_err, "Failed to %s%s%s", op, kernel_msg,
			       nft_errno_hint(first_err));
}

int nft_netlink_dump(struct nft_netlink *nl, struct nlmsghdr *req,
		     int (*cb)(const struct nlmsghdr *nlh, void *data), void *data)
{
	uint32_t seq = req->nlmsg_seq;
	if (mnl_socket_sendto(nl->nl, req, req->nlmsg_len) < 0)
		return -errno;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int r = mnl_cb_run(buf, (size_t)n, seq, nl->portid, cb, data);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}
