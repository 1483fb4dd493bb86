// SPDX-License-Identifier: MIT
/*
 * The built dozectl binary against a fake daemon: the real control server in
 * this process with a handler that records each request and answers from
 * canned JSON. dozectl runs as a child; its output goes to files.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "child_run.h"
#include "control_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS 10000

#define WEB_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WEB                                                                                        \
	"{\"name\":\"web\",\"container\":\"" WEB_ID "\",\"state\":\"awake\",\"ports\":[8080,"      \
	"8443],\"idle_timeout_ms\":600000,\"wake_on\":\"connect\",\"idle_for_ms\":184000,"         \
	"\"sleeps_in_ms\":416000,\"last_wake_ms\":412,\"wakes\":3,\"held\":0,\"waiting\":2,"       \
	"\"egress_bytes\":1234,\"egress_packets\":7,\"reason\":\"sent 1.2 kB 3 min ago; sleeps "   \
	"after 10 min of silence\"}"
#define DB                                                                                         \
	"{\"name\":\"postgres-main\",\"container\":\"fedcba\",\"state\":\"asleep\",\"ports\":["    \
	"5432],\"idle_timeout_ms\":120000,\"wake_on\":\"data\",\"idle_for_ms\":null,"              \
	"\"last_wake_ms\":null,\"wakes\":0,\"held\":0,\"egress_bytes\":0,\"egress_packets\":0}"
/* Frozen, as the daemon's status says it with light sleep. */
#define CACHE                                                                                      \
	"{\"name\":\"cache\",\"container\":\"abcdef\",\"state\":\"frozen\",\"ports\":[6379],"      \
	"\"idle_timeout_ms\":null,\"freeze_after_ms\":30000,\"reclaim_frozen\":true,"              \
	"\"freezes\":4,\"thaws\":3,\"last_thaw_us\":1800,\"idle_for_ms\":95000,"                   \
	"\"last_wake_ms\":null,\"wakes\":0,\"reason\":\"frozen after 30s idle\"}"
#define SLEEP_EVENT                                                                                \
	"{\"ts\":\"2026-11-24T22:58:00.123Z\",\"event\":\"sleep\",\"service\":\"web\","            \
	"\"container\":\"" WEB_ID "\",\"idle_ms\":2000,\"egress_bytes\":1234,"                     \
	"\"egress_packets\":7}"
#define FLOWS                                                                                      \
	"{\"ok\":true,\"services\":[{\"service\":\"web\",\"state\":\"awake\",\"window_ms\":"       \
	"12000,\"flows\":[{\"proto\":\"tcp\",\"peer\":\"10.88.0.1:41234\",\"local_port\":80,"      \
	"\"opened_by\":\"peer\",\"bytes_in\":412,\"bytes_out\":1200,\"packets_in\":5,"             \
	"\"packets_out\":4,\"payload_in\":150,\"payload_out\":1000,\"first_seen_ago_ms\":4000,"    \
	"\"last_seen_ago_ms\":3200,\"counted\":true}]}],\"flow_table\":{\"capacity\":"             \
	"4096,\"live\":1,\"evicted\":0}}"
#define READY_EVENT                                                                                \
	"{\"ts\":\"2026-11-24T22:58:05.000Z\",\"event\":\"ready\",\"service\":\"web\","            \
	"\"start_ms\":300,\"probe_ms\":1223,\"total_ms\":1523}"

struct fixture {
	struct control_fixture *cf; /* the server, its base and directory */
	char dozectl[PATH_MAX];
	unsigned requests;
	char last_request[512];
	bool subscribed;
	uid_t run_as; /* dozectl's uid (and gid) when not 0 */
};

struct result {
	int status; /* exit code, or -signal */
	char *out, *err;
};

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	if (!o)
		FAIL("bad JSON in the test: %s", text);
	return o;
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
}

static const char *arg_of(struct json_object *req, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(req, key, &v) ? json_object_get_string(v) : "";
}

