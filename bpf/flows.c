// SPDX-License-Identifier: MIT
#include "dozed/flow_counter.h"

#include <arpa/inet.h>
#include <assert.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "dozed/flows.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "flows.skel.h"
#include "flows_config.h"
#include "flows_internal.h"

#define VMLINUX_BTF_PATH "/sys/kernel/btf/vmlinux"

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

void flow_counter_log_libbpf(void)
{
	libbpf_set_print(libbpf_print_debug);
}

static int load_failed(int r)
{
	if (r == -EPERM || r == -EACCES)
		return log_error_errno(r,
				       "Failed to load the eBPF flow counter: run dozed as root, "
				       "with CAP_NET_ADMIN and CAP_SYS_ADMIN (or CAP_BPF; "
				       "CAP_SYS_ADMIN also lets it probe inside containers) and "
				       "a system call filter that allows bpf()");
	return log_error_errno(r, "Failed to load the eBPF flow counter (run with "
				  "--log-level debug for the verifier's log)");
}

/* Opens, sizes and loads the programs, with or without the TCP socket checks
 * (bpf/flows.bpf.c, tcp_sock_check). Every failure is logged but a refused
 * load with the checks, which sets *refused for the caller to try without. */
static int skel_load(uint32_t max_flows, bool sock_check, bool wake_hook, struct flows_bpf **out,
		     bool *refused)
{
	struct flows_bpf *skel = flows_bpf__open();
	if (!skel)
		return load_failed(-errno);
	skel->rodata->tcp_sock_check = sock_check;
	skel->rodata->wake_hook = wake_hook;
	int r = bpf_map__set_max_entries(skel->maps.flows, max_flows);
	if (r < 0) {
		flows_bpf__destroy(skel);
		return log_error_errno(r, "Failed to size the flow map for %u flows", max_flows);
	}
	r = flows_bpf__load(skel);
	if (r < 0) {
		flows_bpf__destroy(skel);
		*refused = sock_check && r != -EPERM && r != -EACCES && r != -ENOMEM;
		return *refused ? r : load_failed(r);
	}
	*out = skel;
	return 0;
}

static int counter_new(uint32_t max_flows, bool wake_hook, struct flow_counter **out)
{
	if (access(VMLINUX_BTF_PATH, R_OK) < 0)
		return log_error_errno(
		    errno,
		    "Cannot read %s: the kernel has no BTF; dozed needs Linux >= "
		    "5.11 built with CONFIG_DEBUG_INFO_BTF=y",
		    VMLINUX_BTF_PATH);

	flow_counter_log_libbpf();

	_cleanup_free_ struct flow_counter *c = calloc(1, sizeof(*c));
	if (!c)
		return log_error_errno(ENOMEM, "Failed to allocate the flow counter");

	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0)
		return log_error_errno(c->ncpus, "Failed to count the possible CPUs");

	c->max_flows = max_flows ? max_flows : FLOWS_MAP_MAX_ENTRIES;
	bool refused = false;
	int r = skel_load(c->max_flows, true, wake_hook, &c->skel, &refused);
	if (r < 0 && refused) {
		/* A kernel that refuses the socket checks (skb->sk, bpf_tcp_sock):
		 * without them a duplicate segment counts, which errs towards
		 * awake, never towards a wrong idle. */
		log_warning_errno(r, "The flow counter does not load with its TCP socket checks; "
				     "loading it without them (a retransmitted segment counts "
				     "as activity)");
		r = skel_load(c->max_flows, false, wake_hook, &c->skel, &refused);
	}
	if (r < 0)
		return r;
	c->stats_fd = bpf_map__fd(c->skel->maps.flows_stats);
	c->config_fd = bpf_map__fd(c->skel->maps.flows_config);
	c->flows_fd = bpf_map__fd(c->skel->maps.flows);
	c->global_fd = bpf_map__fd(c->skel->maps.flows_global);
	r = flows_wake_new(c);
	if (r < 0) {
		flows_bpf__destroy(c->skel);
		return r;
	}
	*out = TAKE_PTR(c);
	return 0;
}

int flow_counter_new(uint32_t max_flows, struct flow_counter **out)
{
	return counter_new(max_flows, true, out);
}

