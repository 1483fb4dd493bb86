/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every default of dozed, once: the config file, the command line, the parts
 * (control socket, runtime client, nft table, activator) and dozectl take
 * them from here.
 */

#include <stdint.h>

#define DOZED_CONFIG_PATH_DEFAULT	      "/etc/dozed/dozed.conf"
#define DOZED_RUNTIME_SOCKET_DEFAULT	      "/var/run/docker.sock"
#define DOZED_CONTROL_PATH_DEFAULT	      "/run/dozed/control.sock"
#define DOZED_STATE_DIR_DEFAULT		      "/var/lib/dozed"
#define DOZED_ACTIVATOR_PORT_DEFAULT	      15001
#define DOZED_NFT_TABLE_DEFAULT		      "dozed"
#define DOZED_MARK_DEFAULT		      0x1d0
#define DOZED_IDLE_DEFAULT_US		      (UINT64_C(10) * 60 * 1000000)
#define DOZED_PROBE_INTERVAL_DEFAULT_US	      (UINT64_C(30) * 1000)
#define DOZED_WAKE_TIMEOUT_DEFAULT_US	      (UINT64_C(10) * 1000000)
#define DOZED_STOP_TIMEOUT_DEFAULT_S	      10
#define DOZED_MAX_HELD_DEFAULT		      4096
#define DOZED_HELD_SILENT_TIMEOUT_DEFAULT_US  (UINT64_C(10) * 1000000)
#define DOZED_MAX_HELD_PER_CLIENT_DEFAULT     256
#define DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US (UINT64_C(30) * 1000000)
#define DOZED_UNANSWERED_TIMEOUT_DEFAULT_US   (UINT64_C(60) * 60 * 1000000)
/* A stop's drain, before its signal: its first look's wait for requests in
 * flight (doubling up to 16 times that), how young a connection that has
 * sent nothing is one on its way, and its bound (the grace period's when
 * shorter). */
#define DOZED_STOP_DRAIN_LOOK_US  (UINT64_C(20) * 1000)
#define DOZED_STOP_DRAIN_FRESH_MS 1000
#define DOZED_STOP_DRAIN_MAX_US	  (UINT64_C(5) * 1000000)

/*
 * The per-service settings, and every parser of a setting's text: one parser
 * per value (as wireguard-tools' config.c), shared by the config file, the
 * command line, container labels (dozed.idle, dozed.wake-on), the control
 * protocol, services.json and dozectl's own check. Pure: nothing is logged.
 * Each returns 0, or -EINVAL with *expected saying what is allowed ("expected
 * connect or data"), for the caller to print after the key and the bad value,
 * e.g. "--idle 999ms: expected a duration of 1s or more, like 30s, 10m or 2h".
 */

#include <stdbool.h>
#include <stddef.h>

#include "dozed/flow_rule.h"
#include "dozed/probe_spec.h"

#define DOZED_IDLE_MIN_US UINT64_C(1000000)
/* A service's idle "never": it is never stopped (with freeze_after: frozen
 * only). Per service only; the daemon's --idle is a duration. */
#define DOZED_IDLE_NEVER UINT64_MAX
/* The shortest freeze_after: as the shortest idle. */
#define DOZED_FREEZE_AFTER_MIN_US DOZED_IDLE_MIN_US
#define DOZED_UNIX_PATH_MAX	  108 /* sizeof(sockaddr_un.sun_path), with its NUL */

/* The settings a service may have of its own; a new one is a field, a parser
 * and a row of settings.c's key table. */
struct service_settings {
	uint64_t idle_us;	 /* meaningful when idle_set; else the daemon's --idle */
	bool idle_set;		 /* idle was given */
	bool wake_on_data;	 /* wake on a client's first bytes instead of its connect */
	struct probe_spec probe; /* how a wake is judged ready; zeroed: auto */
	/* Traffic that never resets the idle timer (flow_rule.h); meaningful
	 * when ignore_set ("none" sets it too: no rules, not the default). */
	struct flow_rules ignore;
	bool ignore_set;
	/* An open connection from a peer keeps it awake, even silent. */
	bool keep_awake_connections;
	/* Light sleep: frozen after this much idle time (0: never frozen);
	 * stopped after idle_us as before (DOZED_IDLE_NEVER: never stopped).
	 * Shorter than idle_us (settings_check_tiers). */
	uint64_t freeze_after_us;
	/* Ask the kernel to reclaim a frozen container's memory. */
	bool reclaim_frozen;
};

/*
 * A duration (see duration.h) within [min_us, max_us]. range is the message
 * for a value outside it ("expected a duration from 1ms to 10s"); one over
 * DURATION_MAX_US says "expected a duration of at most 8760h (a year)" when
 * max_us is that limit, and text that is no duration "expected a duration
 * like 30ms, 10s, 10m or 2h".
 */
int settings_parse_duration(const char *v, uint64_t min_us, uint64_t max_us, const char *range,
			    uint64_t *out_us, const char **expected);
/* An idle time, 1s to 8760h: "expected a duration of 1s or more, like 30s, 10m or 2h". */
int settings_parse_idle(const char *v, uint64_t *out_us, const char **expected);
/*
 * A service's own idle time: as settings_parse_idle, or "never"
 * (DOZED_IDLE_NEVER): "expected a duration of 1s or more, like 30s, 10m or
 * 2h, or never", for text that is no duration too ("Never", "0").
 */
