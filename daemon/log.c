// SPDX-License-Identifier: MIT
#include "dozed/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int log_internal(int level, int err, const char *func, const char *fmt, ...)
{
	int saved_errno = errno;
	int ret = err < 0 ? err : -err;

	if (level > log_max_level)
		goto out;

	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* The function name helps developers; users read the message. */
	const char *where = log_max_level >= LOG_DEBUG ? func : NULL;
	const char *name =
	    level >= 0 && level <= LOG_DEBUG && level_names[level] ? level_names[level] : "log";
	fprintf(stderr, "dozed %s: %s%s%s%s%s\n", name, where ? where : "", where ? ": " : "", msg,
		err != 0 ? ": " : "", err != 0 ? strerror(-ret) : "");
out:
	errno = saved_errno;
	return ret;
}
