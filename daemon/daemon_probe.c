// SPDX-License-Identifier: MIT
/* A started service's probe: where to connect, and in which network namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon_internal.h"
#include "dozed/activator.h"
#include "dozed/clock.h"
#include "dozed/log.h"
#include "dozed/runtime.h"
#include "dozed/settings.h"
#include "dozed/health.h"

/* Where to probe when no client waits: the published port on this host. */
static void probe_destination(const struct service *s, struct sockaddr_storage *dst)
{
	memset(dst, 0, sizeof(*dst));
	const struct service_port *p = &s->ports[0];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)dst;
	if (inet_pton(AF_INET6, p->host_ip, &in6->sin6_addr) == 1 &&
	    !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p->host_port);
		return;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)dst;
	in4->sin_family = AF_INET;
	in4->sin_port = htons(p->host_port);
	if (inet_pton(AF_INET, p->host_ip, &in4->sin_addr) != 1 ||
	    in4->sin_addr.s_addr == htonl(INADDR_ANY))
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/*
 * Where the service itself listens, inside its network namespace: its own
 * address on its network (any service reachable through a published port
 * listens there), else loopback.
 */
static void probe_destination_in_container(const struct service *s, const char *ip,
					   struct sockaddr_storage *dst)
{
	memset(dst, 0, sizeof(*dst));
	uint16_t port = htons(s->ports[0].container_port);
	struct sockaddr_in *in4 = (struct sockaddr_in *)dst;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)dst;
	if (ip && inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = port;
	} else if (ip && inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = port;
	} else {
		in4->sin_family = AF_INET;
		in4->sin_port = port;
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
}

/*
 * Probes the service's own port inside its network namespace when the
 * container is known to run: a runtime's proxy on the published port
 * (docker-proxy) accepts before the service listens. Else the published port.
 */
/* A container whose pid is gone under the probe is asked about again this
 * often, this many times, before its published port is probed instead. */
#define PROBE_VANISHED_RETRY_US (20 * 1000)
#define PROBE_VANISHED_MAX	10

static void probe_service(struct dozed *d, struct service *s, const struct runtime_container *c);

static void probe_failed(struct dozed *d, struct service *s, int err, const char *last_answer)
{
	if (s->state == SERVICE_SLEEPING)
		return; /* a stop's probe: the stop decides, the clients stay held */
	activator_service_failed(d->activator, s->id);
	service_on_wake_failed(d->services, s->id, err, last_answer);
}

static void health_done(void *userdata, int result, const char *last_answer)
{
	struct svc_extra *x = userdata;
	struct dozed *d = x->d;
	health_check_free(x->health);
	x->health = NULL;
	struct service *s = service_find_by_id(d->services, x->id);
	if (!s || (s->state != SERVICE_WAKING && s->state != SERVICE_SLEEPING))
		return;
	if (result < 0) {
		log_debug("%s: health check: %s", s->name, last_answer);
		probe_failed(d, s, result, last_answer);
		return;
	}
	/* Healthy: one connect, in its namespace as ever, and the clients go. */
	struct runtime_container c = {.running = true, .pid = x->health_pid};
	snprintf(c.ip, sizeof(c.ip), "%s", x->health_ip);
	x->health_passed = true;
	probe_service(d, s, &c);
	x->health_passed = false;
}

/* Its own health command, run by dozed: Docker runs one only after its
 * interval (30 s unless set), Podman without systemd timers never does. */
static void probe_health(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->health)
		return; /* one under way: it reports for this wake */
	x->health_pid = c->pid;
	x->health_started_us = clock_monotonic_us();
	snprintf(x->health_ip, sizeof(x->health_ip), "%s", c->ip);
	int r = health_check_start(d->base, d->runtime, s->container_id, c->health_cmd,
				   c->n_health_cmd, c->health_timeout_us, d->cfg.probe_interval_us,
				   d->cfg.wake_timeout_us, health_done, x, &x->health);
	if (r < 0)
		probe_failed(d, s, r, "healthcheck: could not be run");
}

