// SPDX-License-Identifier: MIT
#include "dozed/activator.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/socket_util.h"
#include "dozed/macro.h"
#include "dozed/settings.h"
#include "activator_internal.h"
#include "client_count.h"
#include "conntrack.h"
#include "listen.h"
#include "local_addr.h"
#include "relay.h"

#define ACCEPTS_PER_WAKE       256
#define REJECT_LOG_INTERVAL_US (10 * 1000000ull)
/* Out of descriptors or memory, accepting waits this long before trying again. */
#define ACCEPT_PAUSE_US 100000
/* Descriptors kept for the daemon's own when max_held_total is derived. */
#define FD_RESERVE 256

const uint32_t activator_wake_bucket_ms[ACTIVATOR_WAKE_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, UINT32_MAX,
};

/* From the first held client to activator_service_starting(): a bound on a
 * wake the daemon never starts. The activator's own, not a setting of dozed. */
#define HOLD_TIMEOUT_DEFAULT_US (UINT64_C(60) * 1000000)

void activator_config_defaults(struct activator_config *cfg)
{
	*cfg = (struct activator_config){
	    .port = DOZED_ACTIVATOR_PORT_DEFAULT,
	    .mark = DOZED_MARK_DEFAULT,
	    .probe_interval_us = DOZED_PROBE_INTERVAL_DEFAULT_US,
	    .wake_timeout_us = DOZED_WAKE_TIMEOUT_DEFAULT_US,
	    .hold_timeout_us = HOLD_TIMEOUT_DEFAULT_US,
	    .max_held = DOZED_MAX_HELD_DEFAULT,
	    .max_relay_lifetime_us = 0,
	    .silent_timeout_us = DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US,
	    .max_held_per_client = DOZED_MAX_HELD_PER_CLIENT_DEFAULT,
	    .max_held_total = 0,
	};
}

/*
 * The second wall: only an original destination that is an address of this
 * namespace is relayed. The nft rule redirects only those (fib daddr type
 * local), but a rule of someone else's, or a table of an older dozed, may
 * redirect a routed connection for another host here; relaying it would
 * make this host an open proxy, past its forward filter.
 */
bool activator_dst_is_local(struct activator *a, int fd, const struct sockaddr_storage *dst)
{
	int r = local_addr_check(a->local, dst);
	if (r > 0)
		return true;
	char why[160];
	if (r < 0)
		snprintf(why, sizeof(why),
			 "cannot tell whether the original destination is an address of this "
			 "host (route lookup: %s)",
			 strerror(-r));
	activator_log_reject(
	    a, fd, r == 0 ? "the original destination is not an address of this host" : why, dst);
	a->counters.rejected_not_local++;
	return false;
}

/*
 * And a loopback original destination only on a connection that came
 * through loopback (CVE-2020-8558): a redirect in output lands on 127.0.0.1
 * or ::1, one in prerouting on the incoming interface's address. A
 * neighbour routing 127.0.0.1 here with route_localnet=1 passes the check
 * above (127.0.0.1 is local) but must never reach a loopback-only service.
 */
static bool dst_loopback_came_through_loopback(struct activator *a, int fd,
					       const struct sockaddr_storage *dst)
{
	if (!sockaddr_is_loopback(dst))
		return true;
	struct sockaddr_storage here;
	socklen_t len = sizeof(here);
	if (getsockname(fd, (struct sockaddr *)&here, &len) == 0 && sockaddr_is_loopback(&here))
		return true;
	activator_log_reject(a, fd, "a loopback destination on a connection from outside this host",
			     dst);
	a->counters.rejected_not_local++;
	a->counters.rejected_loopback++;
	return false;
}

void activator_log_reject(struct activator *a, int fd, const char *why,
			  const struct sockaddr_storage *dst)
{
	uint64_t now = clock_monotonic_us();
	if (a->last_reject_log_us && now - a->last_reject_log_us < REJECT_LOG_INTERVAL_US) {
		a->reject_logs_suppressed++;
		return;
	}
	char addr[64] = "unknown";
	if (dst)
		sockaddr_to_string(dst, addr, sizeof(addr));
	log_notice("Reset a connection on the activator port (fd %d) to %s: %s (%llu similar "
		   "messages suppressed)",
		   fd, addr, why, (unsigned long long)a->reject_logs_suppressed);
	a->last_reject_log_us = now;
	a->reject_logs_suppressed = 0;
}

