// SPDX-License-Identifier: MIT
/*
 * "Why is my service still awake?": a service's counted and ignored traffic
 * for status and list, and its open connections, read in its own network
 * namespace, which may keep it awake past its idle time.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_flows.h"
#include "daemon_internal.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/open_conns.h"
#include "dozed/socket_util.h"

/* Connections listed in a status; more are counted, not listed. */
#define STATUS_CONNS_MAX 64

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

/*
 * Whether the process of proc (an fd of its /proc/PID directory, which
 * stays that process's even if the pid is reused) is in the cgroup dir or
 * under it: a pid kept from the container's start may have gone, and a
 * process of the host got it. -ESRCH when it is not.
 */
static int proc_in_cgroup(int proc, const char *dir)
{
	int fd = openat(proc, "cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_fclose_ FILE *f = fdopen(fd, "re");
	if (!f) {
		int r = -errno;
		close(fd);
		return r;
	}
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::/", 4) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		const char *cg = line + 3;
		size_t dl = strlen(dir), cl = strlen(cg);
		/* dir is the cgroup2 mount's path of the container's cgroup: it
		 * ends with the path /proc gives, or with one of its parents. */
		for (size_t end = cl; end > 1; end--)
			if ((end == cl || cg[end] == '/') && dl >= end &&
			    strncmp(dir + dl - end, cg, end) == 0)
				return 0;
		return -ESRCH;
	}
	return -ESRCH;
}

int dozed_container_netns(const struct service *s)
{
	const struct svc_extra *x = svc_extra_of(s);
	if (!s->running || x->pid <= 0 || !x->attachment)
		return -ESRCH;
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", (int)x->pid);
	_cleanup_close_ int proc = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc < 0)
		return -errno;
	int r = proc_in_cgroup(proc, flow_attachment_path(x->attachment));
	if (r < 0)
		return r;
	_cleanup_close_ int fd = openat(proc, "ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Host networking: its connections would be the host's, sshd's too. */
	struct stat ns, own;
	if (fstat(fd, &ns) < 0 || stat("/proc/self/ns/net", &own) < 0)
		return -errno;
	if (ns.st_ino == own.st_ino && ns.st_dev == own.st_dev)
		return -EOPNOTSUPP;
	return TAKE_FD(fd);
}

/* The open connections of s's container, from its network namespace. */
static int conns_of(struct dozed *d, struct service *s, struct open_conn **out, size_t *n)
{
	(void)d;
	*out = NULL;
	*n = 0;
	_cleanup_close_ int fd = dozed_container_netns(s);
	if (fd < 0)
		return fd;
	return open_conns_list(fd, out, n);
}

/*
 * Whether a peer waits for the answer to its request on c: who spoke last,
 * from the flow's order of payloads when the flow map has it (times of a
 * tick cannot tell a query from the greeting just before it), else from
 * tcp_info's times.
 */
static bool conn_unanswered(struct dozed *d, const struct service *s, const struct open_conn *c)
{
	if (!c->inbound || c->bytes_received == 0)
		return false;
	const struct svc_extra *x = svc_extra_of(s);
	struct flow_info f;
	if (x->attachment &&
	    flow_counter_lookup(d->flows, x->attachment, IPPROTO_TCP, &c->peer,
				sockaddr_port(&c->local), &f) == 0 &&
	    f.last_payload_dir >= 0)
		return f.last_payload_dir == FLOWS_DIR_IN;
	return c->unanswered;
}

/* Unanswered for longer than --unanswered-timeout: it keeps nothing awake. */
static bool conn_too_old(const struct dozed *d, const struct open_conn *c)
{
	return c->last_recv_ms * 1000 > d->cfg.unanswered_timeout_us;
}

void dozed_flows_apply_rules(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (!x->attachment)
		return;
	int r = flow_counter_set_rules(d->flows, x->attachment, flows_rules_of(d, s));
	if (r < 0 && r != -ENOENT)
		log_warning_errno(r,
				  "%s: cannot give its ignore rules to the flow counter; its "
				  "traffic counts as activity",
				  s->name);
}

