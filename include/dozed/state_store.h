/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The enabled services, kept across restarts in STATE_DIR/services.json:
 *
 *   [{"container": "web", "container_id": "<64 hex or empty>", "name": "web",
 *     "idle_ms": 5000, "wake_on": "connect"}, ...]
 *
 * "idle_ms" is absent when the service uses the daemon's default. Unknown
 * fields are ignored, so an older dozed reads a newer file.
 */

#define STATE_FILE_NAME "services.json"

struct state_service {
	char *name;	    /* service name, non-empty */
	char *container;    /* the container as the user gave it: name or id */
	char *container_id; /* 64 lowercase hex digits, or "" / NULL when not known yet */
	uint64_t idle_us;   /* 0: the daemon's default; stored in whole milliseconds */
	bool wake_on_data;  /* wake on a client's first bytes instead of its connect */
};

/*
 * Reads STATE_DIR/services.json into *out (malloc'd array, NULL when empty).
 * A missing file (or directory) is 0 services. A file that is not what
 * state_store_save() writes is -EBADMSG: it is logged and renamed to
 * services.json.corrupt-<UTC time> beside it, so nothing is lost and the
 * daemon may go on with none. Other -errno: the file could not be read, or
 * could not be moved aside (then starting over would overwrite it). Also
 * removes temporary files a crash during a save left behind.
 */
int state_store_load(const char *dir, struct state_service **out, size_t *n);

/*
 * Replaces STATE_DIR/services.json atomically: a temporary file in dir
 * (O_CREAT|O_EXCL, mode 0600), fsync, rename over the old file, fsync of dir.
 * Creates dir (mode 0700) and its missing parents. On failure the old file is
 * intact, no temporary file is left, and the error is logged. -EINVAL (logged)
 * for an entry that state_store_load() would refuse.
 */
int state_store_save(const char *dir, const struct state_service *s, size_t n);

/* Frees the array and its strings; accepts NULL. */
void state_services_free(struct state_service *s, size_t n);
