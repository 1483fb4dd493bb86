// SPDX-License-Identifier: MIT
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int saved_stderr = -1;
static FILE *capture_file;

void capture_stderr_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	saved_stderr = dup(STDERR_FILENO);
	if (!capture_file || saved_stderr < 0 || dup2(fileno(capture_file), STDERR_FILENO) < 0)
		FAIL("cannot capture stderr");
}

char *capture_stderr_end(void)
{
	fflush(stderr);
	if (dup2(saved_stderr, STDERR_FILENO) < 0)
		FAIL("cannot restore stderr");
	close(saved_stderr);
	saved_stderr = -1;

	long len = ftell(capture_file);
	char *text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (!text)
		FAIL("out of memory");
	rewind(capture_file);
	size_t got = fread(text, 1, (size_t)(len > 0 ? len : 0), capture_file);
	text[got] = '\0';
	fclose(capture_file);
	capture_file = NULL;
	fputs(text, stderr);
	return text;
}