bool dozed_flows_request_in_flight(struct dozed *d, struct service *s, char *what, size_t len)
{
	_cleanup_free_ struct open_conn *c = NULL;
	size_t n = 0;
	if (conns_of(d, s, &c, &n) < 0)
		return false;
	const char *own = svc_extra_of(s)->ip;
	char peer[INET6_ADDRSTRLEN + 16];
	for (size_t i = 0; i < n; i++) {
		/* dozed's own probes connect to the container's address from
		 * inside it: no client waits on those. */
		if (own[0] && strcmp(flows_addr_string(&c[i].peer, peer, sizeof(peer)), own) == 0)
			continue;
		bool fresh = c[i].inbound && c[i].bytes_received == 0 && !c[i].half_closed &&
			     c[i].last_recv_ms < DOZED_STOP_DRAIN_FRESH_MS;
		/* The cheap tests first: this runs every few ms during a drain.
		 * The container sent after it last received: answered. */
		bool answered = c[i].last_sent_ms < c[i].last_recv_ms;
		if (!fresh && (answered || conn_too_old(d, &c[i]) || !conn_unanswered(d, s, &c[i])))
			continue;
		snprintf(what, len, "%s from %s to port %u",
			 fresh ? "a connection just opened" : "an unanswered request",
			 sockaddr_to_string(&c[i].peer, peer, sizeof(peer)),
			 sockaddr_port(&c[i].local));
		return true;
	}
	return false;
}

enum service_kept dozed_flows_blocker(struct dozed *d, struct service *s, char *what, size_t len)
{
	_cleanup_free_ struct open_conn *c = NULL;
	size_t n = 0;
	int r = conns_of(d, s, &c, &n);
	if (r < 0) {
		/* Nothing to read them from (its init is gone, host networking):
		 * the counters decide. */
		log_debug_errno(r, "%s: cannot read its open connections", s->name);
		return SERVICE_NOT_KEPT;
	}
	char peer[INET6_ADDRSTRLEN + 16];
	/* A request of a peer still unanswered: the service is working on it. */
	for (size_t i = 0; i < n; i++) {
		if (!conn_unanswered(d, s, &c[i]) || conn_too_old(d, &c[i]))
			continue;
		svc_extra_of(s)->kept_peer = c[i].peer;
		svc_extra_of(s)->kept_peer_set = true;
		snprintf(what, len,
			 "an unanswered request from %s to port %u (%llu B in, the last %.1fs ago)",
			 sockaddr_to_string(&c[i].peer, peer, sizeof(peer)),
			 sockaddr_port(&c[i].local), (unsigned long long)c[i].bytes_received,
			 (double)c[i].last_recv_ms / 1e3);
		return SERVICE_KEPT_UNANSWERED;
	}
	if (!s->keep_awake_connections)
		return SERVICE_NOT_KEPT;
	for (size_t i = 0; i < n; i++) {
		/* Half closed: the peer is gone but for an answer it no longer waits for. */
		if (!c[i].inbound || c[i].half_closed)
			continue;
		svc_extra_of(s)->kept_peer = c[i].peer;
		svc_extra_of(s)->kept_peer_set = true;
		snprintf(
		    what, len, "an open connection from %s to port %u (keep-awake connections)",
		    sockaddr_to_string(&c[i].peer, peer, sizeof(peer)), sockaddr_port(&c[i].local));
		return SERVICE_KEPT_CONNECTION;
	}
	return SERVICE_NOT_KEPT;
}