int flow_counter_new_bench(uint32_t max_flows, bool wake_hook, struct flow_counter **out)
{
	return counter_new(max_flows, wake_hook, out);
}

void flow_counter_free(struct flow_counter *c)
{
	if (!c)
		return;
	/* Attachments are owned by their callers, who must detach first. */
	assert(!c->attachments);
	flows_wake_free(c);
	flows_bpf__destroy(c->skel);
	free(c->purge);
	free(c);
}

static int open_cgroup2_dir(const char *path, uint64_t *cgroup_id)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return log_error_errno(errno,
					       "Cannot count the flows of %s: no such cgroup "
					       "directory",
					       path);
		if (errno == ENOTDIR)
			return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
					       "Cannot count the flows of %s: not a directory; "
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
		    "Cannot count the flows of %s: not a cgroup v2 directory; give a "
		    "directory under the cgroup2 mount (see 'mount -t cgroup2')",
		    path);

	/* On cgroup2 the directory's inode number is the cgroup id, which keys
	 * the cgroup storage and the flows. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return log_error_errno(errno, "Cannot stat %s", path);
	*cgroup_id = st.st_ino;
	return TAKE_FD(fd);
}

/* A rule as the kernel matches it: IPv4 mapped into ::ffff:0:0/96. */
static void rule_to_kernel(const struct flow_rule *in, struct flows_rule *out)
{
	*out = (struct flows_rule){.port = in->port, .proto = in->proto};
	if (!in->has_addr)
		return;
	out->peer_port_only = in->port != 0;
	unsigned prefix = in->prefix_len;
	uint8_t addr[16] = {0};
	if (in->family == AF_INET) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, in->addr, 4);
		prefix = prefix > 32 ? 128 : prefix + 96;
	} else {
		memcpy(addr, in->addr, 16);
		prefix = prefix > 128 ? 128 : prefix;
	}
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = prefix > 8 * i ? prefix - 8 * i : 0;
		out->mask[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
		out->addr[i] = addr[i] & out->mask[i];
	}
}

int flows_config_write(struct flow_counter *c, struct flow_attachment *a, bool rules_changed,
		       bool rearm)
{
	struct flows_cgroup_config cc = a->config;
	cc.cgroup_id = a->cgroup_id;
	/* Never 0 twice in a row for one cgroup: every new rule set makes its
	 * flows classify again. */
	if (rules_changed)
		cc.config.gen = ++c->gen;
	/* A wake the kernel sent stays sent until the hook is armed again:
	 * new rules must not report the same freeze twice. */
	cc.wake_sent = 0;
	if (cc.frozen && !rearm) {
		struct flows_cgroup_config now;
		if (bpf_map_lookup_elem(c->config_fd, &a->cgroup_id, &now) == 0)
			cc.wake_sent = now.wake_sent;
	}
	if (bpf_map_update_elem(c->config_fd, &a->cgroup_id, &cc, BPF_ANY) < 0) {
		if (errno == ENOENT)
			return log_debug_errno(errno, "No flow counter for %s any more", a->path);
		return log_error_errno(errno, "Failed to write the flow counter's settings of %s",
				       a->path);
	}
	a->config = cc;
	return 0;
}

static int rules_write(struct flow_counter *c, struct flow_attachment *a,
		       const struct flow_rules *rules)
{
	size_t n = rules ? rules->n : 0;
	if (n > FLOWS_RULES_MAX)
		return log_error_errno(SYNTHETIC_ERRNO(E2BIG),
				       "Cannot set %zu ignore rules for %s: at most %d", n, a->path,
				       FLOWS_RULES_MAX);
	struct flows_cgroup_config saved = a->config;
	a->config.config.n_rules = (uint32_t)n;
	memset(a->config.config.rule, 0, sizeof(a->config.config.rule));
	for (size_t i = 0; i < n; i++)
		rule_to_kernel(&rules->rule[i], &a->config.config.rule[i]);
	int r = flows_config_write(c, a, true, false);
	if (r < 0)
		a->config = saved;
	return r;
}

