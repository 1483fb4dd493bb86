// SPDX-License-Identifier: MIT
/*
 * Structured journal entries, received by a stand-in for journald: each test
 * enters a private mount namespace, mounts a tmpfs on /run there and listens
 * on /run/systemd/journal/socket, where sd_journal_sendv() sends.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "capture.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "harness.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* A private /run; returns a datagram socket bound where the journal listens,
 * or -1 with bind == false (the journal is then unreachable). */
static int fake_journal(bool bind_socket)
{
	if (unshare(CLONE_NEWNS) < 0)
		test_skip("cannot create a mount namespace: %s", strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		FAIL("cannot mount a private /run: %s", strerror(errno));
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		FAIL("cannot create /run/systemd/journal: %s", strerror(errno));
	if (!bind_socket)
		return -1;

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET};
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FAIL("cannot bind %s: %s", JOURNAL_SOCKET, strerror(errno));
	return fd;
}

/* Sets JOURNAL_STREAM to the stderr of the moment (a capture file). */
static void stderr_is_the_journal(void)
{
	struct stat st;
	ASSERT_OK(fstat(STDERR_FILENO, &st));
	char value[64];
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	ASSERT_OK(setenv("JOURNAL_STREAM", value, 1));
}

/* The next entry, as "FIELD=value\n" lines (the native protocol for values
 * without newlines); NULL when none is waiting. */
static char *next_entry(int fd)
{
	char *buf = calloc(1, 65536);
	ASSERT_TRUE(buf != NULL);
	ssize_t n = recv(fd, buf, 65535, 0);
	if (n < 0 && errno == EAGAIN) {
		free(buf);
		return NULL;
	}
	if (n < 0)
		FAIL("recv: %s", strerror(errno));
	buf[n] = '\0';
	return buf;
}

static void assert_field(const char *entry, const char *field)
{
	/* Whole lines only: "ERRNO=1" must not match "ERRNO=13". */
	size_t len = strlen(field);
	for (const char *p = entry; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, field, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return;
	FAIL("journal entry \"%s\" has no line \"%s\"", entry, field);
}

TEST(test_log_line_becomes_structured_journal_entry)
{
	_cleanup_close_ int fd = fake_journal(true);
	capture_stderr_begin();
	stderr_is_the_journal();
	int r = log_error_errno(EACCES, "Failed to frob %s", "the widget");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_ERR(r, EACCES);
	ASSERT_STREQ(out, "");

	_cleanup_free_ char *entry = next_entry(fd);
	ASSERT_TRUE(entry != NULL);
	assert_field(entry, "MESSAGE=Failed to frob the widget: Permission denied");
	assert_field(entry, "PRIORITY=3");
	assert_field(entry, "SYSLOG_IDENTIFIER=dozed");
	assert_field(entry, "CODE_FUNC=test_log_line_becomes_structured_journal_entry");
	assert_field(entry, "ERRNO=13");
}

TEST(test_log_line_without_error_has_no_errno_field)
{
	_cleanup_close_ int fd = fake_journal(true);
	capture_stderr_begin();
	stderr_is_the_journal();
	log_info("Service %s is asleep", "web");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_STREQ(out, "");
	_cleanup_free_ char *entry = next_entry(fd);
	ASSERT_TRUE(entry != NULL);
	assert_field(entry, "MESSAGE=Service web is asleep");
	assert_field(entry, "PRIORITY=6");
	ASSERT_TRUE(strstr(entry, "ERRNO=") == NULL);
}

TEST(test_log_level_filters_journal_entries_too)
{
	_cleanup_close_ int fd = fake_journal(true);
	log_set_max_level(LOG_INFO);
	capture_stderr_begin();
	stderr_is_the_journal();
	log_debug("not wanted");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_STREQ(out, "");
	ASSERT_TRUE(next_entry(fd) == NULL);
}

TEST(test_event_becomes_journal_entry_with_dozed_fields)
{
	_cleanup_close_ int fd = fake_journal(true);
	capture_stderr_begin();
	stderr_is_the_journal();
	int r = log_event_journal(LOG_INFO, "web: ready in 412 ms", "web", "ready",
				  "{\"event\":\"ready\",\"total_ms\":412}");
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_OK(r);
	ASSERT_STREQ(out, "");
	_cleanup_free_ char *entry = next_entry(fd);
	ASSERT_TRUE(entry != NULL);
	assert_field(entry, "MESSAGE=web: ready in 412 ms");
	assert_field(entry, "PRIORITY=6");
	assert_field(entry, "SYSLOG_IDENTIFIER=dozed");
	assert_field(entry, "DOZED_SERVICE=web");
	assert_field(entry, "DOZED_EVENT=ready");
	assert_field(entry, "DOZED_JSON={\"event\":\"ready\",\"total_ms\":412}");
}

TEST(test_event_leaves_out_null_fields)
{
	_cleanup_close_ int fd = fake_journal(true);
	capture_stderr_begin();
	stderr_is_the_journal();
	int r = log_event_journal(LOG_WARNING, "web: wake failed", "web", "wake_failed", NULL);
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_OK(r);
	_cleanup_free_ char *entry = next_entry(fd);
	ASSERT_TRUE(entry != NULL);
	assert_field(entry, "PRIORITY=4");
	assert_field(entry, "DOZED_EVENT=wake_failed");
	ASSERT_TRUE(strstr(entry, "DOZED_JSON") == NULL);
}

TEST(test_log_line_goes_to_stderr_when_journal_is_unreachable)
{
	fake_journal(false);
	capture_stderr_begin();
	stderr_is_the_journal();
	log_error_errno(ENOENT, "Failed to find %s", "it");
	int r = log_event_journal(LOG_INFO, "web: asleep", "web", "sleep", NULL);
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_STREQ(out, "dozed err: Failed to find it: No such file or directory\n");
	ASSERT_ERR(r, ENOENT);
}

TEST(test_without_journal_stream_nothing_reaches_the_journal)
{
	_cleanup_close_ int fd = fake_journal(true);
	unsetenv("JOURNAL_STREAM");
	capture_stderr_begin();
	log_notice("Plain");
	ASSERT_OK(log_event_journal(LOG_INFO, "web: asleep", "web", "sleep", "{}"));
	_cleanup_free_ char *out = capture_stderr_end();
	ASSERT_STREQ(out, "dozed notice: Plain\n");
	ASSERT_TRUE(next_entry(fd) == NULL);
}
