// SPDX-License-Identifier: MIT
#include "dozed/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Otherwise sd_journal_sendv() records this file and function as the caller's. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "dozed/macro.h"

#define SYSLOG_IDENTIFIER "dozed"
#define JOURNAL_SOCKET	  "/run/systemd/journal/socket"

/* The one process-wide setting of this module; set once in main. */
static int log_max_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_ERR] = "err",	 [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level)
{
	log_max_level = level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

int log_level_from_string(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i] && strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

static bool parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return false;
		n = n * 10 + digit;
	}
	*end = p;
	*out = n;
	return p != s;
}

bool log_journal_stream_matches(const char *journal_stream, uint64_t dev, uint64_t ino)
{
	if (!journal_stream)
		return false;
	const char *p;
	uint64_t d, i;
	if (!parse_u64(journal_stream, &p, &d) || *p != ':')
		return false;
	if (!parse_u64(p + 1, &p, &i) || *p != '\0')
		return false;
	return d == dev && i == ino;
}

bool log_stderr_is_journal(void)
{
	/* Checked on every call, not once: stderr may be redirected later, and
	 * a forked child that inherits JOURNAL_STREAM may have another stderr. */
	const char *env = getenv("JOURNAL_STREAM");
	struct stat st;
	if (!env || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return log_journal_stream_matches(env, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

static struct iovec iov_str(const char *s)
{
	return (struct iovec){.iov_base = (void *)s, .iov_len = strlen(s)};
}

/* 0 or -errno, as sd_journal_sendv() returns. */
static int journal_send_log(int level, int err, bool synthetic, const char *func, const char *msg)
{
	char message[1200], priority[32], code_func[256], errno_field[32];
	bool explain = err != 0 && !synthetic;
	snprintf(message, sizeof(message), "MESSAGE=%s%s%s", msg, explain ? ": " : "",
		 explain ? strerror(err < 0 ? -err : err) : "");
	snprintf(priority, sizeof(priority), "PRIORITY=%d", level);
	snprintf(code_func, sizeof(code_func), "CODE_FUNC=%s", func ? func : "");
	snprintf(errno_field, sizeof(errno_field), "ERRNO=%d", err < 0 ? -err : err);

	struct iovec iov[5] = {
	    iov_str(message),
	    iov_str(priority),
	    iov_str("SYSLOG_IDENTIFIER=" SYSLOG_IDENTIFIER),
	    iov_str(code_func),
	    iov_str(errno_field),
	};
	return sd_journal_sendv(iov, err != 0 ? 5 : 4);
}

int log_event_journal(int priority, const char *message, const char *service, const char *event,
		      const char *json)
{
	if (!log_stderr_is_journal())
		return 0;
	if (access(JOURNAL_SOCKET, F_OK) < 0)
		return -errno;

	const char *names[] = {"MESSAGE=", "DOZED_SERVICE=", "DOZED_EVENT=", "DOZED_JSON="};
	const char *values[] = {message, service, event, json};
	char *fields[ARRAY_SIZE(values)] = {NULL};
	char prio[32];
	snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
	struct iovec iov[2 + ARRAY_SIZE(values)];
	int n = 0, r = 0;
	iov[n++] = iov_str(prio);
	iov[n++] = iov_str("SYSLOG_IDENTIFIER=" SYSLOG_IDENTIFIER);
	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		if (!values[i])
			continue;
		if (asprintf(&fields[i], "%s%s", names[i], values[i]) < 0) {
			fields[i] = NULL;
			r = -ENOMEM;
			break;
		}
		iov[n++] = iov_str(fields[i]);
	}
	if (r == 0)
		r = sd_journal_sendv(iov, n);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		free(fields[i]);
	return r;
}

int log_internal(int level, int err, const char *func, const char *fmt, ...)
{
	int saved_errno = errno;
	/* A code made up for the message (SYNTHETIC_ERRNO) is returned and sent
	 * as ERRNO=, but its strerror() would only repeat the message badly. */
	bool synthetic = (err < 0 ? -err : err) & LOG_ERRNO_SYNTHETIC;
	err = (err < 0 ? -err : err) & ~LOG_ERRNO_SYNTHETIC;
	int ret = -err;

	if (level > log_max_level)
		goto out;

	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* sd_journal_sendv() drops the entry and returns 0 when the journal's socket
	 * is missing, so that is checked first; stderr reaches the journal too,
	 * as plain text. */
	if (log_stderr_is_journal() && access(JOURNAL_SOCKET, F_OK) == 0 &&
	    journal_send_log(level, err, synthetic, func, msg) >= 0)
		goto out;

	/* The function name helps developers; users read the message. */
	const char *where = log_max_level >= LOG_DEBUG ? func : NULL;
	const char *name =
	    level >= 0 && level <= LOG_DEBUG && level_names[level] ? level_names[level] : "log";
	fprintf(stderr, "dozed %s: %s%s%s%s%s\n", name, where ? where : "", where ? ": " : "", msg,
		err != 0 && !synthetic ? ": " : "", err != 0 && !synthetic ? strerror(-ret) : "");
out:
	errno = saved_errno;
	return ret;
}
