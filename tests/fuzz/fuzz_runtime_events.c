// SPDX-License-Identifier: MIT
/*
 * The runtime's event stream end to end: any bytes as the runtime's answer to
 * GET /events, served on a real unix socket to the real runtime_events_new()
 * (http_unix.c, the HTTP parser, runtime_events.c's line assembly and the
 * event parser) on a libevent loop, written in pieces of varying sizes. Every
 * stream ends in exactly one disconnect, each delivered event is whole, and
 * the counters add up.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dozed/log.h"
#include "dozed/runtime.h"
#include "fuzz.h"

static struct event_base *base;
static struct runtime *rt;
static int listen_fd = -1;
static char dir[80];
static char sock_path[sizeof(dir) + 8];

struct seen {
	uint64_t events, disconnects;
};

static void on_event(const struct runtime_event *ev, void *userdata)
{
	struct seen *s = userdata;
	FUZZ_ASSERT(ev->id && ev->id[0]);
	FUZZ_ASSERT(s->disconnects == 0);
	s->events++;
}

static void on_disconnected(int err, const struct runtime_error *error, uint64_t retry_us,
			    void *userdata)
{
	struct seen *s = userdata;
	FUZZ_ASSERT(err < 0);
	FUZZ_ASSERT(error && error->message && error->message[0]);
	FUZZ_ASSERT(retry_us > 0);
	s->disconnects++;
}

static void remove_socket(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void setup(void)
{
	log_set_max_level(-1);
	fuzz_mkdtemp(dir, sizeof(dir), "dozed-fuzz-events");
	snprintf(sock_path, sizeof(sock_path), "%s/rt.sock", dir);
	atexit(remove_socket);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_ASSERT(listen_fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	FUZZ_ASSERT(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_ASSERT(listen(listen_fd, 4) == 0);
	base = event_base_new();
	FUZZ_ASSERT(base);
	struct runtime_config cfg;
	runtime_config_defaults(&cfg);
	cfg.socket_path = sock_path;
	/* No reconnection during a run: the stream is freed at its first break. */
	cfg.reconnect_min_us = cfg.reconnect_max_us = 3600 * 1000000ull;
	cfg.timeout_us = 5 * 1000000ull;
	FUZZ_ASSERT(runtime_new(base, &cfg, &rt) == 0);
}

static void turn(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base)
		setup();
	struct seen seen = {0};
	const struct runtime_events_ops ops = {.event = on_event, .disconnected = on_disconnected};
	struct runtime_events *ev = NULL;
	struct runtime_counters before;
	runtime_get_counters(rt, &before);
	uint64_t errors_before = before.errors[RUNTIME_CALL_EVENTS];
	FUZZ_ASSERT(runtime_events_new(rt, &ops, &seen, &ev) == 0);

	int fd = -1;
	for (int i = 0; i < 100000 && fd < 0; i++) {
		turn();
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	}
	FUZZ_ASSERT(fd >= 0);
	/* The whole request first: closing with it unread would reset the
	 * client instead of ending the stream. */
	char req[4096];
	size_t req_len = 0;
	while (!memmem(req, req_len, "\r\n\r\n", 4)) {
		turn();
		ssize_t n = read(fd, req + req_len, sizeof(req) - req_len);
		FUZZ_ASSERT(n != 0 && (n > 0 || errno == EAGAIN));
		if (n > 0)
			req_len += (size_t)n;
		FUZZ_ASSERT(req_len < sizeof(req));
	}
	FUZZ_ASSERT(memmem(req, req_len, "/events", 7));

	/* Pieces of 1 to 512 bytes, each read by the client before the next. */
	uint32_t seed = 2166136261u;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	size_t off = 0;
	while (off < size && seen.disconnects == 0) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 512;
		if (piece > size - off)
			piece = size - off;
		ssize_t n = write(fd, data + off, piece);
		if (n < 0 && errno == EAGAIN) {
			turn();
			continue;
		}
		if (n < 0) /* the client gave up on a bad answer */
			break;
		off += (size_t)n;
		turn();
	}
	close(fd);
	for (int i = 0; i < 100000 && seen.disconnects == 0; i++)
		turn();
	FUZZ_ASSERT(seen.disconnects == 1);

	struct runtime_events_counters c;
	runtime_events_get_counters(ev, &c);
	FUZZ_ASSERT(c.events == seen.events);
	struct runtime_counters rc;
	runtime_get_counters(rt, &rc);
	FUZZ_ASSERT(rc.errors[RUNTIME_CALL_EVENTS] == errors_before + 1);
	FUZZ_ASSERT(c.connects <= 1);
	FUZZ_ASSERT(c.connects == 1 || c.events == 0);
	runtime_events_free(ev);
	return 0;
}
