// SPDX-License-Identifier: MIT
#include "evloop.h"

#include <event2/event.h>

#include "harness.h"

struct wait_state {
	struct event_base *base;
	bool (*pred)(void *);
	void *arg;
	bool met;
};

static void on_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct wait_state *s = arg;
	if (s->pred(s->arg)) {
		s->met = true;
		event_base_loopbreak(s->base);
	}
}

void evloop_run_until(struct event_base *base, bool (*pred)(void *), void *arg, unsigned timeout_ms,
		      const char *what)
{
	struct wait_state s = {.base = base, .pred = pred, .arg = arg};
	if (pred(arg))
		return;
	struct event *check = event_new(base, -1, EV_PERSIST, on_check, &s);
	struct timeval every = {.tv_sec = 0, .tv_usec = 2000};
	if (!check || event_add(check, &every) < 0)
		FAIL("cannot add a timer to the event loop");
	uint64_t deadline = test_now_ms() + timeout_ms;
	while (!s.met && test_now_ms() < deadline) {
		struct timeval slice = {.tv_sec = 0, .tv_usec = 100000};
		event_base_loopexit(base, &slice);
		event_base_dispatch(base);
	}
	event_free(check);
	if (!s.met)
		FAIL("timed out after %u ms waiting for %s", timeout_ms, what);
}