static void activator_hold(struct activator *a, int fd, int family,
			   const struct sockaddr_storage *peer)
{
	struct sockaddr_storage dst;
	struct activator_route route = {0};
	if (socket_original_dst(fd, family, &dst) < 0) {
		activator_log_reject(a, fd, "no original destination (not redirected)", NULL);
		goto reject;
	}
	if (sockaddr_port(&dst) == a->cfg.port) {
		activator_log_reject(a, fd, "connection straight to the activator port", &dst);
		goto reject;
	}
	if (!activator_dst_is_local(a, fd, &dst) ||
	    !dst_loopback_came_through_loopback(a, fd, &dst)) {
		conntrack_reset_client(a->conntrack, fd);
		return;
	}
	if (a->ops.route_lookup(a->userdata, &dst, &route) < 0) {
		activator_log_reject(a, fd, "no managed service owns this port", &dst);
		goto reject;
	}

	struct client_key key;
	client_key_from(&key, peer);
	struct waking *w = waking_find(a, route.service_id);
	if (w) {
		int r = waking_make_room(w, &key, fd, &dst);
		if (r < 0) {
			conntrack_reset_client(a->conntrack, fd);
			if (a->ops.client_rejected)
				a->ops.client_rejected(a->userdata, route.service_id, r);
			return;
		}
	}
	if (!w && a->counters.held_now >= a->max_held_total) {
		a->counters.rejected_full++;
		activator_log_reject(a, fd, "too many clients already held for all services", &dst);
		conntrack_reset_client(a->conntrack, fd);
		if (a->ops.client_rejected)
			a->ops.client_rejected(a->userdata, route.service_id, -ENOBUFS);
		return;
	}
	bool made = !w;
	if (!w && !(w = waking_new(a, &route))) {
		socket_close_with_reset(fd);
		return;
	}
	if (held_add(w, fd, &dst, &key) < 0) {
		log_error_errno(ENOMEM, "Failed to hold a client");
		socket_close_with_reset(fd);
		if (made)
			waking_free(w);
		return;
	}
	/* Last: the daemon may answer at once, even with activator_service_failed(). */
	waking_request_if_counted(w);
	return;
reject:
	a->counters.rejected_unrouted++;
	conntrack_reset_client(a->conntrack, fd);
}

/* cfg's bound, or one that leaves every held client a descriptor for its
 * backend once relayed, and FD_RESERVE for the daemon's own. Asked at each
 * batch of accepts: the limit may be raised after the activator is made. */
static size_t max_held_total_of(const struct activator_config *cfg)
{
	if (cfg->max_held_total > 0)
		return cfg->max_held_total;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	return rl.rlim_cur > 2 * FD_RESERVE ? (size_t)(rl.rlim_cur - FD_RESERVE) / 2 : 1;
}

static void accept_events_set(struct activator *a, bool on)
{
	for (size_t i = 0; i < a->n_listen; i++)
		if (on)
			event_add(a->accept_events[i], NULL);
		else
			event_del(a->accept_events[i]);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	accept_events_set(arg, true);
}

/*
 * Out of descriptors or memory: the connection stays in the listener's queue
 * and the listener readable, so accepting again at once would spin and log
 * without end. Accepting pauses a while instead (held and relayed clients
 * that leave free descriptors), with one message per REJECT_LOG_INTERVAL_US.
 */
static void accept_pause(struct activator *a, int err)
{
	a->counters.accept_paused++;
	accept_events_set(a, false);
	struct timeval tv = timeval_from_us(ACCEPT_PAUSE_US);
	evtimer_add(a->accept_resume, &tv);
	uint64_t now = clock_monotonic_us();
	if (a->last_accept_log_us && now - a->last_accept_log_us < REJECT_LOG_INTERVAL_US) {
		a->accept_logs_suppressed++;
		return;
	}
	log_warning_errno(err,
			  "Failed to accept on the activator port; pausing accepts for %llu ms "
			  "(%llu similar pauses since the last message, %llu clients held)",
			  (unsigned long long)(ACCEPT_PAUSE_US / 1000),
			  (unsigned long long)a->accept_logs_suppressed,
			  (unsigned long long)a->counters.held_now);
	a->last_accept_log_us = now;
	a->accept_logs_suppressed = 0;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct activator *a = arg;
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	int family =
	    getsockname(lfd, (struct sockaddr *)&local, &len) == 0 ? local.ss_family : AF_INET;
	a->accept_batch++;
	a->max_held_total = max_held_total_of(&a->cfg);
	/* A batch fills half of the room at most: a full service then always
	 * has clients of earlier batches to evict, and those of this batch,
	 * whose first bytes may be on the way, are never taken. */
	size_t room = a->cfg.max_held < a->max_held_total ? a->cfg.max_held : a->max_held_total;
	size_t batch = room / 2 < 1 ? 1 : room / 2 > ACCEPTS_PER_WAKE ? ACCEPTS_PER_WAKE : room / 2;
	for (size_t i = 0; i < batch; i++) {
		struct sockaddr_storage peer = {0};
		socklen_t plen = sizeof(peer);
		int fd =
		    accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
				accept_pause(a, err);
			else if (err != EAGAIN && err != EINTR && err != ECONNABORTED)
				log_warning_errno(err, "Failed to accept on the activator port");
			return;
		}
		a->counters.accepted++;
		activator_hold(a, fd, family, &peer);
	}
}

