/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The activator: accepts the connections nftables redirects to it, finds the
 * service each was meant for (SO_ORIGINAL_DST), asks the daemon to wake it,
 * holds the connections while it starts, probes it, and relays them with
 * splice(2). It never talks to the container runtime: the daemon does, through
 * the callbacks below and the activator_service_* calls.
 *
 * Only original destinations that are addresses of the network namespace the
 * activator runs in are relayed (and only on ports route_lookup knows): a
 * connection redirected to it for another host is reset and counted, so the
 * activator is never an open proxy, whatever the ruleset redirects. A
 * loopback original destination (127.0.0.0/8, ::1) is relayed only on a
 * connection that came through loopback (its socket's own address is
 * loopback too): a neighbour routing 127.0.0.1 to this host never reaches a
 * service bound to loopback (CVE-2020-8558). Both are asked again when the
 * service is ready, as an address may have gone while its clients waited.
 *
 * Runs on the daemon's libevent base. The process must ignore SIGPIPE.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dozed/probe_spec.h"
#include "dozed/settings.h"

struct event_base;
struct activator;

/* activator_config_defaults() gives dozed's defaults, the DOZED_*_DEFAULT* of
 * settings.h named below; hold_timeout_us's is the activator's own. */
struct activator_config {
	/* Listening port, IPv4 and IPv6: DOZED_ACTIVATOR_PORT_DEFAULT. */
	uint16_t port;
	/* SO_MARK of probe and relay sockets: DOZED_MARK_DEFAULT. */
	uint32_t mark;
	/* After a fast first phase (probe.h): DOZED_PROBE_INTERVAL_DEFAULT_US. */
	uint64_t probe_interval_us;
	/* From "starting" to ready: DOZED_WAKE_TIMEOUT_DEFAULT_US. */
	uint64_t wake_timeout_us;
	/* From the first held client to "starting": 60 s. */
	uint64_t hold_timeout_us;
	/* Held connections per service: DOZED_MAX_HELD_DEFAULT. */
	size_t max_held;
	/* 0 (the default): relays live as long as their connections. */
	uint64_t max_relay_lifetime_us;
	/*
	 * Wake on data: a held client that has not sent its first bytes within
	 * this is reset, while no wake is under way (a client held during a
	 * wake is relayed once it is ready, silent or not).
	 * DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US, 10 s: a real client sends its
	 * request (HTTP, TLS ClientHello, a database's startup message) within
	 * a round trip of connecting; 10 s is HAProxy's usual `timeout
	 * http-request`, generous for slow links. When max_held clients are
	 * held, a new client takes the place of the oldest that has sent
	 * nothing yet (counted in held_evicted), during a wake too and with
	 * wake on connect as well, so silent connections cannot lock real
	 * clients out even before then; a client accepted in the same batch as
	 * the new one is not taken, as its first bytes may still be on the way.
	 */
	uint64_t silent_timeout_us;
	/*
	 * Held connections per client address and service; 0: no bound.
	 * DOZED_MAX_HELD_PER_CLIENT_DEFAULT, 256, so one address cannot take
	 * all of max_held (4096 takes 16 addresses), while a burst from one
	 * address during a wake still fits: a reverse proxy or NAT in front of
	 * many clients, a browser opening 6 per host (about 40 browsers behind
	 * one address), the 200 clients of the e2e burst. Over it, the new
	 * client is reset (rejected_per_client). IPv4 clients on a dual-stack
	 * socket count as their IPv4 address. An IPv6 client counts as its
	 * /64: a host is given a /64 and may use any address in it, so a bound
	 * per address would not bound it.
	 */
	size_t max_held_per_client;
	/*
	 * Held connections across all services; 0: derived from RLIMIT_NOFILE
	 * at each batch of accepts, (soft limit - 256) / 2, at least 1: a held
	 * connection takes one descriptor and two once relayed (the client's
	 * and the backend's), and 256 stay for the daemon's own. Over it, as
	 * over max_held, the oldest silent client of the service makes room,
	 * else the new one is reset (rejected_full).
	 */
	size_t max_held_total;
};

void activator_config_defaults(struct activator_config *cfg);

/* How the daemon routes an original destination to a service. */
struct activator_route {
	uint64_t service_id;
	/* 0: wake on connect. N > 0: wake only once a client sent N bytes, so
	 * port scans and bare SYN probes do not wake the service. */
	size_t wake_min_bytes;
};

