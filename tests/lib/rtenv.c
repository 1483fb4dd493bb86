// SPDX-License-Identifier: MIT
#include "rtenv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dozed/macro.h"
#include "evloop.h"
#include "fixture.h"
#include "harness.h"
#include "netns.h"

#define CALL_TIMEOUT_MS	 30000
#define EVENT_TIMEOUT_MS 15000

static pid_t suite_pid;

__attribute__((constructor)) static void remember_suite_pid(void)
{
	suite_pid = getpid();
}

static void env_dir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/dozed-rtenv.%d", (int)suite_pid);
}

static void failed_marker(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/dozed-rtenv.%d.failed", (int)suite_pid);
}

/* The last line of out that says what went wrong, in place. */
static const char *reason(char *out)
{
	const char *best = NULL;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!best || strstr(line, "error:"))
			best = line;
	return best ? best : "(no output)";
}

/* The script starts daemons that outlive it: they must not inherit the
 * harness's result pipe, whose end the harness waits for. */
static void no_fds_to_children(void)
{
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		FAIL("close_range: %s", strerror(errno));
}

static void env_up(const char *dir)
{
	char path[256], marker[160];
	snprintf(path, sizeof(path), "%s/ready", dir);
	if (access(path, F_OK) == 0)
		return;
	failed_marker(marker, sizeof(marker));
	_cleanup_free_ char *earlier = NULL;
	FILE *f = fopen(marker, "re");
	if (f) {
		size_t cap = 0;
		if (getline(&earlier, &cap, f) < 0)
			earlier = NULL;
		fclose(f);
		FAIL("the container runtimes could not be brought up: %s",
		     earlier ? earlier : "see the first failed test");
	}

	_cleanup_free_ char *script = fixture_path("runtime-env.sh");
	const char *argv[] = {"bash", "-c", "\"$0\" up \"$1\" 2>&1", script, dir, NULL};
	no_fds_to_children();
	_cleanup_free_ char *out = NULL;
	uint64_t t0 = test_now_ms();
	int r = run_cmd(-1, argv, &out);
	if (out)
		fputs(out, stderr);
	if (r != 0) {
		const char *why = out ? reason(out) : "(no output)";
		f = fopen(marker, "we");
		if (f) {
			fprintf(f, "%s\n", why);
			fclose(f);
		}
		FAIL("%s up %s failed (status %d): %s", script, dir, r, why);
	}
	fprintf(stderr, "runtime environment up in %llu ms\n",
		(unsigned long long)(test_now_ms() - t0));
}

const struct rtenv *rtenv_get(const char *runtime)
{
	static struct rtenv envs[2];
	bool podman = strcmp(runtime, "podman") == 0;
	if (!podman && strcmp(runtime, "docker") != 0)
		FAIL("unknown runtime %s", runtime);
	struct rtenv *env = &envs[podman ? 0 : 1];
	char dir[sizeof(env->dir)];
	env_dir(dir, sizeof(dir));
	env_up(dir);
	env->name = podman ? "podman" : "docker";
	memcpy(env->dir, dir, sizeof(dir));
	snprintf(env->sock, sizeof(env->sock), "%s/%s.sock", dir, env->name);
	snprintf(env->netns, sizeof(env->netns), "%s/ns/%s.net", dir, env->name);

	char path[256];
	snprintf(path, sizeof(path), "%s/cgroup", dir);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(env->cgroup, sizeof(env->cgroup), f))
		FAIL("cannot read %s: %s", path, strerror(errno));
	env->cgroup[strcspn(env->cgroup, "\n")] = '\0';
	return env;
}

void rtenv_teardown(void)
{
	char dir[128], marker[160];
	env_dir(dir, sizeof(dir));
	failed_marker(marker, sizeof(marker));
	unlink(marker);
	if (access(dir, F_OK) < 0)
		return;
	_cleanup_free_ char *script = fixture_find("runtime-env.sh");
	if (!script) {
		fprintf(stderr, "rtenv: tests/runtime-env.sh not found; %s is left up\n", dir);
		return;
	}
	const char *argv[] = {script, "down", dir, NULL};
	int r = run_cmd(-1, argv, NULL);
	if (r != 0)
		fprintf(stderr, "rtenv: %s down %s failed (status %d)\n", script, dir, r);
}

