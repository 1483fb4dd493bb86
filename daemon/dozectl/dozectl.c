// SPDX-License-Identifier: MIT
/*
 * dozectl: the command-line client of dozed's control socket. One request
 * line, one reply line ({"ok":true,...} or {"ok":false,"error":...}), and for
 * "events --follow" one event per line after that.
 *
 * Exit codes: 0 success, 1 the daemon said no, 2 usage, 3 cannot reach the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dozed/dozectl_conn.h"
#include "dozed/dozectl_format.h"
#include "dozed/duration.h"
#include "dozed/macro.h"
#include "dozed/settings.h"

#define DOZECTL_VERSION "0.1.0"

enum {
	OPT_IDLE = 1 << 0,
	OPT_WAKE_ON = 1 << 1,
	OPT_JSON = 1 << 2,
	OPT_FOLLOW = 1 << 3,
	OPT_PROBE = 1 << 4,
	OPT_IGNORE = 1 << 5,
	OPT_KEEP_AWAKE = 1 << 6,
	OPT_SINCE = 1 << 7,
	OPT_FREEZE_AFTER = 1 << 8,
	OPT_RECLAIM_FROZEN = 1 << 9,
};
#define OPT_LAST OPT_RECLAIM_FROZEN

struct command {
	const char *name;
	const char *arg;   /* the positional argument's name, or NULL */
	const char *field; /* its request key */
	unsigned options;  /* OPT_* it takes */
	bool arg_optional; /* the positional argument may be left out */
};

static const struct command commands[] = {
    {"enable", "CONTAINER", "container",
     OPT_IDLE | OPT_WAKE_ON | OPT_PROBE | OPT_IGNORE | OPT_KEEP_AWAKE | OPT_FREEZE_AFTER |
	 OPT_RECLAIM_FROZEN | OPT_JSON,
     false},
    {"disable", "SERVICE", "service", OPT_JSON, false},
    {"list", NULL, NULL, OPT_JSON, false},
    {"status", "SERVICE", "service", OPT_JSON, false},
    {"sleep", "SERVICE", "service", OPT_JSON, false},
    {"wake", "SERVICE", "service", OPT_JSON, false},
    {"events", NULL, NULL, OPT_FOLLOW | OPT_JSON, false},
    {"flows", "SERVICE", "service", OPT_SINCE | OPT_JSON, true},
    {"metrics", NULL, NULL, 0, false},
};

struct args {
	const char *control;
	const struct command *cmd;
	const char *target;
	const char *idle;
	const char *wake_on;
	const char *probe;
	const char *ignore;
	const char *since;
	const char *freeze_after;
	uint64_t since_ms;
	bool keep_awake, reclaim_frozen;
	bool json, follow;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: dozectl [--control PATH] COMMAND [ARGS]\n"
		"\n"
		"  enable CONTAINER [--idle DURATION] [--wake-on connect|data] [--probe KIND]\n"
		"                         manage a container: stop it when idle, wake it on\n"
		"                         the first connection (or the first data); KIND says\n"
		"                         when it is ready: auto (default), tcp, http[:/PATH],\n"
		"                         postgres, redis, mysql or healthcheck\n"
		"      [--ignore RULES]   traffic that never keeps it awake: peer CIDRs, ports\n"
		"                         or proto/port, or both (10.0.0.0/8,tcp/9090,\n"
		"                         192.0.2.7:443), comma-separated, or none (default:\n"
		"                         dozed's own --ignore)\n"
		"      [--keep-awake-while-connected]\n"
		"                         an open connection from a peer keeps it awake, even\n"
		"                         silent\n"
		"      [--freeze-after DURATION] [--reclaim-frozen]\n"
		"                         light sleep: after DURATION idle, freeze it (the\n"
		"                         runtime's pause; woken in milliseconds), and stop\n"
		"                         it after --idle (--idle never: only freeze it);\n"
		"                         --reclaim-frozen: the kernel reclaims its memory\n"
		"  disable SERVICE        stop managing it (a sleeping one is woken)\n"
		"  list [--json]          every service: state, ports, idle for, last wake\n"
		"  status SERVICE [--json]\n"
		"  sleep SERVICE          put it to sleep now\n"
		"  wake SERVICE           wake it now\n"
		"  events [--follow] [--json]\n"
		"                         recent events; --follow: then wait for more\n"
		"  flows [SERVICE] [--since DURATION] [--json]\n"
		"                         the flows of one service or of all, since it woke\n"
		"                         or over the last DURATION: peer, port, bytes each\n"
		"                         way, counted or ignored and why\n"
		"  metrics                the Prometheus metrics, as --metrics-listen serves\n"
		"                         them\n"
		"\n"
		"  --control PATH         the control socket (default $DOZED_CONTROL or %s)\n"
		"  DURATION               a whole number and a unit: 30s, 10m, 2h; at least 1s\n"
		"                         (--since: at least 1ms); --idle also takes never,\n"
		"                         --freeze-after none\n"
		"\n"
		"Exit status: 0 done, 1 dozed refused, 2 usage, 3 dozed cannot be reached.\n",
		DOZED_CONTROL_PATH_DEFAULT);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("dozectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -DOZECTL_EXIT_USAGE;
}

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static const char *option_name(unsigned opt)
{
	switch (opt) {
	case OPT_IDLE:
		return "--idle";
	case OPT_WAKE_ON:
		return "--wake-on";
	case OPT_JSON:
		return "--json";
	case OPT_PROBE:
		return "--probe";
	case OPT_IGNORE:
		return "--ignore";
	case OPT_KEEP_AWAKE:
		return "--keep-awake-while-connected";
	case OPT_SINCE:
		return "--since";
	case OPT_FREEZE_AFTER:
		return "--freeze-after";
	case OPT_RECLAIM_FROZEN:
		return "--reclaim-frozen";
	default:
		return "--follow";
	}
}

