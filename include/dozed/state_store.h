/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dozed/flow_rule.h"
#include "dozed/probe_spec.h"

/*
 * The enabled services, kept across restarts in STATE_DIR/services.json:
 *
 *   [{"container": "web", "container_id": "<64 hex or empty>", "name": "web",
 *     "idle_ms": 5000, "wake_on": "connect",
 *     "ports": [{"host_ip": "", "host_port": 8080, "container_port": 80}]}, ...]
 *
 * "idle_ms" is absent when the service uses the daemon's default, and when
 * it is never stopped ("idle": "never" instead). Light sleep: "freeze_after_ms"
 * (1000 or more, shorter than "idle_ms"; absent: none) and "reclaim_frozen"
 * (true; absent: false); an older dozed ignores them, and stops the service
 * as before ("idle" "never": after the daemon's default). "ports"
 * are the published ports dozed redirects while the service sleeps: kept so
 * that a service whose container cannot be inspected yet (the runtime is not
 * up) keeps its redirect; absent in files of older versions. Unknown fields
 * are ignored, so an older dozed reads a newer file.
 */

#define STATE_FILE_NAME "services.json"
#define STATE_MAX_PORTS 16

struct state_port {
	char host_ip[48]; /* "" for every address */
	uint16_t host_port;
	uint16_t container_port;
};

struct state_service {
	char *name;	    /* service name, non-empty */
	char *container;    /* the container as the user gave it: name or id */
	char *container_id; /* 64 lowercase hex digits, or "" / NULL when not known yet */
	/* 0: the daemon's default; DOZED_IDLE_NEVER: never stopped ("idle":
	 * "never"); else stored in whole milliseconds */
	uint64_t idle_us;
	bool wake_on_data;	  /* wake on a client's first bytes instead of its connect */
	struct probe_spec probe;  /* "probe"; absent (an older file): auto */
	struct flow_rules ignore; /* "ignore", when ignore_set; absent: the default */
	bool ignore_set;
	bool keep_awake_connections; /* "keep_awake": "connections"; absent: off */
	uint64_t freeze_after_us;    /* "freeze_after_ms"; absent or 0: no light sleep */
	bool reclaim_frozen;	     /* "reclaim_frozen": true; absent: false */
	struct state_port ports[STATE_MAX_PORTS];
	size_t n_ports; /* 0: not known (a file of an older version) */
};

/* Told about each entry that parsing set aside: its 1-based index, its
 * "name" when it has a readable one (else NULL), why, and the entry as JSON
 * text (to be written back as it was). */
typedef void (*state_bad_entry_fn)(void *userdata, size_t index, const char *name, const char *why,
				   const char *raw);

/*
 * The entries of services.json that could not be read, as JSON text. They
 * are written back with every save, so that no entry is lost until someone
 * fixes or removes it by hand (and while any is there, the daemon removes no
 * redirected port that might be its service's).
 */
struct state_aside {
	char **entries;
	size_t n;
};

/* Frees the entries and zeroes a; accepts an empty one. */
void state_aside_clear(struct state_aside *a);

/*
 * Parses the text of a services.json; pure, logs nothing. 0 and the good
 * entries in *out (malloc'd, NULL when none), *n_bad counting the entries
 * set aside (each told to bad, which may be NULL): one bad entry never costs
 * the others. -EBADMSG, with why, when the text as a whole is not a JSON
 * array of objects (empty, truncated, not JSON); -ENOMEM.
 */
int state_store_parse(const char *text, size_t len, struct state_service **out, size_t *n,
		      size_t *n_bad, state_bad_entry_fn bad, void *userdata, char *why,
		      size_t why_len);

/*
 * Reads STATE_DIR/services.json into *out (malloc'd array, NULL when empty).
 * A missing file (or directory) is 0 services. Entries that are not what
 * state_store_save() writes are set aside into *aside, each logged with its
 * index, name and why; the good ones load, and a copy of the whole file is
 * kept as services.json.corrupt-<UTC time> beside it (once per content; a
 * copy that cannot be written is logged, not fatal). A file unusable as a
 * whole (empty, truncated, not JSON) is -EBADMSG: it is logged and renamed
 * to that name, so nothing is lost and the daemon may go on with none. Other
 * -errno: the file could not be read, or could not be moved aside (then
 * starting over would overwrite it). Also removes temporary files a crash
 * during a save left behind.
 */
int state_store_load(const char *dir, struct state_service **out, size_t *n,
		     struct state_aside *aside);

/* How many services.json.corrupt-* files are in dir: while there are any,
 * services may be missing from the state, so the daemon removes no
 * redirected port it cannot account for. The operator looks, re-enables
 * what they list, and deletes them. */
size_t state_store_count_corrupt(const char *dir);

/*
 * Replaces STATE_DIR/services.json atomically: a temporary file in dir
 * (O_CREAT|O_EXCL, mode 0600), fsync, rename over the old file, fsync of dir.
 * Creates dir (mode 0700) and its missing parents. On failure the old file is
 * intact, no temporary file is left, and the error is logged. -EINVAL (logged)
 * for an entry that state_store_load() would refuse. The entries of aside
 * (may be NULL) follow the others, as they were read.
 */
int state_store_save(const char *dir, const struct state_service *s, size_t n,
		     const struct state_aside *aside);

/* Why an entry cannot be stored, or NULL: the same rules for load and save,
 * so that whatever was saved loads again. */
const char *state_service_invalid(const struct state_service *s);
/* The text of services.json for these entries, then the set-aside ones as
 * they were (aside may be NULL); malloc'd; 0 or -ENOMEM. */
int state_store_format(const struct state_service *s, size_t n, const struct state_aside *aside,
		       char **out);

/* Frees the array and its strings; accepts NULL. */
void state_services_free(struct state_service *s, size_t n);
