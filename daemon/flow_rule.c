// SPDX-License-Identifier: MIT
/*
 * The parser of ignore rules (flow_rule.h), one for every place they come
 * from. Pure, linked into dozectl: nothing is logged, a refusal is a message
 * naming the rule and what is wrong with it.
 */
#include "dozed/flow_rule.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* A rule is quoted in a message up to this many bytes: a megabyte of garbage
 * is refused, not echoed. */
#define RULE_QUOTE_MAX 64
/* Longer than any address with its prefix ("ffff:...:255.255.255.255/128"). */
#define ADDR_TEXT_MAX 64

static char why_buf[RULE_QUOTE_MAX * 4 + 512];

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The rule as messages quote it: bytes that are no printable ASCII as \xNN
 * (a label may hold anything), cut after RULE_QUOTE_MAX bytes. */
static void quote_rule(const char *s, size_t n, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < RULE_QUOTE_MAX && o + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < ' ' || c > '~' || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (n > RULE_QUOTE_MAX && o + 4 < len)
		o += (size_t)snprintf(out + o, len - o, "...");
	out[o] = '\0';
}

static int refuse(const char *rule, size_t n, const char *what, const char **why)
{
	char q[RULE_QUOTE_MAX * 4 + 8];
	quote_rule(rule, n, q, sizeof(q));
	snprintf(why_buf, sizeof(why_buf), "rule \"%s\": %s; %s", q, what, FLOW_RULE_FORMS);
	*why = why_buf;
	return -EINVAL;
}

/* Digits only, as a number up to max; false for anything else (a sign, a
 * space, "http", nothing at all). */
static bool parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* A port 1..65535; what is wrong otherwise, into *what. */
static bool parse_port(const char *s, size_t n, uint16_t *out, const char **what)
{
	unsigned v;
	if (!parse_uint(s, n, 65535, &v) || v == 0) {
		*what = all_digits(s, n) ? "the port is out of range (1 to 65535)"
			: n == 0	 ? "the port is missing after ':'"
					 : "the port is no number (1 to 65535)";
		return false;
	}
	*out = (uint16_t)v;
	return true;
}

/* ADDR[/LEN] of one family (AF_UNSPEC: either, by the text). */
static bool parse_cidr(const char *s, size_t n, int family, struct flow_rule *r, const char **what)
{
	char text[ADDR_TEXT_MAX];
	const char *slash = memchr(s, '/', n);
	size_t addr_len = slash ? (size_t)(slash - s) : n;
	if (addr_len == 0) {
		*what = "the address is missing";
		return false;
	}
	if (addr_len >= sizeof(text)) {
		*what = "no IPv4 or IPv6 address";
		return false;
	}
	memcpy(text, s, addr_len);
	text[addr_len] = '\0';
	if (family == AF_UNSPEC)
		family = memchr(text, ':', addr_len) ? AF_INET6 : AF_INET;
	if (inet_pton(family, text, r->addr) != 1) {
		*what =
		    family == AF_INET6 ? "no IPv6 address" : "no IPv4 address, port or proto/port";
		return false;
	}
	unsigned max = family == AF_INET6 ? 128 : 32;
	unsigned len = max;
	if (slash) {
		const char *p = slash + 1;
		size_t pn = n - addr_len - 1;
		if (pn == 0) {
			*what = "the prefix length is missing after '/'";
			return false;
		}
		if (!parse_uint(p, pn, 255, &len) || len > max) {
			*what = !all_digits(p, pn) ? "the prefix length is no number"
				: max == 32	   ? "the prefix length is over 32"
						   : "the prefix length is over 128";
			return false;
		}
	}
	size_t bytes = max / 8;
	for (size_t i = 0; i < bytes; i++) {
		unsigned bits = len >= (i + 1) * 8 ? 8 : len > i * 8 ? len - i * 8 : 0;
		uint8_t mask = (uint8_t)(bits == 8 ? 0xff : (0xff00 >> bits) & 0xff);
		if (r->addr[i] & ~mask) {
			*what = "host bits are set after the prefix length (write the network "
				"address, or the address alone for one host)";
			return false;
		}
	}
	r->has_addr = true;
	r->family = (uint8_t)family;
	r->prefix_len = (uint8_t)len;
	return true;
}

