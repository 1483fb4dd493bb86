// SPDX-License-Identifier: MIT
/*
 * The runtime's JSON answers, parsed from real captures of dockerd 20.10
 * (Debian docker.io) and podman system service 4.3 (Debian podman), in
 * tests/unit/fixtures/runtime/ (made with tests/runtime-env.sh and curl).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "dozed/utf8.h"
#include "fixture.h"
#include "harness.h"

#define DOCKER_WEB_ID	"a9a78bb159fe92e8068892dc76d46ad942f1dee7cbb39ec9646dbfbb91a6f145"
#define PODMAN_WEB_ID	"a406ba25134f5ab84cb85ac5953923d878e6d23e982efa8ca29d3096b35abc05"
#define DOCKER_OTHER_ID "118988fb360bc5976d01ed544228038bc8e294797adcc7e13e7b02dae37b0902"
#define PODMAN_OTHER_ID "b29809e4959aa49bd67e6cdba1e67b9d89493f61d7024742b88e758b1a449731"

static void free_container(void *c)
{
	runtime_container_free(c);
}

static struct runtime_container *inspect_fixture(const char *name)
{
	size_t len;
	_cleanup_free_ char *json = fixture_read(name, &len);
	struct runtime_container *c = NULL;
	ASSERT_OK(runtime_parse_inspect(json, len, &c));
	test_defer(free_container, c);
	return c;
}

static void assert_port(const struct runtime_port *p, const char *ip, unsigned host,
			unsigned container)
{
	ASSERT_STREQ(p->host_ip, ip);
	ASSERT_EQ_U(p->host_port, host);
	ASSERT_EQ_U(p->container_port, container);
}

static void assert_running_web(const struct runtime_container *c, const char *id, unsigned pid,
			       unsigned host_port)
{
	ASSERT_STREQ(c->id, id);
	ASSERT_STREQ(c->name, "web");
	ASSERT_STREQ(c->state, "running");
	ASSERT_TRUE(c->running);
	ASSERT_EQ_U(c->pid, pid);
	ASSERT_TRUE(c->cgroup_dir == NULL);
	ASSERT_STREQ(runtime_container_label(c, "dozed.enable"), "true");
	ASSERT_STREQ(runtime_container_label(c, "com.example.tier"), "front");
	ASSERT_TRUE(runtime_container_label(c, "absent") == NULL);
	ASSERT_EQ_U(c->n_ports, 1);
	assert_port(&c->ports[0], "127.0.0.1", host_port, 80);
}

TEST(test_docker_inspect_of_running_container_gives_pid_name_labels_and_port)
{
	assert_running_web(inspect_fixture("unit/fixtures/runtime/docker-inspect-running.json"),
			   DOCKER_WEB_ID, 14205, 18080);
}

TEST(test_podman_inspect_of_running_container_gives_pid_name_labels_and_port)
{
	assert_running_web(inspect_fixture("unit/fixtures/runtime/podman-inspect-running.json"),
			   PODMAN_WEB_ID, 14392, 18081);
}

TEST(test_docker_inspect_of_stopped_container_keeps_its_configured_port)
{
	/* dockerd empties NetworkSettings.Ports on stop; PortBindings remain. */
	struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-stopped.json");
	ASSERT_TRUE(!c->running);
	ASSERT_STREQ(c->state, "exited");
	ASSERT_EQ_U(c->pid, 0);
	ASSERT_EQ_U(c->n_ports, 1);
	assert_port(&c->ports[0], "127.0.0.1", 18080, 80);
}

TEST(test_podman_inspect_of_stopped_container_is_not_running_and_keeps_its_port)
{
	struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-stopped.json");
	ASSERT_TRUE(!c->running);
	ASSERT_STREQ(c->state, "exited");
	ASSERT_EQ_U(c->pid, 0);
	ASSERT_EQ_U(c->n_ports, 1);
	assert_port(&c->ports[0], "127.0.0.1", 18081, 80);
}