static void probe_service(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	static bool warned_ptrace;
	struct svc_extra *x = svc_extra_of(s);
	struct sockaddr_storage dst;
	int r, netns_fd = -1;
	bool own_address = false;
	struct probe_spec spec;
	if (x->health_passed) {
		spec = (struct probe_spec){.kind = PROBE_TCP};
	} else {
		bool has_health = c && c->running && c->n_health_cmd > 0;
		uint16_t port = s->n_ports ? s->ports[0].container_port : 0;
		settings_probe_resolve(&s->probe, has_health, port, &spec, s->probe_used,
				       sizeof(s->probe_used));
		if (spec.kind == PROBE_HEALTHCHECK) {
			probe_health(d, s, c);
			return;
		}
	}
	if (c && c->running && c->pid > 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)c->pid);
		netns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (netns_fd < 0 && (errno == EACCES || errno == EPERM) && c->ip[0]) {
			/* Its own address from here still avoids a proxy's early accept. */
			if (!warned_ptrace)
				log_warning_errno(
				    errno,
				    "Cannot open %s, so %s is probed at its address %s "
				    "from dozed's own namespace: entering a container's "
				    "namespace needs CAP_SYS_PTRACE",
				    path, s->name, c->ip);
			warned_ptrace = true;
			own_address = true;
		} else if (netns_fd < 0 && errno == ENOENT && s->state == SERVICE_WAKING &&
			   x->probe_vanished < PROBE_VANISHED_MAX) {
			/* It exited since the inspect: a proxy on the published port
			 * (docker-proxy) would answer for it. Docker may still say
			 * "running" for a while after the exit, so ask again a little
			 * later; meanwhile its die event fails the wake. */
			struct timeval tv = timeval_from_us(PROBE_VANISHED_RETRY_US);
			log_debug("%s: its pid %d is gone, the runtime says running: asking again",
				  s->name, (int)c->pid);
			x->probe_vanished++;
			evtimer_add(x->probe_retry, &tv);
			return;
		} else if (netns_fd < 0) {
			/* Still running with that pid, which this /proc lacks (another
			 * pid namespace): the published port is all there is. */
			log_debug_errno(errno, "%s: cannot open %s; probing the published port",
					s->name, path);
		}
	}
	if (s->state == SERVICE_SLEEPING && netns_fd < 0 && !own_address)
		return; /* a proxy on the published port would answer for a dying container */
	struct activator_probe probe = {
	    .netns_fd = -1, .spec = &spec, .during_stop = s->state == SERVICE_SLEEPING};
	/* Found serving already (redirected as its ports left the set, or
	 * thawed): its clients' first answer is no wake's. */
	probe.awake = s->state == SERVICE_AWAKE;
	if (x->health_passed) {
		/* One --wake-timeout for the whole probe, health command included. */
		uint64_t used = clock_monotonic_us() - x->health_started_us;
		probe.timeout_us =
		    used < d->cfg.wake_timeout_us ? d->cfg.wake_timeout_us - used : 1;
	}
	if (netns_fd >= 0) {
		probe_destination_in_container(s, c->ip[0] ? c->ip : NULL, &dst);
		probe.dst = &dst;
		probe.netns_fd = netns_fd;
	} else if (own_address) {
		probe_destination_in_container(s, c->ip, &dst);
		probe.dst = &dst;
	} else {
		probe_destination(s, &dst);
		bool held = activator_service_held(d->activator, s->id) > 0;
		probe.dst = held ? NULL : &dst;
	}
	r = activator_service_probe(d->activator, s->id, &probe);
	if (netns_fd >= 0)
		close(netns_fd);
	if (r < 0 && s->state != SERVICE_SLEEPING)
		service_on_wake_failed(d->services, s->id, r, "");
}

void dozed_probe_drop_asks(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	/* Answered later, its inspect would start a probe in the next phase. A
	 * stop's, answered once the stop is over, would probe the published
	 * port before the restart's start returns, where docker-proxy accepts
	 * before the container listens. */
	pending_ops_cancel(d, PENDING_PROBE, s->id);
	evtimer_del(x->probe_retry);
	health_check_free(x->health);
	x->health = NULL;
}

void dozed_probe_cancel(struct dozed *d, struct service *s)
{
	dozed_probe_drop_asks(d, s);
	activator_service_probe_cancel(d->activator, s->id);
}

/* --- a container that exits while it wakes -------------------------------------------- */

#define EXIT_LOG_LINES 3
/* The wake waits this long for the lines that say why, no longer. */
#define EXIT_LOG_TIMEOUT_US (1000 * 1000)

