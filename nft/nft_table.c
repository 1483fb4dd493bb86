// SPDX-License-Identifier: MIT
/* Our table, its set, chains and rules: created, replaced and destroyed. */
#include "dozed/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/log.h"
#include "dozed/macro.h"
#include "nft_ctx.h"

/* nft(8)'s datatype number for inet_service, so `nft list` shows the set as ours. */
#define NFT_TYPE_INET_SERVICE 13
#define SET_ID_SLEEPING	      1
/* Offsets in a TCP header, and its flags. */
#define TCP_DPORT_OFFSET 2
#define TCP_FLAGS_OFFSET 13
#define TCP_FLAG_SYN	 0x02
#define TCP_FLAG_ACK	 0x10

int nft_ctx_new(struct nft_ctx **out, const char *table, uint32_t mark, uint16_t activator_port)
{
	if (!table || !*table || strlen(table) >= NFT_TABLE_MAXNAMELEN)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "Invalid nftables table name \"%s\"", table ? table : "");
	if (activator_port == 0)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid activator port 0");
	_cleanup_free_ struct nft_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return log_error_errno(ENOMEM, "Failed to allocate the nftables context");
	ctx->table = strdup(table);
	if (!ctx->table)
		return log_error_errno(ENOMEM, "Failed to allocate the nftables context");
	ctx->mark = mark;
	ctx->activator_port = activator_port;
	int r = nft_netlink_open(&ctx->nl);
	if (r < 0) {
		free(ctx->table);
		return r;
	}
	*out = TAKE_PTR(ctx);
	return 0;
}

void nft_ctx_free(struct nft_ctx *ctx)
{
	if (!ctx)
		return;
	nft_netlink_close(&ctx->nl);
	free(ctx->table);
	free(ctx);
}

/* --- rule expressions ------------------------------------------------------- */

static int rule_add_expr(struct nftnl_rule *rule, const char *name, struct nftnl_expr **out)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(rule, e);
	*out = e;
	return 0;
}

static int expr_meta_load(struct nftnl_rule *rule, uint32_t key)
{
	struct nftnl_expr *e;
	int r = rule_add_expr(rule, "meta", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	return 0;
}

static int expr_cmp(struct nftnl_rule *rule, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e;
	int r = rule_add_expr(rule, "cmp", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return 0;
}

/* meta l4proto tcp, then the destination port into register 1. */
static int expr_tcp_dport_load(struct nftnl_rule *rule)
{
	uint8_t tcp = IPPROTO_TCP;
	struct nftnl_expr *e;
	int r = expr_meta_load(rule, NFT_META_L4PROTO);
	if (r >= 0)
		r = expr_cmp(rule, NFT_CMP_EQ, &tcp, sizeof(tcp));
	if (r >= 0)
		r = rule_add_expr(rule, "payload", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, TCP_DPORT_OFFSET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, sizeof(uint16_t));
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	return 0;
}

/*
 * tcp flags & (syn | ack) == syn: only a connection's first packet. A packet
 * in the middle of a connection that conntrack picks up anew (its entry was
 * deleted, nf_conntrack_tcp_loose) must not be redirected: that entry would
 * then send a later connection of ours from the same port to the activator.
 */
static int expr_tcp_syn_only(struct nftnl_rule *rule)
{
	uint8_t mask = TCP_FLAG_SYN | TCP_FLAG_ACK, zero = 0, syn = TCP_FLAG_SYN;
	struct nftnl_expr *e;
	int r = rule_add_expr(rule, "payload", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, TCP_FLAGS_OFFSET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, sizeof(uint8_t));
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	r = rule_add_expr(rule, "bitwise", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint8_t));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	return expr_cmp(rule, NFT_CMP_EQ, &syn, sizeof(syn));
}

/*
 * meta mark != MARK fib daddr type local tcp dport @sleeping tcp flags syn redirect to :PORT
 *
 * Both hooks redirect only connections meant for this host. In prerouting,
 * a connection routed through this host (from a container on the runtime's
 * bridge, or any network it forwards for) to another host's address would
 * otherwise be taken by the activator and relayed from here, past the
 * forward filter: an open proxy. Nothing needs that: the runtimes' port
 * forwarding (Docker's DNAT, netavark's, both `fib daddr type local`
 * themselves) runs at dstnat, after us, so a published port's connection
 * still has this host's address as its destination here.
 */
static int rule_build_redirect(const struct nft_ctx *ctx, struct nftnl_rule *rule)
{
	struct nftnl_expr *e;
	int r = expr_meta_load(rule, NFT_META_MARK);
	if (r >= 0)
		r = expr_cmp(rule, NFT_CMP_NEQ, &ctx->mark, sizeof(ctx->mark));
	if (r >= 0) {
		uint32_t local = RTN_LOCAL;
		r = rule_add_expr(rule, "fib", &e);
		if (r >= 0) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
			r = expr_cmp(rule, NFT_CMP_EQ, &local, sizeof(local));
		}
	}
	if (r >= 0)
		r = expr_tcp_dport_load(rule);
	if (r >= 0)
		r = rule_add_expr(rule, "lookup", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, NFT_SET_SLEEPING);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, SET_ID_SLEEPING);
	r = expr_tcp_syn_only(rule);
	if (r < 0)
		return r;

	uint16_t port_be = htons(ctx->activator_port);
	r = rule_add_expr(rule, "immediate", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &port_be, sizeof(port_be));
	r = rule_add_expr(rule, "redir", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
	return 0;
}