static struct json_object *conn_json(struct dozed *d, const struct service *s,
				     const struct open_conn *c)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	char a[INET6_ADDRSTRLEN + 16];
	json_object_object_add(o, "local",
			       json_object_new_string(sockaddr_to_string(&c->local, a, sizeof(a))));
	json_object_object_add(o, "peer",
			       json_object_new_string(sockaddr_to_string(&c->peer, a, sizeof(a))));
	const char *svc = flows_peer_service(d, &c->peer);
	if (svc)
		json_object_object_add(o, "peer_service", json_object_new_string(svc));
	json_object_object_add(o, "inbound", json_object_new_boolean(c->inbound));
	bool unanswered = conn_unanswered(d, s, c);
	json_object_object_add(o, "unanswered", json_object_new_boolean(unanswered));
	if (unanswered && conn_too_old(d, c))
		json_object_object_add(o, "unanswered_too_long", json_object_new_boolean(1));
	if (c->half_closed)
		json_object_object_add(o, "half_closed", json_object_new_boolean(1));
	add_u64(o, "last_recv_ms", c->last_recv_ms);
	add_u64(o, "last_sent_ms", c->last_sent_ms);
	add_u64(o, "bytes_received", c->bytes_received);
	add_u64(o, "bytes_sent", c->bytes_sent);
	return o;
}

static void add_ignored(struct json_object *ign, const char *key,
			const struct flow_ignored_totals *t, bool queries)
{
	if (t->packets == 0)
		return;
	struct json_object *o = json_object_new_object();
	if (!o)
		return;
	add_u64(o, "bytes", t->bytes);
	add_u64(o, "packets", t->packets);
	if (queries)
		add_u64(o, "queries", t->packets_out);
	json_object_object_add(ign, key, o);
}

static bool is_check(const struct flow_info *f)
{
	return f->proto == IPPROTO_TCP && f->opener == FLOWS_OPENER_PEER && !f->payload[0] &&
	       !f->payload[1] && f->class == FLOWS_COUNTED;
}