static int script_run(const char *const *args, char **out)
{
	_cleanup_free_ char *script = fixture_path("runtime-env.sh");
	const char *argv[32];
	size_t n = 0;
	argv[n++] = script;
	for (; *args && n < ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	no_fds_to_children();
	return run_cmd(-1, argv, out);
}

struct ctr_ref {
	const struct rtenv *env;
	char name[64];
};

static void ctr_remove(void *arg)
{
	struct ctr_ref *ref = arg;
	const char *args[] = {"rm", ref->env->dir, ref->env->name, ref->name, NULL};
	script_run(args, NULL);
	free(ref);
}

char *rtenv_create(const struct rtenv *env, const char *name, unsigned port, const char *label)
{
	char port_s[16] = "-";
	if (port)
		snprintf(port_s, sizeof(port_s), "%u", port);
	const char *args[] = {"create", env->dir, env->name, name, port_s, label, NULL};
	char *out = NULL;
	int r = script_run(args, &out);
	if (r != 0 || !out)
		FAIL("creating the %s container %s failed (status %d, see above)", env->name, name,
		     r);
	out[strcspn(out, "\n")] = '\0';
	if (strlen(out) != 64)
		FAIL("creating the %s container %s printed \"%s\", not an id", env->name, name,
		     out);
	struct ctr_ref *ref = calloc(1, sizeof(*ref));
	ASSERT_TRUE(ref);
	ref->env = env;
	snprintf(ref->name, sizeof(ref->name), "%s", name);
	test_defer(ctr_remove, ref);
	return out;
}

void rtenv_cli_argv(const struct rtenv *env, const char *const *args)
{
	const char *argv[32] = {"cli", env->dir, env->name};
	size_t n = 3;
	for (; *args && n < ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	_cleanup_free_ char *out = NULL;
	int r = script_run(argv, &out);
	if (r != 0)
		FAIL("%s %s failed (status %d)", env->name, argv[3], r);
}

static void daemon_start(void *arg)
{
	const struct rtenv *env = arg;
	const char *args[] = {"start", env->dir, env->name, NULL};
	int r = script_run(args, NULL);
	if (r != 0)
		fprintf(stderr, "rtenv: restarting %s failed (status %d)\n", env->name, r);
}

void rtenv_daemon_stop(const struct rtenv *env)
{
	const char *args[] = {"stop", env->dir, env->name, NULL};
	uint64_t t0 = test_now_ms();
	int r = script_run(args, NULL);
	test_defer(daemon_start, (void *)env);
	if (r != 0)
		FAIL("stopping the %s daemon failed (status %d)", env->name, r);
	fprintf(stderr, "%s daemon stopped in %llu ms\n", env->name,
		(unsigned long long)(test_now_ms() - t0));
}

void rtenv_daemon_start(const struct rtenv *env)
{
	const char *args[] = {"start", env->dir, env->name, NULL};
	uint64_t t0 = test_now_ms();
	int r = script_run(args, NULL);
	if (r != 0)
		FAIL("starting the %s daemon failed (status %d)", env->name, r);
	fprintf(stderr, "%s daemon up again in %llu ms\n", env->name,
		(unsigned long long)(test_now_ms() - t0));
}

bool rtenv_http_get(const struct rtenv *env, unsigned port, char *err, size_t err_len)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		err_len = sizeof(dummy);
	}
	_cleanup_close_ int ns = open(env->netns, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		FAIL("cannot open %s: %s", env->netns, strerror(errno));
	_cleanup_close_ int fd = netns_socket(ns, AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
	if (fd < 0)
		FAIL("cannot make a socket in %s: %s", env->netns, strerror(-fd));
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, err_len, "connect: %s", strerror(errno));
		return false;
	}
	static const char req[] = "GET / HTTP/1.0\r\nHost: test\r\n\r\n";
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
		snprintf(err, err_len, "send: %s", strerror(errno));
		return false;
	}
	char buf[4096];
	size_t len = 0;
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) != 0 || !strstr(buf, " 200 ") ||
	    !strstr(buf, "dozed test")) {
		snprintf(err, err_len, "answer: \"%.60s\"", buf);
		return false;
	}
	return true;
}