TEST(test_docker_port_on_all_addresses_is_listed_for_ipv4_and_ipv6)
{
	struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-other.json");
	ASSERT_STREQ(c->id, DOCKER_OTHER_ID);
	ASSERT_EQ_U(c->n_labels, 0);
	ASSERT_EQ_U(c->n_ports, 2);
	assert_port(&c->ports[0], "0.0.0.0", 18090, 80);
	assert_port(&c->ports[1], "::", 18090, 80);
}

TEST(test_podman_port_without_host_ip_reads_as_all_ipv4_addresses)
{
	struct runtime_container *c =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-other.json");
	ASSERT_STREQ(c->id, PODMAN_OTHER_ID);
	ASSERT_EQ_U(c->n_ports, 1);
	assert_port(&c->ports[0], "0.0.0.0", 18090, 80);
}

static void free_list(void *arg)
{
	struct runtime_container **cs = arg;
	runtime_containers_free(cs[0], (size_t)(uintptr_t)cs[1]);
	free(cs);
}

static struct runtime_container *list_fixture(const char *name, size_t *n)
{
	size_t len;
	_cleanup_free_ char *json = fixture_read(name, &len);
	struct runtime_container *cs = NULL;
	ASSERT_OK(runtime_parse_list(json, len, &cs, n));
	struct runtime_container **hold = calloc(2, sizeof(*hold));
	ASSERT_TRUE(hold);
	hold[0] = cs;
	hold[1] = (struct runtime_container *)(uintptr_t)*n;
	test_defer(free_list, hold);
	return cs;
}

static void assert_listed_web(const char *fixture, const char *id, unsigned port)
{
	size_t n;
	struct runtime_container *cs = list_fixture(fixture, &n);
	ASSERT_EQ_U(n, 1);
	ASSERT_STREQ(cs[0].id, id);
	ASSERT_STREQ(cs[0].name, "web");
	ASSERT_TRUE(cs[0].running);
	ASSERT_EQ_U(cs[0].pid, 0);
	ASSERT_STREQ(runtime_container_label(&cs[0], "dozed.enable"), "true");
	ASSERT_EQ_U(cs[0].n_ports, 1);
	assert_port(&cs[0].ports[0], "127.0.0.1", port, 80);
}

TEST(test_docker_list_by_label_gives_the_labelled_container)
{
	assert_listed_web("unit/fixtures/runtime/docker-list-labelled.json", DOCKER_WEB_ID, 18080);
}

TEST(test_podman_list_by_label_gives_the_labelled_container)
{
	assert_listed_web("unit/fixtures/runtime/podman-list-labelled.json", PODMAN_WEB_ID, 18081);
}

TEST(test_list_of_all_containers_gives_names_states_and_ports_on_both_runtimes)
{
	size_t n;
	struct runtime_container *cs =
	    list_fixture("unit/fixtures/runtime/docker-list-all.json", &n);
	ASSERT_EQ_U(n, 2);
	ASSERT_STREQ(cs[0].name, "other");
	ASSERT_EQ_U(cs[0].n_labels, 0);
	ASSERT_EQ_U(cs[0].n_ports, 2);
	assert_port(&cs[0].ports[1], "::", 18090, 80);

	cs = list_fixture("unit/fixtures/runtime/podman-list-all.json", &n);
	ASSERT_EQ_U(n, 2);
	ASSERT_STREQ(cs[1].name, "other");
	ASSERT_EQ_U(cs[1].n_ports, 1);
	/* Podman leaves "IP" out for all addresses. */
	assert_port(&cs[1].ports[0], "0.0.0.0", 18090, 80);
}

struct expected_event {
	enum runtime_event_type type;
	const char *name;
	int exit_code;
};

