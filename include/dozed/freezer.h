/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A container's freezer, as its runtime uses it (docs/design.md, "Light
 * sleep"): the cgroup v1 freezer controller on a hybrid host (freezer.state),
 * else cgroup v2's cgroup.freeze. dozed pauses a container through the
 * runtime (so that `docker ps` says Paused), and thaws it itself, faster than
 * the runtime's own unpause can:
 *
 *   freezer_release()  moves the frozen cgroup's processes into a sibling
 *                      cgroup that is not frozen (DIR.dozed-thaw): they run at
 *                      once, and the container's cgroup still reads frozen;
 *   the runtime's unpause then succeeds (runc refuses to resume a cgroup that
 *                      is not frozen, which a plain write of THAWED would make);
 *   freezer_settle()   moves them back and removes the sibling.
 *
 * Plain syscalls on cgroupfs, no allocation kept: struct freezer is a value.
 * Each call returns 0 (or a count) or -errno and logs nothing.
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The sibling's name is the cgroup's with this appended (DIR.dozed-thaw):
 * beside the container's cgroup, so that it inherits what the parent gives
 * and nothing the runtime set on the container's own cgroup (on v2, one
 * hierarchy for every controller). */
#define FREEZER_SIBLING_SUFFIX ".dozed-thaw"

struct freezer {
	char dir[PATH_MAX]; /* the cgroup directory whose freeze file the runtime writes */
	bool v1;	    /* freezer.state (v1 controller), else cgroup.freeze (v2) */
};

/* The freezer of process pid's cgroup: the v1 "freezer" hierarchy when one is
 * mounted and pid is in it (a hybrid host), else its cgroup v2 directory. A
 * process out in the sibling gives the container's cgroup beside it.
 * -ENOENT when neither is found, -ESRCH when pid is gone. */
int freezer_find(pid_t pid, struct freezer *out);
/* The same from a mountinfo and a /proc/PID/cgroup text (for tests).
 * -EINVAL for a path the kernel would not write ("..", ".", relative),
 * -ENOENT also for a path outside the mounted subtree or a deleted cgroup. */
int freezer_find_in(const char *mountinfo, const char *proc_pid_cgroup, struct freezer *out);

/* 1 when the cgroup itself is frozen (v1: FROZEN and self_freezing; v2:
 * cgroup.freeze is 1), 0 when not, -errno. */
int freezer_is_frozen(const struct freezer *f);
/* Writes the cgroup's own state (v1 FROZEN/THAWED, v2 1/0) and returns at once;
 * for tests, and for a stop of a container whose runtime will not unpause it. */
int freezer_set(const struct freezer *f, bool frozen);

/* Lets the processes of the frozen cgroup run now, as above: moves them into
 * the sibling, made when absent (an existing one keeps its state: frozen, it
 * parks them, still frozen, which is how daemon_freeze.c takes the move off
 * the wake path). Returns how many processes were moved (0: the cgroup had
 * none), -errno (nothing moved, or what was moved moved back). The first
 * migration after a quiet spell waits for an RCU grace period unless the
 * cgroupfs is mounted with favordynmods (measured here: ~10 ms p50, 5-15 ms
 * cold; ~0.2 ms right after another migration; the kernel's own thaw of a
 * cgroup ~0.1 ms). Processes in cgroups nested below dir stay frozen until
 * the runtime's unpause. */
int freezer_release(const struct freezer *f);
/* How many processes are out in the sibling (parked, or a release not yet
 * settled: the runtime's unpause is under way, or dozed was killed in
 * between); 0 when the sibling does not exist. */
int freezer_released(const struct freezer *f);
/* Moves every process in the sibling back into the cgroup (again while new
 * ones appear, a bounded number of rounds) and removes the sibling. They take
 * the cgroup's state: frozen again if it still is (the runtime refused to
 * unpause), running once the runtime's unpause thawed it. 0 (also when there
 * is no sibling), -EBUSY when processes remain, -errno. */
int freezer_settle(const struct freezer *f);

/* The cgroup's memory, in bytes (v2 memory.current, v1 memory.usage_in_bytes
 * of the memory hierarchy), for the process pid's cgroup. -ENOENT without a
 * memory controller. */
int freezer_memory_bytes(pid_t pid, uint64_t *out);
/* Asks the kernel to reclaim what it can of that cgroup's memory (v2
 * memory.reclaim, Linux >= 5.19; v1 memory.force_empty): file cache always,
 * anonymous memory where swap or zswap exists. Before and after in bytes.
 * It blocks while the kernel reclaims (here, v1, a frozen cgroup: 64 MiB of
 * clean page cache in 3-9 ms; ~50-90 ms while its reads were still under
 * way): mind the event loop for large dirty or anonymous footprints. -EOPNOTSUPP when the
 * kernel has neither file (or there is no memory controller), -EINVAL for the
 * root memory cgroup (that would reclaim the whole host), with *why (may be
 * NULL) a sentence for the user. */
int freezer_reclaim(pid_t pid, uint64_t *before, uint64_t *after, const char **why);
