// SPDX-License-Identifier: MIT
/*
 * api_reorder LISTEN UPSTREAM DIR: a relay between dozed and a real runtime's
 * API socket that, when DIR/armed exists, gives the next stop the order of
 * answers a loaded Docker gives (it answers an inspect that waits for the
 * container's lock only once the exit is handled, just after the wait):
 *
 *   1. a kill is relayed: DIR/killed is written;
 *   2. inspects that come after it are held, unsent, and so are the events
 *      (the runtime says "die" once the exit is handled);
 *   3. the wait's answer is held until one inspect is held (or 5 s), then
 *      given with the events, and the held inspects are sent: the runtime
 *      answers "not running", as it would once the exit is handled;
 *   4. the start that follows is held until those inspects are answered and
 *      given (or dozed gave up on them), then sent; DIR/reordered says how
 *      many inspects were held and how many answers dozed took.
 *
 * Every other call, and every call when unarmed, is relayed as it comes.
 * Dozed sends one request per connection ("Connection: close").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAIRS_MAX    128
#define REQ_MAX	     (64 * 1024)
#define WAIT_HOLD_MS 5000

enum call { CALL_OTHER, CALL_INSPECT, CALL_KILL, CALL_WAIT, CALL_START, CALL_EVENTS };
enum phase { IDLE, KILLED, RELEASED };

struct pair {
	int cfd, ufd; /* dozed's side, the runtime's (-1 until the request goes) */
	char req[REQ_MAX];
	size_t req_len;
	bool sent;	/* the request went to the runtime */
	bool hold_req;	/* complete, held back */
	bool hold_resp; /* the runtime's answer is kept until released */
	bool released;	/* an inspect sent once the wait was given */
	char *resp;	/* kept answer */
	size_t resp_len;
	bool upstream_done; /* the runtime closed: the answer is whole */
	long long done_ms;  /* when */
	enum call call;
};

static struct pair pairs[PAIRS_MAX];
static size_t n_pairs;
static const char *upstream_path, *dir;
static enum phase phase = IDLE;
static unsigned held_inspects, taken_answers;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool armed(void)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/armed", dir);
	return access(p, F_OK) == 0;
}

static void note(const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (listening) {
		unlink(path);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
			close(fd);
			return -1;
		}
	} else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The whole request head (and its body) is in p->req. */
static bool request_whole(const struct pair *p)
{
	const char *end = memmem(p->req, p->req_len, "\r\n\r\n", 4);
	if (!end)
		return false;
	size_t head = (size_t)(end - p->req) + 4, body = 0;
	const char *cl = memmem(p->req, head, "Content-Length:", 15);
	if (cl)
		body = strtoul(cl + 15, NULL, 10);
	return p->req_len >= head + body;
}

static enum call request_call(const struct pair *p)
{
	char method[8] = "", target[512] = "";
	if (sscanf(p->req, "%7s %511s", method, target) != 2)
		return CALL_OTHER;
	if (strcmp(method, "GET") == 0 && strstr(target, "/events"))
		return CALL_EVENTS;
	const char *c = strstr(target, "/containers/");
	if (!c || strncmp(c, "/containers/json", 16) == 0)
		return CALL_OTHER;
	const char *op = strchr(c + 12, '/');
	if (!op)
		return CALL_OTHER;
	if (strcmp(method, "GET") == 0 && strncmp(op, "/json", 5) == 0)
		return CALL_INSPECT;
	if (strcmp(method, "POST") == 0 && strncmp(op, "/kill", 5) == 0)
		return CALL_KILL;
	if (strcmp(method, "POST") == 0 && strncmp(op, "/wait", 5) == 0)
		return CALL_WAIT;
	if (strcmp(method, "POST") == 0 && strncmp(op, "/start", 6) == 0)
		return CALL_START;
	return CALL_OTHER;
}

static void pair_close(struct pair *p)
{
	close(p->cfd);
	if (p->ufd >= 0)
		close(p->ufd);
	free(p->resp);
	*p = pairs[--n_pairs];
}

static int pair_send(struct pair *p)
{
	p->ufd = unix_socket(upstream_path, false);
	if (p->ufd < 0 || write(p->ufd, p->req, p->req_len) != (ssize_t)p->req_len)
		return -1;
	p->sent = true;
	p->hold_req = false;
	return 0;
}

static bool released_open(void)
{
	for (size_t i = 0; i < n_pairs; i++)
		if (pairs[i].released)
			return true;
	return false;
}

/* Decides what a whole request does, as the phase says. */
static int pair_route(struct pair *p)
{
	p->call = request_call(p);
	if (phase == IDLE && p->call == CALL_KILL && armed()) {
		phase = KILLED;
		held_inspects = taken_answers = 0;
		note("killed", "1\n");
	} else if (phase == KILLED && p->call == CALL_INSPECT) {
		p->hold_req = true;
		held_inspects++;
		return 0;
	} else if (phase == KILLED && p->call == CALL_WAIT) {
		p->hold_resp = true;
	} else if (phase == RELEASED && p->call == CALL_START) {
		p->hold_req = true;
		return 0;
	}
	return pair_send(p);
}

