/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "nft_batch.h"

/* What every nft/ module knows of a context; opaque outside nft/. */
struct nft_ctx {
	struct nft_netlink nl;
	char *table;
	uint32_t mark;
	uint16_t activator_port;
};

struct nftnl_set;

/* Our set, as the key of table and element messages (family, table, name). */
struct nftnl_set *nft_set_handle_new(const struct nft_ctx *ctx);

/* Appends messages adding (or removing) ports to a batch, split so that no
 * message outgrows netlink's 64 KiB attribute limit. */
int nft_batch_add_set_elems(struct nft_batch *b, const struct nft_ctx *ctx, uint16_t msg_type,
			    const uint16_t *ports, size_t n);

/* nft_set_list_ports() without logging: callers say what they were doing. */
int nft_set_dump_ports(struct nft_ctx *ctx, uint16_t **ports, size_t *n);
