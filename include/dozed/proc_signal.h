/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Whether a signal can do anything to a container's init. The kernel drops a
 * signal sent to the init of a PID namespace from an ancestor namespace
 * unless init has a handler for it (pid_namespaces(7)); SIGKILL and SIGSTOP
 * excepted. So a stop signal that init ignores, or does not catch as a
 * namespace's init, leaves the container running until the SIGKILL: that
 * stop can be cancelled with no harm. One it catches may be shutting it down,
 * however long it still serves.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* "SIGTERM", "TERM", "term", "15", "SIGRTMIN+3" or "RTMAX-1": its number
 * (1-64); -EINVAL for anything else. The one reading of a signal's name: the
 * runtime client checks a stop signal with it too. */
int proc_signal_parse(const char *s);
/*
 * From the text of /proc/PID/status: 1 when signo can do nothing to the
 * process (SigIgn has it; or SigCgt lacks it and the process is the init of
 * a PID namespace below ours, NSpid ending in 1), 0 when it may, -EBADMSG
 * when the lines are missing. SIGKILL and SIGSTOP always may.
 */
int proc_signal_noop_in_status(const char *status, size_t len, int signo);
/* The same for process pid, read now: -ENOENT when it is gone. */
int proc_signal_noop(pid_t pid, int signo);
