// SPDX-License-Identifier: MIT
/* The real daemon in a test: see daemon_fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dozed/daemon.h"
#include "dozed/macro.h"
#include "control_fixture.h"
#include "daemon_fixture.h"
#include "harness.h"
#include "netns.h"

static void daemon_fixture_free(void *arg)
{
	struct daemon_fixture *df = arg;
	dozed_free(df->d);
	dozed_config_free(&df->cfg);
	free(df);
}

static void set_path(char **field, const char *dir, const char *name)
{
	free(*field);
	if (asprintf(field, "%s/%s", dir, name) < 0)
		FAIL("out of memory");
}

char *daemon_fixture_state_file(struct daemon_fixture *df)
{
	char *p = NULL;
	if (asprintf(&p, "%s/services.json", df->cfg.state_dir) < 0)
		FAIL("out of memory");
	return p;
}

struct daemon_fixture *daemon_fixture_new(const char *prefix, const char *saved, uint64_t idle_us)
{
	/* Its nft table and activator port are then the namespace's, not the host's. */
	ASSERT_OK(netns_enter_private());
	struct daemon_fixture *df = calloc(1, sizeof(*df));
	if (!df)
		FAIL("out of memory");
	df->f = control_fixture_bare(prefix);
	/* Deferred after the fixture: the daemon goes before the base it runs on. */
	test_defer(daemon_fixture_free, df);
	ASSERT_OK(dozed_config_defaults(&df->cfg));
	if (idle_us)
		df->cfg.idle_us = idle_us;
	set_path(&df->cfg.control_path, df->f->dir, "control.sock");
	set_path(&df->cfg.runtime_socket, df->f->dir, "no-runtime.sock");
	set_path(&df->cfg.state_dir, df->f->dir, "state");
	ASSERT_OK(mkdir(df->cfg.state_dir, 0700));
	if (saved) {
		_cleanup_free_ char *path = daemon_fixture_state_file(df);
		FILE *out = fopen(path, "we");
		if (!out || fputs(saved, out) < 0 || fclose(out) != 0)
			FAIL("cannot write %s", path);
	}
	ASSERT_OK(dozed_new(df->f->base, &df->cfg, NULL, NULL, NULL, &df->d));
	df->c = control_fixture_connect(df->f);
	return df;
}
