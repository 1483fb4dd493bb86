/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A service's ignore rules: traffic they match never resets its idle timer
 * (docs/design.md, "Flows"). The label dozed.ignore, dozectl's --ignore,
 * the control key "ignore", services.json's "ignore" and the config file's
 * default all go through flow_rules_parse. Pure, linked into dozectl:
 * nothing is logged.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOW_RULES_MAX 16 /* as FLOWS_RULES_MAX: what the kernel matches */

struct flow_rule {
	uint8_t proto;	    /* 0: tcp and udp; else IPPROTO_TCP or IPPROTO_UDP */
	bool has_addr;	    /* a peer address (a CIDR) was given */
	uint8_t family;	    /* AF_INET or AF_INET6 when has_addr */
	uint8_t prefix_len; /* 0..32 (AF_INET) or 0..128 (AF_INET6) */
	uint8_t addr[16];   /* network order, host bits zero; AF_INET: the first 4 */
	uint16_t port;	    /* host order; 0: any */
};

/*
 * A rule's port is the peer's when the rule names an address too
 * ("192.0.2.7:443"), else either side's ("tcp/9090": a scrape of the
 * container's 9090, or a push to a peer's 9090).
 */
struct flow_rules {
	size_t n;
	struct flow_rule rule[FLOW_RULES_MAX];
};

/* The forms, as messages name them. */
#define FLOW_RULE_FORMS                                                                            \
	"expected rules like 10.0.0.0/8, tcp/9090, udp/8125, 9100, 192.0.2.7:443, "                \
	"tcp/10.0.0.0/8:5432 or [2001:db8::/32]:443, separated by commas (at most 16), or none"

/*
 * "RULE[,RULE...]", or "none" or "" for no rules. A rule is
 *   [tcp/|udp/]PORT            PORT 1..65535
 *   [tcp/|udp/]ADDR[/LEN]      an IPv4 or IPv6 address or CIDR
 *   [tcp/|udp/]ADDR[/LEN]:PORT (IPv6 in brackets: [2001:db8::1]:443,
 *                              [2001:db8::/32]:443)
 * Spaces around a rule are allowed. 0; -EINVAL with *why (valid until the
 * next call) naming the bad rule, what is wrong and FLOW_RULE_FORMS:
 *   'rule "10.0.0.0/33": the prefix length is over 32; expected rules like ...'
 * out is written only on success. Host bits of a CIDR are an error (they
 * would not match what the user thinks).
 */
int flow_rules_parse(const char *text, struct flow_rules *out, const char **why);
/* The text flow_rules_parse reads back, canonical ("10.0.0.0/8,tcp/9090"),
 * "none" for no rules; into buf. */
const char *flow_rules_to_string(const struct flow_rules *r, char *buf, size_t len);
/* One rule, as flow_rules_to_string writes it. */
const char *flow_rule_to_string(const struct flow_rule *r, char *buf, size_t len);
bool flow_rules_equal(const struct flow_rules *a, const struct flow_rules *b);
