// SPDX-License-Identifier: MIT
/*
 * The runtime's JSON: every line of the input as an /events line (as the
 * event stream splits them), and the whole input as an inspect answer, a
 * container list, a wait, an exec's create and inspect answers and an error
 * body. Whatever the runtime sends, the daemon
 * gets a container, an event or an error, with the promised invariants.
 */
#include <errno.h>

#include "dozed/runtime.h"
#include "fuzz.h"

static void check_container(const struct runtime_container *c)
{
	/* A name and a state are optional: their users must cope (they do for
	 * lists, not for inspects: see daemon_sync.c). */
	FUZZ_ASSERT(c->id);
	FUZZ_ASSERT(memchr(c->ip, '\0', sizeof(c->ip)));
	for (size_t i = 0; i < c->n_ports; i++) {
		FUZZ_ASSERT(c->ports[i].host_port != 0 && c->ports[i].container_port != 0);
		FUZZ_ASSERT(memchr(c->ports[i].host_ip, '\0', sizeof(c->ports[i].host_ip)));
	}
	for (size_t i = 0; i < c->n_labels; i++)
		FUZZ_ASSERT(c->labels[i].key && c->labels[i].value);
	/* What the stop and the healthcheck probe take from it. */
	FUZZ_ASSERT((c->n_health_cmd > 0) == (c->health_cmd != NULL));
	for (size_t i = 0; i < c->n_health_cmd; i++)
		FUZZ_ASSERT(c->health_cmd[i]);
	FUZZ_ASSERT(memchr(c->health_status, '\0', sizeof(c->health_status)));
	FUZZ_ASSERT(c->stop_timeout_s >= -1);
}

static void parse_event_line(const char *line, size_t len)
{
	struct runtime_event ev = {0};
	int r = runtime_parse_event(line, len, &ev);
	FUZZ_ASSERT(r == 0 || r == 1 || r == -EBADMSG || r == -ENOMEM);
	if (r == 1) {
		FUZZ_ASSERT(ev.id && ev.id[0]);
		FUZZ_ASSERT(ev.type == RUNTIME_EVENT_START || ev.type == RUNTIME_EVENT_DIE ||
			    ev.type == RUNTIME_EVENT_DESTROY || ev.type == RUNTIME_EVENT_UNPAUSE ||
			    ev.type == RUNTIME_EVENT_KILL || ev.type == RUNTIME_EVENT_PAUSE);
		FUZZ_ASSERT(ev.exit_code >= -1 && ev.exit_code <= 255);
		runtime_event_clear(&ev);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;

	for (size_t start = 0; start <= size;) {
		const char *nl = memchr(text + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - text) : size;
		parse_event_line(text + start, end - start);
		start = end + 1;
	}

	struct runtime_container *c = NULL;
	if (runtime_parse_inspect(text, size, &c) == 0) {
		check_container(c);
		struct runtime_container *copy = NULL;
		if (runtime_container_dup(c, &copy) == 0) {
			check_container(copy);
			FUZZ_ASSERT(strcmp(copy->id, c->id) == 0 && copy->n_ports == c->n_ports);
			runtime_container_free(copy);
		}
		runtime_container_free(c);
	}

	struct runtime_container *cs = NULL;
	size_t n = 0;
	if (runtime_parse_list(text, size, &cs, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			check_container(&cs[i]);
		runtime_containers_free(cs, n);
	}

	int code = 0;
	if (runtime_parse_wait(text, size, &code) == 0)
		FUZZ_ASSERT(code >= -1);
	char *exec_id = NULL;
	if (runtime_parse_exec_id(text, size, &exec_id) == 0)
		FUZZ_ASSERT(exec_id && exec_id[0]);
	free(exec_id);
	bool running = false;
	(void)runtime_parse_exec_inspect(text, size, &running, &code);

	free(runtime_parse_error_message(text, size));
	return 0;
}
