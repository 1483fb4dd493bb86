// SPDX-License-Identifier: MIT
#include "dozed/egress_counter.h"

#include <assert.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "dozed/egress.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "egress.skel.h"

#define VMLINUX_BTF_PATH "/sys/kernel/btf/vmlinux"

struct egress_counter {
	struct egress_bpf *skel;
	int map_fd;
	int ncpus;
	/* The kernel lets one program be linked twice to a cgroup, which would
	 * count every packet twice: attachments are tracked to refuse that. */
	struct egress_attachment *attachments;
};

struct egress_attachment {
	struct egress_counter *counter;
	LIST_FIELDS(struct egress_attachment, attachments);
	struct bpf_link *link;
	uint64_t cgroup_id;
	char *path;
};

/* Below the log's own line bound (1 KiB with its prefix): a longer line goes
 * out in pieces rather than cut. */
#define LIBBPF_LOG_PIECE 896

/*
 * libbpf explains its failures at length; keep it for --log-level debug. A
 * failed load's message holds the verifier's whole log, many lines long,
 * which the user was told to look for: every line is logged, in order.
 */
static int libbpf_print_debug(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || log_get_max_level() < LOG_DEBUG)
		return 0;
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
		return log_debug_errno(ENOMEM, "libbpf: a message was lost");
	}
	for (char *line = msg; *line;) {
		size_t len = strcspn(line, "\n");
		char *next = line[len] ? line + len + 1 : line + len;
		line[len] = '\0';
		/* libbpf's own lines begin with its name; the verifier's do not. */
		const char *prefix = strncmp(line, "libbpf: ", 8) == 0 ? "" : "libbpf: ";
		size_t off = 0;
		do {
			log_debug("%s%.*s", prefix, LIBBPF_LOG_PIECE, line + off);
			off += LIBBPF_LOG_PIECE;
		} while (off < len);
		line = next;
	}
	return 0;
}

void egress_counter_log_libbpf(void)
{
	libbpf_set_print(libbpf_print_debug);
}

int egress_counter_new(struct egress_counter **out)
{
	if (access(VMLINUX_BTF_PATH, R_OK) < 0)
		return log_error_errno(
		    errno,
		    "Cannot read %s: the kernel has no BTF; dozed needs Linux >= "
		    "5.11 built with CONFIG_DEBUG_INFO_BTF=y",
		    VMLINUX_BTF_PATH);

	egress_counter_log_libbpf();

	_cleanup_free_ struct egress_counter *c = calloc(1, sizeof(*c));
	if (!c)
		return log_error_errno(ENOMEM, "Failed to allocate the egress counter");

	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0)
		return log_error_errno(c->ncpus, "Failed to count the possible CPUs");

	c->skel = egress_bpf__open_and_load();
	if (!c->skel) {
		int r = -errno;
		if (r == -EPERM || r == -EACCES)
			return log_error_errno(
			    r, "Failed to load the eBPF egress counter: run dozed as root, "
			       "with CAP_NET_ADMIN and CAP_SYS_ADMIN (or CAP_BPF; "
			       "CAP_SYS_ADMIN also lets it probe inside containers) and "
			       "a system call filter that allows bpf()");
		return log_error_errno(r, "Failed to load the eBPF egress counter (run with "
					  "--log-level debug for the verifier's log)");
	}
	c->map_fd = bpf_map__fd(c->skel->maps.egress_stats);
	*out = TAKE_PTR(c);
	return 0;
}

void egress_counter_free(struct egress_counter *c)
{
	if (!c)
		return;
	/* Attachments are owned by their callers, who must detach first. */
	assert(!c->attachments);
	egress_bpf__destroy(c->skel);
	free(c);
}