void rtenv_wait_http(const struct rtenv *env, unsigned port, unsigned timeout_ms)
{
	char why[128] = "";
	uint64_t deadline = test_now_ms() + timeout_ms;
	/* Polling for the observable condition: the server listens a moment
	 * after the runtime says it started. */
	while (!rtenv_http_get(env, port, why, sizeof(why))) {
		if (test_now_ms() > deadline)
			FAIL("no HTTP answer on 127.0.0.1:%u in %s after %u ms (%s)", port,
			     env->netns, timeout_ms, why);
		usleep(20000);
	}
}

void rtenv_expect_own_cgroup(const struct rtenv *env, const struct runtime_container *c)
{
	if (!c->cgroup_dir)
		FAIL("no cgroup v2 directory for %s container %s (PID %d)", env->name, c->name,
		     (int)c->pid);
	size_t n = strlen(env->cgroup);
	if (strncmp(c->cgroup_dir, env->cgroup, n) != 0 || c->cgroup_dir[n] != '/')
		FAIL("the cgroup %s of %s is not under %s", c->cgroup_dir, c->name, env->cgroup);
	struct stat st;
	if (stat(c->cgroup_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		FAIL("the cgroup %s of %s does not exist", c->cgroup_dir, c->name);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cgroup.procs", c->cgroup_dir);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		FAIL("cannot read %s: %s", path, strerror(errno));
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid == c->pid)
			return;
	FAIL("PID %d of %s is not in %s", (int)c->pid, c->name, path);
}

/* --- the client, synchronously ------------------------------------------------------ */

static void free_base(void *base)
{
	event_base_free(base);
}

struct event_base *rtenv_base_new(void)
{
	struct event_base *base = event_base_new();
	if (!base)
		FAIL("event_base_new failed");
	test_defer(free_base, base);
	return base;
}

static void free_runtime(void *rt)
{
	runtime_free(rt);
}

struct runtime *rtenv_runtime_new(struct event_base *base, const char *socket,
				  const struct runtime_config *cfg)
{
	struct runtime_config c;
	if (cfg)
		c = *cfg;
	else
		runtime_config_defaults(&c);
	if (socket)
		c.socket_path = socket;
	struct runtime *rt = NULL;
	ASSERT_OK(runtime_new(base, &c, &rt));
	test_defer(free_runtime, rt);
	return rt;
}

static void free_result(void *arg)
{
	struct rtenv_result *r = arg;
	runtime_container_free(r->c);
	for (size_t i = 0; i < r->n; i++)
		runtime_container_free(r->cs[i]);
	free(r->cs);
	free(r);
}

static struct rtenv_result *result_new(void)
{
	struct rtenv_result *r = calloc(1, sizeof(*r));
	ASSERT_TRUE(r);
	test_defer(free_result, r);
	return r;
}

static void result_set(struct rtenv_result *r, int err, const struct runtime_error *e)
{
	r->done = true;
	r->err = err;
	r->http_status = e->http_status;
	snprintf(r->message, sizeof(r->message), "%s", e->message);
}

static void on_done(int err, const struct runtime_error *e, void *userdata)
{
	result_set(userdata, err, e);
}

static void on_inspect(int err, const struct runtime_error *e, const struct runtime_container *c,
		       void *userdata)
{
	struct rtenv_result *r = userdata;
	result_set(r, err, e);
	if (c && runtime_container_dup(c, &r->c) < 0)
		r->err = -ENOMEM;
}

static void on_list(int err, const struct runtime_error *e, const struct runtime_container *cs,
		    size_t n, void *userdata)
{
	struct rtenv_result *r = userdata;
	result_set(r, err, e);
	if (n == 0)
		return;
	r->cs = calloc(n, sizeof(*r->cs));
	if (!r->cs) {
		r->err = -ENOMEM;
		return;
	}
	for (; r->n < n; r->n++)
		if (runtime_container_dup(&cs[r->n], &r->cs[r->n]) < 0) {
			r->err = -ENOMEM;
			return;
		}
}

static bool result_done(void *arg)
{
	return ((struct rtenv_result *)arg)->done;
}

static const struct rtenv_result *wait_result(struct event_base *base, struct rtenv_result *r,
					      const char *what)
{
	evloop_run_until(base, result_done, r, CALL_TIMEOUT_MS, what);
	return r;
}

const struct rtenv_result *rtenv_inspect(struct event_base *base, struct runtime *rt,
					 const char *id)
{
	struct rtenv_result *r = result_new();
	ASSERT_OK(runtime_inspect(rt, id, on_inspect, r));
	return wait_result(base, r, "the answer to inspect");
}

const struct rtenv_result *rtenv_start(struct event_base *base, struct runtime *rt, const char *id)
{
	struct rtenv_result *r = result_new();
	ASSERT_OK(runtime_start(rt, id, on_done, r));
	return wait_result(base, r, "the answer to start");
}

const struct rtenv_result *rtenv_stop(struct event_base *base, struct runtime *rt, const char *id,
				      unsigned grace_seconds)
{
	struct rtenv_result *r = result_new();
	ASSERT_OK(runtime_stop(rt, id, grace_seconds, on_done, r));
	return wait_result(base, r, "the answer to stop");
}

const struct rtenv_result *rtenv_list(struct event_base *base, struct runtime *rt,
				      const char *label)
{
	struct rtenv_result *r = result_new();
	ASSERT_OK(runtime_list(rt, label, on_list, r));
	return wait_result(base, r, "the answer to list");
}

void rtenv_expect_ok(const struct rtenv_result *r, const char *what)
{
	if (r->err < 0)
		FAIL("%s failed: %s (%s, HTTP %d)", what, r->message, strerror(-r->err),
		     r->http_status);
}

/* --- events ---------------------------------------------------------------------- */

static void on_event(const struct runtime_event *ev, void *userdata)
{
	struct rtenv_events *log = userdata;
	if (log->n == ARRAY_SIZE(log->ev))
		return;
	struct rtenv_event *e = &log->ev[log->n++];
	e->type = ev->type;
	e->exit_code = ev->exit_code;
	snprintf(e->id, sizeof(e->id), "%s", ev->id);
	snprintf(e->name, sizeof(e->name), "%s", ev->name ? ev->name : "");
}

static void on_connected(void *userdata)
{
	((struct rtenv_events *)userdata)->connected++;
}

static void on_disconnected(int err, const struct runtime_error *e, uint64_t retry_us,
			    void *userdata)
{
	(void)retry_us;
	struct rtenv_events *log = userdata;
	log->disconnected++;
	log->last_err = err;
	snprintf(log->last_message, sizeof(log->last_message), "%s", e->message);
}

struct rtenv_events *rtenv_events_new(struct runtime *rt)
{
	static const struct runtime_events_ops ops = {
	    .event = on_event,
	    .connected = on_connected,
	    .disconnected = on_disconnected,
	};
	struct rtenv_events *log = calloc(1, sizeof(*log));
	ASSERT_TRUE(log);
	/* Deferred after the runtime's free, so it runs first: freeing the
	 * runtime calls nothing back. */
	test_defer(free, log);
	struct runtime_events *stream = NULL;
	ASSERT_OK(runtime_events_new(rt, &ops, log, &stream));
	return log;
}

struct count_wait {
	const unsigned *counter;
	unsigned n;
};

static bool count_reached(void *arg)
{
	struct count_wait *w = arg;
	return *w->counter >= w->n;
}

void rtenv_wait_connected(struct event_base *base, struct rtenv_events *log, unsigned n)
{
	struct count_wait w = {&log->connected, n};
	char what[64];
	snprintf(what, sizeof(what), "event stream connection #%u", n);
	evloop_run_until(base, count_reached, &w, EVENT_TIMEOUT_MS, what);
}

void rtenv_wait_disconnected(struct event_base *base, struct rtenv_events *log, unsigned n)
{
	struct count_wait w = {&log->disconnected, n};
	char what[64];
	snprintf(what, sizeof(what), "event stream break #%u", n);
	evloop_run_until(base, count_reached, &w, EVENT_TIMEOUT_MS, what);
}

struct event_wait {
	struct rtenv_events *log;
	enum runtime_event_type type;
	const char *id;
	unsigned count;
	const struct rtenv_event *first;
};

static bool event_seen(void *arg)
{
	struct event_wait *w = arg;
	unsigned seen = 0;
	for (size_t i = 0; i < w->log->n; i++) {
		const struct rtenv_event *e = &w->log->ev[i];
		if (e->type != w->type || strcmp(e->id, w->id) != 0)
			continue;
		if (seen++ == 0)
			w->first = e;
	}
	return seen >= w->count;
}

static const char *const type_names[] = {"start", "die", "destroy"};

void rtenv_wait_event_count(struct event_base *base, struct rtenv_events *log,
			    enum runtime_event_type type, const char *id, unsigned count)
{
	struct event_wait w = {log, type, id, count, NULL};
	char what[160];
	snprintf(what, sizeof(what), "%u \"%s\" event(s) of container %.12s", count,
		 type_names[type], id);
	evloop_run_until(base, event_seen, &w, EVENT_TIMEOUT_MS, what);
}

const struct rtenv_event *rtenv_wait_event(struct event_base *base, struct rtenv_events *log,
					   enum runtime_event_type type, const char *id)
{
	struct event_wait w = {log, type, id, 1, NULL};
	char what[160];
	snprintf(what, sizeof(what), "a \"%s\" event of container %.12s", type_names[type], id);
	evloop_run_until(base, event_seen, &w, EVENT_TIMEOUT_MS, what);
	return w.first;
}

/* --- containers of the tests' own making --------------------------------------------- */

struct rtenv_ctr {
	const struct rtenv *env;
	char name[64];
};

static void rtenv_remove(void *arg)
{
	struct rtenv_ctr *c = arg;
	_cleanup_free_ char *script = fixture_path("runtime-env.sh");
	/* Podman's rm -f stops first, waiting the grace period out on an init
	 * that ignores SIGTERM: --time 0 kills at once, as Docker's does. */
	bool podman = strcmp(c->env->name, "podman") == 0;
	const char *argv[] = {
	    script,  "cli", c->env->dir, c->env->name, "rm", "-f", podman ? "--time=0" : c->name,
	    c->name, NULL};
	if (!podman)
		argv[7] = NULL;
	_cleanup_free_ char *out = NULL;
	run_cmd(-1, argv, &out);
	free(c);
}

void rtenv_make(const struct rtenv *env, const char *name, bool start, const char *const *opts,
		const char *sh)
{
	_cleanup_free_ char *script = fixture_path("runtime-env.sh");
	char parent[PATH_MAX + 16];
	const char *slash = strrchr(env->cgroup, '/');
	snprintf(parent, sizeof(parent), "/%s/podman", slash ? slash + 1 : env->cgroup);
	const char *argv[40];
	size_t n = 0;
	argv[n++] = script;
	argv[n++] = "cli";
	argv[n++] = env->dir;
	argv[n++] = env->name;
	if (start) {
		argv[n++] = "run";
		argv[n++] = "-d";
	} else {
		argv[n++] = "create";
	}
	argv[n++] = "--name";
	argv[n++] = name;
	if (strcmp(env->name, "podman") == 0) {
		argv[n++] = "--cgroup-parent";
		argv[n++] = parent;
	}
	for (; opts && *opts && n < 30; opts++)
		argv[n++] = *opts;
	argv[n++] = "dozed-test/busybox:latest";
	if (sh) {
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = sh;
	}
	argv[n] = NULL;
	struct rtenv_ctr *c = calloc(1, sizeof(*c));
	ASSERT_TRUE(c);
	c->env = env;
	snprintf(c->name, sizeof(c->name), "%s", name);
	test_defer(rtenv_remove, c);
	_cleanup_free_ char *out = NULL;
	int r = run_cmd(-1, argv, &out);
	if (r != 0)
		FAIL("%s: making container %s failed (status %d): %s", env->name, name, r,
		     out ? out : "");
}
