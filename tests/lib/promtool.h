/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Prometheus' own check of an exposition text: promtool check metrics, from
 * Debian's prometheus package, run as a child. A test that needs it fails,
 * naming it, when it is not installed.
 */

#include <stddef.h>

#define PROMTOOL "/usr/bin/promtool"

/* Runs promtool check metrics on text: its exit status (128 + the signal
 * that killed it), its output (stdout and stderr) in why, cut to len. */
int promtool_check(const char *text, char *why, size_t len);