static int open_cgroup2_dir(const char *path, uint64_t *cgroup_id)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return log_error_errno(errno,
					       "Cannot count egress of %s: no such cgroup "
					       "directory",
					       path);
		if (errno == ENOTDIR)
			return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
					       "Cannot count egress of %s: not a directory; "
					       "give a cgroup v2 directory",
					       path);
		return log_error_errno(errno, "Cannot open cgroup directory %s", path);
	}

	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return log_error_errno(errno, "Cannot stat the filesystem of %s", path);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return log_error_errno(
		    SYNTHETIC_ERRNO(EINVAL),
		    "Cannot count egress of %s: not a cgroup v2 directory; give a "
		    "directory under the cgroup2 mount (see 'mount -t cgroup2')",
		    path);

	/* On cgroup2 the directory's inode number is the cgroup id, which keys
	 * the cgroup storage. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return log_error_errno(errno, "Cannot stat %s", path);
	*cgroup_id = st.st_ino;
	return TAKE_FD(fd);
}

int egress_counter_attach(struct egress_counter *c, const char *cgroup_dir,
			  struct egress_attachment **out)
{
	uint64_t id = 0;
	_cleanup_close_ int fd = open_cgroup2_dir(cgroup_dir, &id);
	if (fd < 0)
		return fd;
	const struct egress_attachment *i;
	LIST_FOREACH (attachments, i, c->attachments)
		if (i->cgroup_id == id)
			return log_error_errno(SYNTHETIC_ERRNO(EEXIST),
					       "Egress of %s is already counted (as %s)",
					       cgroup_dir, i->path);

	_cleanup_free_ struct egress_attachment *a = calloc(1, sizeof(*a));
	if (!a)
		return log_error_errno(ENOMEM, "Failed to allocate an egress attachment");
	a->path = strdup(cgroup_dir);
	if (!a->path)
		return log_error_errno(ENOMEM, "Failed to allocate an egress attachment");

	/* A bpf_link (multi-attach) coexists with other cgroup_skb programs,
	 * such as systemd's IP accounting, and goes away with its fd. */
	a->link = bpf_program__attach_cgroup(c->skel->progs.egress_count, fd);
	if (!a->link) {
		int r = -errno;
		free(a->path);
		return log_error_errno(r, "Failed to attach the egress counter to %s", cgroup_dir);
	}
	a->cgroup_id = id;
	a->counter = c;
	LIST_PREPEND(attachments, c->attachments, a);
	*out = TAKE_PTR(a);
	return 0;
}

void egress_counter_detach(struct egress_attachment *a)
{
	if (!a)
		return;
	LIST_REMOVE(attachments, a->counter->attachments, a);
	int r = bpf_link__destroy(a->link);
	if (r < 0)
		log_warning_errno(r, "Failed to detach the egress counter from %s", a->path);
	free(a->path);
	free(a);
}

int egress_counter_read(const struct egress_counter *c, const struct egress_attachment *a,
			struct egress_totals *out)
{
	struct bpf_cgroup_storage_key key = {
	    .cgroup_inode_id = a->cgroup_id,
	    .attach_type = BPF_CGROUP_INET_EGRESS,
	};
	_cleanup_free_ struct egress_stats *per_cpu = calloc((size_t)c->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return log_error_errno(ENOMEM, "Failed to allocate per-CPU egress counters");

	if (bpf_map_lookup_elem(c->map_fd, &key, per_cpu) < 0) {
		/* The cgroup is gone (its container stopped): expected, the caller detaches. */
		if (errno == ENOENT)
			return log_debug_errno(errno, "No egress counters for %s any more",
					       a->path);
		return log_error_errno(errno, "Failed to read the egress counters of %s", a->path);
	}

	struct egress_totals t = {0};
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		t.bytes += per_cpu[cpu].bytes;
		t.packets += per_cpu[cpu].packets;
		if (per_cpu[cpu].last_ns > t.last_ns)
			t.last_ns = per_cpu[cpu].last_ns;
	}
	*out = t;
	return 0;
}

const char *egress_attachment_path(const struct egress_attachment *a)
{
	return a->path;
}

uint64_t egress_attachment_cgroup_id(const struct egress_attachment *a)
{
	return a->cgroup_id;
}
