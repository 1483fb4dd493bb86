// SPDX-License-Identifier: MIT
/* The runtime's JSON answers to structs: pure functions, no I/O. */
#include "dozed/runtime.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/utf8.h"
#include "runtime_internal.h"

static void json_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

int runtime_json_parse(const char *text, size_t len, json_object **out)
{
	if (len > INT32_MAX)
		return -EMSGSIZE;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || !o) {
		if (o)
			json_object_put(o);
		return -EBADMSG;
	}
	*out = o;
	return 0;
}

json_object *runtime_json_get(json_object *o, const char *key, int type)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, (json_type)type))
		return NULL;
	return v;
}

const char *runtime_json_get_str(json_object *o, const char *key)
{
	json_object *v = runtime_json_get(o, key, json_type_string);
	return v ? json_object_get_string(v) : NULL;
}

static int strdup_or_null(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static void container_clear(struct runtime_container *c)
{
	free(c->id);
	free(c->name);
	free(c->state);
	free(c->cgroup_dir);
	for (size_t i = 0; i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	free(c->ports);
	free(c->stop_signal);
	runtime_strv_free(c->health_cmd, c->n_health_cmd);
	memset(c, 0, sizeof(*c));
}

void runtime_container_free(struct runtime_container *c)
{
	if (!c)
		return;
	container_clear(c);
	free(c);
}

void runtime_containers_free(struct runtime_container *cs, size_t n)
{
	if (!cs)
		return;
	for (size_t i = 0; i < n; i++)
		container_clear(&cs[i]);
	free(cs);
}

const char *runtime_container_label(const struct runtime_container *c, const char *key)
{
	for (size_t i = 0; i < c->n_labels; i++)
		if (strcmp(c->labels[i].key, key) == 0)
			return c->labels[i].value;
	return NULL;
}

int runtime_container_dup(const struct runtime_container *c, struct runtime_container **out)
{
	struct runtime_container *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->running = c->running;
	d->paused = c->paused;
	d->pid = c->pid;
	d->exit_code = c->exit_code;
	memcpy(d->ip, c->ip, sizeof(d->ip));
	d->stop_timeout_s = c->stop_timeout_s;
	d->health_timeout_us = c->health_timeout_us;
	memcpy(d->health_status, c->health_status, sizeof(d->health_status));
	int r = 0;
	r |= strdup_or_null(c->stop_signal, &d->stop_signal);
	if (c->n_health_cmd > 0) {
		r |= runtime_strv_dup(c->health_cmd, c->n_health_cmd, &d->health_cmd);
		d->n_health_cmd = d->health_cmd ? c->n_health_cmd : 0;
	}
	r |= strdup_or_null(c->id, &d->id);
	r |= strdup_or_null(c->name, &d->name);
	r |= strdup_or_null(c->state, &d->state);
	r |= strdup_or_null(c->cgroup_dir, &d->cgroup_dir);
	if (r == 0 && c->n_labels > 0) {
		d->labels = calloc(c->n_labels, sizeof(*d->labels));
		if (!d->labels)
			r = -ENOMEM;
		for (size_t i = 0; r == 0 && i < c->n_labels; i++) {
			d->n_labels++;
			r |= strdup_or_null(c->labels[i].key, &d->labels[i].key);
			r |= strdup_or_null(c->labels[i].value, &d->labels[i].value);
		}
	}
	if (r == 0 && c->n_ports > 0) {
		d->ports = calloc(c->n_ports, sizeof(*d->ports));
		if (!d->ports)
			r = -ENOMEM;
		else
			memcpy(d->ports, c->ports, c->n_ports * sizeof(*d->ports));
		d->n_ports = d->ports ? c->n_ports : 0;
	}
	if (r != 0) {
		runtime_container_free(d);
		return -ENOMEM;
	}
	*out = d;
	return 0;
}

static int parse_labels(json_object *labels, struct runtime_container *c)
{
	if (!labels || !json_object_is_type(labels, json_type_object))
		return 0;
	size_t n = (size_t)json_object_object_length(labels);
	if (n == 0)
		return 0;
	c->labels = calloc(n, sizeof(*c->labels));
	if (!c->labels)
		return -ENOMEM;
	json_object_object_foreach(labels, key, val)
	{
		if (c->n_labels == n)
			break;
		const char *v =
		    json_object_is_type(val, json_type_string) ? json_object_get_string(val) : "";
		struct runtime_label *l = &c->labels[c->n_labels];
		l->key = strdup(key);
		l->value = strdup(v);
		c->n_labels++;
		if (!l->key || !l->value)
			return -ENOMEM;
	}
	return 0;
}

/* A port number from a JSON string ("8080") or number (8080); 0 if absent or bad. */
static uint16_t port_value(json_object *v)
{
	if (!v)
		return 0;
	long long n;
	if (json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		char *end;
		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno != 0 || end == s || *end != '\0')
			return 0;
	} else {
		return 0;
	}
	return n > 0 && n <= 65535 ? (uint16_t)n : 0;
}

static int add_port(struct runtime_container *c, size_t *cap, const char *host_ip,
		    uint16_t host_port, uint16_t container_port)
{
	if (host_port == 0 || container_port == 0)
		return 0;
	if (c->n_ports == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct runtime_port *p = realloc(c->ports, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->ports = p;
		*cap = ncap;
	}
	struct runtime_port *p = &c->ports[c->n_ports++];
	memset(p, 0, sizeof(*p));
	snprintf(p->host_ip, sizeof(p->host_ip), "%s", host_ip && *host_ip ? host_ip : "0.0.0.0");
	p->host_port = host_port;
	p->container_port = container_port;
	return 0;
}

/* {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": null} */
static int parse_port_map(json_object *map, struct runtime_container *c)
{
	size_t cap = 0;
	if (!map || !json_object_is_type(map, json_type_object))
		return 0;
	json_object_object_foreach(map, key, bindings)
	{
		unsigned cport;
		char proto[8];
		if (sscanf(key, "%u/%7s", &cport, proto) != 2 || strcmp(proto, "tcp") != 0 ||
		    cport == 0 || cport > 65535)
			continue;
		if (!bindings || !json_object_is_type(bindings, json_type_array))
			continue;
		size_t n = json_object_array_length(bindings);
		for (size_t i = 0; i < n; i++) {
			json_object *b = json_object_array_get_idx(bindings, i);
			int r =
			    add_port(c, &cap, runtime_json_get_str(b, "HostIp"),
				     port_value(runtime_json_get(b, "HostPort", json_type_string)),
				     (uint16_t)cport);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Docker's default bridge sets IPAddress; other networks (Podman's) only
 * Networks.NAME.IPAddress. */
static void parse_ip(json_object *settings, struct runtime_container *c)
{
	const char *ip = runtime_json_get_str(settings, "IPAddress");
	json_object *networks = runtime_json_get(settings, "Networks", json_type_object);
	if ((!ip || !*ip) && networks) {
		json_object_object_foreach(networks, name, net)
		{
			(void)name;
			ip = json_object_is_type(net, json_type_object)
				 ? runtime_json_get_str(net, "IPAddress")
				 : NULL;
			if (ip && *ip)
				break;
		}
	}
	if (ip && strlen(ip) < sizeof(c->ip))
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
}

int runtime_parse_inspect(const char *json, size_t len, struct runtime_container **out)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	json_object *state = runtime_json_get(root, "State", json_type_object);
	const char *id = runtime_json_get_str(root, "Id");
	const char *name = runtime_json_get_str(root, "Name");
	if (name && name[0] == '/')
		name++;
	/* Every container has a name on both runtimes; the daemon names services by it. */
	if (!id || !state || !name || !*name)
		return -EBADMSG;

	struct runtime_container *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	json_object *running = runtime_json_get(state, "Running", json_type_boolean);
	json_object *pid = runtime_json_get(state, "Pid", json_type_int);
	c->running = running && json_object_get_boolean(running);
	json_object *paused = runtime_json_get(state, "Paused", json_type_boolean);
	c->paused = paused && json_object_get_boolean(paused);
	json_object *exit_code = runtime_json_get(state, "ExitCode", json_type_int);
	c->exit_code = exit_code ? (int)json_object_get_int64(exit_code) : 0;
	/* A PID out of range would make /proc/1 (or another) the container's. */
	int64_t pid_value = pid ? json_object_get_int64(pid) : 0;
	c->pid = c->running && pid_value > 0 && pid_value <= INT32_MAX ? (pid_t)pid_value : 0;
	r = strdup_or_null(id, &c->id);
	if (r == 0)
		r = strdup_or_null(name, &c->name);
	if (r == 0)
		r = strdup_or_null(runtime_json_get_str(state, "Status"), &c->state);
	if (r == 0)
		r = parse_labels(
		    runtime_json_get(runtime_json_get(root, "Config", json_type_object), "Labels",
				     json_type_object),
		    c);
	if (r == 0)
		r = parse_port_map(
		    runtime_json_get(runtime_json_get(root, "NetworkSettings", json_type_object),
				     "Ports", json_type_object),
		    c);
	if (r == 0)
		parse_ip(runtime_json_get(root, "NetworkSettings", json_type_object), c);
	if (r == 0)
		r = runtime_parse_inspect_stop_and_health(root, c);
	/* Docker forgets a stopped container's ports in NetworkSettings; what it
	 * will publish on the next start is in its configuration. */
	if (r == 0 && c->n_ports == 0)
		r = parse_port_map(
		    runtime_json_get(runtime_json_get(root, "HostConfig", json_type_object),
				     "PortBindings", json_type_object),
		    c);
	if (r < 0) {
		runtime_container_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}] */
static int parse_port_list(json_object *list, struct runtime_container *c)
{
	size_t cap = 0;
	if (!list || !json_object_is_type(list, json_type_array))
		return 0;
	size_t n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(list, i);
		const char *type = runtime_json_get_str(p, "Type");
		if (!type || strcmp(type, "tcp") != 0)
			continue;
		int r = add_port(c, &cap, runtime_json_get_str(p, "IP"),
				 port_value(runtime_json_get(p, "PublicPort", json_type_int)),
				 port_value(runtime_json_get(p, "PrivatePort", json_type_int)));
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_list_entry(json_object *e, struct runtime_container *c)
{
	const char *id = runtime_json_get_str(e, "Id");
	if (!id)
		return -EBADMSG;
	const char *name = NULL;
	json_object *names = runtime_json_get(e, "Names", json_type_array);
	if (names && json_object_array_length(names) > 0) {
		json_object *first = json_object_array_get_idx(names, 0);
		if (json_object_is_type(first, json_type_string))
			name = json_object_get_string(first);
	}
	if (name && name[0] == '/')
		name++;
	const char *state = runtime_json_get_str(e, "State");
	c->stop_timeout_s = -1; /* not in a list entry */
	/* Paused is running too, as inspect's State.Running says. */
	c->paused = state && strcmp(state, "paused") == 0;
	c->running = c->paused || (state && strcmp(state, "running") == 0);
	int r = strdup_or_null(id, &c->id);
	if (r == 0)
		r = strdup_or_null(name, &c->name);
	if (r == 0)
		r = strdup_or_null(state, &c->state);
	if (r == 0)
		r = parse_labels(runtime_json_get(e, "Labels", json_type_object), c);
	if (r == 0)
		r = parse_port_list(runtime_json_get(e, "Ports", json_type_array), c);
	return r;
}

int runtime_parse_list(const char *json, size_t len, struct runtime_container **out, size_t *n)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	if (!json_object_is_type(root, json_type_array))
		return -EBADMSG;
	size_t count = json_object_array_length(root);
	struct runtime_container *cs = calloc(count ? count : 1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		r = parse_list_entry(json_object_array_get_idx(root, i), &cs[i]);
		if (r < 0) {
			runtime_containers_free(cs, count);
			return r;
		}
	}
	*out = cs;
	*n = count;
	return 0;
}

void runtime_event_clear(struct runtime_event *ev)
{
	free(ev->id);
	free(ev->name);
	memset(ev, 0, sizeof(*ev));
}

int runtime_parse_event(const char *json, size_t len, struct runtime_event *out)
{
	_cleanup_json_ json_object *root = NULL;
	int r = runtime_json_parse(json, len, &root);
	if (r < 0)
		return r;
	if (!json_object_is_type(root, json_type_object))
		return -EBADMSG;
	const char *type = runtime_json_get_str(root, "Type");
	/* "status" is the pre-1.22 name of "Action"; both runtimes still send it. */
	const char *action = runtime_json_get_str(root, "Action");
	if (!action)
		action = runtime_json_get_str(root, "status");
	if (!type || !action)
		return -EBADMSG;
	if (strcmp(type, "container") != 0)
		return 0;

	enum runtime_event_type t;
	if (strcmp(action, "start") == 0)
		t = RUNTIME_EVENT_START;
	else if (strcmp(action, "die") == 0)
		t = RUNTIME_EVENT_DIE;
	else if (strcmp(action, "destroy") == 0 || strcmp(action, "remove") == 0)
		t = RUNTIME_EVENT_DESTROY;
	else if (strcmp(action, "unpause") == 0)
		t = RUNTIME_EVENT_UNPAUSE;
	else if (strcmp(action, "kill") == 0)
		t = RUNTIME_EVENT_KILL;
	else if (strcmp(action, "pause") == 0)
		t = RUNTIME_EVENT_PAUSE;
	else
		return 0;

	json_object *actor = runtime_json_get(root, "Actor", json_type_object);
	json_object *attrs = runtime_json_get(actor, "Attributes", json_type_object);
	const char *id = runtime_json_get_str(actor, "ID");
	if (!id)
		id = runtime_json_get_str(root, "id");
	if (!id || !*id)
		return -EBADMSG;

	struct runtime_event ev = {.type = t, .exit_code = -1};
	const char *code = t == RUNTIME_EVENT_DIE ? runtime_json_get_str(attrs, "exitCode") : NULL;
	if (code) {
		char *end;
		long v = strtol(code, &end, 10);
		if (end != code && *end == '\0' && v >= 0 && v <= 255)
			ev.exit_code = (int)v;
	}
	json_object *nano = runtime_json_get(root, "timeNano", json_type_int);
	json_object *secs = runtime_json_get(root, "time", json_type_int);
	if (nano && json_object_get_int64(nano) > 0)
		ev.time_ns = (uint64_t)json_object_get_int64(nano);
	else if (secs && json_object_get_int64(secs) > 0)
		ev.time_ns = (uint64_t)json_object_get_int64(secs) * 1000000000ull;
	if (strdup_or_null(id, &ev.id) < 0 ||
	    strdup_or_null(runtime_json_get_str(attrs, "name"), &ev.name) < 0) {
		runtime_event_clear(&ev);
		return -ENOMEM;
	}
	*out = ev;
	return 1;
}

char *runtime_parse_error_message(const char *json, size_t len)
{
	_cleanup_json_ json_object *root = NULL;
	if (runtime_json_parse(json, len, &root) < 0)
		return NULL;
	const char *msg = runtime_json_get_str(root, "message");
	return msg && *msg ? strdup(msg) : NULL;
}

/* A frame header: stream 0-2, three zero bytes, a big-endian length. */
static bool logs_multiplexed(const unsigned char *b, size_t len)
{
	return len >= 8 && b[0] <= 2 && b[1] == 0 && b[2] == 0 && b[3] == 0;
}

/* Appends the payload bytes of body (demultiplexed when framed) to text. */
static size_t logs_payload(const char *body, size_t len, char *text)
{
	const unsigned char *b = (const unsigned char *)body;
	if (!logs_multiplexed(b, len)) {
		memcpy(text, body, len);
		return len;
	}
	size_t used = 0;
	for (size_t at = 0; at + 8 <= len;) {
		uint32_t n = (uint32_t)b[at + 4] << 24 | (uint32_t)b[at + 5] << 16 |
			     (uint32_t)b[at + 6] << 8 | b[at + 7];
		at += 8;
		size_t take = n < len - at ? n : len - at;
		memcpy(text + used, body + at, take);
		used += take;
		at += take;
	}
	return used;
}

void runtime_logs_tail(const char *body, size_t len, size_t max_lines, char *out, size_t out_len)
{
	if (out_len == 0)
		return;
	out[0] = '\0';
	_cleanup_free_ char *text = malloc(len + 1);
	if (!text || max_lines == 0)
		return;
	size_t n = logs_payload(body, len, text);
	/* Walk back over the last max_lines non-empty lines. */
	size_t start = n, lines = 0;
	while (start > 0 && lines < max_lines) {
		size_t end = start;
		while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
			end--;
		if (end == 0)
			break;
		size_t b = end;
		while (b > 0 && text[b - 1] != '\n')
			b--;
		start = b;
		lines++;
	}
	size_t used = 0;
	bool line_start = true;
	for (size_t i = start; i < n;) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '\n' || ch == '\r') {
			line_start = true;
			i++;
			continue;
		}
		if (line_start && used > 0) {
			if (used + 3 >= out_len)
				break;
			memcpy(out + used, " | ", 3);
			used += 3;
		}
		line_start = false;
		/* Whole characters only: what a container writes need not be UTF-8. */
		size_t k = utf8_char_len(text + i, n - i);
		bool shown = k > 0 && ch >= 0x20 && ch != 0x7f;
		size_t w = shown ? k : 1;
		if (used + w >= out_len)
			break;
		if (shown)
			memcpy(out + used, text + i, k);
		else
			out[used] = '?';
		used += w;
		i += k > 0 ? k : 1;
	}
	out[used] = '\0';
}