static void handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct fixture *f = ud;
	const char *service = arg_of(req, "service");
	f->requests++;
	snprintf(f->last_request, sizeof(f->last_request), "%s", plain(req));

	if (strcmp(cmd, "list") == 0) {
		control_reply(f->cf->ctl, id, parse("{\"ok\":true,\"services\":[" WEB "," DB "]}"));
	} else if (strcmp(cmd, "disable") == 0) {
		control_reply(f->cf->ctl, id, parse("{\"ok\":true}"));
	} else if (strcmp(cmd, "sleep") == 0 && strcmp(service, "postgres-main") == 0) {
		control_reply_error(f->cf->ctl, id, "postgres-main is asleep already");
	} else if (strcmp(cmd, "events") == 0) {
		struct json_object *follow;
		if (json_object_object_get_ex(req, "follow", &follow) &&
		    json_object_get_boolean(follow)) {
			control_subscribe(f->cf->ctl, id);
			f->subscribed = true;
		}
		control_reply(f->cf->ctl, id, parse("{\"ok\":true,\"events\":[" SLEEP_EVENT "]}"));
	} else if (strcmp(cmd, "flows") == 0 && strcmp(service, "nope") != 0) {
		control_reply(f->cf->ctl, id, parse(FLOWS));
	} else if (strcmp(cmd, "status") == 0 && strcmp(service, "cache") == 0) {
		control_reply(f->cf->ctl, id, parse("{\"ok\":true,\"service\":" CACHE "}"));
	} else if (strcmp(service, "nope") == 0) {
		control_reply_error(f->cf->ctl, id, "no such service: nope");
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "enable") == 0 ||
		   strcmp(cmd, "sleep") == 0 || strcmp(cmd, "wake") == 0) {
		control_reply(f->cf->ctl, id, parse("{\"ok\":true,\"service\":" WEB "}"));
	} else {
		control_reply_error(f->cf->ctl, id, "unknown command: %s", cmd);
	}
}

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		FAIL("out of memory");
	/* Deferred first, freed last: the server's handler has it until the server goes. */
	test_defer(free, f);
	child_run_dozectl_path(f->dozectl, sizeof(f->dozectl));
	f->cf = control_fixture_bare("dozectl-test");
	control_fixture_start(f->cf, handler, f);
	return f;
}

static int output_file(struct fixture *f, const char *name)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", f->cf->dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	return fd;
}

/* Starts dozectl with args (NULL-terminated); control: the DOZED_CONTROL variable, or NULL. */
static pid_t spawn(struct fixture *f, const char *const args[], const char *control, int out,
		   int err)
{
	const char *argv[16] = {"dozectl"};
	size_t n = 1;
	for (; args[n - 1] && n < ARRAY_SIZE(argv) - 1; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(127);
		if (f->run_as &&
		    (setgroups(0, NULL) < 0 || setresgid(f->run_as, f->run_as, f->run_as) < 0 ||
		     setresuid(f->run_as, f->run_as, f->run_as) < 0))
			_exit(126);
		if (control)
			setenv("DOZED_CONTROL", control, 1);
		else
			unsetenv("DOZED_CONTROL");
		execv(f->dozectl, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void result_free(void *arg)
{
	struct result *r = arg;
	free(r->out);
	free(r->err);
	free(r);
}

/* Runs dozectl to its end while the fake daemon serves. */
static struct result *run_env(struct fixture *f, const char *control, const char *const args[])
{
	int out = output_file(f, "stdout"), err = output_file(f, "stderr");
	struct child_run c = {.pid = spawn(f, args, control, out, err)};
	evloop_run_until(f->cf->base, child_run_exited, &c, WAIT_MS, "dozectl to exit");
	struct result *r = calloc(1, sizeof(*r));
	if (!r)
		FAIL("out of memory");
	test_defer(result_free, r);
	r->status = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -WTERMSIG(c.status);
	r->out = child_run_output(out);
	r->err = child_run_output(err);
	close(out);
	close(err);
	return r;
}

#define RUN(f, ...) run_env((f), (f)->cf->path, (const char *const[]){__VA_ARGS__, NULL})

static void assert_exit(const struct result *r, int want)
{
	if (r->status != want)
		FAIL("dozectl exited with %d, expected %d; stdout: %s; stderr: %s", r->status, want,
		     r->out, r->err);
}

TEST(test_list_prints_an_aligned_table)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "list");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"list\"}");
	ASSERT_STREQ(r->out, "NAME           STATE   PORTS      IDLE-FOR  LAST-WAKE\n"
			     "web            awake   8080,8443  3m04s     412ms\n"
			     "postgres-main  asleep  5432       -         -\n");
	ASSERT_STREQ(r->err, "");
}