/* Parses every line of an event capture; checks the start/die/destroy ones. */
static void assert_events(const char *fixture, const struct expected_event *want, size_t n_want,
			  const char *first_id, uint64_t first_ns, size_t want_ignored)
{
	_cleanup_free_ char *text = fixture_read(fixture, NULL);
	size_t got = 0, ignored = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct runtime_event ev;
		int r = runtime_parse_event(line, strlen(line), &ev);
		ASSERT_OK(r);
		if (r == 0) {
			ignored++;
			continue;
		}
		if (got >= n_want)
			FAIL("more events than the %zu expected: %s", n_want, ev.id);
		if (ev.type != want[got].type || strcmp(ev.name, want[got].name) != 0 ||
		    ev.exit_code != want[got].exit_code)
			FAIL("event %zu is (%d, %s, %d), expected (%d, %s, %d)", got, (int)ev.type,
			     ev.name, ev.exit_code, (int)want[got].type, want[got].name,
			     want[got].exit_code);
		if (got == 0) {
			ASSERT_STREQ(ev.id, first_id);
			ASSERT_EQ_U(ev.time_ns, first_ns);
		}
		ASSERT_EQ_U(strlen(ev.id), 64);
		runtime_event_clear(&ev);
		got++;
	}
	ASSERT_EQ_U(got, n_want);
	ASSERT_EQ_U(ignored, want_ignored);
}

TEST(test_docker_events_give_start_die_destroy_and_kill_and_ignore_the_rest)
{
	static const struct expected_event want[] = {
	    {RUNTIME_EVENT_KILL, "web", -1},   {RUNTIME_EVENT_DIE, "web", 0},
	    {RUNTIME_EVENT_START, "web", -1},  {RUNTIME_EVENT_DESTROY, "tmp", -1},
	    {RUNTIME_EVENT_KILL, "other", -1}, {RUNTIME_EVENT_DIE, "other", 137},
	    {RUNTIME_EVENT_DESTROY, "cr", -1}, {RUNTIME_EVENT_DESTROY, "cr", -1},
	    {RUNTIME_EVENT_KILL, "web", -1},   {RUNTIME_EVENT_DESTROY, "other", -1},
	    {RUNTIME_EVENT_DIE, "web", 137},   {RUNTIME_EVENT_DESTROY, "web", -1},
	};
	/* stop, create... are valid events of no interest. */
	assert_events("unit/fixtures/runtime/docker-events.jsonl", want, ARRAY_SIZE(want),
		      DOCKER_WEB_ID, 1795561455552911851ull, 16 - ARRAY_SIZE(want));
}

TEST(test_podman_events_give_die_without_stop_and_remove_as_destroy)
{
	static const struct expected_event want[] = {
	    {RUNTIME_EVENT_DIE, "web", 0},	{RUNTIME_EVENT_START, "web", -1},
	    {RUNTIME_EVENT_DESTROY, "tmp", -1}, {RUNTIME_EVENT_KILL, "other", -1},
	    {RUNTIME_EVENT_DIE, "other", 137},	{RUNTIME_EVENT_DESTROY, "cr", -1},
	    {RUNTIME_EVENT_DESTROY, "cr", -1},	{RUNTIME_EVENT_DIE, "web", 0},
	    {RUNTIME_EVENT_DESTROY, "web", -1}, {RUNTIME_EVENT_DESTROY, "other", -1},
	};
	assert_events("unit/fixtures/runtime/podman-events.jsonl", want, ARRAY_SIZE(want),
		      PODMAN_WEB_ID, 1795561457355031141ull, 24 - ARRAY_SIZE(want));
}

TEST(test_error_answers_give_the_runtimes_message_naming_the_container)
{
	size_t len;
	_cleanup_free_ char *docker =
	    fixture_read("unit/fixtures/runtime/docker-error-404.json", &len);
	_cleanup_free_ char *msg = runtime_parse_error_message(docker, len);
	ASSERT_STREQ(msg, "No such container: nosuch");

	_cleanup_free_ char *podman =
	    fixture_read("unit/fixtures/runtime/podman-error-404.json", &len);
	_cleanup_free_ char *pmsg = runtime_parse_error_message(podman, len);
	ASSERT_CONTAINS(pmsg, "\"nosuch\"");
	ASSERT_CONTAINS(pmsg, "no such container");

	ASSERT_TRUE(runtime_parse_error_message("not json", 8) == NULL);
	ASSERT_TRUE(runtime_parse_error_message("{\"cause\":\"x\"}", 13) == NULL);
}

