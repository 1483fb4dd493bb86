/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One nftables transaction: messages between a batch begin and a batch end,
 * sent in one sendmsg(2) and acknowledged one by one. Internal to nft/.
 */

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;
struct nlmsghdr;
struct nft_batch;

struct nft_netlink {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
};

int nft_netlink_open(struct nft_netlink *nl);
void nft_netlink_close(struct nft_netlink *nl);

int nft_batch_new(struct nft_netlink *nl, struct nft_batch **out);
void nft_batch_free(struct nft_batch *b);

/* Room for the next message; complete it with nft_batch_commit_msg(). */
struct nlmsghdr *nft_batch_msg(struct nft_batch *b, uint16_t type, uint16_t flags);
int nft_batch_commit_msg(struct nft_batch *b);

/*
 * Sends the batch and reads every acknowledgement. Returns 0, or the first
 * error the kernel reported, logged as "Failed to <op>: <strerror>[: <kernel's
 * message>]".
 */
int nft_batch_send(struct nft_batch *b, const char *op);

/* Sends a dump request and feeds each answer to cb (an mnl_cb_t). */
int nft_netlink_dump(struct nft_netlink *nl, struct nlmsghdr *req,
		     int (*cb)(const struct nlmsghdr *nlh, void *data), void *data);

/* What to do about a netlink error, for messages: "" or " (...)". */
const char *nft_errno_hint(int err);
