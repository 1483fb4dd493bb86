/* SPDX-License-Identifier: MIT */
#pragma once

/* Captures what the code under test writes to stderr (its log), to assert messages. */
void capture_stderr_begin(void);
/* Restores stderr and returns what was written (malloc'd); the text is also echoed. */
char *capture_stderr_end(void);
