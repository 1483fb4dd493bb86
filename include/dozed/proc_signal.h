/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Whether a signal can do anything to a container's init. The kernel drops a
 * signal sent to the init of a PID namespace from an ancestor namespace
 * unless init has a handler for it (pid_namespaces(7)); SIGKILL and SIGSTOP
 * excepted. So a stop signal that init does not catch leaves the container
 * running until the SIGKILL: it can be cancelled with no harm. One it
 * catches may be shutting it down.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* "SIGTERM", "TERM", "term" or "15": its number (1-64); -EINVAL for anything
 * else (a name this table lacks, "SIGRTMIN+3"). */
int proc_signal_parse(const char *s);
/* From the text of /proc/PID/status: 1 when its SigCgt has signo, 0 when not,
 * -EBADMSG when there is no SigCgt line. */
int proc_signal_caught_in_status(const char *status, size_t len, int signo);
/* The same for process pid, read now: -ENOENT when it is gone. */
int proc_signal_caught(pid_t pid, int signo);
