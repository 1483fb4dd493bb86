/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Raising RLIMIT_NOFILE for a benchmark that holds thousands of sockets. A
 * header only: each benchmark links tests/lib's netns.o and nothing else of
 * tests/lib (see the Makefile).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Raises this process's RLIMIT_NOFILE to need (the hard limit too, when it is lower). */
static inline int nofile_raise(rlim_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	rlim_t hard = rl.rlim_max;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int r = -errno;
		fprintf(stderr,
			"bench: raising RLIMIT_NOFILE to %llu: %s (the hard limit is %llu; "
			"raising it needs CAP_SYS_RESOURCE)\n",
			(unsigned long long)need, strerror(-r), (unsigned long long)hard);
		return r;
	}
	return 0;
}