/*
 * meta nfproto ipv4 ip daddr 127.0.0.0/8 return, before the redirect in
 * prerouting (CVE-2020-8558): a neighbour that routes 127.0.0.1 to this host
 * (with route_localnet=1 on its link) sends a SYN that `fib daddr type local`
 * calls local; redirected, its destination would be rewritten before the
 * kernel drops it as a martian, and the activator would relay it to a
 * service bound to loopback only. A local client's loopback connection comes
 * through output, never here. IPv6 needs no rule: the kernel drops a packet
 * for ::1 from another interface before prerouting (ip6_rcv_core()).
 */
static int rule_build_skip_loopback(const struct nft_ctx *ctx, struct nftnl_rule *rule)
{
	(void)ctx;
	uint8_t ipv4 = NFPROTO_IPV4;
	uint32_t mask = htonl(0xff000000), net = htonl(0x7f000000);
	struct nftnl_expr *e;
	int r = expr_meta_load(rule, NFT_META_NFPROTO);
	if (r >= 0)
		r = expr_cmp(rule, NFT_CMP_EQ, &ipv4, sizeof(ipv4));
	if (r >= 0)
		r = rule_add_expr(rule, "payload", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offsetof(struct iphdr, daddr));
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, sizeof(uint32_t));
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	r = rule_add_expr(rule, "bitwise", &e);
	if (r < 0)
		return r;
	uint32_t zero = 0;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	r = expr_cmp(rule, NFT_CMP_EQ, &net, sizeof(net));
	if (r >= 0)
		r = rule_add_expr(rule, "immediate", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NFT_RETURN);
	return 0;
}

/* tcp dport ACTIVATOR_PORT ct status & dnat != dnat drop */
static int rule_build_guard(const struct nft_ctx *ctx, struct nftnl_rule *rule)
{
	uint16_t port_be = htons(ctx->activator_port);
	uint32_t dnat = IPS_DST_NAT, zero = 0;
	struct nftnl_expr *e;
	int r = expr_tcp_dport_load(rule);
	if (r >= 0)
		r = expr_cmp(rule, NFT_CMP_EQ, &port_be, sizeof(port_be));
	if (r >= 0)
		r = rule_add_expr(rule, "ct", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	r = rule_add_expr(rule, "bitwise", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &dnat, sizeof(dnat));
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	r = expr_cmp(rule, NFT_CMP_EQ, &zero, sizeof(zero));
	if (r >= 0)
		r = rule_add_expr(rule, "immediate", &e);
	if (r < 0)
		return r;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
	return 0;
}

/* --- batch messages ---------------------------------------------------------- */

static int batch_add_table(struct nft_batch *b, const struct nft_ctx *ctx, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, ctx->table);
	struct nlmsghdr *nlh = nft_batch_msg(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return nft_batch_commit_msg(b);
}

static int batch_add_set(struct nft_batch *b, const struct nft_ctx *ctx)
{
	struct nftnl_set *s = nft_set_handle_new(ctx);
	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_ID, SET_ID_SLEEPING);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_INET_SERVICE);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint16_t));
	struct nlmsghdr *nlh = nft_batch_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return nft_batch_commit_msg(b);
}

struct chain_spec {
	const char *name;
	const char *type;
	uint32_t hook;
	int32_t prio;
};

static const struct chain_spec chain_prerouting = {"prerouting", "nat", NF_INET_PRE_ROUTING,
						   NFT_PRIO_PREROUTING};
