// SPDX-License-Identifier: MIT
/*
 * Ignore rules: flow_rules_parse() on any string (a label, a control request
 * or services.json may hold anything). Accepted rules are within bounds and
 * their canonical text reads back as the same rules and the same text; a
 * refusal is a short, printable message naming a rule and the forms.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dozed/flow_rule.h"
#include "fuzz.h"

static void check_rule(const struct flow_rule *r)
{
	FUZZ_ASSERT(r->proto == 0 || r->proto == IPPROTO_TCP || r->proto == IPPROTO_UDP);
	if (!r->has_addr) {
		FUZZ_ASSERT(r->port != 0); /* a rule without an address is a port */
		return;
	}
	FUZZ_ASSERT(r->family == AF_INET || r->family == AF_INET6);
	unsigned max = r->family == AF_INET6 ? 128 : 32;
	FUZZ_ASSERT(r->prefix_len <= max);
	/* No host bits: a rule matches what it says. */
	for (unsigned bit = r->prefix_len; bit < 128; bit++)
		FUZZ_ASSERT(!(r->addr[bit / 8] & (0x80 >> (bit % 8))));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);
	struct flow_rules rules = {.n = 99}, back;
	const char *why = NULL;
	int r = flow_rules_parse(s, &rules, &why);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL && why);
		FUZZ_ASSERT(rules.n == 99); /* untouched */
		size_t n = strlen(why);
		FUZZ_ASSERT(strncmp(why, "rule \"", 6) == 0);
		FUZZ_ASSERT(n < 1024);
		FUZZ_ASSERT(n > strlen(FLOW_RULE_FORMS) &&
			    strcmp(why + n - strlen(FLOW_RULE_FORMS), FLOW_RULE_FORMS) == 0);
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(why[i] >= ' ' && why[i] <= '~');
	} else {
		FUZZ_ASSERT(r == 0 && rules.n <= FLOW_RULES_MAX);
		for (size_t i = 0; i < rules.n; i++)
			check_rule(&rules.rule[i]);
		char text[2048], again[2048];
		flow_rules_to_string(&rules, text, sizeof(text));
		FUZZ_ASSERT(strlen(text) < 1024);
		FUZZ_ASSERT(flow_rules_parse(text, &back, &why) == 0);
		FUZZ_ASSERT(flow_rules_equal(&rules, &back));
		FUZZ_ASSERT(strcmp(flow_rules_to_string(&back, again, sizeof(again)), text) == 0);
	}
	free(s);
	return 0;
}