TEST(test_list_json_prints_the_daemons_reply)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "list", "--json");
	assert_exit(r, 0);
	struct json_object *want = parse("{\"ok\":true,\"services\":[" WEB "," DB "]}");
	char expected[2048];
	snprintf(expected, sizeof(expected), "%s\n", plain(want));
	json_object_put(want);
	ASSERT_STREQ(r->out, expected);
}

TEST(test_status_prints_key_value_lines_with_the_reason)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "--control", f->cf->path, "status", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"status\",\"service\":\"web\"}");
	ASSERT_STREQ(r->out,
		     "name:         web\n"
		     "container:    " WEB_ID "\n"
		     "state:        awake\n"
		     "ports:        8080, 8443\n"
		     "idle timeout: 10m\n"
		     "wake on:      connect\n"
		     "idle for:     3m04s\n"
		     "sleeps in:    6m56s\n"
		     "last wake:    412ms\n"
		     "wakes:        3\n"
		     "held:         0\n"
		     "waiting:      2\n"
		     "egress:       1.2 kB in 7 packets\n"
		     "reason:       sent 1.2 kB 3 min ago; sleeps after 10 min of silence\n");
}

TEST(test_status_json_prints_the_daemons_reply)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "status", "--json", "web");
	assert_exit(r, 0);
	struct json_object *got = parse(r->out);
	struct json_object *service = NULL;
	ASSERT_TRUE(json_object_object_get_ex(got, "service", &service));
	ASSERT_STREQ(arg_of(service, "container"), WEB_ID);
	json_object_put(got);
}

TEST(test_enable_sends_the_container_and_only_the_options_given)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "enable", "web", "--idle", "2s", "--wake-on", "data");
	assert_exit(r, 0);
	ASSERT_STREQ(
	    f->last_request,
	    "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"2s\",\"wake_on\":\"data\"}");
	ASSERT_CONTAINS(r->out, "web: awake (sent 1.2 kB");

	r = RUN(f, "enable", "--idle=1500ms", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"idle\":\"1500ms\"}");
	r = RUN(f, "enable", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"enable\",\"container\":\"web\"}");
}

TEST(test_enable_sends_ignore_rules_and_keep_awake_as_given)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "enable", "web", "--ignore", "10.0.0.0/8, tcp/9090",
			       "--keep-awake-while-connected");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"10.0.0.0/8, "
		     "tcp/9090\",\"keep_awake\":\"connections\"}");
	/* none is sent as is: the daemon keeps it, over its default. */
	r = RUN(f, "enable", "--ignore=none", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"web\",\"ignore\":\"none\"}");
}

TEST(test_enable_sends_light_sleep_as_given)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "enable", "cache", "--idle", "never", "--freeze-after", "30s",
			       "--reclaim-frozen");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"idle\":\"never\","
		     "\"freeze_after\":\"30s\",\"reclaim_frozen\":true}");
	/* Without --idle: the daemon checks against its own idle. */
	r = RUN(f, "enable", "--freeze-after=2h", "cache");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"freeze_after\":\"2h\"}");
	r = RUN(f, "enable", "cache", "--freeze-after", "none");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request,
		     "{\"cmd\":\"enable\",\"container\":\"cache\",\"freeze_after\":\"none\"}");
}

