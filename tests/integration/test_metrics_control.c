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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/control.h"
#include "dozed/macro.h"
#include "child_run.h"
#include "control_fixture.h"
#include "daemon_fixture.h"
#include "evloop.h"
#include "harness.h"
#include "lineclient.h"
#include "promtool.h"

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
	struct daemon_fixture *df = daemon_fixture_new("dozed-metrics", NULL, 0);
	struct json_object *o = metrics_reply(df->c);
	test_defer(put, o);
	char why[2048];
	int status = promtool_check(text_of(o), why, sizeof(why));
	if (status != 0)
		FAIL("promtool check metrics exited %d: %s", status, why);
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

/* The child's output, freed when the test ends. */
static char *output_of(int fd)
{
	char *text = child_run_output(fd);
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
	char dozectl[PATH_MAX];
	child_run_dozectl_path(dozectl, sizeof(dozectl));
	int out = temp_file(), err = temp_file();
	fflush(NULL);
	struct child_run c = {.pid = fork()};
	if (c.pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c.pid == 0) {
		if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
			_exit(127);
		execl(dozectl, "dozectl", "--control", control, "metrics", (char *)NULL);
		_exit(127);
	}
	evloop_run_until(base, child_run_exited, &c, WAIT_MS, "dozectl to exit");
	return (struct dozectl_result){
	    .status = WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 128,
	    .out = output_of(out),
	    .err = output_of(err),
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
