/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * dozed's own nftables table (family inet): a set "sleeping" holding the TCP
 * ports of sleeping services, and the rules that redirect new connections to
 * those ports to the activator:
 *
 *   chain prerouting  (nat, hook prerouting, priority dstnat - 10)
 *     meta mark != MARK fib daddr type local tcp dport @sleeping
 *       tcp flags & (syn | ack) == syn redirect to :ACTIVATOR_PORT
 *   chain output      (nat, hook output, priority -110)
 *     (the same rule)
 *   chain input       (filter, hook input, priority filter)
 *     tcp dport ACTIVATOR_PORT ct status & dnat != dnat drop
 *
 * Only connections to this host's own addresses are redirected, in both
 * hooks: one routed through it for another host is never taken (no open
 * proxy). The runtimes' DNAT for published ports runs after prerouting's
 * chain (dstnat), so those still have this host's address there.
 *
 * Every operation is one netlink transaction (all or nothing), acknowledged
 * and checked. Errors are -errno, logged with the operation and the kernel's
 * answer. Needs CAP_NET_ADMIN in the network namespace the context was made in.
 */

#define NFT_SET_SLEEPING "sleeping"

/* Hook priorities of our chains (NF_IP_PRI_NAT_DST is -100, "dstnat"). */
#define NFT_PRIO_PREROUTING (-100 - 10)
#define NFT_PRIO_OUTPUT	    (-110)
#define NFT_PRIO_INPUT	    0 /* "filter" */

struct nft_ctx;

/* Opens a netlink socket in the current network namespace. table: our table's
 * name; mark: SO_MARK of the activator's own sockets, which bypass the
 * redirect; activator_port: where redirected connections go. */
int nft_ctx_new(struct nft_ctx **out, const char *table, uint32_t mark, uint16_t activator_port);
void nft_ctx_free(struct nft_ctx *ctx); /* accepts NULL */

/*
 * Creates the table, set and chains, or replaces them atomically if the table
 * exists (a restarted daemon): the rules are rebuilt with this context's mark
 * and port, and the ports already in the set stay in it, so a sleeping
 * service is never left without its redirect.
 */
int nft_table_create(struct nft_ctx *ctx);
/* Deletes the table; a table that is already gone is not an error. */
int nft_table_destroy(struct nft_ctx *ctx);

/* Adding a port already present, or removing one absent, is not an error. */
int nft_set_add_ports(struct nft_ctx *ctx, const uint16_t *ports, size_t n);
int nft_set_remove_ports(struct nft_ctx *ctx, const uint16_t *ports, size_t n);
/* The ports in the set now, sorted ascending (*ports malloc'd, NULL when
 * empty). -ENOENT if the table does not exist. */
int nft_set_list_ports(struct nft_ctx *ctx, uint16_t **ports, size_t *n);
