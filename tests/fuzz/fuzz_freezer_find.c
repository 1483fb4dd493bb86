// SPDX-License-Identifier: MIT
/*
 * Finding a freezer: freezer_find_in() on any mountinfo and /proc/PID/cgroup
 * texts (the input split at its first NUL byte). A directory it gives is
 * absolute, fits in PATH_MAX, and has no "." or ".." component: no text the
 * kernel could be made to write leads outside a cgroup mount.
 */
#include "dozed/freezer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t first = nul ? (size_t)(nul - data) : size;
	char *mountinfo = fuzz_strndup(data, first);
	char *cgroup = nul ? fuzz_strndup(nul + 1, size - first - 1) : fuzz_strndup(data, 0);
	struct freezer f;
	int r = freezer_find_in(mountinfo, cgroup, &f);
	if (r == 0) {
		FUZZ_ASSERT(f.dir[0] == '/');
		FUZZ_ASSERT(strlen(f.dir) < sizeof(f.dir));
		FUZZ_ASSERT(strstr(f.dir, "/../") == NULL && strstr(f.dir, "/./") == NULL);
		size_t l = strlen(f.dir);
		FUZZ_ASSERT(!(l >= 3 && strcmp(f.dir + l - 3, "/..") == 0));
		FUZZ_ASSERT(!(l >= 2 && strcmp(f.dir + l - 2, "/.") == 0));
	}
	free(mountinfo);
	free(cgroup);
	return 0;
}
