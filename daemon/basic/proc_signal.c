// SPDX-License-Identifier: MIT
#include "dozed/proc_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
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

/* SIGRTMIN and SIGRTMAX as the kernel numbers them; glibc keeps two below. */
#define KERNEL_SIGRTMIN 32
#define KERNEL_SIGRTMAX 64

static int parse_number(const char *s, long min, long max)
{
	if (!(s[0] >= '0' && s[0] <= '9'))
		return -EINVAL;
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	return (int)n;
}

int proc_signal_parse(const char *s)
{
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_number(s, 1, KERNEL_SIGRTMAX);
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (strcasecmp(name, signal_names[i].name) == 0)
			return signal_names[i].signo;
	/* RTMIN, RTMIN+N, RTMAX, RTMAX-N, as docker and podman take them. */
	int base, sign;
	if (strncasecmp(name, "RTMIN", 5) == 0)
		base = KERNEL_SIGRTMIN, sign = 1;
	else if (strncasecmp(name, "RTMAX", 5) == 0)
		base = KERNEL_SIGRTMAX, sign = -1;
	else
		return -EINVAL;
	const char *off = name + 5;
	if (!*off)
		return base;
	if (*off != (sign > 0 ? '+' : '-'))
		return -EINVAL;
	int n = parse_number(off + 1, 1, KERNEL_SIGRTMAX - KERNEL_SIGRTMIN);
	return n < 0 ? n : base + sign * n;
}

/* The value of "Key:\t..." in a status text, into out; -EBADMSG if absent. */
static int status_field(const char *status, size_t len, const char *key, char *out, size_t out_len)
{
	size_t klen = strlen(key);
	const char *p = status, *end = status + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		size_t n = (size_t)(line_end - p);
		if (n > klen && memcmp(p, key, klen) == 0 && p[klen] == ':') {
			size_t h = n - klen - 1;
			if (h >= out_len)
				return -EBADMSG;
			memcpy(out, p + klen + 1, h);
			out[h] = '\0';
			return 0;
		}
		p = nl ? nl + 1 : end;
	}
	return -EBADMSG;
}

/* Bit signo of the mask named key ("SigCgt", "SigIgn"): 1, 0 or -EBADMSG. */
static int status_mask_has(const char *status, size_t len, const char *key, int signo)
{
	char hex[32];
	if (status_field(status, len, key, hex, sizeof(hex)) < 0)
		return -EBADMSG;
	char *e;
	errno = 0;
	uint64_t mask = strtoull(hex, &e, 16);
	while (*e == ' ' || *e == '\t')
		e++;
	if (errno || e == hex || *e)
		return -EBADMSG;
	return (mask >> (signo - 1)) & 1 ? 1 : 0;
}

/* Whether NSpid's last number is 1: the init of a namespace below ours. */
static int status_is_namespace_init(const char *status, size_t len)
{
	char nspid[128];
	if (status_field(status, len, "NSpid", nspid, sizeof(nspid)) < 0)
		return -EBADMSG;
	char *last = NULL, *save = NULL;
	size_t fields = 0;
	for (char *t = strtok_r(nspid, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		last = t;
		fields++;
	}
	return fields >= 2 && strcmp(last, "1") == 0;
}

int proc_signal_noop_in_status(const char *status, size_t len, int signo)
{
	if (signo < 1 || signo > KERNEL_SIGRTMAX)
		return -EINVAL;
	if (signo == SIGKILL || signo == SIGSTOP)
		return 0;
	int ignored = status_mask_has(status, len, "SigIgn", signo);
	if (ignored != 0)
		return ignored; /* 1, or the text is not a status */
	int caught = status_mask_has(status, len, "SigCgt", signo);
	if (caught != 0)
		return caught < 0 ? caught : 0;
	int init = status_is_namespace_init(status, len);
	return init;
}

static int status_read(pid_t pid, char *buf, size_t size, size_t *len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (n < 0)
		return err;
	*len = (size_t)n;
	return 0;
}

int proc_signal_noop(pid_t pid, int signo)
{
	char buf[4096];
	size_t len = 0;
	int r = status_read(pid, buf, sizeof(buf), &len);
	return r < 0 ? r : proc_signal_noop_in_status(buf, len, signo);
}
