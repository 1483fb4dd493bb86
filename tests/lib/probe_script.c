// SPDX-License-Identifier: MIT
#include "probe_script.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dozed/activator.h"
#include "evloop.h"
#include "harness.h"
#include "tcp.h"

/* PostgreSQL 15's answers, as recorded for tests/unit/test_probe_answer.c. */
char *pg_answer(const char *name, size_t *len)
{
	char path[128];
	snprintf(path, sizeof(path), "unit/fixtures/probe/%s.bin", name);
	char *b = fixture_read(path, len);
	test_defer(free, b);
	return b;
}

static void conn_drop(struct script *s, size_t i)
{
	close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->n];
}

/* One turn of connection i: false once it is closed. */
static bool conn_turn(struct script *s, size_t i, short revents)
{
	struct conn *c = &s->conns[i];
	if (c->state == CONN_STREAM && (revents & POLLOUT)) {
		static const char junk[4096] = {'+'}; /* "+" then NULs: a line without end */
		ssize_t w = send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EAGAIN)
			return false;
		if (w > 0)
			s->streamed += (size_t)w;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return true;
	char buf[512];
	ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (r < 0 && errno == EAGAIN)
		return true;
	if (r <= 0)
		return false;
	if (c->state == CONN_NEW)
		c->state = buf[0] == 'R' ? CONN_CLIENT : CONN_LINGER;
	if (c->state == CONN_CLIENT) {
		size_t n =
		    (size_t)r < sizeof(c->line) - c->len ? (size_t)r : sizeof(c->line) - c->len;
		memcpy(c->line + c->len, buf, n);
		c->len += n;
		if (!memchr(c->line, '\n', c->len))
			return true;
		c->line[0] = 'A';
		if (tcp_write_all(c->fd, c->line, c->len) == 0)
			s->served++;
		return false;
	}
	if (c->len++ > 0)
		return true; /* a probe's request, answered at its first bytes */
	int phase = s->phase;
	s->probes[phase]++;
	if (phase == 1) {
		if (!s->ready_us)
			s->ready_us = now_us();
		tcp_write_all(c->fd, s->ready, s->ready_len);
	} else if (s->stream) {
		c->state = CONN_STREAM;
	} else if (s->not_ready) {
		tcp_write_all(c->fd, s->not_ready, s->not_ready_len);
	}
	return true;
}

static void *script_main(void *arg)
{
	struct script *s = arg;
	while (!s->stop) {
		struct pollfd pfds[MAX_CONNS + 1];
		pfds[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		for (size_t i = 0; i < s->n; i++)
			pfds[i + 1] = (struct pollfd){
			    .fd = s->conns[i].fd,
			    .events =
				(short)(POLLIN | (s->conns[i].state == CONN_STREAM ? POLLOUT : 0))};
		if (poll(pfds, s->n + 1, 10) < 0)
			continue;
		for (size_t i = s->n; i-- > 0;)
			if (pfds[i + 1].revents && !conn_turn(s, i, pfds[i + 1].revents))
				conn_drop(s, i);
		if ((pfds[0].revents & POLLIN) && s->n < MAX_CONNS) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0)
				s->conns[s->n++] = (struct conn){.fd = fd};
		}
	}
	while (s->n)
		conn_drop(s, s->n - 1);
	close(s->lfd);
	return NULL;
}

/* On 127.0.0.1:SERVICE_PORT, unless s->lfd listens already. */
void script_start(struct script *s, struct thread *t)
{
	if (s->lfd <= 0)
		s->lfd = tcp_listen("127.0.0.1", SERVICE_PORT);
	ASSERT_TRUE(s->lfd >= 0);
	thread_start(t, script_main, s);
}

void script_stop(struct fixture *f, struct script *s, struct thread *t)
{
	s->stop = true;
	thread_finish(f, t, 5000, "the scripted server to stop");
}

void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = tcp_connect("127.0.0.1", SERVICE_PORT, 0);
	if (fd < 0) {
		c->error = fd;
		return NULL;
	}
	char got[16] = {0};
	ssize_t r = tcp_write_all(fd, "R0\n", 3);
	if (r == 0)
		r = tcp_read_all(fd, got, sizeof(got));
	if (r == 3 && memcmp(got, "A0\n", 3) == 0)
		c->answered = 1;
	else
		c->error = r < 0 ? (int)r : -EPROTO;
	close(fd);
	return NULL;
}

bool held_one(void *arg)
{
	return activator_service_held(((struct fixture *)arg)->act, SERVICE_ID) == 1;
}

bool probes_answered(void *arg)
{
	struct script *s = arg;
	return s->probes[0] >= 3;
}

bool ready_or_failed(void *arg)
{
	struct fixture *f = arg;
	return f->ready || f->failed;
}

/* A fixture whose test starts the probe itself, once the client is held. */
struct fixture *held_fixture(uint64_t wake_timeout_ms, struct client *c, struct thread *ct)
{
	struct fixture *f = fixture_new(wake_timeout_ms, true);
	f->start_on_wake = false;
	thread_start(ct, client_main, c);
	evloop_run_until(f->base, held_one, f, 5000, "the client to be held");
	return f;
}

void probe_with(struct fixture *f, enum probe_kind kind, bool during_stop)
{
	struct probe_spec spec = {.kind = kind, .http_path = "/"};
	struct activator_probe probe = {.netns_fd = -1, .spec = &spec, .during_stop = during_stop};
	ASSERT_OK(activator_service_probe(f->act, SERVICE_ID, &probe));
}
