// SPDX-License-Identifier: MIT
/* The ignore rules' one parser: every form, its canonical text, every refusal
 * with its exact message, and hostile input. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dozed/flow_rule.h"
#include "dozed/macro.h"
#include "harness.h"

#define FORMS "; " FLOW_RULE_FORMS

/* Parses text, expects it accepted, and its canonical text to be want and
 * to read back as the same rules. */
static void assert_canonical(const char *text, const char *want)
{
	struct flow_rules r, back;
	const char *why = NULL;
	char buf[2048];
	if (flow_rules_parse(text, &r, &why) < 0) {
		FAIL("\"%s\" refused: %s", text, why);
		return;
	}
	ASSERT_STREQ(flow_rules_to_string(&r, buf, sizeof(buf)), want);
	ASSERT_OK(flow_rules_parse(buf, &back, &why));
	ASSERT_TRUE(flow_rules_equal(&r, &back));
}

static void assert_refused(const char *text, const char *want)
{
	struct flow_rules r = {.n = 3};
	const char *why = NULL;
	ASSERT_ERR(flow_rules_parse(text, &r, &why), EINVAL);
	ASSERT_TRUE(why != NULL);
	if (why)
		ASSERT_STREQ(why, want);
	ASSERT_EQ_U(r.n, 3); /* out untouched on a refusal */
}

TEST(test_flow_rules_read_a_port_alone_or_with_its_protocol)
{
	struct flow_rules r;
	const char *why;
	ASSERT_OK(flow_rules_parse("9100", &r, &why));
	ASSERT_EQ_U(r.n, 1);
	ASSERT_EQ_U(r.rule[0].proto, 0);
	ASSERT_TRUE(!r.rule[0].has_addr);
	ASSERT_EQ_U(r.rule[0].port, 9100);
	ASSERT_OK(flow_rules_parse("tcp/9090,udp/8125", &r, &why));
	ASSERT_EQ_U(r.n, 2);
	ASSERT_EQ_U(r.rule[0].proto, IPPROTO_TCP);
	ASSERT_EQ_U(r.rule[0].port, 9090);
	ASSERT_EQ_U(r.rule[1].proto, IPPROTO_UDP);
	ASSERT_EQ_U(r.rule[1].port, 8125);
	ASSERT_OK(flow_rules_parse("1,65535", &r, &why));
	ASSERT_EQ_U(r.rule[0].port, 1);
	ASSERT_EQ_U(r.rule[1].port, 65535);
}

TEST(test_flow_rules_read_ipv4_cidrs_hosts_and_ports)
{
	struct flow_rules r;
	const char *why;
	ASSERT_OK(flow_rules_parse("10.0.0.0/8", &r, &why));
	ASSERT_TRUE(r.rule[0].has_addr);
	ASSERT_EQ_U(r.rule[0].family, AF_INET);
	ASSERT_EQ_U(r.rule[0].prefix_len, 8);
	ASSERT_EQ_U(r.rule[0].addr[0], 10);
	ASSERT_EQ_U(r.rule[0].port, 0);
	ASSERT_OK(flow_rules_parse("192.0.2.7:443", &r, &why));
	ASSERT_EQ_U(r.rule[0].prefix_len, 32);
	ASSERT_EQ_U(r.rule[0].addr[3], 7);
	ASSERT_EQ_U(r.rule[0].port, 443);
	ASSERT_OK(flow_rules_parse("tcp/10.0.0.0/8:5432", &r, &why));
	ASSERT_EQ_U(r.rule[0].proto, IPPROTO_TCP);
	ASSERT_EQ_U(r.rule[0].prefix_len, 8);
	ASSERT_EQ_U(r.rule[0].port, 5432);
	ASSERT_OK(flow_rules_parse("0.0.0.0/0", &r, &why));
	ASSERT_EQ_U(r.rule[0].prefix_len, 0);
}

TEST(test_flow_rules_read_ipv6_bare_and_in_brackets_with_a_port)
{
	struct flow_rules r;
	const char *why;
	ASSERT_OK(flow_rules_parse("2001:db8::/32", &r, &why));
	ASSERT_EQ_U(r.rule[0].family, AF_INET6);
	ASSERT_EQ_U(r.rule[0].prefix_len, 32);
	ASSERT_EQ_U(r.rule[0].addr[0], 0x20);
	ASSERT_EQ_U(r.rule[0].addr[3], 0xb8);
	ASSERT_OK(flow_rules_parse("[2001:db8::/32]:443", &r, &why));
	ASSERT_EQ_U(r.rule[0].port, 443);
	ASSERT_OK(flow_rules_parse("udp/[2001:db8::1]:53", &r, &why));
	ASSERT_EQ_U(r.rule[0].proto, IPPROTO_UDP);
	ASSERT_EQ_U(r.rule[0].prefix_len, 128);
	ASSERT_EQ_U(r.rule[0].addr[15], 1);
	ASSERT_EQ_U(r.rule[0].port, 53);
	ASSERT_OK(flow_rules_parse("[::1]", &r, &why));
	ASSERT_EQ_U(r.rule[0].port, 0);
}