TEST(test_status_of_a_frozen_service_says_its_light_sleep)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "status", "cache");
	assert_exit(r, 0);
	ASSERT_STREQ(r->out, "name:         cache\n"
			     "container:    abcdef\n"
			     "state:        frozen\n"
			     "ports:        6379\n"
			     "idle timeout: never\n"
			     "light sleep:  frozen after 30s idle, never stopped, memory reclaimed "
			     "once frozen; 4 freezes, 3 thaws, last thaw 1.8ms\n"
			     "idle for:     1m35s\n"
			     "last wake:    never\n"
			     "wakes:        0\n"
			     "reason:       frozen after 30s idle\n");
}

TEST(test_a_bad_ignore_rule_exits_2_naming_the_rule_and_the_forms)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "enable", "web", "--ignore", "tcp/9090,10.0.0.1/8");
	assert_exit(r, 2);
	ASSERT_STREQ(r->err, "dozectl: invalid --ignore value 'tcp/9090,10.0.0.1/8': rule "
			     "\"10.0.0.1/8\": host bits are set after the prefix length (write the "
			     "network address, or the address alone for one host); expected rules "
			     "like 10.0.0.0/8, tcp/9090, udp/8125, 9100, 192.0.2.7:443, "
			     "tcp/10.0.0.0/8:5432 or [2001:db8::/32]:443, separated by commas (at "
			     "most 16), or none\n");
	ASSERT_STREQ(r->out, "");
	r = RUN(f, "enable", "web", "--ignore", "tcp/0");
	assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, "rule \"tcp/0\": the port is out of range (1 to 65535)");
	r = RUN(f, "enable", "web", "--ignore", "tcp/80,");
	assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, "an empty rule (a leading, trailing or doubled comma)");
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_flows_sends_the_service_and_the_window_and_json_prints_the_reply)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "flows", "--json");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\"}");
	struct json_object *got = parse(r->out), *want = parse(FLOWS);
	ASSERT_STREQ(plain(got), plain(want));
	json_object_put(got);
	json_object_put(want);

	r = RUN(f, "flows", "web", "--since", "30s");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\",\"service\":\"web\",\"since_ms\":30000}");
	r = RUN(f, "flows", "--since=250ms", "web", "--json");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"flows\",\"service\":\"web\",\"since_ms\":250}");

	r = RUN(f, "flows", "nope");
	assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: no such service: nope\n");
}

TEST(test_disable_sleep_and_wake_send_the_service)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "disable", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"disable\",\"service\":\"web\"}");
	ASSERT_STREQ(r->out, "web: disabled\n");

	r = RUN(f, "sleep", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"sleep\",\"service\":\"web\"}");
	ASSERT_CONTAINS(r->out, "web: awake");

	r = RUN(f, "wake", "web");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"wake\",\"service\":\"web\"}");
}

TEST(test_refusal_by_the_daemon_exits_1_with_its_message)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "sleep", "postgres-main");
	assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: postgres-main is asleep already\n");
	ASSERT_STREQ(r->out, "");

	r = RUN(f, "status", "nope");
	assert_exit(r, 1);
	ASSERT_STREQ(r->err, "dozectl: no such service: nope\n");
}