TEST(test_malformed_answers_are_ebadmsg)
{
	struct runtime_container *c = NULL, *cs = NULL;
	size_t n;
	struct runtime_event ev;
	ASSERT_ERR(runtime_parse_inspect("{\"Id\":", 6, &c), EBADMSG);
	ASSERT_ERR(runtime_parse_inspect("[]", 2, &c), EBADMSG);
	ASSERT_ERR(runtime_parse_inspect("{\"Id\":\"x\"}", 10, &c), EBADMSG); /* no State */
	ASSERT_ERR(runtime_parse_list("{}", 2, &cs, &n), EBADMSG);
	ASSERT_ERR(runtime_parse_list("[{\"Names\":[]}]", 14, &cs, &n), EBADMSG); /* no Id */
	ASSERT_ERR(runtime_parse_event("{\"Action\":\"start\"}", 18, &ev), EBADMSG);
	ASSERT_ERR(runtime_parse_event("{\"Type\":\"container\",\"Action\":\"die\"}", 36, &ev),
		   EBADMSG); /* no id */
	ASSERT_ERR(runtime_parse_event("", 0, &ev), EBADMSG);
}

TEST(test_events_of_other_types_are_ignored)
{
	struct runtime_event ev;
	static const char net[] =
	    "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"n\"}}";
	ASSERT_EQ_U(runtime_parse_event(net, strlen(net), &ev), 0);
	static const char img[] = "{\"status\":\"pull\",\"Type\":\"image\",\"id\":\"busybox\"}";
	ASSERT_EQ_U(runtime_parse_event(img, strlen(img), &ev), 0);
}

TEST(test_container_copy_outlives_the_original)
{
	size_t len;
	_cleanup_free_ char *json =
	    fixture_read("unit/fixtures/runtime/docker-inspect-running.json", &len);
	struct runtime_container *c = NULL, *copy = NULL;
	ASSERT_OK(runtime_parse_inspect(json, len, &c));
	c->cgroup_dir = strdup("/sys/fs/cgroup/unified/x");
	ASSERT_OK(runtime_container_dup(c, &copy));
	runtime_container_free(c);
	test_defer(free_container, copy);
	assert_port(&copy->ports[0], "127.0.0.1", 18080, 80);
	ASSERT_STREQ(copy->name, "web");
	ASSERT_STREQ(copy->cgroup_dir, "/sys/fs/cgroup/unified/x");
	ASSERT_STREQ(runtime_container_label(copy, "com.example.tier"), "front");
}

TEST(test_inspect_gives_the_address_of_a_running_container_on_its_network)
{
	/* Docker's default bridge fills IPAddress; Podman only its network's. */
	struct runtime_container *d =
	    inspect_fixture("unit/fixtures/runtime/docker-inspect-running.json");
	ASSERT_STREQ(d->ip, "172.17.0.2");
	struct runtime_container *p =
	    inspect_fixture("unit/fixtures/runtime/podman-inspect-running.json");
	ASSERT_STREQ(p->ip, "10.88.0.2");
	struct runtime_container *copy = NULL;
	ASSERT_OK(runtime_container_dup(p, &copy));
	ASSERT_STREQ(copy->ip, "10.88.0.2");
	runtime_container_free(copy);
}

TEST(test_inspect_of_a_stopped_container_has_no_address)
{
	ASSERT_STREQ(inspect_fixture("unit/fixtures/runtime/docker-inspect-stopped.json")->ip, "");
	ASSERT_STREQ(inspect_fixture("unit/fixtures/runtime/podman-inspect-stopped.json")->ip, "");
}

/* --- a container that exited: its exit code and its last output ---------------------- */

TEST(test_inspect_of_an_exited_container_gives_its_exit_code_on_both_runtimes)
{
	const char *fixtures[] = {"unit/fixtures/runtime/docker-inspect-exited.json",
				  "unit/fixtures/runtime/podman-inspect-exited.json"};
	for (size_t i = 0; i < ARRAY_SIZE(fixtures); i++) {
		struct runtime_container *c = inspect_fixture(fixtures[i]);
		ASSERT_TRUE(!c->running);
		ASSERT_EQ_U(c->exit_code, 3);
	}
}

static void assert_tail(const char *fixture, const char *want)
{
	size_t len = 0;
	_cleanup_free_ char *raw = fixture_read(fixture, &len);
	char out[200];
	runtime_logs_tail(raw, len, 3, out, sizeof(out));
	ASSERT_STREQ(out, want);
}

