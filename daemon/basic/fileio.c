// SPDX-License-Identifier: MIT
#include "dozed/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "dozed/macro.h"

int file_read_text(const char *path, char **out)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t cap = 0;
	_cleanup_free_ char *buf = NULL;
	ssize_t n = getdelim(&buf, &cap, '\0', f);
	if (n < 0)
		return ferror(f) ? -EIO : -ENODATA;
	*out = TAKE_PTR(buf);
	return 0;
}