static const struct chain_spec chain_output = {"output", "nat", NF_INET_LOCAL_OUT, NFT_PRIO_OUTPUT};
static const struct chain_spec chain_input = {"input", "filter", NF_INET_LOCAL_IN, NFT_PRIO_INPUT};

static int batch_add_chain(struct nft_batch *b, const struct nft_ctx *ctx,
			   const struct chain_spec *spec)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, ctx->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, spec->name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, spec->type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, spec->hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, spec->prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	struct nlmsghdr *nlh = nft_batch_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return nft_batch_commit_msg(b);
}

static int batch_add_rule(struct nft_batch *b, const struct nft_ctx *ctx, const char *chain,
			  int (*build)(const struct nft_ctx *, struct nftnl_rule *))
{
	struct nftnl_rule *rule = nftnl_rule_alloc();
	if (!rule)
		return -ENOMEM;
	nftnl_rule_set_u32(rule, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(rule, NFTNL_RULE_TABLE, ctx->table);
	nftnl_rule_set_str(rule, NFTNL_RULE_CHAIN, chain);
	int r = build(ctx, rule);
	if (r >= 0) {
		struct nlmsghdr *nlh =
		    nft_batch_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		nftnl_rule_nlmsg_build_payload(nlh, rule);
		r = nft_batch_commit_msg(b);
	}
	nftnl_rule_free(rule);
	return r;
}

/* --- public ------------------------------------------------------------------ */

int nft_table_create(struct nft_ctx *ctx)
{
	/* A restarted daemon finds its sleeping ports here and keeps them. */
	_cleanup_free_ uint16_t *ports = NULL;
	size_t n_ports = 0;
	int r = nft_set_dump_ports(ctx, &ports, &n_ports);
	if (r < 0 && r != -ENOENT)
		return log_error_errno(r,
				       "Failed to create nftables table inet %s: reading its set%s",
				       ctx->table, nft_errno_hint(r));

	struct nft_batch *b;
	r = nft_batch_new(&ctx->nl, &b);
	if (r < 0)
		return r;
	/* add + delete + add: one transaction that works whether or not the
	 * table exists, with no moment without rules. */
	r = batch_add_table(b, ctx, NFT_MSG_NEWTABLE);
	if (r >= 0)
		r = batch_add_table(b, ctx, NFT_MSG_DELTABLE);
	if (r >= 0)
		r = batch_add_table(b, ctx, NFT_MSG_NEWTABLE);
	if (r >= 0)
		r = batch_add_set(b, ctx);
	if (r >= 0)
		r = batch_add_chain(b, ctx, &chain_prerouting);
	if (r >= 0)
		r = batch_add_chain(b, ctx, &chain_output);
	if (r >= 0)
		r = batch_add_chain(b, ctx, &chain_input);
	if (r >= 0)
		r = batch_add_rule(b, ctx, chain_prerouting.name, rule_build_skip_loopback);
	if (r >= 0)
		r = batch_add_rule(b, ctx, chain_prerouting.name, rule_build_redirect);
	if (r >= 0)
		r = batch_add_rule(b, ctx, chain_output.name, rule_build_redirect);
	if (r >= 0)
		r = batch_add_rule(b, ctx, chain_input.name, rule_build_guard);
	if (r >= 0 && n_ports > 0)
		r = nft_batch_add_set_elems(b, ctx, NFT_MSG_NEWSETELEM, ports, n_ports);
	if (r < 0) {
		nft_batch_free(b);
		return log_error_errno(r, "Failed to build the nftables table %s", ctx->table);
	}
	char op[128];
	snprintf(op, sizeof(op), "create nftables table inet %s", ctx->table);
	r = nft_batch_send(b, op);
	nft_batch_free(b);
	if (r >= 0)
		log_debug("nftables table inet %s ready, %zu ports kept", ctx->table, n_ports);
	return r;
}

int nft_table_destroy(struct nft_ctx *ctx)
{
	struct nft_batch *b;
	int r = nft_batch_new(&ctx->nl, &b);
	if (r < 0)
		return r;
	/* Adding first makes deleting a missing table a no-op, not -ENOENT. */
	r = batch_add_table(b, ctx, NFT_MSG_NEWTABLE);
	if (r >= 0)
		r = batch_add_table(b, ctx, NFT_MSG_DELTABLE);
	if (r < 0) {
		nft_batch_free(b);
		return log_error_errno(r, "Failed to build the deletion of table %s", ctx->table);
	}
	char op[128];
	snprintf(op, sizeof(op), "delete nftables table inet %s", ctx->table);
	r = nft_batch_send(b, op);
	nft_batch_free(b);
	return r;
}