TEST(test_flow_rules_none_and_empty_are_no_rules)
{
	const char *none[] = {"none", "", "  ", " none\t"};
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		struct flow_rules r = {.n = 5};
		const char *why;
		ASSERT_OK(flow_rules_parse(none[i], &r, &why));
		ASSERT_EQ_U(r.n, 0);
	}
	struct flow_rules r = {0};
	char buf[16];
	ASSERT_STREQ(flow_rules_to_string(&r, buf, sizeof(buf)), "none");
}

TEST(test_flow_rules_print_canonically_and_read_back_the_same)
{
	assert_canonical("10.0.0.0/8", "10.0.0.0/8");
	assert_canonical(" 10.0.0.0/8 , tcp/9090 ", "10.0.0.0/8,tcp/9090");
	assert_canonical("192.0.2.7/32:443", "192.0.2.7:443");
	assert_canonical("192.0.2.7/32", "192.0.2.7");
	assert_canonical("tcp/10.0.0.0/8:5432", "tcp/10.0.0.0/8:5432");
	assert_canonical("udp/00053", "udp/53");
	assert_canonical("2001:0db8:0:0::/32", "2001:db8::/32");
	assert_canonical("[2001:db8::/32]:443", "[2001:db8::/32]:443");
	assert_canonical("[2001:db8::1/128]:443", "[2001:db8::1]:443");
	assert_canonical("[2001:db8::1]", "2001:db8::1");
	assert_canonical("tcp/::/0", "tcp/::/0");
	assert_canonical("udp/8125,9100,tcp/192.168.0.0/16", "udp/8125,9100,tcp/192.168.0.0/16");
}

TEST(test_flow_rules_refuse_bad_ports_with_the_rule_and_the_forms)
{
	assert_refused("0", "rule \"0\": the port is out of range (1 to 65535)" FORMS);
	assert_refused("65536", "rule \"65536\": the port is out of range (1 to 65535)" FORMS);
	assert_refused(
	    "tcp/99999999999999999999",
	    "rule \"tcp/99999999999999999999\": the port is out of range (1 to 65535)" FORMS);
	assert_refused("10.0.0.1:http",
		       "rule \"10.0.0.1:http\": the port is no number (1 to 65535)" FORMS);
	assert_refused("10.0.0.1:", "rule \"10.0.0.1:\": the port is missing after ':'" FORMS);
	assert_refused("[::1]:0", "rule \"[::1]:0\": the port is out of range (1 to 65535)" FORMS);
	assert_refused("[::1]443", "rule \"[::1]443\": expected ':PORT' after ']'" FORMS);
	assert_refused("tcp/http", "rule \"tcp/http\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("http", "rule \"http\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("-1", "rule \"-1\": no IPv4 address, port or proto/port" FORMS);
}

TEST(test_flow_rules_refuse_bad_addresses_and_prefixes)
{
	assert_refused("10.0.0.0/33", "rule \"10.0.0.0/33\": the prefix length is over 32" FORMS);
	assert_refused("::/129", "rule \"::/129\": the prefix length is over 128" FORMS);
	assert_refused("10.0.0.0/",
		       "rule \"10.0.0.0/\": the prefix length is missing after '/'" FORMS);
	assert_refused("10.0.0.0/x", "rule \"10.0.0.0/x\": the prefix length is no number" FORMS);
	assert_refused("10.0.0.1/8",
		       "rule \"10.0.0.1/8\": host bits are set after the prefix length (write the "
		       "network address, or the address alone for one host)" FORMS);
	assert_refused("2001:db8::1/32",
		       "rule \"2001:db8::1/32\": host bits are set after the prefix length (write "
		       "the network address, or the address alone for one host)" FORMS);
	assert_refused("10.0.0.256",
		       "rule \"10.0.0.256\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("10.1", "rule \"10.1\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("[10.0.0.1]:80", "rule \"[10.0.0.1]:80\": no IPv6 address" FORMS);
	assert_refused("[2001:db8::1:443",
		       "rule \"[2001:db8::1:443\": no ']' after the IPv6 address" FORMS);
	assert_refused("2001:db8:::1", "rule \"2001:db8:::1\": no IPv6 address" FORMS);
	assert_refused("/8", "rule \"/8\": the address is missing" FORMS);
	assert_refused("tcp/", "rule \"tcp/\": nothing after the protocol" FORMS);
	assert_refused("sctp/80", "rule \"sctp/80\": no IPv4 address, port or proto/port" FORMS);
}