/* Gives the wait's answer and sends the held inspects. */
static void release_wait(struct pair *w)
{
	if (w->resp_len && write(w->cfd, w->resp, w->resp_len) < 0)
		perror("api_reorder: giving the wait's answer");
	w->hold_resp = false;
	phase = RELEASED;
	for (size_t i = 0; i < n_pairs; i++) {
		struct pair *e = &pairs[i];
		if (e->call == CALL_EVENTS && e->resp_len) {
			if (write(e->cfd, e->resp, e->resp_len) < 0)
				perror("api_reorder: giving the events");
			e->resp_len = 0;
		}
	}
	for (size_t i = 0; i < n_pairs; i++) {
		struct pair *p = &pairs[i];
		if (p->call == CALL_INSPECT && p->hold_req && pair_send(p) == 0)
			p->released = true;
	}
}

static void release_start(void)
{
	for (size_t i = 0; i < n_pairs; i++) {
		struct pair *p = &pairs[i];
		if (p->call != CALL_START || !p->hold_req)
			continue;
		pair_send(p);
		char text[128];
		snprintf(text, sizeof(text), "inspects held %u, answers taken %u\n", held_inspects,
			 taken_answers);
		char p2[512];
		snprintf(p2, sizeof(p2), "%s/armed", dir);
		unlink(p2);
		note("reordered", text);
		phase = IDLE;
	}
}

/* Reads what fd has into p (request) or relays/keeps it (answer). 0, or -1: close. */
static int pair_read(struct pair *p, bool from_client)
{
	char buf[65536];
	if (from_client) {
		if (p->sent) {
			ssize_t n = read(p->cfd, buf, sizeof(buf));
			if (n <= 0)
				return -1;
			return write(p->ufd, buf, (size_t)n) == n ? 0 : -1;
		}
		ssize_t n = read(p->cfd, p->req + p->req_len, sizeof(p->req) - p->req_len - 1);
		if (n <= 0)
			return -1; /* dozed gave up on it (or the request is too big) */
		p->req_len += (size_t)n;
		p->req[p->req_len] = '\0';
		if (!p->hold_req && request_whole(p))
			return pair_route(p);
		return 0;
	}
	ssize_t n = read(p->ufd, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (n == 0) {
		p->upstream_done = true;
		p->done_ms = now_ms();
		if (p->hold_resp)
			return 0;
		if (p->released)
			taken_answers++;
		return -1;
	}
	if (p->hold_resp || (p->call == CALL_EVENTS && phase == KILLED)) {
		char *r = realloc(p->resp, p->resp_len + (size_t)n);
		if (!r)
			return -1;
		memcpy(r + p->resp_len, buf, (size_t)n);
		p->resp = r;
		p->resp_len += (size_t)n;
		return 0;
	}
	return write(p->cfd, buf, (size_t)n) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s LISTEN_SOCKET UPSTREAM_SOCKET DIR\n", argv[0]);
		return 2;
	}
	upstream_path = argv[2];
	dir = argv[3];
	signal(SIGPIPE, SIG_IGN);
	int lfd = unix_socket(argv[1], true);
	if (lfd < 0) {
		fprintf(stderr, "api_reorder: cannot listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		struct pollfd fds[1 + 2 * PAIRS_MAX];
		size_t nf = 0;
		fds[nf++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (size_t i = 0; i < n_pairs; i++) {
			fds[nf++] = (struct pollfd){.fd = pairs[i].cfd, .events = POLLIN};
			fds[nf++] = (struct pollfd){
			    .fd = pairs[i].upstream_done ? -1 : pairs[i].ufd, .events = POLLIN};
		}
		if (poll(fds, nf, 50) < 0 && errno != EINTR)
			return 1;
		if ((fds[0].revents & POLLIN) && n_pairs < PAIRS_MAX) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				pairs[n_pairs++] = (struct pair){.cfd = c, .ufd = -1};
		}
		/* Back to front: a closed pair takes the last one's place. */
		for (size_t i = (nf - 1) / 2; i-- > 0;) {
			struct pair *p = &pairs[i];
			short cr = fds[1 + 2 * i].revents, ur = fds[2 + 2 * i].revents;
			int r = 0;
			if (cr & (POLLIN | POLLHUP | POLLERR))
				r = pair_read(p, true);
			if (r == 0 && (ur & (POLLIN | POLLHUP | POLLERR)))
				r = pair_read(p, false);
			if (r < 0)
				pair_close(p);
		}
		for (size_t i = 0; i < n_pairs; i++) {
			struct pair *w = &pairs[i];
			if (phase != KILLED || w->call != CALL_WAIT || !w->upstream_done)
				continue;
			if (held_inspects == 0 && now_ms() - w->done_ms < WAIT_HOLD_MS)
				continue;
			release_wait(w);
			pair_close(w); /* the answer is whole: dozed reads its end */
			break;
		}
		if (phase == RELEASED && !released_open())
			release_start();
	}
}