static void exit_logs_read(int err, const struct runtime_error *error, const char *text, size_t len,
			   void *userdata)
{
	struct pending_op *op = userdata;
	struct dozed *d = op->d;
	int code = (int)op->exit_code;
	struct service *s = pending_op_finish(op);
	if (!s)
		return;
	svc_extra_of(s)->exit_check_pending = false;
	char tail[200] = "";
	if (err < 0)
		snprintf(tail, sizeof(tail), "its log could not be read: %s", error->message);
	else
		runtime_logs_tail(text, len, EXIT_LOG_LINES, tail, sizeof(tail));
	char why[300];
	snprintf(why, sizeof(why), "the container exited with code %d as it started; %s%s", code,
		 tail[0] && err >= 0 ? "its last output: " : "",
		 tail[0] ? tail : "it wrote nothing");
	log_warning("%s: wake failed: %s", s->name, why);
	service_on_wake_exited(d->services, s->id, why);
}

/* Started, then found not running: its log says why, then the wake fails. */
static void wake_exited(struct dozed *d, struct service *s, const struct runtime_container *c)
{
	struct pending_op *op = pending_op_new(d, PENDING_EXITED, s->id);
	if (op) {
		op->exit_code = (uint64_t)(int64_t)c->exit_code;
		if (runtime_logs(d->runtime, c->id, EXIT_LOG_LINES, EXIT_LOG_TIMEOUT_US,
				 exit_logs_read, op) == 0) {
			svc_extra_of(s)->exit_check_pending = true;
			return;
		}
		pending_op_free(op);
	}
	char why[128];
	snprintf(why, sizeof(why), "the container exited with code %d as it started", c->exit_code);
	service_on_wake_exited(d->services, s->id, why);
}

static bool exited_while_waking(const struct service *s, const struct runtime_container *c)
{
	return !c->running && s->state == SERVICE_WAKING && s->start_done_us > 0;
}

static void exit_inspected(int err, const struct runtime_error *error,
			   const struct runtime_container *c, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	svc_extra_of(s)->exit_check_pending = false;
	if (err < 0)
		log_debug("%s: inspect after its die event failed: %s", s->name, error->message);
	else if (exited_while_waking(s, c))
		wake_exited(d, s, c);
}

void dozed_check_exited(struct dozed *d, struct service *s)
{
	struct svc_extra *x = svc_extra_of(s);
	if (x->exit_check_pending || s->start_done_us == 0)
		return; /* not started yet: the probe's own inspect will tell */
	struct pending_op *op = pending_op_new(d, PENDING_EXITED, s->id);
	if (!op)
		return;
	if (runtime_inspect(d->runtime, s->container_id, exit_inspected, op) < 0) {
		pending_op_free(op);
		return;
	}
	x->exit_check_pending = true;
}

/* --- probing ----------------------------------------------------------------------------- */

static void probe_inspected(int err, const struct runtime_error *error,
			    const struct runtime_container *c, void *userdata)
{
	struct dozed *d;
	struct service *s = pending_op_done(userdata, &d);
	if (!s)
		return;
	if (err < 0)
		log_debug("%s: inspect before probing failed: %s", s->name, error->message);
	if (err >= 0 && exited_while_waking(s, c)) {
		if (!svc_extra_of(s)->exit_check_pending)
			wake_exited(d, s, c);
		return;
	}
	if (s->state == SERVICE_SLEEPING) {
		/* A stop's probe: only of the container that still runs. */
		struct svc_extra *x = svc_extra_of(s);
		if (err < 0 || !c->running || x->stop_killed || !s->stop_probing)
			return;
		if (dozed_stop_may_probe(s))
			probe_service(d, s, c);
		return;
	}
	/* Its cgroup is new on every start. */
	if (err >= 0 && c->running)
		dozed_attach_counter(d, s, c);
	probe_service(d, s, err >= 0 ? c : NULL);
}

void dozed_probe_start(struct dozed *d, struct service *s)
{
	struct pending_op *op = pending_op_new(d, PENDING_PROBE, s->id);
	if (!op || runtime_inspect(d->runtime, s->container_id, probe_inspected, op) < 0) {
		pending_op_free(op);
		if (s->state != SERVICE_SLEEPING)
			probe_service(d, s, NULL);
	}
}
