// SPDX-License-Identifier: MIT
/* libbpf's messages in dozed's debug log: whole, every line, any length. */
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "harness.h"

/* The hook dozed gave libbpf, as libbpf calls it. */
static libbpf_print_fn_t installed_hook(void)
{
	flow_counter_log_libbpf();
	libbpf_print_fn_t hook = libbpf_set_print(NULL);
	libbpf_set_print(hook);
	if (!hook)
		FAIL("flow_counter_log_libbpf installed no print hook");
	return hook;
}

__attribute__((format(printf, 3, 4))) static void
print_through(libbpf_print_fn_t hook, enum libbpf_print_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hook(level, fmt, ap);
	va_end(ap);
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static void quiet_journal(void)
{
	unsetenv("JOURNAL_STREAM"); /* stderr, where the capture reads it */
}

/* What libbpf prints after a refused load: the verifier's log in one message. */
TEST(test_the_verifier_log_is_logged_whole_at_debug_level)
{
	quiet_journal();
	libbpf_print_fn_t hook = installed_hook();
	char long_line[3001];
	memset(long_line, '#', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	log_set_max_level(LOG_DEBUG);
	capture_stderr_begin();
	print_through(hook, LIBBPF_WARN,
		      "prog '%s': BPF program load failed: Permission denied\n"
		      "prog '%s': -- BEGIN PROG LOAD LOG --\n"
		      "0: R1=ctx() R10=fp0\n"
		      "%s\n"
		      "\n"
		      "invalid mem access 'scalar'\n"
		      "-- END PROG LOAD LOG --\n",
		      "flows_egress", "flows_egress", long_line);
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_CONTAINS(out, "libbpf: prog 'flows_egress': BPF program load failed");
	ASSERT_CONTAINS(out, "libbpf: 0: R1=ctx() R10=fp0\n");
	ASSERT_CONTAINS(out, "libbpf: invalid mem access 'scalar'\n");
	ASSERT_CONTAINS(out, "libbpf: -- END PROG LOAD LOG --\n");
	/* The 3 000-byte line is longer than a log line may be: all of it, in pieces. */
	ASSERT_EQ_U(count_char(out, '#'), sizeof(long_line) - 1);
	/* In order: the end marker after the last line of the log. */
	ASSERT_TRUE(strstr(out, "invalid mem access") < strstr(out, "-- END PROG LOAD LOG --"));
}

/* A real message of libbpf's own, through its own call of the hook. */
TEST(test_a_warning_of_libbpf_reaches_the_debug_log)
{
	quiet_journal();
	installed_hook();
	log_set_max_level(LOG_DEBUG);
	static const char not_elf[] = "this is not an ELF object";
	capture_stderr_begin();
	struct bpf_object *obj = bpf_object__open_mem(not_elf, sizeof(not_elf), NULL);
	_cleanup_free_ char *out = capture_stderr_end();
	bpf_object__close(obj);
	ASSERT_TRUE(!obj);
	ASSERT_CONTAINS(out, "libbpf: elf: ");
	/* Named once: libbpf's own lines carry its name already. */
	ASSERT_TRUE(!strstr(out, "libbpf: libbpf: "));
}

TEST(test_libbpf_says_nothing_below_debug_level)
{
	quiet_journal();
	libbpf_print_fn_t hook = installed_hook();
	log_set_max_level(LOG_INFO);
	capture_stderr_begin();
	print_through(hook, LIBBPF_WARN, "prog '%s': -- BEGIN PROG LOAD LOG --\n", "flows_egress");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_STREQ(out, "");
}
