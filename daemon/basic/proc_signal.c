// SPDX-License-Identifier: MIT
#include "dozed/proc_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dozed/macro.h"

static const struct {
	const char *name;
	int signo;
} signal_names[] = {
    {"HUP", 1},	  {"INT", 2},	{"QUIT", 3},	{"ILL", 4},   {"TRAP", 5},    {"ABRT", 6},
    {"IOT", 6},	  {"BUS", 7},	{"FPE", 8},	{"KILL", 9},  {"USR1", 10},   {"SEGV", 11},
    {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14},	{"TERM", 15}, {"STKFLT", 16}, {"CHLD", 17},
    {"CONT", 18}, {"STOP", 19}, {"TSTP", 20},	{"TTIN", 21}, {"TTOU", 22},   {"URG", 23},
    {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28},  {"IO", 29},
    {"POLL", 29}, {"PWR", 30},	{"SYS", 31},
};

int proc_signal_parse(const char *s)
{
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		errno = 0;
		long n = strtol(s, &end, 10);
		if (errno || *end || n < 1 || n > 64)
			return -EINVAL;
		return (int)n;
	}
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (strcasecmp(name, signal_names[i].name) == 0)
			return signal_names[i].signo;
	return -EINVAL;
}

int proc_signal_caught_in_status(const char *status, size_t len, int signo)
{
	if (signo < 1 || signo > 64)
		return -EINVAL;
	static const char key[] = "SigCgt:";
	const char *p = status, *end = status + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		size_t n = (size_t)(line_end - p);
		if (n > strlen(key) && memcmp(p, key, strlen(key)) == 0) {
			char hex[32];
			size_t h = n - strlen(key);
			if (h >= sizeof(hex))
				return -EBADMSG;
			memcpy(hex, p + strlen(key), h);
			hex[h] = '\0';
			char *e;
			errno = 0;
			uint64_t mask = strtoull(hex, &e, 16);
			while (*e == ' ' || *e == '\t')
				e++;
			if (errno || e == hex || *e)
				return -EBADMSG;
			return (mask >> (signo - 1)) & 1 ? 1 : 0;
		}
		p = nl ? nl + 1 : end;
	}
	return -EBADMSG;
}

int proc_signal_caught(pid_t pid, int signo)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0)
		return err;
	return proc_signal_caught_in_status(buf, (size_t)n, signo);
}
