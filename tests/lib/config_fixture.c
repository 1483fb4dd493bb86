// SPDX-License-Identifier: MIT
/* The inputs of the config tests: see config_fixture.h. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_fixture.h"
#include "harness.h"

static void unlink_cleanup(void *arg)
{
	unlink(arg);
	free(arg);
}

/* A config file with this text, removed when the test ends. */
const char *conf_file(const char *text)
{
	char *path = strdup("/tmp/dozed-test-conf.XXXXXX");
	int fd = path ? mkstemp(path) : -1;
	if (fd < 0)
		FAIL("cannot create a temporary config file");
	test_defer(unlink_cleanup, path);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len)
		FAIL("cannot write %s", path);
	close(fd);
	return path;
}

int from_argv_list(struct dozed_config *c, char **msg, const char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	*msg = NULL;
	return dozed_config_from_argv(c, argc, (char **)argv, msg);
}
