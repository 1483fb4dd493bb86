/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/*
 * Logging: one line per event, to stderr; or, when stderr is connected to the
 * journal (a systemd service), one structured journal entry per event with
 * MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=dozed, CODE_FUNC and ERRNO.
 * The *_errno variants append strerror(err) and return -abs(err), so that
 * "return log_error_errno(r, "Failed to ...");" logs once and propagates.
 * SYNTHETIC_ERRNO(EINVAL), for a code chosen for the message rather than
 * returned by a call, is returned as -EINVAL without ": Invalid argument".
 */

#define LOG_ERRNO_SYNTHETIC (1 << 30)
#define SYNTHETIC_ERRNO(e)  (LOG_ERRNO_SYNTHETIC | ((e) < 0 ? -(e) : (e)))

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "err", "warning", "notice", "info", "debug"; returns -EINVAL otherwise. */
int log_level_from_string(const char *s);

int log_internal(int level, int err, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_full_errno(level, err, ...) log_internal((level), (err), __func__, __VA_ARGS__)
#define log_error_errno(err, ...)	log_full_errno(LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...)	log_full_errno(LOG_WARNING, (err), __VA_ARGS__)
#define log_debug_errno(err, ...)	log_full_errno(LOG_DEBUG, (err), __VA_ARGS__)
#define log_error(...)			log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...)		log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...)			log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...)			log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)			log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)

/*
 * Whether a stream with this device and inode is the journal's, as systemd
 * tells a service in JOURNAL_STREAM="DEV:INO" (decimal). Pure; NULL, empty or
 * malformed is false.
 */
bool log_journal_stream_matches(const char *journal_stream, uint64_t dev, uint64_t ino);
/* Whether this process's stderr is connected to the journal now. */
bool log_stderr_is_journal(void);

/*
 * An activity-feed event as a journal entry with MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER=dozed and DOZED_SERVICE, DOZED_EVENT, DOZED_JSON (NULL
 * fields are left out), so that `journalctl DOZED_SERVICE=web` finds a
 * service's history. Only when stderr is connected to the journal: otherwise
 * a no-op returning 0. Not filtered by the log level. 0 or -errno (-ENOENT:
 * the journal's socket is missing), not logged.
 */
int log_event_journal(int priority, const char *message, const char *service, const char *event,
		      const char *json);