static void assert_usage_error(struct fixture *f, struct result *r, const char *message)
{
	assert_exit(r, 2);
	ASSERT_CONTAINS(r->err, message);
	ASSERT_STREQ(r->out, "");
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_usage_errors_exit_2_and_send_nothing)
{
	struct fixture *f = fixture_new();
	assert_usage_error(f, run_env(f, f->cf->path, (const char *const[]){NULL}),
			   "missing command");
	assert_usage_error(f, RUN(f, "frobnicate"), "unknown command 'frobnicate'");
	assert_usage_error(f, RUN(f, "enable"), "enable needs a CONTAINER");
	assert_usage_error(f, RUN(f, "status"), "status needs a SERVICE");
	assert_usage_error(f, RUN(f, "wake", "web", "db"), "unexpected argument 'db'");
	assert_usage_error(f, RUN(f, "list", "--follow"), "list does not take --follow");
	assert_usage_error(f, RUN(f, "sleep", "web", "--idle", "2s"), "sleep does not take --idle");
	assert_usage_error(f, RUN(f, "list", "--bogus"), "unknown option '--bogus'");
	assert_usage_error(f, RUN(f, "enable", "web", "--idle"), "option '--idle' needs a value");
	assert_usage_error(f, RUN(f, "enable", "web", "--wake-on", "sometimes"),
			   "invalid --wake-on value 'sometimes': expected connect or data");
	assert_usage_error(
	    f, RUN(f, "enable", "web", "--idle", "8761h"),
	    "invalid --idle value '8761h': expected a duration of at most 8760h (a year)");
	/* The daemon's own bound, checked before anything is sent. */
	assert_usage_error(f, RUN(f, "enable", "web", "--idle", "500ms"),
			   "invalid --idle value '500ms': expected a duration of 1s or more");
	assert_usage_error(f, RUN(f, "flows", "web", "db"), "unexpected argument 'db'");
	assert_usage_error(f, RUN(f, "flows", "--follow"), "flows does not take --follow");
	assert_usage_error(f, RUN(f, "flows", "--ignore", "none"), "flows does not take --ignore");
	assert_usage_error(f, RUN(f, "status", "web", "--since", "1s"),
			   "status does not take --since");
	assert_usage_error(f, RUN(f, "wake", "web", "--keep-awake-while-connected"),
			   "wake does not take --keep-awake-while-connected");
	assert_usage_error(f, RUN(f, "flows", "--since", "0ms"),
			   "invalid --since value '0ms': expected a duration of 1ms or more");
	assert_usage_error(f, RUN(f, "flows", "--since", "soon"),
			   "invalid --since value 'soon': expected a duration like");
	assert_usage_error(f, RUN(f, "enable", "web", "--ignore"),
			   "option '--ignore' needs a value");
	const char *bad_idle[] = {"2x", "1.5s", "10", "-1s", "s", "2 s", ""};
	for (size_t i = 0; i < ARRAY_SIZE(bad_idle); i++) {
		char want[64];
		snprintf(want, sizeof(want), "invalid --idle value '%s'", bad_idle[i]);
		assert_usage_error(f, RUN(f, "enable", "web", "--idle", bad_idle[i]), want);
	}
}

TEST(test_bad_light_sleep_options_exit_2_and_send_nothing)
{
	struct fixture *f = fixture_new();
	assert_usage_error(f, RUN(f, "enable", "cache", "--freeze-after", "500ms"),
			   "dozectl: invalid --freeze-after value '500ms': expected a duration of "
			   "1s or more, like 30s, 10m or 2h, or none\n");
	assert_usage_error(f, RUN(f, "enable", "cache", "--freeze-after", "never"),
			   "invalid --freeze-after value 'never': expected a duration of 1s or "
			   "more, like 30s, 10m or 2h, or none\n");
	assert_usage_error(f, RUN(f, "enable", "cache", "--freeze-after", "0"),
			   "invalid --freeze-after value '0': expected a duration of 1s or more");
	assert_usage_error(f, RUN(f, "enable", "cache", "--idle", "5m", "--freeze-after", "10m"),
			   "dozectl: --freeze-after 10m --idle 5m: freeze_after (10m) must be "
			   "shorter than idle (5m): a service is frozen first, stopped later\n");
	assert_usage_error(f, RUN(f, "enable", "cache", "--idle", "1m", "--freeze-after", "1m"),
			   "must be shorter than idle (1m)");
	assert_usage_error(f, RUN(f, "enable", "cache", "--idle", "Never"),
			   "invalid --idle value 'Never': expected a duration of 1s or more, like "
			   "30s, 10m or 2h, or never\n");
	assert_usage_error(f, RUN(f, "enable", "cache", "--freeze-after"),
			   "option '--freeze-after' needs a value");
	assert_usage_error(f, RUN(f, "enable", "cache", "--reclaim-frozen=yes"),
			   "unknown option '--reclaim-frozen=yes'");
	assert_usage_error(f, RUN(f, "wake", "cache", "--freeze-after", "30s"),
			   "wake does not take --freeze-after");
	assert_usage_error(f, RUN(f, "status", "cache", "--reclaim-frozen"),
			   "status does not take --reclaim-frozen");
}

