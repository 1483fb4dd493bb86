// SPDX-License-Identifier: MIT
/*
 * splice(2) relay, after systemd-socket-proxyd and HAProxy: bytes move
 * socket → pipe → socket in the kernel. A pipe is only held while it holds
 * bytes the destination could not yet take; otherwise it goes back to a pool
 * shared by all relays, so thousands of mostly idle connections do not cost
 * four pipe fds each. Reading stops while a pipe is full: backpressure is the
 * pipe's capacity, and nothing is buffered in user space.
 */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dozed/clock.h"
#include "dozed/list.h"
#include "dozed/log.h"
#include "dozed/socket_util.h"
#include "conntrack.h"
#include "dozed/macro.h"

#define PIPE_SIZE	(1024 * 1024)
#define PIPE_POOL_MAX	64
#define ROUNDS_PER_WAKE 16
/*
 * A service just woken gets every held client at once, and a small accept
 * backlog (busybox httpd's is 9) drops the SYNs it has no room for. The
 * kernel would send them again only after 1 s, then 3 s, 7 s: instead a
 * connect not answered within a few milliseconds (the backend is on this
 * host) is started again, waiting twice as long each time, up to a cap.
 */
#define CONNECT_FIRST_WAIT_US (20 * 1000)
#define CONNECT_MAX_WAIT_US   (320 * 1000)
#define CONNECT_TIMEOUT_US    (10 * 1000000ull)

struct pipe_pair {
	int fd[2];
};

struct relay_dir {
	struct relay *relay;
	int from, to;
	struct pipe_pair pipe; /* fd[0] < 0 when none is held */
	size_t in_pipe;
	bool eof;		    /* the source sent FIN */
	bool done;		    /* FIN passed on, pipe empty */
	bool want_read, want_write; /* which persistent event is added */
	struct event *readable, *writable;
	uint64_t *bytes;
};

struct relay {
	struct relay_set *set;
	LIST_FIELDS(struct relay, relays); /* the set's */
	int client_fd, backend_fd;
	struct relay_dir up;	 /* client → backend */
	struct relay_dir down;	 /* backend → client */
	struct event *connected; /* backend connect in progress */
	struct event *lifetime;
	struct sockaddr_storage dst;
	uint64_t connect_started_us, connect_wait_us;
	uint64_t service_id;
	/* The client's last bytes went to the backend, which has not answered
	 * since: the service is in use even while it sends nothing. */
	bool awaiting_answer;
	/* The wake the client was held through, until this relay passed its
	 * first backend byte: NULL after, so the splices test one pointer. */
	struct relay_wake *wake;
	uint64_t accepted_us;
};

struct relay_wake {
	size_t refs;
	bool reported;
};

struct relay_set {
	struct event_base *base;
	struct conntrack *conntrack;
	uint32_t mark;
	uint64_t max_lifetime_us;
	struct relay_stats *stats;
	struct relay *relays;
	struct pipe_pair pool[PIPE_POOL_MAX];
	size_t pooled;
	void (*first_response)(void *ud, uint64_t service_id, uint64_t us);
	void *first_response_ud;
};

struct relay_wake *relay_wake_new(void)
{
	struct relay_wake *wake = calloc(1, sizeof(*wake));
	if (!wake) {
		log_error_errno(ENOMEM, "Failed to allocate a wake's first answer");
		return NULL;
	}
	wake->refs = 1;
	return wake;
}

void relay_wake_unref(struct relay_wake *wake)
{
	if (wake && --wake->refs == 0)
		free(wake);
}

void relay_set_on_first_response(struct relay_set *set,
				 void (*fn)(void *ud, uint64_t service_id, uint64_t us), void *ud)
{
	set->first_response = fn;
	set->first_response_ud = ud;
}

/* r passed its first backend byte to its client: the wake's first answer,
 * unless another relay of the wake reported it already. */
static void relay_report_first_response(struct relay *r)
{
	struct relay_set *set = r->set;
	struct relay_wake *wake = r->wake;
	r->wake = NULL;
	bool first = !wake->reported;
	wake->reported = true;
	relay_wake_unref(wake);
	/* Last: the daemon's, and the relay stays as it is. */
	if (first && set->first_response)
		set->first_response(set->first_response_ud, r->service_id,
				    clock_monotonic_us() - r->accepted_us);
}

