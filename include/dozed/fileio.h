/* SPDX-License-Identifier: MIT */
#pragma once

/* Whole small files (/proc, cgroupfs) read at once. Logs nothing. */

/* The text of path, NUL-terminated, malloc'd into *out: 0; -errno, -ENODATA
 * for an empty file, -EIO for a read error. */
int file_read_text(const char *path, char **out);