TEST(test_help_prints_usage_and_exits_0)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "--help");
	assert_exit(r, 0);
	ASSERT_CONTAINS(r->out, "Usage: dozectl");
	ASSERT_EQ_U(f->requests, 0);
}

TEST(test_unreachable_daemon_exits_3_naming_the_socket)
{
	struct fixture *f = fixture_new();
	char missing[160], want[256];
	snprintf(missing, sizeof(missing), "%s/nothing.sock", f->cf->dir);
	struct result *r = RUN(f, "--control", missing, "list");
	assert_exit(r, 3);
	snprintf(want, sizeof(want),
		 "dozectl: cannot connect to %s: No such file or directory (is dozed running?)\n",
		 missing);
	ASSERT_STREQ(r->err, want);
}

TEST(test_control_path_comes_from_DOZED_CONTROL)
{
	struct fixture *f = fixture_new();
	struct result *r = run_env(f, f->cf->path, (const char *const[]){"list", NULL});
	assert_exit(r, 0);
	ASSERT_EQ_U(f->requests, 1);
	/* --control wins over it. */
	r = run_env(f, "/nonexistent/env.sock",
		    (const char *const[]){"--control", f->cf->path, "list", NULL});
	assert_exit(r, 0);
	ASSERT_EQ_U(f->requests, 2);
	r = run_env(f, "/nonexistent/env.sock", (const char *const[]){"list", NULL});
	assert_exit(r, 3);
	ASSERT_CONTAINS(r->err, "cannot connect to /nonexistent/env.sock");
}

TEST(test_refused_peer_gets_the_daemons_reason_not_a_broken_pipe)
{
	struct fixture *f = fixture_new();
	if (geteuid() != 0)
		test_skip("running dozectl as another uid needs root");
	/* Reachable for uid 65534, which is neither root nor in a socket group. */
	if (chmod(f->cf->dir, 0755) < 0 || chmod(f->cf->path, 0666) < 0)
		FAIL("chmod %s: %s", f->cf->path, strerror(errno));
	f->run_as = 65534;
	/* Refused before or after its request went out: the same message either way. */
	for (int i = 0; i < 20; i++) {
		struct result *r = RUN(f, "list");
		assert_exit(r, 1);
		ASSERT_STREQ(r->err, "dozectl: permission denied: uid 65534 is not root, dozed's "
				     "user or in the control socket's group\n");
	}
	ASSERT_EQ_U(f->requests, 0);
}

static void close_fd(void *arg)
{
	close((int)(intptr_t)arg);
}

#define N_IDLE (CONTROL_MAX_CLIENTS_DEFAULT + CONTROL_ROOT_RESERVE + 10)