/* 0 and *a filled; -DOZECTL_EXIT_USAGE after printing why; 1 when --help or --version was answered.
 */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option options[] = {
	    {"control", required_argument, NULL, 'c'},
	    {"idle", required_argument, NULL, 'i'},
	    {"wake-on", required_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"follow", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"probe", required_argument, NULL, 'p'},
	    {"ignore", required_argument, NULL, 'g'},
	    {"keep-awake-while-connected", no_argument, NULL, 'k'},
	    {"since", required_argument, NULL, 's'},
	    {"freeze-after", required_argument, NULL, 'z'},
	    {"reclaim-frozen", no_argument, NULL, 'r'},
	    {0},
	};
	const char *positional[3] = {0};
	size_t n_positional = 0;
	unsigned seen = 0;
	int opt;

	opterr = 0;
	/* "-" first: positional arguments come back as 1, in order, among the options. */
	while ((opt = getopt_long(argc, argv, "-:h", options, NULL)) != -1) {
		switch (opt) {
		case 1:
			if (n_positional == ARRAY_SIZE(positional))
				return usage_error("unexpected argument '%s'", optarg);
			positional[n_positional++] = optarg;
			break;
		case 'c':
			a->control = optarg;
			break;
		case 'i':
			a->idle = optarg;
			seen |= OPT_IDLE;
			break;
		case 'w':
			a->wake_on = optarg;
			seen |= OPT_WAKE_ON;
			break;
		case 'p':
			a->probe = optarg;
			seen |= OPT_PROBE;
			break;
		case 'g':
			a->ignore = optarg;
			seen |= OPT_IGNORE;
			break;
		case 'k':
			a->keep_awake = true;
			seen |= OPT_KEEP_AWAKE;
			break;
		case 's':
			a->since = optarg;
			seen |= OPT_SINCE;
			break;
		case 'z':
			a->freeze_after = optarg;
			seen |= OPT_FREEZE_AFTER;
			break;
		case 'r':
			a->reclaim_frozen = true;
			seen |= OPT_RECLAIM_FROZEN;
			break;
		case 'j':
			a->json = true;
			seen |= OPT_JSON;
			break;
		case 'f':
			a->follow = true;
			seen |= OPT_FOLLOW;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("dozectl %s\n", DOZECTL_VERSION);
			return 1;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'; see dozectl --help",
					   argv[optind - 1]);
		}
	}

	/* After "--": names that start with '-'. */
	for (; optind < argc; optind++) {
		if (n_positional == ARRAY_SIZE(positional))
			return usage_error("unexpected argument '%s'", argv[optind]);
		positional[n_positional++] = argv[optind];
	}
	if (n_positional == 0) {
		usage(stderr);
		return usage_error("missing command");
	}
	a->cmd = command_find(positional[0]);
	if (!a->cmd)
		return usage_error("unknown command '%s'; see dozectl --help", positional[0]);
	for (unsigned bit = 1; bit <= OPT_LAST; bit <<= 1)
		if ((seen & bit) && !(a->cmd->options & bit))
			return usage_error("%s does not take %s", a->cmd->name, option_name(bit));
	if (a->cmd->arg && !a->cmd->arg_optional && n_positional < 2)
		return usage_error("%s needs a %s", a->cmd->name, a->cmd->arg);
	if (n_positional > (a->cmd->arg ? 2u : 1u))
		return usage_error("unexpected argument '%s'", positional[n_positional - 1]);
	a->target = a->cmd->arg && n_positional > 1 ? positional[1] : NULL;

	/* The daemon's own parsers: what it would refuse is a usage error here. */
	struct service_settings settings = {0};
	const char *expected = NULL;
	if (a->idle && settings_set(&settings, "idle", a->idle, &expected) < 0)
		return usage_error("invalid --idle value '%s': %s", a->idle, expected);
	if (a->wake_on && settings_set(&settings, "wake-on", a->wake_on, &expected) < 0)
		return usage_error("invalid --wake-on value '%s': %s", a->wake_on, expected);
	if (a->probe && settings_set(&settings, "probe", a->probe, &expected) < 0)
		return usage_error("invalid --probe value '%s': %s", a->probe, expected);
	if (a->ignore && settings_set(&settings, "ignore", a->ignore, &expected) < 0)
		return usage_error("invalid --ignore value '%s': %s", a->ignore, expected);
	if (a->freeze_after &&
	    settings_set(&settings, "freeze-after", a->freeze_after, &expected) < 0)
		return usage_error("invalid --freeze-after value '%s': %s", a->freeze_after,
				   expected);
	/* Without --idle the daemon's own idle counts: dozed checks that one. */
	char why[160];
	if (a->idle && a->freeze_after &&
	    settings_check_tiers(settings.idle_us, settings.freeze_after_us, why, sizeof(why)) < 0)
		return usage_error("--freeze-after %s --idle %s: %s", a->freeze_after, a->idle,
				   why);
	uint64_t since_us = 0;
	if (a->since && settings_parse_duration(a->since, DURATION_US_PER_MS, DURATION_MAX_US,
						"expected a duration of 1ms or more, like 30s, "
						"10m or 2h",
						&since_us, &expected) < 0)
		return usage_error("invalid --since value '%s': %s", a->since, expected);
	a->since_ms = since_us / DURATION_US_PER_MS;
	if (!a->control)
		a->control = getenv("DOZED_CONTROL");
	if (!a->control || !*a->control)
		a->control = DOZED_CONTROL_PATH_DEFAULT;
	return 0;
}

