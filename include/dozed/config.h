/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * dozed's settings: defaults, then the config file, then the command line,
 * which wins. The file holds the same keys as the long options, without the
 * leading "--", one "key = value" per line; '#' starts a comment line.
 * Parsing is pure apart from reading the file, DOCKER_HOST and the group
 * database: nothing is logged, every error comes back as a message.
 */

#include "dozed/flow_rule.h"
#include "dozed/settings.h"

struct dozed_config {
	char *runtime_socket; /* path of the runtime's unix socket */
	char *control_path;   /* the control socket */
	char *control_group;  /* NULL: root only */
	gid_t control_gid;    /* of control_group, when it is set */
	uint16_t activator_port;
	char *nft_table;
	uint32_t mark;
	char *state_dir;
	uint64_t idle_us;
	uint64_t probe_interval_us;
	uint64_t wake_timeout_us;
	/* Grace of a stop before SIGKILL. Only when stop_timeout_set: else each
	 * container's own StopTimeout, or DOZED_STOP_TIMEOUT_DEFAULT_S. */
	unsigned stop_timeout_s;
	bool stop_timeout_set;
	size_t max_held; /* connections held per waking service */
	/* A held connection of a wake-on-data service that has sent nothing is
	 * closed after this (100ms to 1h): silent clients cannot fill max_held. */
	uint64_t held_silent_timeout_us;
	/* Held connections from one client address (1 to max_held; by default
	 * 256, or max_held when smaller): one source cannot take every slot. */
	size_t max_held_per_client;
	/* A control client with nothing in flight and no request for this long is
	 * closed (1s to 1h); struct control_config.idle_timeout_us. */
	uint64_t control_idle_timeout_us;
	/* The ignore rules of a service that has none of its own (key
	 * "ignore"); none by default. */
	struct flow_rules ignore;
	/* A request unanswered for longer no longer keeps its service awake
	 * (1s to 8760h): one silent peer cannot keep it up for ever. */
	uint64_t unanswered_timeout_us;
	int log_level; /* LOG_ERR .. LOG_DEBUG */
	/* The metrics listener's "ADDR:PORT" as given (NULL: none, the default)
	 * and that address parsed (metrics_listen_parse). */
	char *metrics_listen;
	struct sockaddr_storage metrics_addr;

	char *config_path; /* the file named by --config, or the default */
	/* Why DOCKER_HOST was not used (dozed_config_apply_docker_host's message),
	 * for the caller to log; NULL when it was, or was not set. */
	char *docker_host_ignored;
	bool check;   /* --check */
	bool version; /* --version */
	bool help;    /* --help */

	/* Where each key was set, for the parser's messages and precedence. */
	uint32_t set_by_args_;
	uint32_t set_by_file_;
	unsigned wake_timeout_line_;
	unsigned max_held_per_client_line_;
};

/* Fills in every default, from settings.h. 0 or -ENOMEM; call
 * dozed_config_free() either way. */
int dozed_config_defaults(struct dozed_config *c);
/* Frees the strings c owns and zeroes it; idempotent. */
void dozed_config_free(struct dozed_config *c);

/*
 * Applies the options of argv[1..argc-1] ("--key value" or "--key=value";
 * "-h" is --help) and records them as set by the command line. On error
 * returns -EINVAL and *err_msg (malloc'd) names the option, the value and what
 * is allowed, e.g. "--activator-port 70000: expected a port 1-65535";
 * main prints it as "dozed: MESSAGE" and exits 2.
 */
int dozed_config_parse_args(struct dozed_config *c, int argc, char **argv, char **err_msg);

/*
 * Applies the keys of the file at path, except those already set on the
 * command line (their values in the file are still checked). A missing file
 * is not an error unless must_exist. Errors: -EINVAL with a message such as
 * "/etc/dozed/dozed.conf:3: idle = 10x: expected a duration like 30ms, 10s,
 * 10m or 2h", or -errno when the file cannot be read ("PATH: cannot read: ...").
 */
int dozed_config_load_file(struct dozed_config *c, const char *path, bool must_exist,
			   char **err_msg);

/*
 * The runtime socket from docker_host (the value of DOCKER_HOST; NULL or ""
 * when unset), unless the command line or the file named one: only
 * unix:///PATH. Otherwise -EINVAL and *err_msg, e.g. "DOCKER_HOST=tcp://h:2375
 * is not supported: dozed reaches the container runtime over a unix socket
 * only (DOCKER_HOST=unix:///PATH)"; -ENOMEM. dozed_config_from_argv keeps
 * the default then and puts the message in docker_host_ignored.
 */
int dozed_config_apply_docker_host(struct dozed_config *c, const char *docker_host, char **err_msg);

/* Checks what involves several keys: the wake timeout against the probe interval,
 * max-held-per-client against max-held. */
int dozed_config_validate(const struct dozed_config *c, char **err_msg);

/*
 * All of the above in order: defaults, command line, the file (--config PATH,
 * which must exist, or DOZED_CONFIG_PATH_DEFAULT, which may be missing),
 * DOCKER_HOST (the one place dozed reads it), validation. With --help or --version the file is not
 * read. On error, c still needs dozed_config_free() and *err_msg is set (NULL only on -ENOMEM).
 */
int dozed_config_from_argv(struct dozed_config *c, int argc, char **argv, char **err_msg);

/* The text of --help. */
const char *dozed_config_usage(void);