static int addr_order(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Connect-only checks since it woke: flows a peer opened that carried no
 * payload either way, and the address that made most of them. Sorted, so
 * that a scan of thousands of ports costs n log n, not n squared. */
static void add_checks(struct dozed *d, struct service *s, struct json_object *ign)
{
	uint64_t since = flows_since_woke_ns(s, flows_now_ns());
	const struct flow_info *f;
	size_t n = flows_of_service(d, s, &f);
	if (n == 0)
		return;
	_cleanup_free_ char(*addrs)[INET6_ADDRSTRLEN] = calloc(n, sizeof(*addrs));
	if (!addrs)
		return;
	size_t checks = 0;
	for (size_t i = 0; i < n; i++)
		if (f[i].last_ns >= since && is_check(&f[i]))
			flows_addr_string(&f[i].peer, addrs[checks++], sizeof(addrs[0]));
	if (checks == 0)
		return;
	qsort(addrs, checks, sizeof(addrs[0]), addr_order);
	size_t best = 0, run = 0, at = 0;
	for (size_t i = 0; i < checks; i++) {
		run = i > 0 && strcmp(addrs[i], addrs[i - 1]) == 0 ? run + 1 : 1;
		if (run > best) {
			best = run;
			at = i;
		}
	}
	struct json_object *o = NULL;
	if (!json_object_object_get_ex(ign, "no_payload", &o)) {
		o = json_object_new_object();
		json_object_object_add(ign, "no_payload", o);
	}
	add_u64(o, "checks", checks);
	json_object_object_add(o, "checks_from", json_object_new_string(addrs[at]));
}

void dozed_service_json_add_flows(struct dozed *d, struct service *s, struct json_object *o,
				  bool detailed)
{
	char rules[FLOW_RULES_MAX * 64];
	flow_rules_to_string(flows_rules_of(d, s), rules, sizeof(rules));
	json_object_object_add(o, "ignore", json_object_new_string(rules));
	json_object_object_add(o, "ignore_from",
			       json_object_new_string(s->ignore_set ? "service" : "default"));
	const struct svc_extra *x = svc_extra_of(s);
	struct flow_totals t;
	if (!x->attachment || flow_counter_read(d->flows, x->attachment, &t) < 0)
		return;
	uint64_t now_ns = flows_now_ns();
	struct json_object *a = json_object_new_object();
	if (!a)
		return;
	/* Owned by o from here: a failed allocation below leaks nothing. */
	json_object_object_add(o, "activity", a);
	add_u64(a, "counted_bytes", t.counted_bytes);
	add_u64(a, "counted_packets", t.counted_packets);
	if (t.counted_last_ns && t.counted_last_ns >= flows_since_woke_ns(s, now_ns)) {
		add_u64(a, "last_counted_ago_ms",
			now_ns > t.counted_last_ns ? (now_ns - t.counted_last_ns) / 1000000 : 0);
		struct json_object *f = flows_flow_json(d, s, &t.last_counted, now_ns);
		if (f) {
			json_object_object_add(
			    f, "direction",
			    json_object_new_string(t.last_counted_dir == FLOWS_DIR_IN ? "in"
										      : "out"));
			json_object_object_add(a, "last_counted", f);
		}
	}
	struct json_object *ign = json_object_new_object();
	if (!ign)
		return;
	json_object_object_add(a, "ignored", ign);
	add_ignored(ign, "loopback", &t.ignored[FLOWS_IGN_LOOPBACK], false);
	add_ignored(ign, "no_payload", &t.ignored[FLOWS_IGN_NO_PAYLOAD], false);
	add_ignored(ign, "dns", &t.ignored[FLOWS_IGN_DNS], true);
	add_ignored(ign, "ntp", &t.ignored[FLOWS_IGN_NTP], false);
	add_ignored(ign, "icmp", &t.ignored[FLOWS_IGN_ICMP], false);
	add_ignored(ign, "rule", &t.ignored[FLOWS_IGN_RULE], false);
	if (detailed)
		add_checks(d, s, ign);
	if (s->kept_awake_by[0])
		json_object_object_add(a, "kept_awake_by",
				       json_object_new_string(s->kept_awake_by));
	if (detailed && s->state == SERVICE_AWAKE) {
		_cleanup_free_ struct open_conn *c = NULL;
		size_t n = 0;
		if (conns_of(d, s, &c, &n) >= 0) {
			struct json_object *arr = json_object_new_array();
			if (!arr)
				return;
			json_object_object_add(a, "open_connections", arr);
			for (size_t i = 0; i < n && i < STATUS_CONNS_MAX; i++)
				json_object_array_add(arr, conn_json(d, s, &c[i]));
			if (n > STATUS_CONNS_MAX)
				add_u64(a, "open_connections_not_shown", n - STATUS_CONNS_MAX);
		}
	}
	if (detailed) {
		struct json_object *table = flows_table_json(d);
		if (table)
			json_object_object_add(o, "flow_table", table);
	}
}

void dozed_flows_add_kept_peer(struct dozed *d, struct service *s, struct json_object *facts)
{
	struct svc_extra *x = svc_extra_of(s);
	struct json_object *by = NULL;
	struct sockaddr_storage peer;
	bool known = false;
	if (json_object_object_get_ex(facts, "by", &by) &&
	    strcmp(json_object_get_string(by), "traffic") == 0) {
		struct flow_totals t;
		if (x->attachment && flow_counter_read(d->flows, x->attachment, &t) == 0 &&
		    t.counted_last_ns) {
			peer = t.last_counted.peer;
			known = true;
		}
	} else if (x->kept_peer_set) {
		peer = x->kept_peer;
		known = true;
	}
	if (!known)
		return;
	char a[INET6_ADDRSTRLEN + 16];
	json_object_object_add(facts, "peer",
			       json_object_new_string(sockaddr_to_string(&peer, a, sizeof(a))));
	const char *svc = flows_peer_service(d, &peer);
	if (svc)
		json_object_object_add(facts, "peer_service", json_object_new_string(svc));
}
