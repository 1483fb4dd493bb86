// SPDX-License-Identifier: MIT
/*
 * The explainer: what the flow counter says of a service, in the control
 * protocol's words (status, list, the flows command, the sleep event's top
 * flows). See docs/design.md, "Flows".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_flows.h"
#include "daemon_internal.h"
#include "dozed/clock.h"
#include "dozed/control.h"
#include "dozed/control_request.h"
#include "dozed/flow_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/socket_util.h"

/* At most this many flows of a service in a flows reply, the first by
 * order (counted first, then by bytes). */
#define FLOWS_REPLY_MAX 256
/* And this many in all: a reply stays a few MB at most. */
#define FLOWS_REPLY_TOTAL_MAX 4096
/* At most this many flows in a sleep event. */
#define SLEEP_TOP_FLOWS 5

uint64_t flows_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ms from a coarse-clock ns stamp to now (the coarse clock may lag a tick). */
static int64_t ago_ms(uint64_t now_ns, uint64_t then_ns)
{
	return then_ns && now_ns > then_ns ? (int64_t)((now_ns - then_ns) / 1000000) : 0;
}

const struct flow_rules *flows_rules_of(const struct dozed *d, const struct service *s)
{
	return s->ignore_set ? &s->ignore : &d->cfg.ignore;
}

