// SPDX-License-Identifier: MIT
/* When dozed logs to the journal and when to stderr: the JOURNAL_STREAM check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "harness.h"

TEST(test_journal_stream_naming_the_stream_matches)
{
	ASSERT_TRUE(log_journal_stream_matches("8:12345", 8, 12345));
	ASSERT_TRUE(log_journal_stream_matches("0:0", 0, 0));
	ASSERT_TRUE(log_journal_stream_matches("18446744073709551615:18446744073709551615",
					       UINT64_MAX, UINT64_MAX));
}

TEST(test_journal_stream_naming_another_stream_does_not_match)
{
	ASSERT_TRUE(!log_journal_stream_matches("8:12345", 8, 12346));
	ASSERT_TRUE(!log_journal_stream_matches("8:12345", 9, 12345));
	ASSERT_TRUE(!log_journal_stream_matches("12345:8", 8, 12345));
}

TEST(test_malformed_journal_stream_does_not_match)
{
	const char *bad[] = {"",	 "8",	     "8:",	  ":12345",
			     "8:12345x", " 8:12345", "8: 12345",  "8:12345:1",
			     "-8:12345", "8:+12345", "0x8:12345", "18446744073709551616:12345"};
	ASSERT_TRUE(!log_journal_stream_matches(NULL, 8, 12345));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (log_journal_stream_matches(bad[i], 8, 12345))
			FAIL("JOURNAL_STREAM=\"%s\" matched", bad[i]);
}

static void set_journal_stream_to(int fd)
{
	struct stat st;
	ASSERT_OK(fstat(fd, &st));
	char value[64];
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	ASSERT_OK(setenv("JOURNAL_STREAM", value, 1));
}

TEST(test_stderr_is_journal_only_when_journal_stream_names_it)
{
	unsetenv("JOURNAL_STREAM");
	ASSERT_TRUE(!log_stderr_is_journal());

	capture_stderr_begin();
	set_journal_stream_to(STDERR_FILENO);
	bool captured_is_journal = log_stderr_is_journal();
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_TRUE(captured_is_journal);
	/* The variable is inherited; stderr is another file now. */
	ASSERT_TRUE(!log_stderr_is_journal());
}

TEST(test_without_journal_log_lines_keep_the_stderr_format)
{
	unsetenv("JOURNAL_STREAM");
	log_set_max_level(LOG_INFO);
	capture_stderr_begin();
	int r = log_error_errno(EACCES, "Failed to frob %s", "the widget");
	log_info("Frobbed");
	log_debug("not shown");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_ERR(r, EACCES);
	ASSERT_STREQ(out, "dozed err: Failed to frob the widget: Permission denied\n"
			  "dozed info: Frobbed\n");
}

TEST(test_a_synthetic_error_is_returned_without_a_strerror_after_the_message)
{
	unsetenv("JOURNAL_STREAM");
	log_set_max_level(LOG_INFO);
	capture_stderr_begin();
	int r = log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Invalid idle time \"%s\"", "0s");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_ERR(r, EINVAL);
	ASSERT_STREQ(out, "dozed err: Invalid idle time \"0s\"\n");
}

TEST(test_journal_stream_of_another_file_keeps_stderr)
{
	FILE *other = tmpfile();
	ASSERT_TRUE(other != NULL);
	set_journal_stream_to(fileno(other));
	capture_stderr_begin();
	log_warning("Careful");
	_cleanup_free_ char *out = capture_stderr_end();
	fclose(other);
	ASSERT_STREQ(out, "dozed warning: Careful\n");
}

TEST(test_event_without_journal_is_a_silent_no_op)
{
	unsetenv("JOURNAL_STREAM");
	capture_stderr_begin();
	int r = log_event_journal(LOG_INFO, "web: asleep", "web", "sleep", "{\"event\":\"sleep\"}");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_OK(r);
	ASSERT_EQ_U(r, 0);
	ASSERT_STREQ(out, "");
}
