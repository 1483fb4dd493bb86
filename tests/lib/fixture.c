// SPDX-License-Identifier: MIT
#include "fixture.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "harness.h"

/* Opens tests/REL; its path in *found (malloc'd) when found is not NULL. */
static FILE *open_fixture(const char *rel, char *tried, size_t tried_len, char **found)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "tests/%s", rel);
	FILE *f = fopen(path, "re");
	if (f) {
		if (found && !(*found = strdup(path)))
			FAIL("out of memory");
		return f;
	}
	snprintf(tried, tried_len, "%s", path);

	/* BUILD/tests/{unit,integration}/test_x: the repository is three levels up. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			return NULL;
		*slash = '\0';
	}
	_cleanup_free_ char *beside = NULL;
	if (asprintf(&beside, "%s/../tests/%s", exe, rel) < 0)
		return NULL;
	f = fopen(beside, "re");
	if (!f)
		snprintf(tried + strlen(tried), tried_len - strlen(tried), " or %s", beside);
	else if (found)
		*found = TAKE_PTR(beside);
	return f;
}

char *fixture_find(const char *path_under_tests)
{
	char tried[2 * PATH_MAX + 8] = "";
	char *found = NULL;
	FILE *f = open_fixture(path_under_tests, tried, sizeof(tried), &found);
	if (f)
		fclose(f);
	return found;
}

char *fixture_path(const char *path_under_tests)
{
	char tried[2 * PATH_MAX + 8] = "";
	_cleanup_free_ char *found = NULL;
	_cleanup_fclose_ FILE *f = open_fixture(path_under_tests, tried, sizeof(tried), &found);
	if (!f)
		FAIL("%s not found (tried %s): run from the repository root", path_under_tests,
		     tried);
	return TAKE_PTR(found);
}

char *fixture_read(const char *path_under_tests, size_t *len)
{
	char tried[2 * PATH_MAX + 8] = "";
	_cleanup_fclose_ FILE *f = open_fixture(path_under_tests, tried, sizeof(tried), NULL);
	if (!f)
		FAIL("fixture %s not found (tried %s): run from the repository root",
		     path_under_tests, tried);
	/* Whole, NUL bytes included (the runtimes' multiplexed logs hold them). */
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += k;
		if (n == cap) {
			char *bigger = realloc(buf, 2 * cap + 1);
			if (!bigger)
				free(buf);
			buf = bigger;
			cap *= 2;
		}
	}
	if (!buf)
		FAIL("reading fixture %s: out of memory", path_under_tests);
	if (ferror(f)) {
		int err = errno;
		free(buf);
		FAIL("reading fixture %s: %s", path_under_tests, strerror(err));
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}