const char *flows_addr_string(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	const void *a = sa->ss_family == AF_INET6
			    ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
			    : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
	if (!inet_ntop(sa->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *flows_peer_service(struct dozed *d, const struct sockaddr_storage *peer)
{
	char ip[INET6_ADDRSTRLEN];
	flows_addr_string(peer, ip, sizeof(ip));
	for (struct service *s = service_first(d->services); s; s = s->next) {
		const struct svc_extra *x = svc_extra_of(s);
		if (x && x->ip[0] && strcmp(x->ip, ip) == 0)
			return s->name;
	}
	return NULL;
}

static const char *proto_name(uint8_t proto, char *buf, size_t len)
{
	if (proto == IPPROTO_TCP)
		return "tcp";
	if (proto == IPPROTO_UDP)
		return "udp";
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return "icmp";
	snprintf(buf, len, "%u", proto);
	return buf;
}

static void bytes_text(uint64_t b, char *buf, size_t len)
{
	if (b < 1000)
		snprintf(buf, len, "%llu B", (unsigned long long)b);
	else if (b < 1000000)
		snprintf(buf, len, "%.1f kB", (double)b / 1e3);
	else if (b < 1000000000)
		snprintf(buf, len, "%.1f MB", (double)b / 1e6);
	else
		snprintf(buf, len, "%.1f GB", (double)b / 1e9);
}

void flows_describe(struct dozed *d, const struct flow_info *f, char *buf, size_t len)
{
	char peer[INET6_ADDRSTRLEN + 16], p[8], in[24], out[24], named[96] = "";
	sockaddr_to_string(&f->peer, peer, sizeof(peer));
	const char *svc = flows_peer_service(d, &f->peer);
	if (svc)
		snprintf(named, sizeof(named), " (service %s)", svc);
	bytes_text(f->payload[FLOWS_DIR_IN], in, sizeof(in));
	bytes_text(f->payload[FLOWS_DIR_OUT], out, sizeof(out));
	const char *proto = proto_name(f->proto, p, sizeof(p));
	if (f->opener == FLOWS_OPENER_CONTAINER)
		snprintf(buf, len, "%s to %s%s, %s out, %s in", proto, peer, named, out, in);
	else if (f->opener == FLOWS_OPENER_PEER)
		snprintf(buf, len, "%s from %s%s to port %u, %s in, %s out", proto, peer, named,
			 f->local_port, in, out);
	else
		snprintf(buf, len, "%s with %s%s, port %u, %s in, %s out", proto, peer, named,
			 f->local_port, in, out);
}

static void flags_text(uint8_t flags, char *buf, size_t len)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} names[] = {{FLOWS_TCP_SYN, "SYN"},
		     {FLOWS_TCP_ACK, "ACK"},
		     {FLOWS_TCP_FIN, "FIN"},
		     {FLOWS_TCP_RST, "RST"}};
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (flags & names[i].bit)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "," : "",
				 names[i].name);
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static const char *opener_name(enum flows_opener o)
{
	return o == FLOWS_OPENER_PEER	     ? "peer"
	       : o == FLOWS_OPENER_CONTAINER ? "container"
					     : "unknown";
}

/* Why a flow's traffic did not count, or NULL when some did. */
static const char *flow_ignored_why(const struct service *s, const struct dozed *d,
				    const struct flow_info *f, char *buf, size_t len)
{
	if (f->class == FLOWS_IGN_RULE) {
		const struct flow_rules *rules = flows_rules_of(d, s);
		char rule[96] = "?";
		if (f->rule >= 0 && (size_t)f->rule < rules->n)
			flow_rule_to_string(&rules->rule[f->rule], rule, sizeof(rule));
		snprintf(buf, len, "rule %s", rule);
		return buf;
	}
	if (f->class != FLOWS_COUNTED)
		return flow_class_name(f->class);
	return f->last_counted_ns ? NULL : flow_class_name(FLOWS_IGN_NO_PAYLOAD);
}

struct json_object *flows_flow_json(struct dozed *d, const struct service *s,
				    const struct flow_info *f, uint64_t now_ns)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	char p[8], peer[INET6_ADDRSTRLEN + 16], why[128];
	json_object_object_add(o, "proto",
			       json_object_new_string(proto_name(f->proto, p, sizeof(p))));
	json_object_object_add(
	    o, "peer", json_object_new_string(sockaddr_to_string(&f->peer, peer, sizeof(peer))));
	const char *svc = flows_peer_service(d, &f->peer);
	if (svc)
		json_object_object_add(o, "peer_service", json_object_new_string(svc));
	add_u64(o, "local_port", f->local_port);
	json_object_object_add(o, "opened_by", json_object_new_string(opener_name(f->opener)));
	add_u64(o, "bytes_in", f->bytes[FLOWS_DIR_IN]);
	add_u64(o, "bytes_out", f->bytes[FLOWS_DIR_OUT]);
	add_u64(o, "packets_in", f->packets[FLOWS_DIR_IN]);
	add_u64(o, "packets_out", f->packets[FLOWS_DIR_OUT]);
	add_u64(o, "payload_in", f->payload[FLOWS_DIR_IN]);
	add_u64(o, "payload_out", f->payload[FLOWS_DIR_OUT]);
	add_u64(o, "first_seen_ago_ms", (uint64_t)ago_ms(now_ns, f->first_ns));
	add_u64(o, "last_seen_ago_ms", (uint64_t)ago_ms(now_ns, f->last_ns));
	const char *ignored = flow_ignored_why(s, d, f, why, sizeof(why));
	json_object_object_add(o, "counted", json_object_new_boolean(!ignored));
	if (ignored)
		json_object_object_add(o, "ignored", json_object_new_string(ignored));
	if (f->proto == IPPROTO_TCP) {
		char flags[32];
		flags_text(f->tcp_flags[FLOWS_DIR_IN], flags, sizeof(flags));
		json_object_object_add(o, "tcp_flags_in", json_object_new_string(flags));
		flags_text(f->tcp_flags[FLOWS_DIR_OUT], flags, sizeof(flags));
		json_object_object_add(o, "tcp_flags_out", json_object_new_string(flags));
	}
	return o;
}

/* When a service's own window began, as a coarse-clock ns stamp. */
uint64_t flows_since_woke_ns(const struct service *s, uint64_t now_ns)
{
	uint64_t t = clock_monotonic_us();
	uint64_t ago_us = t > s->awake_since_us ? t - s->awake_since_us : 0;
	uint64_t ago = ago_us * 1000;
	return now_ns > ago ? now_ns - ago : 0;
}

