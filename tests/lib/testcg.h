/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Test cgroups: only under <cgroup2 mount>/dozed-test.<suite pid>/, never
 * elsewhere. testcg_create() defers the removal of what it made; a suite that
 * uses it calls testcg_remove_all() from test_suite_teardown() for what a
 * killed test left behind.
 */

/* Creates the test cgroup "name" (slashes make nested ones); returns its path (malloc'd). */
char *testcg_create(const char *name);
/* The cgroup2 mount point (malloc'd). */
char *testcg_mount(void);
/* The directory all of this suite's test cgroups live in (malloc'd). */
char *testcg_suite_dir(void);
void testcg_remove_all(void);

/* Moves the calling process into cgroup dir. */
int testcg_enter(const char *dir);

/*
 * In a child process placed in cgroup dir: connects to 127.0.0.1:port and
 * sends n bytes. Returns the child's pid; the caller accepts and reads.
 */
pid_t testcg_spawn_sender(const char *dir, unsigned short port, size_t n);
/* Waits for a child and fails the test unless it exited 0. */
void testcg_wait_ok(pid_t pid);