TEST(test_logs_of_both_runtimes_are_demultiplexed_into_their_last_lines)
{
	/* The container wrote "starting up" to stdout, then the error to stderr;
	 * Docker sends the stderr frame first. */
	assert_tail("unit/fixtures/runtime/docker-logs-exited.raw",
		    "error: listen tcp :80: address in use | starting up");
	assert_tail("unit/fixtures/runtime/podman-logs-exited.raw",
		    "starting up | error: listen tcp :80: address in use");
}

TEST(test_logs_tail_keeps_the_last_lines_and_fits_the_buffer)
{
	const char *tty = "one\ntwo\n\nthree\r\nfour\n\n";
	char out[64];
	runtime_logs_tail(tty, strlen(tty), 2, out, sizeof(out));
	ASSERT_STREQ(out, "three | four");
	runtime_logs_tail(tty, strlen(tty), 10, out, sizeof(out));
	ASSERT_STREQ(out, "one | two | three | four");
	char small[8];
	runtime_logs_tail(tty, strlen(tty), 10, small, sizeof(small));
	ASSERT_STREQ(small, "one | t");
	runtime_logs_tail("", 0, 3, out, sizeof(out));
	ASSERT_STREQ(out, "");
	const char esc[] = "\x1b[31mred\x07\n";
	runtime_logs_tail(esc, sizeof(esc) - 1, 3, out, sizeof(out));
	ASSERT_STREQ(out, "?[31mred?");
}

TEST(test_logs_tail_survives_a_frame_cut_short)
{
	/* A frame header announcing more bytes than came. */
	const char cut[] = "\x01\0\0\0\0\0\0\x40hello";
	char out[64];
	runtime_logs_tail(cut, sizeof(cut) - 1, 3, out, sizeof(out));
	ASSERT_STREQ(out, "hello");
	const char header_only[] = "\x02\0\0\0\0\0";
	runtime_logs_tail(header_only, sizeof(header_only) - 1, 3, out, sizeof(out));
	ASSERT_TRUE(strlen(out) < sizeof(out));
}

TEST(test_inspect_without_a_name_or_with_a_wild_pid_is_refused_or_ignored)
{
	static const char no_name[] = "{\"Id\":\"abc\",\"State\":{\"Running\":true,\"Pid\":42}}";
	struct runtime_container *c = NULL;
	ASSERT_ERR(runtime_parse_inspect(no_name, sizeof(no_name) - 1, &c), EBADMSG);
	static const char empty_name[] =
	    "{\"Id\":\"abc\",\"Name\":\"/\",\"State\":{\"Running\":true,\"Pid\":42}}";
	ASSERT_ERR(runtime_parse_inspect(empty_name, sizeof(empty_name) - 1, &c), EBADMSG);
	/* 2^32 + 1 must not become PID 1. */
	static const char wild_pid[] =
	    "{\"Id\":\"abc\",\"Name\":\"/web\",\"State\":{\"Running\":true,\"Pid\":4294967297}}";
	ASSERT_OK(runtime_parse_inspect(wild_pid, sizeof(wild_pid) - 1, &c));
	ASSERT_EQ_U(c->pid, 0);
	runtime_container_free(c);
}

TEST(test_logs_tail_is_utf8_whatever_the_container_wrote)
{
	/* 300 two-byte characters cut to the buffer, and bytes that are no UTF-8. */
	char long_line[601];
	for (size_t i = 0; i < 300; i++)
		memcpy(long_line + 2 * i, "\xc3\xa9", 2);
	long_line[600] = '\0';
	char out[200];
	runtime_logs_tail(long_line, 600, 3, out, sizeof(out));
	ASSERT_TRUE(utf8_valid(out, strlen(out)));
	ASSERT_EQ_U(strlen(out), 198);
	const char binary[] = "ok \xff\xfe end\n\xc3";
	runtime_logs_tail(binary, sizeof(binary) - 1, 3, out, sizeof(out));
	ASSERT_STREQ(out, "ok ?? end | ?");
}
