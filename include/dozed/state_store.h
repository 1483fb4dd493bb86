/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The enabled services, kept across restarts in STATE_DIR/services.json:
 *
 *   [{"container": "web", "container_id": "<64 hex or empty>", "name": "web",
 *     "idle_ms": 5000, "wake_on": "connect",
 *     "ports": [{"host_ip": "", "host_port": 8080, "container_port": 80}]}, ...]
 *
 * "idle_ms" is absent when the service uses the daemon's default. "ports"
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
	uint64_t idle_us;   /* 0: the daemon's default; stored in whole milliseconds */
	bool wake_on_data;  /* wake on a client's first bytes instead of its connect */
	struct state_port ports[STATE_MAX_PORTS];
	size_t n_ports; /* 0: not known (a file of an older version) */
};

/* Told about each entry that parsing set aside: its 1-based index, its
 * "name" when it has a readable one (else NULL), and why. */
typedef void (*state_bad_entry_fn)(void *userdata, size_t index, const char *name, const char *why);

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
 * state_store_save() writes are set aside, each logged with its index, name
 * and why; the good ones load, *n_bad counts the others, and a copy of the
 * whole file is kept as services.json.corrupt-<UTC time> beside it (the next
 * save writes the good ones only). A file unusable as a whole (empty,
 * truncated, not JSON) is -EBADMSG: it is logged and renamed to that name,
 * so nothing is lost and the daemon may go on with none. Other -errno: the
 * file could not be read, or could not be kept aside (then starting over
 * would overwrite it). Also removes temporary files a crash during a save
 * left behind.
 */
int state_store_load(const char *dir, struct state_service **out, size_t *n, size_t *n_bad);

/*
 * Replaces STATE_DIR/services.json atomically: a temporary file in dir
 * (O_CREAT|O_EXCL, mode 0600), fsync, rename over the old file, fsync of dir.
 * Creates dir (mode 0700) and its missing parents. On failure the old file is
 * intact, no temporary file is left, and the error is logged. -EINVAL (logged)
 * for an entry that state_store_load() would refuse.
 */
int state_store_save(const char *dir, const struct state_service *s, size_t n);

/* Why an entry cannot be stored, or NULL: the same rules for load and save,
 * so that whatever was saved loads again. */
const char *state_service_invalid(const struct state_service *s);
/* The text of services.json for these entries (malloc'd); 0 or -ENOMEM. */
int state_store_format(const struct state_service *s, size_t n, char **out);

/* Frees the array and its strings; accepts NULL. */
void state_services_free(struct state_service *s, size_t n);
