/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Test fixtures: files under tests/, found from the working directory (the
 * repository root, as `make check` runs) or else from the test binary's place
 * in BUILD/tests/... . Fails the test, naming the file, when it is missing.
 */

/* The path of a file under tests/ (malloc'd), e.g. "runtime-env.sh". */
/* fixture_find returns NULL when it is missing, for use outside a test. */
char *fixture_find(const char *path_under_tests);
char *fixture_path(const char *path_under_tests);
/* The whole file, NUL-terminated (malloc'd); its length in *len if not NULL. */
char *fixture_read(const char *path_under_tests, size_t *len);