/* One rule, spaces already trimmed, n > 0. */
static int parse_rule(const char *s, size_t n, struct flow_rule *out, const char **why)
{
	const char *rule = s;
	size_t rule_n = n;
	const char *what = NULL;
	struct flow_rule r = {0};

	if (n >= 4 && (memcmp(s, "tcp/", 4) == 0 || memcmp(s, "udp/", 4) == 0)) {
		r.proto = s[0] == 't' ? IPPROTO_TCP : IPPROTO_UDP;
		s += 4;
		n -= 4;
		if (n == 0)
			return refuse(rule, rule_n, "nothing after the protocol", why);
	}

	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return refuse(rule, rule_n, "no ']' after the IPv6 address", why);
		size_t in_n = (size_t)(close - s) - 1;
		const char *rest = close + 1;
		size_t rest_n = n - in_n - 2;
		if (!parse_cidr(s + 1, in_n, AF_INET6, &r, &what))
			return refuse(rule, rule_n, what, why);
		if (rest_n > 0) {
			if (rest[0] != ':')
				return refuse(rule, rule_n, "expected ':PORT' after ']'", why);
			if (!parse_port(rest + 1, rest_n - 1, &r.port, &what))
				return refuse(rule, rule_n, what, why);
		}
	} else if (all_digits(s, n)) {
		if (!parse_port(s, n, &r.port, &what))
			return refuse(rule, rule_n, what, why);
	} else {
		const char *colon = memchr(s, ':', n);
		const char *last = colon;
		for (const char *p = colon; p; p = memchr(p + 1, ':', n - (size_t)(p + 1 - s)))
			last = p;
		if (colon && colon == last) {
			/* One ':': IPv4[/LEN]:PORT. */
			size_t an = (size_t)(colon - s);
			if (!parse_cidr(s, an, AF_INET, &r, &what))
				return refuse(rule, rule_n, what, why);
			if (!parse_port(colon + 1, n - an - 1, &r.port, &what))
				return refuse(rule, rule_n, what, why);
		} else if (!parse_cidr(s, n, AF_UNSPEC, &r, &what)) {
			/* Several ':' are an IPv6 address; its port would need brackets. */
			return refuse(rule, rule_n, what, why);
		}
	}
	*out = r;
	return 0;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

int flow_rules_parse(const char *text, struct flow_rules *out, const char **why)
{
	struct flow_rules rules = {0};
	const char *all = text;
	size_t all_n = strlen(text);
	trim(&all, &all_n);
	if (all_n == 0 || (all_n == 4 && memcmp(all, "none", 4) == 0)) {
		*out = rules;
		return 0;
	}
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *s = p;
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		trim(&s, &n);
		if (n == 0)
			return refuse(s, n, "an empty rule (a leading, trailing or doubled comma)",
				      why);
		if (n == 4 && memcmp(s, "none", 4) == 0)
			return refuse(s, n, "none stands alone, not among rules", why);
		if (rules.n == FLOW_RULES_MAX)
			return refuse(s, n, "more than 16 rules", why);
		int r = parse_rule(s, n, &rules.rule[rules.n], why);
		if (r < 0)
			return r;
		rules.n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = rules;
	return 0;
}

const char *flow_rule_to_string(const struct flow_rule *r, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "";
	char prefix[8] = "";
	const char *proto = r->proto == IPPROTO_TCP   ? "tcp/"
			    : r->proto == IPPROTO_UDP ? "udp/"
						      : "";
	if (!r->has_addr) {
		snprintf(buf, len, "%s%u", proto, r->port);
		return buf;
	}
	bool v6 = r->family == AF_INET6;
	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, r->addr, addr, sizeof(addr)))
		snprintf(addr, sizeof(addr), "?");
	/* A whole address is one host: written without its /32 or /128. */
	if (r->prefix_len != (v6 ? 128 : 32))
		snprintf(prefix, sizeof(prefix), "/%u", r->prefix_len);
	if (r->port == 0)
		snprintf(buf, len, "%s%s%s", proto, addr, prefix);
	else if (v6)
		snprintf(buf, len, "%s[%s%s]:%u", proto, addr, prefix, r->port);
	else
		snprintf(buf, len, "%s%s%s:%u", proto, addr, prefix, r->port);
	return buf;
}

const char *flow_rules_to_string(const struct flow_rules *r, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (r->n == 0) {
		snprintf(buf, len, "none");
		return buf;
	}
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < r->n && i < FLOW_RULES_MAX; i++) {
		char one[INET6_ADDRSTRLEN + 32];
		flow_rule_to_string(&r->rule[i], one, sizeof(one));
		int w = snprintf(buf + o, len - o, "%s%s", i ? "," : "", one);
		if (w < 0 || (size_t)w >= len - o) {
			buf[o] = '\0'; /* whole rules only: a cut one would read as another */
			break;
		}
		o += (size_t)w;
	}
	return buf;
}

static bool flow_rule_equal(const struct flow_rule *a, const struct flow_rule *b)
{
	if (a->proto != b->proto || a->has_addr != b->has_addr || a->port != b->port)
		return false;
	if (!a->has_addr)
		return true;
	size_t bytes = a->family == AF_INET6 ? 16 : 4;
	return a->family == b->family && a->prefix_len == b->prefix_len &&
	       memcmp(a->addr, b->addr, bytes) == 0;
}

bool flow_rules_equal(const struct flow_rules *a, const struct flow_rules *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n && i < FLOW_RULES_MAX; i++)
		if (!flow_rule_equal(&a->rule[i], &b->rule[i]))
			return false;
	return true;
}
