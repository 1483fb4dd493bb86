// SPDX-License-Identifier: MIT
/*
 * The metrics over the control socket: the real daemon's command "metrics"
 * ({"ok":true,"metrics":TEXT}, no fields), and the built dozectl printing
 * that text exactly, against the real daemon and against a fake one whose
 * text holds what escaping produces (backslashes, quotes, \n, U+FFFD), and
 * its error when no daemon listens.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "control_fixture.h"
#include "daemon_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"

#define WAIT_MS 10000

/* What escaping writes, as the renderer would. */
#define NASTY_TEXT                                                                                 \
	"# HELP dozed_services Enabled \\\\ services.\n"                                           \
	"# TYPE dozed_services gauge\n"                                                            \
	"dozed_services 2\n"                                                                       \
	"dozed_service_state{service=\"a\\\\b\\\"c\\nd\xef\xbf\xbd\",state=\"awake\"} 1\n"

static struct json_object *metrics_reply(struct lineclient *c)
{
	_cleanup_free_ char *line = lineclient_request(c, "{\"cmd\":\"metrics\"}\n");
	struct json_object *o = json_tokener_parse(line), *ok = NULL, *m = NULL;
	if (!o || !json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok) ||
	    !json_object_object_get_ex(o, "metrics", &m) ||
	    !json_object_is_type(m, json_type_string))
		FAIL("expected {\"ok\":true,\"metrics\":TEXT}, got %s", line);
	return o;
}

static const char *text_of(struct json_object *reply)
{
	struct json_object *m = NULL;
	json_object_object_get_ex(reply, "metrics", &m);
	return json_object_get_string(m);
}

/* The text without its sample values: what two renders a moment apart share
 * (the seconds in each state move on). */
static char *series_of(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;
	if (!out)
		FAIL("out of memory");
	test_defer(free, out);
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *space = memrchr(line, ' ', len);
		if (line[0] != '#' && space)
			len = (size_t)(space - line);
		memcpy(o, line, len);
		o += len;
		*o++ = '\n';
		line += nl ? (size_t)(nl - line) + 1 : strlen(line);
	}
	return out;
}

static void put(void *arg)
{
	json_object_put(arg);
}

TEST(test_the_daemon_answers_metrics_with_its_text)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", NULL, 0);
	struct json_object *o = metrics_reply(df->c);
	test_defer(put, o);
	/* Two calls render twice: the same series, nothing in between changed. */
	struct json_object *again = metrics_reply(df->c);
	test_defer(put, again);
	ASSERT_STREQ(series_of(text_of(o)), series_of(text_of(again)));
}

/* The daemon's own text, with no service yet, is what Prometheus takes. */
TEST(test_the_daemons_text_passes_promtool)
{
	if (access("/usr/bin/promtool", X_OK) < 0)
		FAIL("/usr/bin/promtool is missing: install Debian's prometheus package (make "
		     "deps)");
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", NULL, 0);
	struct json_object *o = metrics_reply(df->c);
	test_defer(put, o);
	char path[200], cmd[512];
	snprintf(path, sizeof(path), "%s/metrics.txt", df->f->dir);
	FILE *out = fopen(path, "we");
	if (!out || fputs(text_of(o), out) < 0 || fclose(out) != 0)
		FAIL("cannot write %s", path);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s > %s.out 2>&1", path,
		 path);
	int status = system(cmd);
	if (status != 0) {
		snprintf(cmd, sizeof(cmd), "%s.out", path);
		FILE *in = fopen(cmd, "re");
		char why[2048] = "";
		size_t n = in ? fread(why, 1, sizeof(why) - 1, in) : 0;
		why[n] = '\0';
		if (in)
			fclose(in);
		FAIL("promtool check metrics exited %d: %s", status, why);
	}
}

#define ID_WEB "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SAVED_WEB                                                                                  \
	"[{\"container\": \"web\", \"container_id\": \"" ID_WEB "\", \"name\": \"web\","           \
	" \"idle_ms\": 600000, \"wake_on\": \"connect\","                                          \
	" \"ports\": [{\"host_ip\": \"\", \"host_port\": 48080, \"container_port\": 80}]}]\n"

/* A scrape soon after another may get the same text, but never past an
 * event: the service disabled between two scrapes is gone from the second. */