static struct json_object *build_request(const struct args *a)
{
	struct json_object *req = json_object_new_object();
	if (!req)
		return NULL;
	json_object_object_add(req, "cmd", json_object_new_string(a->cmd->name));
	if (a->target)
		json_object_object_add(req, a->cmd->field, json_object_new_string(a->target));
	if (a->idle)
		json_object_object_add(req, "idle", json_object_new_string(a->idle));
	if (a->wake_on)
		json_object_object_add(req, "wake_on", json_object_new_string(a->wake_on));
	if (a->probe)
		json_object_object_add(req, "probe", json_object_new_string(a->probe));
	if (a->ignore)
		json_object_object_add(req, "ignore", json_object_new_string(a->ignore));
	if (a->keep_awake)
		json_object_object_add(req, "keep_awake",
				       json_object_new_string(settings_keep_awake_to_string(true)));
	if (a->freeze_after)
		json_object_object_add(req, "freeze_after",
				       json_object_new_string(a->freeze_after));
	if (a->reclaim_frozen)
		json_object_object_add(req, "reclaim_frozen", json_object_new_boolean(1));
	if (a->since)
		json_object_object_add(req, "since_ms",
				       json_object_new_int64((int64_t)a->since_ms));
	if (strcmp(a->cmd->name, "events") == 0)
		json_object_object_add(req, "follow", json_object_new_boolean(a->follow));
	return req;
}