static int pipe_take(struct relay_set *set, struct pipe_pair *p)
{
	if (set->pooled > 0) {
		*p = set->pool[--set->pooled];
		return 0;
	}
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* A larger pipe moves more per splice; the default 64 KiB still works. */
	(void)fcntl(p->fd[1], F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

/* Only empty pipes come back. */
static void pipe_give_back(struct relay_set *set, struct pipe_pair *p)
{
	if (p->fd[0] < 0)
		return;
	if (set->pooled < PIPE_POOL_MAX) {
		set->pool[set->pooled++] = *p;
	} else {
		close(p->fd[0]);
		close(p->fd[1]);
	}
	p->fd[0] = p->fd[1] = -1;
}

static void relay_free(struct relay *r, bool reset)
{
	struct relay_set *set = r->set;
	struct relay_dir *dirs[] = {&r->up, &r->down};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct relay_dir *d = dirs[i];
		if (d->readable)
			event_free(d->readable);
		if (d->writable)
			event_free(d->writable);
		if (d->pipe.fd[0] >= 0) {
			/* Bytes still in it are lost with the connection. */
			close(d->pipe.fd[0]);
			close(d->pipe.fd[1]);
		}
	}
	if (r->connected)
		event_free(r->connected);
	if (r->lifetime)
		event_free(r->lifetime);
	/* Its client leaves before an answer: the wake reports nothing for it. */
	relay_wake_unref(r->wake);
	if (reset) {
		conntrack_reset_client(set->conntrack, r->client_fd);
		socket_close_with_reset(r->backend_fd);
		set->stats->reset++;
	} else {
		close(r->client_fd);
		if (r->backend_fd >= 0)
			close(r->backend_fd);
	}
	LIST_REMOVE(relays, set->relays, r);
	set->stats->relayed_now--;
	free(r);
}

enum pump_result { PUMP_WAIT, PUMP_DONE, PUMP_ERROR };

/* The events are persistent and only change with the interest: a bulk
 * transfer waits on the same side again and again without an epoll_ctl. */
static void relay_dir_wait_for(struct relay_dir *d, bool read, bool write)
{
	if (read != d->want_read)
		read ? event_add(d->readable, NULL) : event_del(d->readable);
	if (write != d->want_write)
		write ? event_add(d->writable, NULL) : event_del(d->writable);
	d->want_read = read;
	d->want_write = write;
}

static enum pump_result relay_dir_pump(struct relay_dir *d)
{
	struct relay_set *set = d->relay->set;
	for (int round = 0; round < ROUNDS_PER_WAKE; round++) {
		if (d->in_pipe > 0) {
			ssize_t n = splice(d->pipe.fd[0], NULL, d->to, NULL, d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EAGAIN) {
					relay_dir_wait_for(d, false, true);
					return PUMP_WAIT;
				}
				if (errno == EINTR)
					continue;
				return PUMP_ERROR;
			}
			d->in_pipe -= (size_t)n;
			*d->bytes += (uint64_t)n;
			if (n > 0) {
				struct relay *r = d->relay;
				r->awaiting_answer = d == &r->up;
				/* NULL but for the first answer of a woken client. */
				if (r->wake && d == &r->down)
					relay_report_first_response(r);
			}
			continue;
		}
		pipe_give_back(set, &d->pipe);
		if (d->eof) {
			/* A backend's FIN is its answer too. */
			if (d == &d->relay->down)
				d->relay->awaiting_answer = false;
			/* Half-close: pass the FIN on, keep the other direction going. */
			(void)shutdown(d->to, SHUT_WR);
			d->done = true;
			relay_dir_wait_for(d, false, false);
			return PUMP_DONE;
		}
		if (pipe_take(set, &d->pipe) < 0)
			return PUMP_ERROR;
		ssize_t n = splice(d->from, NULL, d->pipe.fd[1], NULL, PIPE_SIZE,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EAGAIN) {
				pipe_give_back(set, &d->pipe);
				relay_dir_wait_for(d, true, false);
				return PUMP_WAIT;
			}
			if (errno == EINTR)
				continue;
			return PUMP_ERROR;
		}
		if (n == 0)
			d->eof = true;
		d->in_pipe += (size_t)n;
	}
	/* Let other connections run; come back through the loop. */
	event_active(d->in_pipe > 0 ? d->writable : d->readable, EV_READ | EV_WRITE, 0);
	return PUMP_WAIT;
}

/* Returns true when the relay ended (and was freed). */
static bool relay_dir_run(struct relay_dir *d)
{
	struct relay *r = d->relay;
	enum pump_result res = relay_dir_pump(d);
	if (res == PUMP_ERROR) {
		/* A reset (or any failure) on one side resets the other. */
		relay_free(r, true);
		return true;
	}
	if (r->up.done && r->down.done) {
		relay_free(r, false);
		return true;
	}
	return false;
}

static void on_dir_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)relay_dir_run(arg);
}

static void on_lifetime_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_free(arg, false);
}

static int relay_dir_init(struct relay *r, struct relay_dir *d, int from, int to, uint64_t *bytes)
{
	struct event_base *base = r->set->base;
	*d = (struct relay_dir){.relay = r, .from = from, .to = to, .bytes = bytes};
	d->pipe.fd[0] = d->pipe.fd[1] = -1;
	d->readable = event_new(base, from, EV_READ | EV_PERSIST, on_dir_ready, d);
	d->writable = event_new(base, to, EV_WRITE | EV_PERSIST, on_dir_ready, d);
	return d->readable && d->writable ? 0 : -ENOMEM;
}

static void on_backend_connected(evutil_socket_t fd, short what, void *arg);