static void attachment_free(struct flow_attachment *a)
{
	if (!a)
		return;
	int r = a->ingress ? bpf_link__destroy(a->ingress) : 0;
	if (r < 0)
		log_warning_errno(r, "Failed to detach the flow counter (ingress) from %s",
				  a->path);
	r = a->egress ? bpf_link__destroy(a->egress) : 0;
	if (r < 0)
		log_warning_errno(r, "Failed to detach the flow counter (egress) from %s", a->path);
	free(a->path);
	free(a);
}

int flow_counter_attach(struct flow_counter *c, const char *cgroup_dir,
			struct flow_attachment **out)
{
	uint64_t id = 0;
	_cleanup_close_ int fd = open_cgroup2_dir(cgroup_dir, &id);
	if (fd < 0)
		return fd;
	const struct flow_attachment *i;
	LIST_FOREACH (attachments, i, c->attachments)
		if (i->cgroup_id == id)
			return log_error_errno(SYNTHETIC_ERRNO(EEXIST),
					       "The flows of %s are already counted (as %s)",
					       cgroup_dir, i->path);
	/* Detached and attached again: it starts with no flows, as it did. */
	for (size_t k = 0; k < c->n_purge; k++)
		if (c->purge[k] == id) {
			(void)flow_counter_purge(c);
			break;
		}

	struct flow_attachment *a = calloc(1, sizeof(*a));
	if (!a)
		return log_error_errno(ENOMEM, "Failed to allocate a flow attachment");
	a->path = strdup(cgroup_dir);
	if (!a->path) {
		free(a);
		return log_error_errno(ENOMEM, "Failed to allocate a flow attachment");
	}
	a->cgroup_id = id;
	a->counter = c;

	/* A bpf_link (multi-attach) coexists with other cgroup_skb programs,
	 * such as systemd's IP accounting, and goes away with its fd. Egress
	 * first: its attach creates the cgroup storage the config goes in. */
	a->egress = bpf_program__attach_cgroup(c->skel->progs.flows_egress, fd);
	if (!a->egress) {
		int r = -errno;
		a->egress = NULL;
		attachment_free(a);
		return log_error_errno(r, "Failed to attach the flow counter (egress) to %s",
				       cgroup_dir);
	}
	/* The storage outlives a detach (6.x keeps it with the cgroup): no
	 * rules or freeze of an earlier attachment stay. */
	int r = flows_config_write(c, a, true, true);
	if (r < 0) {
		attachment_free(a);
		return r == -ENOENT ? log_error_errno(r,
						      "Cannot count the flows of %s: the cgroup "
						      "went away",
						      cgroup_dir)
				    : r;
	}
	a->ingress = bpf_program__attach_cgroup(c->skel->progs.flows_ingress, fd);
	if (!a->ingress) {
		r = -errno;
		a->ingress = NULL;
		attachment_free(a);
		return log_error_errno(r, "Failed to attach the flow counter (ingress) to %s",
				       cgroup_dir);
	}
	LIST_PREPEND(attachments, c->attachments, a);
	*out = a;
	return 0;
}

void flow_counter_detach(struct flow_attachment *a)
{
	if (!a)
		return;
	struct flow_counter *c = a->counter;
	LIST_REMOVE(attachments, c->attachments, a);
	int r = bpf_link__destroy(a->ingress);
	if (r < 0)
		log_warning_errno(r, "Failed to detach the flow counter (ingress) from %s",
				  a->path);
	r = bpf_link__destroy(a->egress);
	if (r < 0)
		log_warning_errno(r, "Failed to detach the flow counter (egress) from %s", a->path);
	a->ingress = a->egress = NULL;
	/* No packet of it is counted any more: its flows can go, with the
	 * next purge (a walk of a full map takes ms: a thousand containers
	 * stopping together walk it once). */
	if (c->n_purge == c->cap_purge) {
		size_t cap = c->cap_purge ? 2 * c->cap_purge : 16;
		uint64_t *more = reallocarray(c->purge, cap, sizeof(*more));
		if (more) {
			c->purge = more;
			c->cap_purge = cap;
		}
	}
	/* Out of memory: the LRU pushes them out in time, as evictions. */
	if (c->n_purge < c->cap_purge) {
		size_t i = c->n_purge++;
		for (; i > 0 && c->purge[i - 1] > a->cgroup_id; i--)
			c->purge[i] = c->purge[i - 1];
		c->purge[i] = a->cgroup_id;
	}
	attachment_free(a);
}