/* 0 when ok is true; else prints the daemon's message and returns -DOZECTL_EXIT_REFUSED. */
static int check_reply(const struct dozectl_conn *c, struct json_object *reply)
{
	struct json_object *ok = NULL, *err = NULL;
	if (!json_object_object_get_ex(reply, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		fprintf(stderr, "dozectl: unexpected answer from %s: no \"ok\"\n", c->path);
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	if (json_object_get_boolean(ok))
		return 0;
	json_object_object_get_ex(reply, "error", &err);
	fprintf(stderr, "dozectl: %s\n",
		json_object_is_type(err, json_type_string) ? json_object_get_string(err)
							   : "dozed refused (no reason given)");
	return -DOZECTL_EXIT_REFUSED;
}

static struct json_object *member(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static void print_event(const struct args *a, struct json_object *e)
{
	if (a->json)
		printf("%s\n", json_object_to_json_string_ext(
				   e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		dozectl_print_event(stdout, e);
}

static int follow_events(const struct args *a, struct dozectl_conn *c)
{
	/* Events come when they happen: no reply timeout from here on. */
	struct timeval none = {0};
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	for (;;) {
		struct json_object *e = NULL;
		int r = dozectl_conn_read(c, &e, NULL);
		if (r < 0)
			return r;
		print_event(a, e);
		fflush(stdout);
		json_object_put(e);
	}
}

static int print_reply(const struct args *a, struct dozectl_conn *c, struct json_object *reply,
		       const char *text)
{
	const char *name = a->cmd->name;
	if (strcmp(name, "events") == 0) {
		struct json_object *events = member(reply, "events", json_type_array);
		for (size_t i = 0; events && i < json_object_array_length(events); i++)
			print_event(a, json_object_array_get_idx(events, i));
		fflush(stdout);
		return a->follow ? follow_events(a, c) : 0;
	}
	/* The exposition as it is, for promtool or a textfile collector. */
	if (strcmp(name, "metrics") == 0) {
		struct json_object *m = member(reply, "metrics", json_type_string);
		if (m)
			fwrite(json_object_get_string(m), 1, (size_t)json_object_get_string_len(m),
			       stdout);
		else
			fprintf(stderr, "dozectl: unexpected answer from %s: no \"metrics\"\n",
				c->path);
		return m ? 0 : -DOZECTL_EXIT_UNREACHABLE;
	}
	if (a->json) {
		printf("%s\n", text);
		return 0;
	}
	if (strcmp(name, "list") == 0) {
		dozectl_print_list(stdout, member(reply, "services", json_type_array));
		return 0;
	}
	if (strcmp(name, "flows") == 0) {
		dozectl_print_flows(stdout, reply);
		return 0;
	}
	if (strcmp(name, "disable") == 0) {
		printf("%s: disabled\n", a->target);
		return 0;
	}
	struct json_object *service = member(reply, "service", json_type_object);
	if (!service) {
		fprintf(stderr, "dozectl: unexpected answer from %s: no \"service\"\n", c->path);
		return -DOZECTL_EXIT_UNREACHABLE;
	}
	if (strcmp(name, "status") == 0)
		dozectl_print_status(stdout, service);
	else
		dozectl_print_summary(stdout, service);
	return 0;
}

static int run(const struct args *a)
{
	struct dozectl_conn c = {.fd = -1};
	struct json_object *req = NULL, *reply = NULL;
	_cleanup_free_ char *text = NULL;

	int r = dozectl_conn_open(&c, a->control);
	if (r < 0)
		goto out;
	req = build_request(a);
	if (!req) {
		fprintf(stderr, "dozectl: out of memory\n");
		r = -DOZECTL_EXIT_UNREACHABLE;
		goto out;
	}
	r = dozectl_conn_send(&c, req);
	if (r < 0 && r != -EPIPE)
		goto out;
	r = dozectl_conn_read(&c, &reply, &text);
	if (r < 0)
		goto out;
	r = check_reply(&c, reply);
	if (r < 0)
		goto out;
	r = print_reply(a, &c, reply, text);
out:
	json_object_put(req);
	json_object_put(reply);
	dozectl_conn_close(&c);
	return r;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int r = parse_args(argc, argv, &a);
	if (r != 0)
		return r > 0 ? DOZECTL_EXIT_OK : -r;
	r = run(&a);
	if (fflush(stdout) != 0 && r == 0) {
		fprintf(stderr, "dozectl: cannot write the output: %s\n", strerror(errno));
		return DOZECTL_EXIT_REFUSED;
	}
	return r < 0 ? -r : DOZECTL_EXIT_OK;
}