int activator_new_from_fds(struct event_base *base, const struct activator_config *cfg,
			   const struct activator_ops *ops, void *userdata, const int *fds,
			   size_t n_fds, struct activator **out)
{
	if (n_fds == 0 || n_fds > 2) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "The activator takes 1 or 2 listening sockets, got %zu",
				       n_fds);
	}
	struct activator *a = calloc(1, sizeof(*a));
	if (!a) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return log_error_errno(ENOMEM, "Failed to allocate the activator");
	}
	a->base = base;
	a->cfg = *cfg;
	a->ops = *ops;
	a->userdata = userdata;
	/* Held clients' watch needs both (held.c). */
	int want = EV_FEATURE_EARLY_CLOSE | EV_FEATURE_ET;
	a->early_close = ((int)event_base_get_features(base) & want) == want;
	for (size_t i = 0; i < n_fds; i++)
		a->listen_fds[a->n_listen++] = fds[i];

	a->silent_tv_plain = timeval_from_us(cfg->silent_timeout_us);
	a->silent_tv = event_base_init_common_timeout(base, &a->silent_tv_plain);
	if (!a->silent_tv)
		a->silent_tv = &a->silent_tv_plain;
	if (conntrack_new(&a->conntrack) < 0)
		log_warning("Clients reset by the activator keep their conntrack entries");
	/* Without it nothing could be relayed safely: refuse to start. */
	int r = local_addr_new(&a->local);
	if (r < 0) {
		activator_free(a);
		return r;
	}
	r = relay_set_new(base, cfg->mark, cfg->max_relay_lifetime_us, &a->relay_stats,
			  a->conntrack, &a->relays);
	if (r < 0) {
		activator_free(a);
		return r;
	}
	relay_set_on_first_response(a->relays, a->ops.first_response, a->userdata);
	a->accept_resume = evtimer_new(base, on_accept_resume, a);
	if (!a->accept_resume) {
		activator_free(a);
		return log_error_errno(ENOMEM, "Failed to watch the activator's sockets");
	}
	for (size_t i = 0; i < a->n_listen; i++) {
		a->accept_events[i] =
		    event_new(base, a->listen_fds[i], EV_READ | EV_PERSIST, on_accept, a);
		if (!a->accept_events[i] || event_add(a->accept_events[i], NULL) < 0) {
			activator_free(a);
			return log_error_errno(ENOMEM, "Failed to watch the activator's sockets");
		}
	}
	*out = a;
	return 0;
}

/* Listens on the wildcard address of both families (IPv4 only where IPv6 is absent). */
int activator_new(struct event_base *base, const struct activator_config *cfg,
		  const struct activator_ops *ops, void *userdata, struct activator **out)
{
	int fds[2], n = 0;
	int fd = activator_listen_on(AF_INET, cfg->port);
	if (fd < 0)
		return log_error_errno(fd, "Failed to listen on 0.0.0.0:%u for the activator",
				       cfg->port);
	fds[n++] = fd;
	fd = activator_listen_on(AF_INET6, cfg->port);
	if (fd >= 0)
		fds[n++] = fd;
	else if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
		log_notice("No IPv6 here: the activator listens on IPv4 only");
	else {
		close(fds[0]);
		return log_error_errno(fd, "Failed to listen on [::]:%u for the activator",
				       cfg->port);
	}
	return activator_new_from_fds(base, cfg, ops, userdata, fds, (size_t)n, out);
}

void activator_free(struct activator *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_listen; i++) {
		if (a->accept_events[i])
			event_free(a->accept_events[i]);
		close(a->listen_fds[i]);
	}
	if (a->accept_resume)
		event_free(a->accept_resume);
	while (a->wakings) {
		waking_reset_held(a->wakings);
		waking_free(a->wakings);
	}
	relay_set_free(a->relays);
	conntrack_free(a->conntrack);
	local_addr_free(a->local);
	free(a);
}

void activator_get_counters(const struct activator *a, struct activator_counters *out)
{
	*out = a->counters;
	out->relayed_now = a->relay_stats.relayed_now;
	out->relayed_total = a->relay_stats.relayed_total;
	out->bytes_to_backend = a->relay_stats.bytes_to_backend;
	out->bytes_to_client = a->relay_stats.bytes_to_client;
	out->relay_connect_failed = a->relay_stats.backend_connect_failed;
	out->relay_connect_retries = a->relay_stats.backend_connect_retries;
	out->relay_reset = a->relay_stats.reset;
}

int activator_forget_unredirected(struct activator *a, const uint16_t *ports, size_t n)
{
	return conntrack_forget_unredirected(a->conntrack, ports, n, a->cfg.port);
}