int settings_parse_service_idle(const char *v, uint64_t *out_us, const char **expected);
/* What settings_parse_service_idle() reads back, into buf: "never" or
 * "10m" (duration_format). buf: DURATION_FORMAT_MAX bytes or more. */
const char *settings_idle_to_string(uint64_t idle_us, char *buf, size_t len);
/*
 * A light sleep's freeze_after: a duration from 1s to 8760h, or "none" (0:
 * never frozen): "expected a duration of 1s or more, like 30s, 10m or 2h, or
 * none", for text that is no duration too ("0", "off"); over a year "expected
 * a duration of at most 8760h (a year)".
 */
int settings_parse_freeze_after(const char *v, uint64_t *out_us, const char **expected);
/* What settings_parse_freeze_after() reads back, into buf: "none" or "30s". */
const char *settings_freeze_after_to_string(uint64_t freeze_after_us, char *buf, size_t len);
/* "true" or "false", exactly (no yes/no, no 1/0): "expected true or false". */
int settings_parse_bool(const char *v, bool *out, const char **expected);
/*
 * The two tiers together, once a service's settings are complete (its idle
 * resolved: its own or the daemon's): 0 when freeze_after_us is 0 (no light
 * sleep), when idle_us is DOZED_IDLE_NEVER, or when freeze_after_us is
 * shorter than idle_us; else -EINVAL and why, into why (why_len 128 or more
 * holds it whole): "freeze_after (10m) must be shorter than idle (5m): a
 * service is frozen first, stopped later".
 */
int settings_check_tiers(uint64_t idle_us, uint64_t freeze_after_us, char *why, size_t why_len);

/* "connect" (false) or "data" (true): "expected connect or data". */
int settings_parse_wake_on(const char *v, bool *out_data, const char **expected);
/* The text settings_parse_wake_on() reads back: "connect" or "data". */
const char *settings_wake_on_to_string(bool data);

/* "connections" (true) or "none" (false): "expected connections or none". */
int settings_parse_keep_awake(const char *v, bool *out_connections, const char **expected);
/* The text settings_parse_keep_awake() reads back: "connections" or "none". */
const char *settings_keep_awake_to_string(bool connections);

/*
 * A probe kind (probe_spec.h): "auto", "tcp", "http" or "http:/PATH" (PATH
 * printable ASCII without spaces, at most PROBE_HTTP_PATH_MAX bytes),
 * "postgres", "redis", "mysql" or "healthcheck". *expected lists them.
 */
int settings_parse_probe(const char *v, struct probe_spec *out, const char **expected);
/* An http probe's path as it may go into a request line: "/" first, at most
 * PROBE_HTTP_PATH_MAX bytes, printable ASCII without spaces. */
bool settings_probe_path_valid(const char *path);
/* The text settings_parse_probe() reads back ("http:/health"), into buf. */
const char *settings_probe_to_string(const struct probe_spec *p, char *buf, size_t len);
/* The kind's own name ("http" for "http:/health"). */
const char *settings_probe_kind_name(enum probe_kind kind);

/*
 * What a wake of a container probes: set as asked, with auto resolved (the
 * container's health command if it has one, else its port: 5432 postgres,
 * 6379 redis, 3306 mysql, else tcp) and healthcheck falling back to tcp
 * for a container without one. used says which, for users: "postgres
 * (auto: port 5432)".
 */
void settings_probe_resolve(const struct probe_spec *set, bool has_healthcheck,
			    uint16_t container_port, struct probe_spec *out, char *used,
			    size_t used_len);

/* A unix socket's path, as --control takes it: absolute, at most 107 bytes. */
int settings_parse_socket_path(const char *v, const char **expected);
/*
 * The runtime's socket as --runtime-socket takes it: "/PATH" or
 * "unix:///PATH", an absolute path shorter than a unix socket address.
 * *out_path points into v.
 */
int settings_parse_runtime_socket(const char *v, const char **out_path, const char **expected);
/*
 * The runtime's socket from DOCKER_HOST: only "unix:///PATH" (as docker reads
 * it). -EPROTONOSUPPORT for another scheme (tcp://, ssh://, a bare path),
 * which dozed cannot reach; -EINVAL with *expected for a bad path.
 * *out_path points into v.
 */
int settings_parse_docker_host(const char *v, const char **out_path, const char **expected);

/*
 * Sets one per-service setting by key: "idle" (settings_parse_service_idle:
 * "never" too), "wake_on" (also written "wake-on", as in the label
 * dozed.wake-on and dozectl's --wake-on), "probe", "ignore" (flow_rules_parse:
 * *expected is then its whole message, naming the rule and the forms),
 * "keep_awake" (also "keep-awake"), "freeze_after" (also "freeze-after") and
 * "reclaim_frozen" (also "reclaim-frozen"; "true" or "false"). 0; -EINVAL
 * with *expected; -ENOENT for a key that is no setting (*expected then lists
 * the keys: "expected idle, wake_on, probe, ignore, keep_awake, freeze_after
 * or reclaim_frozen"). s is changed only on success. Each key alone: the
 * caller checks the tiers (settings_check_tiers) once all are set.
 */
int settings_set(struct service_settings *s, const char *key, const char *value,
		 const char **expected);
/* Whether key names a per-service setting, in either spelling. */
bool settings_key_known(const char *key);