TEST(test_a_scrape_after_an_event_is_rendered_afresh)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", SAVED_WEB, 0);
	struct json_object *before = metrics_reply(df->c);
	test_defer(put, before);
	ASSERT_CONTAINS(text_of(before), "dozed_service_state{service=\"web\"");
	ASSERT_CONTAINS(text_of(before), "dozed_services 1\n");
	_cleanup_free_ char *line =
	    lineclient_request(df->c, "{\"cmd\":\"disable\",\"service\":\"web\"}\n");
	ASSERT_CONTAINS(line, "\"ok\":true");
	struct json_object *after = metrics_reply(df->c);
	test_defer(put, after);
	ASSERT_TRUE(strstr(text_of(after), "service=\"web\"") == NULL);
	ASSERT_CONTAINS(text_of(after), "dozed_services 0\n");
}

TEST(test_the_daemon_refuses_fields_of_metrics_and_names_it_among_the_commands)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", NULL, 0);
	_cleanup_free_ char *line =
	    lineclient_request(df->c, "{\"cmd\":\"metrics\",\"service\":\"web\"}\n");
	ASSERT_CONTAINS(line, "\"ok\":false");
	ASSERT_CONTAINS(line, "service: unknown field");
	_cleanup_free_ char *unknown = lineclient_request(df->c, "{\"cmd\":\"metric\"}\n");
	ASSERT_CONTAINS(unknown, "events, flows or metrics)");
}

/* --- dozectl metrics ------------------------------------------------------------------ */

struct child {
	pid_t pid;
	int status;
};

static bool child_exited(void *arg)
{
	struct child *c = arg;
	return waitpid(c->pid, &c->status, WNOHANG) == c->pid;
}

static int temp_file(void)
{
	char path[] = "/tmp/dozectl-metrics.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		FAIL("mkstemp: %s", strerror(errno));
	unlink(path);
	test_defer_close(fd);
	return fd;
}

static char *file_text(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
	if (!text || (len > 0 && pread(fd, text, (size_t)len, 0) != len))
		FAIL("cannot read dozectl's output");
	test_defer(free, text);
	return text;
}

struct dozectl_result {
	int status;
	char *out, *err;
};

/* The built dozectl metrics against control, run while base serves. */
static struct dozectl_result dozectl_metrics(struct event_base *base, const char *control)
{
	char self[PATH_MAX], dozectl[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		FAIL("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	snprintf(dozectl, sizeof(dozectl), "%s/../../dozectl", dirname(self));
	if (access(dozectl, X_OK) < 0)
		FAIL("dozectl is not at %s (%s): build it first", dozectl, strerror(errno));
	int out = temp_file(), err = temp_file();
	fflush(NULL);
	struct child c = {.pid = fork()};
	if (c.pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c.pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(127);
		execl(dozectl, "dozectl", "--control", control, "metrics", (char *)NULL);
		_exit(127);
	}
	evloop_run_until(base, child_exited, &c, WAIT_MS, "dozectl to exit");
	return (struct dozectl_result){
	    .status = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 128,
	    .out = file_text(out),
	    .err = file_text(err),
	};
}

TEST(test_dozectl_metrics_prints_the_daemons_text)
{
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", NULL, 0);
	struct json_object *o = metrics_reply(df->c);
	test_defer(put, o);
	struct dozectl_result r = dozectl_metrics(df->f->base, df->cfg.control_path);
	ASSERT_EQ_U(r.status, 0);
	/* As the control reply has it, up to the values that moved since. */
	ASSERT_STREQ(series_of(r.out), series_of(text_of(o)));
	ASSERT_STREQ(r.err, "");
}

static void nasty_handler(void *ud, uint64_t id, const char *cmd, struct json_object *req)
{
	struct control_fixture *f = ud;
	(void)req;
	if (strcmp(cmd, "metrics") != 0) {
		control_reply_error(f->ctl, id, "unknown command: %s", cmd);
		return;
	}
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "metrics", json_object_new_string(NASTY_TEXT));
	control_reply(f->ctl, id, reply);
}

TEST(test_dozectl_metrics_prints_escaped_text_as_it_is)
{
	struct control_fixture *f = control_fixture_bare("dozectl-metrics");
	control_fixture_start(f, nasty_handler, f);
	struct dozectl_result r = dozectl_metrics(f->base, f->path);
	ASSERT_EQ_U(r.status, 0);
	ASSERT_STREQ(r.out, NASTY_TEXT);
}

TEST(test_dozectl_metrics_without_a_daemon_exits_3_saying_so)
{
	struct control_fixture *f = control_fixture_bare("dozectl-metrics");
	char path[200];
	snprintf(path, sizeof(path), "%s/none.sock", f->dir);
	struct dozectl_result r = dozectl_metrics(f->base, path);
	ASSERT_EQ_U(r.status, 3);
	ASSERT_STREQ(r.out, "");
	ASSERT_CONTAINS(r.err, "cannot connect to");
	ASSERT_CONTAINS(r.err, "(is dozed running?)");
}
