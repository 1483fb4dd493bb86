// SPDX-License-Identifier: MIT
/* The elements of the "sleeping" set: ports added, removed and listed. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/nft.h"
#include "nft_ctx.h"

/* ~20 bytes an element: 2048 keep a message far below 64 KiB. */
#define ELEMS_PER_MSG 2048

struct nftnl_set *nft_set_handle_new(const struct nft_ctx *ctx)
{
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, ctx->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_SET_SLEEPING);
	return s;
}

static int batch_add_elems_msg(struct nft_batch *b, const struct nft_ctx *ctx, uint16_t msg_type,
			       const uint16_t *ports, size_t n)
{
	struct nftnl_set *s = nft_set_handle_new(ctx);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		if (!e) {
			nftnl_set_free(s);
			return -ENOMEM;
		}
		uint16_t key = htons(ports[i]);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
		nftnl_set_elem_add(s, e);
	}
	uint16_t flags = msg_type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0;
	struct nlmsghdr *nlh = nft_batch_msg(b, msg_type, flags);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return nft_batch_commit_msg(b);
}

int nft_batch_add_set_elems(struct nft_batch *b, const struct nft_ctx *ctx, uint16_t msg_type,
			    const uint16_t *ports, size_t n)
{
	for (size_t done = 0; done < n; done += ELEMS_PER_MSG) {
		size_t chunk = n - done < ELEMS_PER_MSG ? n - done : ELEMS_PER_MSG;
		int r = batch_add_elems_msg(b, ctx, msg_type, ports + done, chunk);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_ports(const uint16_t *ports, size_t n, const char *op)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i] == 0)
			return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
					       "Cannot %s port 0: not a TCP port", op);
	return 0;
}

static int set_change_ports(struct nft_ctx *ctx, const uint16_t *ports, size_t n, bool add)
{
	const char *verb = add ? "add" : "remove";
	if (n == 0)
		return 0;
	int r = check_ports(ports, n, verb);
	if (r < 0)
		return r;
	struct nft_batch *b;
	r = nft_batch_new(&ctx->nl, &b);
	if (r < 0)
		return r;
	/* Removing: add first, in the same transaction, so that a port
	 * already absent is not an error (the kernel's delete says ENOENT). */
	r = nft_batch_add_set_elems(b, ctx, NFT_MSG_NEWSETELEM, ports, n);
	if (r >= 0 && !add)
		r = nft_batch_add_set_elems(b, ctx, NFT_MSG_DELSETELEM, ports, n);
	if (r < 0) {
		nft_batch_free(b);
		return log_error_errno(r, "Failed to build the change of %zu ports", n);
	}
	char op[160];
	snprintf(op, sizeof(op), "%s %zu port%s (first %u) %s set inet %s %s", verb, n,
		 n == 1 ? "" : "s", ports[0], add ? "to" : "from", ctx->table, NFT_SET_SLEEPING);
	r = nft_batch_send(b, op);
	nft_batch_free(b);
	return r;
}

int nft_set_add_ports(struct nft_ctx *ctx, const uint16_t *ports, size_t n)
{
	return set_change_ports(ctx, ports, n, true);
}

int nft_set_remove_ports(struct nft_ctx *ctx, const uint16_t *ports, size_t n)
{
	return set_change_ports(ctx, ports, n, false);
}

struct port_list {
	uint16_t *ports;
	size_t n, cap;
	int err;
};

static int port_list_push(struct port_list *l, uint16_t port)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint16_t *p = reallocarray(l->ports, cap, sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->ports = p;
		l->cap = cap;
	}
	l->ports[l->n++] = port;
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct port_list *l = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s) {
		l->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		l->err = -EBADMSG;
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
	for (struct nftnl_set_elem *e = it ? nftnl_set_elems_iter_next(it) : NULL; e;
	     e = nftnl_set_elems_iter_next(it)) {
		uint32_t len = 0;
		const uint16_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		if (!key || len != sizeof(*key))
			continue;
		if (port_list_push(l, ntohs(*key)) < 0) {
			l->err = -ENOMEM;
			break;
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	if (!it && !l->err)
		l->err = -ENOMEM;
	return l->err ? MNL_CB_ERROR : MNL_CB_OK;
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

int nft_set_dump_ports(struct nft_ctx *ctx, uint16_t **ports, size_t *n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = nft_set_handle_new(ctx);
	if (!s)
		return -ENOMEM;
	struct nlmsghdr *req = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
						     NLM_F_DUMP | NLM_F_ACK, ctx->nl.seq++);
	nftnl_set_elems_nlmsg_build_payload(req, s);
	nftnl_set_free(s);

	struct port_list l = {0};
	int r = nft_netlink_dump(&ctx->nl, req, elems_cb, &l);
	if (l.err)
		r = l.err;
	if (r < 0) {
		free(l.ports);
		return r;
	}
	if (l.n > 1)
		qsort(l.ports, l.n, sizeof(*l.ports), cmp_u16);
	*ports = l.ports;
	*n = l.n;
	return 0;
}

int nft_set_list_ports(struct nft_ctx *ctx, uint16_t **ports, size_t *n)
{
	int r = nft_set_dump_ports(ctx, ports, n);
	/* No table (or set): nothing is redirected; callers decide. */
	if (r < 0 && r != -ENOENT)
		return log_error_errno(r, "Failed to list the ports in set inet %s %s%s",
				       ctx->table, NFT_SET_SLEEPING, nft_errno_hint(r));
	return r;
}