struct activator_ops {
	/* Which service owns original destination dst? 0 and *route, or -ENOENT. */
	int (*route_lookup)(void *userdata, const struct sockaddr_storage *dst,
			    struct activator_route *route);
	/* A client is waiting for service_id: start it, then call
	 * activator_service_starting(). Called once per wake. */
	void (*wake_requested)(void *userdata, uint64_t service_id,
			       const struct sockaddr_storage *client);
	/* The probe found the service ready (its protocol's ready answer; for
	 * tcp, a connect): held clients are being relayed. The daemon removes
	 * the service's ports from the redirect set. */
	void (*service_ready)(void *userdata, uint64_t service_id, uint64_t probe_us,
			      uint64_t total_us);
	/* No ready answer within the wake timeout (reason -ETIMEDOUT), or the
	 * hold timeout passed before a probe (-ETIMEDOUT, last_answer ""):
	 * every held client was reset. Never for a probe during_stop.
	 * last_answer: what the last probe attempt that ended saw, in words:
	 * the protocol's answer prefixed by its kind ("postgres: the database
	 * system is starting up", "redis: LOADING Redis is loading the dataset
	 * in memory", "http: no answer within 1000 ms"), or the connect's fate
	 * unprefixed ("connection refused", "connect timed out", "reset");
	 * printable ASCII, under PROBE_WHY_MAX (160) bytes; "" when no attempt
	 * ended. Valid during the call only. */
	void (*wake_failed)(void *userdata, uint64_t service_id, int reason,
			    const char *last_answer);
	/* Optional: a client of service_id was reset because max_held were
	 * already waiting (-ENOBUFS), or max_held_per_client from its address
	 * (-EUSERS). */
	void (*client_rejected)(void *userdata, uint64_t service_id, int reason);
	/* Optional: the first byte of a woken service's answer reached a client held
	 * through its wake, us after that client connected; once per wake. */
	void (*first_response)(void *userdata, uint64_t service_id, uint64_t us);
};
/*
 * first_response, exactly: a wake is the probe that found service_id ready
 * (service_ready) with clients held; each is relayed carrying the time the
 * activator accepted it (its connect, give or take the loop's delay), and the
 * first of those relays to pass a byte from the backend to its client's
 * socket reports now - that client's accept time, once for the wake, whichever
 * client it is. Nothing is reported for a wake whose held clients all left
 * (or were reset) before a byte of answer came, for a probe during_stop or
 * awake (struct activator_probe), nor for answers after the first. A backend
 * answering with its FIN alone is no byte. "Reached" is as far as the
 * activator sees: written to the client's socket (a client that closed
 * with a FIN after its request, rather than a reset, cannot be told from
 * one that half-closed, and counts). Comes after the wake's service_ready,
 * from within the relay, on the activator's loop: it must not free the
 * activator. The daemon sets awake for a probe of a service it found serving
 * already (redirected just before its ports left the set, or thawed).
 */

#define ACTIVATOR_WAKE_BUCKETS 12
/* Upper bounds (ms) of the wake time histogram buckets; the last is open. */
extern const uint32_t activator_wake_bucket_ms[ACTIVATOR_WAKE_BUCKETS];

struct activator_counters {
	uint64_t accepted;
	uint64_t held_now;
	uint64_t relayed_now;
	uint64_t relayed_total;
	uint64_t bytes_to_backend;
	uint64_t bytes_to_client;
	uint64_t rejected_unrouted; /* original destination no service owns, or none */
	/* Original destination not an address of the activator's network
	 * namespace: never relayed, whatever redirected it (the second wall). */
	uint64_t rejected_not_local;
	/* Loopback original destination on a connection that did not come
	 * through loopback: a neighbour routing 127.0.0.1 here (also counted
	 * in rejected_not_local). */
	uint64_t rejected_loopback;
	uint64_t rejected_full;	      /* over max_held */
	uint64_t rejected_per_client; /* over max_held_per_client */
	uint64_t held_closed;	      /* clients that left while held */
	uint64_t held_silent_closed;  /* reset after silent_timeout_us without a byte */
	uint64_t held_evicted;	      /* silent, reset to make room for a new client */
	uint64_t held_events;	      /* events handled on held clients (a spin shows here) */
	uint64_t accept_paused;	      /* accepting paused: out of descriptors or memory */
	uint64_t probe_attempts;
	uint64_t wakes_ready;
	uint64_t wakes_failed;
	uint64_t relay_connect_failed;
	uint64_t relay_connect_retries; /* backend connects started again, unanswered */
	uint64_t relay_reset;
	uint64_t wake_ms_hist[ACTIVATOR_WAKE_BUCKETS];
	uint64_t wake_us_sum; /* the wakes the histogram counts, summed */
};

