/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What waits, unread, in a network namespace's sockets, from the kernel's
 * /proc/PID/net/{tcp,tcp6,udp,udp6}: a connection not yet accepted (a
 * listener's backlog), bytes no process has read. A frozen container's
 * sockets show it (the kernel keeps taking handshakes and data for them), so
 * that dozed, started while one was frozen, thaws it for a client that came
 * while it was away (docs/design.md, "Light sleep"). Logs nothing.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * One such file's text: > 0 when something waits, 0 when nothing does,
 * -EINVAL for text that is no such table. Counted: unread bytes of an
 * established (or CLOSE_WAIT) TCP socket or of a UDP socket, and, unless
 * data_only, a listener's backlog. Loopback peers are left out (the
 * container's own). who gets the first one in words ("a client from
 * 10.88.0.1:41234 with 79 unread bytes").
 */
int net_queued_parse(const char *text, bool udp, bool data_only, char *who, size_t who_len);
/* The four files of pid's namespace together; -errno when none can be read. */
int net_queued(pid_t pid, bool data_only, char *who, size_t who_len);