TEST(test_flow_rules_refuse_empty_rules_and_none_among_rules)
{
	const char *empty = "rule \"\": an empty rule (a leading, trailing or doubled comma)" FORMS;
	assert_refused("tcp/80,", empty);
	assert_refused("tcp/80,,udp/53", empty);
	assert_refused(",tcp/80", empty);
	assert_refused("tcp/80, ,udp/53", empty);
	assert_refused(",", empty);
	assert_refused("tcp/80,none", "rule \"none\": none stands alone, not among rules" FORMS);
	/* The bad one is named, not the first. */
	assert_refused("tcp/80, 10.0.0.0/33 ,udp/53",
		       "rule \"10.0.0.0/33\": the prefix length is over 32" FORMS);
}

TEST(test_flow_rules_take_16_and_refuse_the_17th)
{
	char text[256] = "";
	for (int i = 1; i <= FLOW_RULES_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%d", i > 1 ? "," : "",
			 i);
	struct flow_rules r;
	const char *why;
	ASSERT_OK(flow_rules_parse(text, &r, &why));
	ASSERT_EQ_U(r.n, FLOW_RULES_MAX);
	ASSERT_EQ_U(r.rule[15].port, 16);
	strcat(text, ",tcp/17");
	assert_refused(text, "rule \"tcp/17\": more than 16 rules" FORMS);
}

TEST(test_flow_rules_quote_hostile_rules_short_and_printable)
{
	/* A megabyte of garbage: refused, quoted in its first 64 bytes. */
	size_t n = 1 << 20;
	char *huge = malloc(n + 1);
	ASSERT_TRUE(huge != NULL);
	if (!huge)
		return;
	memset(huge, 'a', n);
	huge[n] = '\0';
	struct flow_rules r;
	const char *why = NULL;
	ASSERT_ERR(flow_rules_parse(huge, &r, &why), EINVAL);
	ASSERT_TRUE(strlen(why) < 600);
	ASSERT_CONTAINS(
	    why, "rule \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": ");
	/* A huge port and a huge prefix: no overflow into a valid number. */
	memset(huge, '9', n);
	ASSERT_ERR(flow_rules_parse(huge, &r, &why), EINVAL);
	ASSERT_CONTAINS(why, "the port is out of range");
	memcpy(huge, "10.0.0.0/", 9);
	ASSERT_ERR(flow_rules_parse(huge, &r, &why), EINVAL);
	ASSERT_CONTAINS(why, "the prefix length is over 32");
	/* Many commas: one empty rule, found at once. */
	memset(huge, ',', n);
	ASSERT_ERR(flow_rules_parse(huge, &r, &why), EINVAL);
	ASSERT_CONTAINS(why, "an empty rule");
	free(huge);

	assert_refused("tcp/\x01\x7f\"\\\xff",
		       "rule \"tcp/\\x01\\x7f\\x22\\x5c\\xff\": no IPv4 address, "
		       "port or proto/port" FORMS);
	assert_refused("80\n", "rule \"80\\x0a\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("tcp/ 80", "rule \"tcp/ 80\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("TCP/80", "rule \"TCP/80\": no IPv4 address, port or proto/port" FORMS);
	assert_refused("tcp/tcp/80",
		       "rule \"tcp/tcp/80\": no IPv4 address, port or proto/port" FORMS);
}

TEST(test_flow_rules_equal_compares_every_field)
{
	struct flow_rules a, b;
	const char *why;
	ASSERT_OK(flow_rules_parse("10.0.0.0/8,tcp/9090", &a, &why));
	ASSERT_OK(flow_rules_parse("10.0.0.0/8, tcp/9090", &b, &why));
	ASSERT_TRUE(flow_rules_equal(&a, &b));
	const char *other[] = {"10.0.0.0/8,udp/9090",	"10.0.0.0/8,9090",
			       "10.0.0.0/9,tcp/9090",	"11.0.0.0/8,tcp/9090",
			       "10.0.0.0/8,tcp/9091",	"10.0.0.0/8",
			       "10.0.0.0/8:1,tcp/9090", "::/8,tcp/9090"};
	for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
		ASSERT_OK(flow_rules_parse(other[i], &b, &why));
		ASSERT_TRUE(!flow_rules_equal(&a, &b));
	}
}

TEST(test_flow_rules_to_string_cuts_into_a_short_buffer)
{
	struct flow_rules r;
	const char *why;
	ASSERT_OK(flow_rules_parse("10.0.0.0/8,tcp/9090", &r, &why));
	char buf[6];
	ASSERT_STREQ(flow_rules_to_string(&r, buf, sizeof(buf)), "");
	char buf2[12];
	ASSERT_STREQ(flow_rules_to_string(&r, buf2, sizeof(buf2)), "10.0.0.0/8");
}