/* Listens on cfg->port on 0.0.0.0 and [::]. */
int activator_new(struct event_base *base, const struct activator_config *cfg,
		  const struct activator_ops *ops, void *userdata, struct activator **out);
/* The same, on already-bound listening sockets (socket activation); takes them. */
int activator_new_from_fds(struct event_base *base, const struct activator_config *cfg,
			   const struct activator_ops *ops, void *userdata, const int *fds,
			   size_t n_fds, struct activator **out);
/* Resets every held and relayed connection. Accepts NULL. */
void activator_free(struct activator *a);

/* A wake's probe: where to connect, in which namespace, and what is ready. */
struct activator_probe {
	/* NULL: the original destination of the first held client. */
	const struct sockaddr_storage *dst;
	/* -1, or a network namespace (the container's) in which dst is probed:
	 * its own port, not a proxy in front of it, which may accept before the
	 * service listens. Used only with dst, only during the call (the
	 * activator keeps its own copy). */
	int netns_fd;
	/* NULL: tcp (a connect is ready). http, postgres, redis, mysql: once
	 * connected, the protocol's request and its answer, judged as
	 * probe_spec.h says; an answer not ready, garbage, over 1 KiB or
	 * missing after max(probe_interval_us, 1 s) ends that attempt only,
	 * and the next one comes at least 4 ms later (each costs a server such
	 * as PostgreSQL a forked backend). The daemon resolves auto and runs
	 * healthcheck itself: -EINVAL for either here, logged, and nothing
	 * changes (held clients stay held). Used only during the call. */
	const struct probe_spec *spec;
	/* The container is being stopped and may still serve: at the wake
	 * timeout the probe just ends, its held clients stay held (until the
	 * hold timeout, re-armed as by activator_service_probe_cancel, or the
	 * next probe) and wake_failed is not called. Ready: relayed and
	 * service_ready, as any probe. */
	bool during_stop;
	/* 0: the configured wake timeout. Else this probe's own, shorter one
	 * (the daemon's health command took the rest). */
	uint64_t timeout_us;
	/* The service is awake already (a client redirected just before its
	 * ports left the set): relayed as any probe's, but its clients' first
	 * answer is no wake's, so first_response is not called for them. */
	bool awake;
};

/*
 * The daemon started service_id (or found it still running): probe it as
 * probe says, then relay the held clients and call service_ready, or reset
 * them and call wake_failed at the wake timeout. Also used for a wake with
 * no client waiting (then probe->dst is needed). A probe already under way
 * for service_id is left as it is (0), unless it is during_stop and this
 * one is not: the stop is over, and this probe replaces that one.
 */
int activator_service_probe(struct activator *a, uint64_t service_id,
			    const struct activator_probe *probe);
/* activator_service_probe with a tcp probe of probe_dst in our namespace. */
int activator_service_starting(struct activator *a, uint64_t service_id,
			       const struct sockaddr_storage *probe_dst);
/* Ends service_id's probe, if one is under way; its held clients stay held,
 * and the hold timeout runs for them again. */
void activator_service_probe_cancel(struct activator *a, uint64_t service_id);
/* The daemon could not start service_id: its held clients are reset. */
void activator_service_failed(struct activator *a, uint64_t service_id);
/* Clients held for service_id now. */
size_t activator_service_held(const struct activator *a, uint64_t service_id);
/* Relayed clients of service_id waiting on it: the relay's connect is under
 * way, or the client's last bytes are not answered yet. */
size_t activator_service_waiting(const struct activator *a, uint64_t service_id);

void activator_get_counters(const struct activator *a, struct activator_counters *out);

/*
 * Ports just went into the redirect set: forget the connections to them that
 * the runtime NATed and nobody answered (a full backlog), whose entries would
 * take a new client's SYN from the same source port past the redirect, to a
 * container that is stopping: refused. How many, or -errno (logged).
 */
int activator_forget_unredirected(struct activator *a, const uint16_t *ports, size_t n);