void flows_add_top_to_sleep(struct dozed *d, struct service *s, struct json_object *facts)
{
	uint64_t now_ns = flows_now_ns();
	/* Its last idle window, and the idle time before its last counted
	 * traffic: what it did last, and what was ignored since. */
	uint64_t window = s->idle_us * 1000;
	uint64_t woke = flows_since_woke_ns(s, now_ns);
	uint64_t t = clock_monotonic_us();
	uint64_t last = s->last_activity_us > s->awake_since_us && t > s->last_activity_us
			    ? (t - s->last_activity_us) * 1000
			    : 0;
	uint64_t back = last + window;
	uint64_t since = now_ns > back ? now_ns - back : 0;
	if (since < woke)
		since = woke;
	const struct flow_info *flows;
	size_t n = flows_of_service(d, s, &flows), shown = 0;
	struct json_object *top = json_object_new_array();
	if (!top)
		return;
	for (size_t i = 0; i < n && shown < SLEEP_TOP_FLOWS; i++) {
		if (flows[i].last_ns < since)
			continue;
		json_object_array_add(top, flows_flow_json(d, s, &flows[i], now_ns));
		shown++;
	}
	if (shown == 0) {
		json_object_put(top);
		return;
	}
	json_object_object_add(facts, "top_flows", top);
}

static struct json_object *service_flows_json(struct dozed *d, struct service *s, uint64_t since_ms,
					      uint64_t now_ns, size_t *budget)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "service", json_object_new_string(s->name));
	json_object_object_add(o, "state", json_object_new_string(service_state_name(s->state)));
	uint64_t since = since_ms ? (now_ns > since_ms * 1000000 ? now_ns - since_ms * 1000000 : 0)
				  : flows_since_woke_ns(s, now_ns);
	add_u64(o, "window_ms", (now_ns - since) / 1000000);
	const struct flows_snapshot *snap = flows_snapshot_get(d);
	if (snap->err < 0)
		json_object_object_add(o, "error", json_object_new_string(strerror(-snap->err)));
	struct json_object *arr = json_object_new_array();
	if (!arr)
		return o;
	json_object_object_add(o, "flows", arr);
	const struct flow_info *flows;
	size_t n = flows_of_service(d, s, &flows), shown = 0, more = 0;
	for (size_t i = 0; i < n; i++) {
		if (flows[i].last_ns < since)
			continue;
		if (shown<FLOWS_REPLY_MAX && * budget> 0) {
			json_object_array_add(arr, flows_flow_json(d, s, &flows[i], now_ns));
			shown++;
			(*budget)--;
		} else {
			more++;
		}
	}
	/* A scan can make thousands: the reply stays small, and says so. */
	if (more)
		add_u64(o, "flows_not_shown", more);
	return o;
}

struct json_object *flows_table_json(struct dozed *d)
{
	const struct flows_snapshot *snap = flows_snapshot_get(d);
	if (snap->stats_err < 0)
		return NULL;
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	add_u64(o, "capacity", snap->stats.capacity);
	add_u64(o, "live", snap->stats.live);
	add_u64(o, "evicted", snap->stats.evicted);
	return o;
}

void dozed_cmd_flows(struct dozed *d, uint64_t client, struct json_object *req)
{
	const char *name = control_request_get_string(req, "service");
	uint64_t since_ms = control_request_get_uint(req, "since_ms", 0);
	/* Longer than the clock has run: every flow (and no overflow below). */
	if (since_ms > flows_now_ns() / 1000000)
		since_ms = flows_now_ns() / 1000000;
	struct service *only = NULL;
	if (name && !(only = service_find_by_container(d->services, name))) {
		control_reply_error(d->control, client,
				    "no service %s (dozectl list shows the enabled ones)", name);
		return;
	}
	uint64_t now_ns = flows_now_ns();
	/* Asked for: as the map is now, not as a second ago. */
	flows_snapshot_drop(d);
	size_t budget = FLOWS_REPLY_TOTAL_MAX;
	struct json_object *reply = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	if (!reply || !arr) {
		json_object_put(reply);
		json_object_put(arr);
		control_reply_error(d->control, client, "out of memory");
		return;
	}
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	if (!arr)
		return;
	for (struct service *s = only ? only : service_first(d->services); s;
	     s = only ? NULL : s->next)
		json_object_array_add(arr, service_flows_json(d, s, since_ms, now_ns, &budget));
	json_object_object_add(reply, "services", arr);
	json_object_object_add(reply, "flow_table", flows_table_json(d));
	control_reply(d->control, client, reply);
}
