// SPDX-License-Identifier: MIT
/*
 * services.json: any bytes through the real state_store_parse(), as
 * state_store_load() reads the file. Every entry set aside is told; what is
 * accepted, state_store_save(, NULL) writes back (to tmpfs) and state_store_load()
 * reads again unchanged: no saved service is lost or altered by a restart.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dozed/log.h"
#include "dozed/settings.h"
#include "dozed/state_store.h"
#include "fuzz.h"

static char dir[4096];
static char again_dir[sizeof(dir) + 8];

/* Every file in d, including the corrupt copies a refused file is moved to. */
static void empty_dir(const char *d)
{
	DIR *dp = opendir(d);
	if (!dp)
		return;
	struct dirent *e;
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.')
			FUZZ_ASSERT(unlinkat(dirfd(dp), e->d_name, 0) == 0);
	closedir(dp);
}

static void remove_dirs(void)
{
	empty_dir(again_dir);
	rmdir(again_dir);
	empty_dir(dir);
	rmdir(dir);
}

static int streq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void bad_entry(void *userdata, size_t index, const char *name, const char *why,
		      const char *raw)
{
	struct state_aside *aside = userdata;
	FUZZ_ASSERT(index >= 1);
	FUZZ_ASSERT(why && why[0]);
	FUZZ_ASSERT(!name || strlen(name) < 4096);
	FUZZ_ASSERT(raw && raw[0]);
	char **more = realloc(aside->entries, (aside->n + 1) * sizeof(*more));
	FUZZ_ASSERT(more);
	aside->entries = more;
	FUZZ_ASSERT((aside->entries[aside->n++] = strdup(raw)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!again_dir[0]) {
		log_set_max_level(-1);
		fuzz_mkdtemp(dir, sizeof(dir) - 8, "dozed-fuzz-state");
		snprintf(again_dir, sizeof(again_dir), "%s/again", dir);
		atexit(remove_dirs);
	}
	/* Exactly the file's bytes: ASan sees a read past them. */
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);

	struct state_service *s = NULL;
	size_t n = 0, n_bad = 0;
	struct state_aside aside = {0};
	char why[256];
	memset(why, 'x', sizeof(why));
	int r = state_store_parse(text, size, &s, &n, &n_bad, bad_entry, &aside, why, sizeof(why));
	free(text);
	FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r == -EBADMSG)
		FUZZ_ASSERT(memchr(why, '\0', sizeof(why)) && why[0]);
	if (r != 0) {
		state_aside_clear(&aside);
		return 0;
	}
	FUZZ_ASSERT(n_bad == aside.n);
	FUZZ_ASSERT(n == 0 || s);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(s[i].name && s[i].name[0] && s[i].container && s[i].container[0]);
		FUZZ_ASSERT(s[i].n_ports <= STATE_MAX_PORTS);
		for (size_t j = 0; j < s[i].n_ports; j++) {
			FUZZ_ASSERT(s[i].ports[j].host_port && s[i].ports[j].container_port);
			FUZZ_ASSERT(
			    memchr(s[i].ports[j].host_ip, '\0', sizeof(s[i].ports[j].host_ip)));
		}
	}

	/* What was accepted survives a save and a load unchanged, and what was
	 * set aside is written back and set aside again: nothing is lost. */
	FUZZ_ASSERT(state_store_save(again_dir, s, n, &aside) == 0);
	struct state_service *t = NULL;
	size_t m = 0;
	struct state_aside again = {0};
	FUZZ_ASSERT(state_store_load(again_dir, &t, &m, &again) == 0);
	FUZZ_ASSERT(m == n && again.n == aside.n);
	state_aside_clear(&again);
	state_aside_clear(&aside);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(streq(s[i].name, t[i].name));
		FUZZ_ASSERT(streq(s[i].container, t[i].container));
		FUZZ_ASSERT(streq(s[i].container_id, t[i].container_id));
		/* Stored in whole milliseconds; never as "never". */
		FUZZ_ASSERT(s[i].idle_us == DOZED_IDLE_NEVER
				? t[i].idle_us == DOZED_IDLE_NEVER
				: t[i].idle_us == s[i].idle_us / 1000 * 1000);
		FUZZ_ASSERT(t[i].freeze_after_us == s[i].freeze_after_us / 1000 * 1000);
		FUZZ_ASSERT(t[i].reclaim_frozen == s[i].reclaim_frozen);
		FUZZ_ASSERT(t[i].wake_on_data == s[i].wake_on_data);
		FUZZ_ASSERT(t[i].n_ports == s[i].n_ports);
		for (size_t j = 0; j < s[i].n_ports; j++) {
			FUZZ_ASSERT(t[i].ports[j].host_port == s[i].ports[j].host_port);
			FUZZ_ASSERT(t[i].ports[j].container_port == s[i].ports[j].container_port);
			FUZZ_ASSERT(strcmp(t[i].ports[j].host_ip, s[i].ports[j].host_ip) == 0);
		}
	}
	state_services_free(t, m);
	state_services_free(s, n);
	empty_dir(again_dir);
	return 0;
}