int flow_counter_purge(struct flow_counter *c)
{
	if (c->n_purge == 0)
		return 0;
	int r = flows_map_delete_cgroups(c, c->purge, c->n_purge);
	if (r < 0)
		return log_warning_errno(r, "Failed to delete the flows of %zu stopped containers",
					 c->n_purge);
	c->n_purge = 0;
	return 0;
}

int flow_counter_set_rules(struct flow_counter *c, struct flow_attachment *a,
			   const struct flow_rules *rules)
{
	return rules_write(c, a, rules);
}

int flow_counter_read(const struct flow_counter *c, const struct flow_attachment *a,
		      struct flow_totals *out)
{
	_cleanup_free_ struct flows_stats *per_cpu = calloc((size_t)c->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return log_error_errno(ENOMEM, "Failed to allocate per-CPU flow counters");

	if (bpf_map_lookup_elem(c->stats_fd, &a->cgroup_id, per_cpu) < 0) {
		/* The cgroup is gone (its container stopped): expected, the caller detaches. */
		if (errno == ENOENT)
			return log_debug_errno(errno, "No flow counters for %s any more", a->path);
		return log_error_errno(errno, "Failed to read the flow counters of %s", a->path);
	}

	struct flow_totals t = {0};
	const struct flows_stats *last = NULL;
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		const struct flows_stats *s = &per_cpu[cpu];
		t.egress_bytes += s->egress_bytes;
		t.egress_packets += s->egress_packets;
		if (s->egress_last_ns > t.egress_last_ns)
			t.egress_last_ns = s->egress_last_ns;
		t.ingress_bytes += s->ingress_bytes;
		t.ingress_packets += s->ingress_packets;
		if (s->ingress_last_ns > t.ingress_last_ns)
			t.ingress_last_ns = s->ingress_last_ns;
		t.counted_bytes += s->counted_bytes;
		t.counted_packets += s->counted_packets;
		if (s->counted_last_ns > t.counted_last_ns) {
			t.counted_last_ns = s->counted_last_ns;
			last = s;
		}
		for (int k = 1; k < FLOWS_CLASS_MAX; k++) {
			t.ignored[k].bytes += s->ignored[k].bytes;
			t.ignored[k].packets += s->ignored[k].packets;
			t.ignored[k].packets_out += s->ignored[k].packets_out;
		}
		t.flows_created += s->flows_created;
	}
	t.last_counted.rule = -1;
	if (last) {
		struct flows_value v = {0};
		/* Gone from the map (evicted): the key alone, with zero counts. */
		if (bpf_map_lookup_elem(c->flows_fd, &last->last_counted, &v) < 0)
			v = (struct flows_value){.class = FLOWS_COUNTED};
		flow_info_from(&last->last_counted, &v, &t.last_counted);
		t.last_counted_dir = last->last_counted_dir ? FLOWS_DIR_IN : FLOWS_DIR_OUT;
	}
	*out = t;
	return 0;
}

const char *flow_attachment_path(const struct flow_attachment *a)
{
	return a->path;
}

uint64_t flow_attachment_cgroup_id(const struct flow_attachment *a)
{
	return a->cgroup_id;
}

const char *flow_class_name(enum flows_class c)
{
	static const char *const names[FLOWS_CLASS_MAX] = {
	    [FLOWS_COUNTED] = "counted",
	    [FLOWS_IGN_LOOPBACK] = "loopback",
	    [FLOWS_IGN_NO_PAYLOAD] = "no payload",
	    [FLOWS_IGN_DNS] = "dns",
	    [FLOWS_IGN_NTP] = "ntp",
	    [FLOWS_IGN_ICMP] = "icmp",
	    [FLOWS_IGN_RULE] = "rule",
	};
	if ((unsigned)c >= FLOWS_CLASS_MAX)
		return "unknown";
	return names[c];
}