/* Starts (or starts again) the backend connect and waits connect_wait_us for it. */
static int relay_connect_attempt(struct relay *r)
{
	struct relay_set *set = r->set;
	if (r->connected) {
		event_free(r->connected);
		r->connected = NULL;
	}
	if (r->backend_fd >= 0)
		close(r->backend_fd);
	r->backend_fd = socket_connect_marked(&r->dst, set->mark);
	if (r->backend_fd < 0)
		return r->backend_fd;
	struct timeval wait = timeval_from_us(r->connect_wait_us);
	r->connected = event_new(set->base, r->backend_fd, EV_WRITE, on_backend_connected, r);
	if (!r->connected || event_add(r->connected, &wait) < 0)
		return -ENOMEM;
	return 0;
}

static void relay_connect_failed(struct relay *r, int err)
{
	char addr[64];
	log_debug_errno(err, "Relay could not reach its backend %s",
			sockaddr_to_string(&r->dst, addr, sizeof(addr)));
	r->set->stats->backend_connect_failed++;
	relay_free(r, true);
}

static void on_backend_connected(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct relay *r = arg;
	int err = socket_connect_result(fd);
	if (err == -EINPROGRESS) {
		/* No answer to the SYN: most likely dropped by a full backlog. */
		if (clock_monotonic_us() - r->connect_started_us >= CONNECT_TIMEOUT_US) {
			relay_connect_failed(r, ETIMEDOUT);
			return;
		}
		r->connect_wait_us = r->connect_wait_us * 2 < CONNECT_MAX_WAIT_US
					 ? r->connect_wait_us * 2
					 : CONNECT_MAX_WAIT_US;
		r->set->stats->backend_connect_retries++;
		err = relay_connect_attempt(r);
		if (err < 0)
			relay_connect_failed(r, -err);
		return;
	}
	if (err < 0) {
		relay_connect_failed(r, -err);
		return;
	}
	event_free(r->connected);
	r->connected = NULL;
	if (relay_dir_init(r, &r->up, r->client_fd, r->backend_fd,
			   &r->set->stats->bytes_to_backend) < 0 ||
	    relay_dir_init(r, &r->down, r->backend_fd, r->client_fd,
			   &r->set->stats->bytes_to_client) < 0) {
		log_error_errno(ENOMEM, "Failed to set up a relay");
		relay_free(r, true);
		return;
	}
	if (!relay_dir_run(&r->up))
		relay_dir_run(&r->down);
}

int relay_start(struct relay_set *set, uint64_t service_id, int client_fd,
		const struct sockaddr_storage *dst, struct relay_wake *wake, uint64_t accepted_us)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (!r) {
		socket_close_with_reset(client_fd);
		return log_error_errno(ENOMEM, "Failed to allocate a relay");
	}
	r->set = set;
	r->service_id = service_id;
	r->client_fd = client_fd;
	if (wake) {
		wake->refs++;
		r->wake = wake;
		r->accepted_us = accepted_us;
	}
	r->up.pipe.fd[0] = r->up.pipe.fd[1] = -1;
	r->down.pipe.fd[0] = r->down.pipe.fd[1] = -1;
	LIST_PREPEND(relays, set->relays, r);
	set->stats->relayed_now++;
	set->stats->relayed_total++;

	r->backend_fd = -1;
	r->dst = *dst;
	r->connect_started_us = clock_monotonic_us();
	r->connect_wait_us = CONNECT_FIRST_WAIT_US;
	int err = relay_connect_attempt(r);
	if (err < 0) {
		char addr[64];
		set->stats->backend_connect_failed++;
		relay_free(r, true);
		return log_warning_errno(err, "Relay failed to connect to %s",
					 sockaddr_to_string(dst, addr, sizeof(addr)));
	}
	if (set->max_lifetime_us > 0) {
		struct timeval tv = timeval_from_us(set->max_lifetime_us);
		r->lifetime = evtimer_new(set->base, on_lifetime_over, r);
		if (!r->lifetime || evtimer_add(r->lifetime, &tv) < 0) {
			relay_free(r, true);
			return log_error_errno(ENOMEM, "Failed to set a relay's lifetime");
		}
	}
	return 0;
}

size_t relay_set_count_waiting(const struct relay_set *set, uint64_t service_id)
{
	size_t n = 0;
	const struct relay *r;
	LIST_FOREACH (relays, r, set->relays)
		if (r->service_id == service_id && (r->connected || r->awaiting_answer))
			n++;
	return n;
}

int relay_set_new(struct event_base *base, uint32_t mark, uint64_t max_lifetime_us,
		  struct relay_stats *stats, struct conntrack *ct, struct relay_set **out)
{
	struct relay_set *set = calloc(1, sizeof(*set));
	if (!set)
		return log_error_errno(ENOMEM, "Failed to allocate the relay set");
	set->base = base;
	set->mark = mark;
	set->max_lifetime_us = max_lifetime_us;
	set->stats = stats;
	set->conntrack = ct;
	*out = set;
	return 0;
}

void relay_set_free(struct relay_set *set)
{
	if (!set)
		return;
	while (set->relays)
		relay_free(set->relays, true);
	while (set->pooled > 0) {
		struct pipe_pair *p = &set->pool[--set->pooled];
		close(p->fd[0]);
		close(p->fd[1]);
	}
	free(set);
}