static void close_all(void *arg)
{
	int *fds = arg;
	for (int i = 0; i < N_IDLE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

TEST(test_list_answers_when_idle_connections_fill_the_socket)
{
	struct fixture *f = fixture_new();
	/* More idle connections than the limit and root's reserve together. */
	int *fds = malloc(N_IDLE * sizeof(int));
	if (!fds)
		FAIL("out of memory");
	memset(fds, -1, N_IDLE * sizeof(int));
	test_defer(close_all, fds);
	for (int i = 0; i < N_IDLE; i++) {
		fds[i] = lineclient_connect_fd(f->cf->path);
		if (fds[i] < 0)
			FAIL("connect %s: %s", f->cf->path, strerror(-fds[i]));
	}
	struct result *r = RUN(f, "list");
	assert_exit(r, 0);
	ASSERT_CONTAINS(r->out, "postgres-main  asleep");
	ASSERT_STREQ(r->err, "");
}

TEST(test_connection_closed_without_a_reply_exits_3)
{
	struct fixture *f = fixture_new();
	char path[160];
	snprintf(path, sizeof(path), "%s/mute.sock", f->cf->dir);
	struct sockaddr_un sa = lineclient_sockaddr(path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(lfd);
	test_defer(close_fd, (void *)(intptr_t)lfd);
	ASSERT_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_OK(listen(lfd, 4));

	int out = output_file(f, "stdout"), err = output_file(f, "stderr");
	struct child_run c = {
	    .pid =
		spawn(f, (const char *const[]){"--control", path, "list", NULL}, NULL, out, err)};
	int cfd = accept(lfd, NULL, NULL);
	ASSERT_OK(cfd);
	char buf[256];
	ASSERT_TRUE(read(cfd, buf, sizeof(buf)) > 0);
	close(cfd);
	evloop_run_until(f->cf->base, child_run_exited, &c, WAIT_MS, "dozectl to exit");
	ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3);
	_cleanup_free_ char *text = child_run_output(err);
	ASSERT_CONTAINS(text, "dozectl: dozed closed the connection");
	close(out);
	close(err);
}

TEST(test_events_prints_the_history_one_line_each)
{
	struct fixture *f = fixture_new();
	struct result *r = RUN(f, "events");
	assert_exit(r, 0);
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"events\",\"follow\":false}");
	ASSERT_STREQ(r->out, "2026-11-24T22:58:00.123Z web sleep idle=2s egress_bytes=1234 "
			     "egress_packets=7\n");

	r = RUN(f, "events", "--json");
	assert_exit(r, 0);
	struct json_object *want = parse(SLEEP_EVENT);
	char expected[1024];
	snprintf(expected, sizeof(expected), "%s\n", plain(want));
	json_object_put(want);
	ASSERT_STREQ(r->out, expected);
}

struct follow_wait {
	int fd;
	const char *needle;
};

static bool output_contains(void *arg)
{
	struct follow_wait *w = arg;
	_cleanup_free_ char *text = child_run_output(w->fd);
	return strstr(text, w->needle) != NULL;
}

static void kill_child(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void follow_and_receive(struct fixture *f, bool json, const char *history_line,
			       const char *event_line)
{
	int out = output_file(f, json ? "follow-json" : "follow"), err = output_file(f, "stderr");
	const char *const args[] = {
	    "--control", f->cf->path, "events", "--follow", json ? "--json" : NULL, NULL};
	pid_t pid = spawn(f, args, NULL, out, err);
	test_defer(kill_child, (void *)(intptr_t)pid);

	struct follow_wait w = {.fd = out, .needle = history_line};
	evloop_run_until(f->cf->base, output_contains, &w, WAIT_MS, "the history from dozectl");
	ASSERT_STREQ(f->last_request, "{\"cmd\":\"events\",\"follow\":true}");
	ASSERT_TRUE(f->subscribed);

	struct json_object *e = parse(READY_EVENT);
	control_broadcast(f->cf->ctl, e);
	json_object_put(e);
	w.needle = event_line;
	evloop_run_until(f->cf->base, output_contains, &w, WAIT_MS,
			 "the followed event from dozectl");
	close(out);
	close(err);
}

TEST(test_events_follow_prints_broadcasts_as_they_come)
{
	struct fixture *f = fixture_new();
	follow_and_receive(f, false, "2026-11-24T22:58:00.123Z web sleep idle=2s",
			   "2026-11-24T22:58:05.000Z web ready start=300ms probe=1223ms "
			   "total=1523ms\n");
}

TEST(test_events_follow_json_prints_one_object_per_line)
{
	struct fixture *f = fixture_new();
	struct json_object *history = parse(SLEEP_EVENT), *ready = parse(READY_EVENT);
	char history_line[1024], ready_line[1024];
	snprintf(history_line, sizeof(history_line), "%s\n", plain(history));
	snprintf(ready_line, sizeof(ready_line), "\n%s\n", plain(ready));
	json_object_put(history);
	json_object_put(ready);
	follow_and_receive(f, true, history_line, ready_line);
}
