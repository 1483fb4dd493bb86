// SPDX-License-Identifier: MIT
/* dozed: scale-to-zero for Docker and Podman hosts. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "dozed/cgroup.h"
#include "dozed/config.h"
#include "dozed/daemon.h"
#include "dozed/flow_counter.h"
#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/macro.h"
#include "dozed/version.h"

struct main_state {
	struct event_base *base;
	struct dozed *dozed;
	struct event *watchdog;
	struct event *status;
	uint64_t watchdog_us;
};

static int check_host(void)
{
	_cleanup_free_ char *mount = NULL;
	int r = cgroup2_mount_point(&mount);
	if (r < 0)
		return r;
	printf("cgroup v2:       %s\n", mount);

	struct flow_counter *counter = NULL;
	r = flow_counter_new(0, &counter);
	if (r < 0)
		return r;
	printf("flow counter:    loads\n");
	flow_counter_free(counter);
	return 0;
}

/* Sockets from systemd: the activator's (TCP) and the control socket (unix). */
static int listen_fds_from_systemd(struct dozed_fds *fds)
{
	*fds = (struct dozed_fds){.activator = {-1, -1}, .control = -1};
	int n = sd_listen_fds(1);
	if (n < 0)
		return log_error_errno(n, "Failed to read the sockets systemd passed");
	size_t n_act = 0;
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0 && fds->control < 0)
			fds->control = fd;
		else if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) > 0 && n_act < 2)
			fds->activator[n_act++] = fd;
		else
			return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
					       "systemd passed socket %d, which is neither a "
					       "listening TCP socket nor a unix stream socket",
					       fd);
	}
	if (n > 0)
		log_info("socket activation: %zu activator and %d control sockets from systemd",
			 n_act, fds->control >= 0);
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct main_state *m = arg;
	log_info("%s: stopping", strsignal((int)sig));
	sd_notify(0, "STOPPING=1");
	event_base_loopbreak(m->base);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* The loop turned: nothing blocks it. */
	sd_notify(0, "WATCHDOG=1");
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct main_state *m = arg;
	char status[160], line[192];
	dozed_status_text(m->dozed, status, sizeof(status));
	snprintf(line, sizeof(line), "STATUS=%s", status);
	sd_notify(0, line);
}

static void on_ready(void *userdata)
{
	struct main_state *m = userdata;
	sd_notify(0, "READY=1");
	on_status(-1, 0, m);
}

/* A held connection takes one descriptor, a relayed one two (its pipes come from a shared pool). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warning_errno(errno, "Cannot raise the file descriptor limit from %llu",
				  (unsigned long long)was);
	else
		log_debug("file descriptor limit raised from %llu to %llu", (unsigned long long)was,
			  (unsigned long long)rl.rlim_cur);
}

static int run(const struct dozed_config *cfg)
{
	struct main_state m = {0};
	struct dozed_fds fds;
	int r = listen_fds_from_systemd(&fds);
	if (r < 0)
		return r;
	raise_fd_limit();
	/* Probes tick every millisecond during a wake: a coarse clock would
	 * round that to the kernel's tick. */
	struct event_config *ecfg = event_config_new();
	if (ecfg)
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	m.base = ecfg ? event_base_new_with_config(ecfg) : NULL;
	if (ecfg)
		event_config_free(ecfg);
	if (!m.base)
		return log_error_errno(ENOMEM, "Failed to create the event loop");
	signal(SIGPIPE, SIG_IGN);
	struct event *sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
	struct event *sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);

	r = dozed_new(m.base, cfg, &fds, on_ready, &m, &m.dozed);
	if (r >= 0) {
		/* A status line every minute costs nothing; idle CPU stays near zero. */
		struct timeval minute = {.tv_sec = 60};
		m.status = event_new(m.base, -1, EV_PERSIST, on_status, &m);
		event_add(m.status, &minute);
		if (sd_watchdog_enabled(0, &m.watchdog_us) > 0) {
			uint64_t half = m.watchdog_us / 2;
			struct timeval tv = timeval_from_us(half);
			m.watchdog = event_new(m.base, -1, EV_PERSIST, on_watchdog, &m);
			event_add(m.watchdog, &tv);
		}
		event_base_dispatch(m.base);
	}
	if (m.watchdog)
		event_free(m.watchdog);
	if (m.status)
		event_free(m.status);
	dozed_free(m.dozed);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(m.base);
	return r;
}

int main(int argc, char **argv)
{
	struct dozed_config cfg;
	char *err = NULL;
	int r = dozed_config_from_argv(&cfg, argc, argv, &err);
	if (r < 0) {
		fprintf(stderr, "dozed: %s\n", err ? err : strerror(-r));
		fprintf(stderr, "Try 'dozed --help'.\n");
		free(err);
		dozed_config_free(&cfg);
		return 2;
	}
	if (cfg.help) {
		fputs(dozed_config_usage(), stdout);
		dozed_config_free(&cfg);
		return 0;
	}
	if (cfg.version) {
		printf("dozed %s\n", DOZED_VERSION);
		dozed_config_free(&cfg);
		return 0;
	}
	log_set_max_level(cfg.log_level);
	if (cfg.docker_host_ignored)
		log_warning("%s; using %s", cfg.docker_host_ignored, cfg.runtime_socket);
	if (cfg.check)
		r = check_host();
	else
		r = run(&cfg);
	dozed_config_free(&cfg);
	return r < 0 ? 1 : 0;
}
