/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <syslog.h>

/*
 * Logging: one line per event, to stderr (journald comes with the daemon).
 * The *_errno variants append strerror(err) and return -abs(err), so that
 * "return log_error_errno(r, "Failed to ...");" logs once and propagates.
 */

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
