// SPDX-License-Identifier: MIT
/*
 * dozed: scale-to-zero for Docker and Podman hosts.
 * For now: checks that this host has what dozed needs (--check).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "dozed/cgroup.h"
#include "dozed/egress_counter.h"
#include "dozed/log.h"
#include "dozed/macro.h"

#define DOZED_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out, "Usage: dozed [--check] [--log-level LEVEL] [--version] [--help]\n"
		     "\n"
		     "  --check            check that this host can run dozed: eBPF with BTF,\n"
		     "                     cgroup v2, root; exits 0 when it can\n"
		     "  --log-level LEVEL  err, warning, notice, info (default) or debug\n"
		     "  --version          print the version\n"
		     "  --help             this text\n");
}

static int check_host(void)
{
	_cleanup_free_ char *mount = NULL;
	int r = cgroup2_mount_point(&mount);
	if (r < 0)
		return r;
	printf("cgroup v2:       %s\n", mount);

	struct egress_counter *counter = NULL;
	r = egress_counter_new(&counter);
	if (r < 0)
		return r;
	printf("egress counter:  loads\n");
	egress_counter_free(counter);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"check", no_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int check = 0, opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			check = 1;
			break;
		case 'l': {
			int level = log_level_from_string(optarg);
			if (level < 0) {
				fprintf(stderr,
					"dozed: --log-level %s: expected err, warning, "
					"notice, info or debug\n",
					optarg);
				return 2;
			}
			log_set_max_level(level);
			break;
		}
		case 'V':
			printf("dozed %s\n", DOZED_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dozed: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!check) {
		fprintf(stderr, "dozed: the daemon is not built yet; only --check works\n");
		return 2;
	}
	return check_host() < 0 ? 1 : 0;
}
