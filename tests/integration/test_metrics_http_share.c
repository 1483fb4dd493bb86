// SPDX-License-Identifier: MIT
/*
 * Scrapes of one shared render: the listener hands each scrape a reference
 * to the text it was given, never a copy, so that stalled scrapers of one
 * render cost one text however many they are. Asserted by the text's
 * reference count and the bytes each scraper reads, never by time or memory.
 */
#include <string.h>

#include "metrics_http_fixture.h"
#define SHARERS 50

struct sharer {
	pthread_t tid;
	atomic_bool done;
	const atomic_bool *release;
	char err[160];
	int status;
	size_t body_len, content_length;
	uint64_t hash;
};

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}
#define FNV_SEED 14695981039346656037ull

/* Asks with a receive buffer of 64 KiB (so its answer cannot leave the
 * listener's buffers), reads nothing until released, then reads the whole
 * answer, hashing its body as it comes. */
static void *sharer_thread(void *arg)
{
	struct sharer *s = arg;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rcvbuf = 65536;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 20};
	char buf[65536 + 1];
	size_t head = 0;
	ssize_t n;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send_all(fd, GET_METRICS) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot ask: %s", strerror(errno));
		goto out;
	}
	for (uint64_t end = test_now_ms() + 3 * WAIT_MS;
	     !atomic_load(s->release) && test_now_ms() < end;)
		usleep(1000);
	s->hash = FNV_SEED;
	/* The head, then the body hashed. */
	while ((n = recv(fd, buf + head, sizeof(buf) - 1 - head, 0)) > 0) {
		head += (size_t)n;
		buf[head] = '\0';
		char *end = strstr(buf, "\r\n\r\n"), cl[32];
		if (!end && head < sizeof(buf) - 1)
			continue;
		if (!end || sscanf(buf, "HTTP/1.%*d %d", &s->status) != 1) {
			snprintf(s->err, sizeof(s->err), "no HTTP answer: %.60s", buf);
			goto out;
		}
		header_value(buf, "\r\nContent-Length: ", cl, sizeof(cl));
		s->content_length = strtoul(cl, NULL, 10);
		s->body_len = head - (size_t)(end + 4 - buf);
		s->hash = fnv1a(s->hash, end + 4, s->body_len);
		break;
	}
	while (s->status && (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		s->body_len += (size_t)n;
		s->hash = fnv1a(s->hash, buf, (size_t)n);
	}
	if (n < 0)
		snprintf(s->err, sizeof(s->err), "recv: %s", strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	atomic_store(&s->done, true);
	return NULL;
}

struct sharers {
	struct fixture *f;
	struct sharer s[SHARERS];
	atomic_bool release;
};

static bool sharers_answered(void *arg)
{
	return metrics_http_counters(((struct sharers *)arg)->f->h).scrapes == SHARERS;
}

static bool sharers_done(void *arg)
{
	struct sharers *sh = arg;
	for (size_t i = 0; i < SHARERS; i++)
		if (!atomic_load(&sh->s[i].done))
			return false;
	return true;
}

static bool no_conns(void *arg)
{
	return metrics_http_counters(((struct fixture *)arg)->h).conns_now == 0;
}

/* More than the kernel's largest send buffer: an answer stays partly in
 * the listener's own buffers until it is read. */
static size_t body_beyond_socket_buffers(void)
{
	unsigned long lo = 0, mid = 0, max = 4ul << 20;
	FILE *fp = fopen("/proc/sys/net/ipv4/tcp_wmem", "re");
	if (fp) {
		if (fscanf(fp, "%lu %lu %lu", &lo, &mid, &max) != 3)
			max = 4ul << 20;
		fclose(fp);
	}
	return max + (1u << 20);
}

/*
 * Stalled scrapers of one render hold references to its text, not copies of
 * it: while 50 of them have their answers pending, the one text has 51
 * references (theirs and the fixture's) and the render ran once; read at the
 * end, all 50 answers are that text, whole.
 */
TEST(test_50_stalled_scrapers_of_one_render_share_its_text)
{
	struct fixture *f = fixture_new(body_beyond_socket_buffers());
	f->share = true;
	struct sharers *sh = calloc(1, sizeof(*sh));
	if (!sh)
		FAIL("out of memory");
	test_defer(free, sh);
	sh->f = f;
	for (size_t i = 0; i < SHARERS; i++) {
		sh->s[i].release = &sh->release;
		if (pthread_create(&sh->s[i].tid, NULL, sharer_thread, &sh->s[i]) != 0)
			FAIL("pthread_create failed");
	}
	evloop_run_until(f->base, sharers_answered, sh, 3 * WAIT_MS, "50 scrapes answered");
	unsigned renders = atomic_load(&f->renders), refs = f->shared ? f->shared->refs : 0;
	/* The threads read and leave before anything is judged. */
	atomic_store(&sh->release, true);
	evloop_run_until(f->base, sharers_done, sh, 6 * WAIT_MS, "the 50 answers read");
	for (size_t i = 0; i < SHARERS; i++)
		pthread_join(sh->s[i].tid, NULL);
	ASSERT_EQ_U(renders, 1);
	ASSERT_EQ_U(refs, SHARERS + 1);
	uint64_t want = fnv1a(FNV_SEED, f->shared->text, f->shared->len);
	for (size_t i = 0; i < SHARERS; i++) {
		struct sharer *s = &sh->s[i];
		if (s->err[0])
			FAIL("scraper %zu: %s", i, s->err);
		if (s->status != 200 || s->content_length != f->shared->len ||
		    s->body_len != f->shared->len || s->hash != want)
			FAIL("scraper %zu: status %d, body %zu bytes (Content-Length %zu) of %zu, "
			     "%s",
			     i, s->status, s->body_len, s->content_length, f->shared->len,
			     s->hash == want ? "same bytes" : "other bytes");
	}
	evloop_run_until(f->base, no_conns, f, WAIT_MS, "the 50 connections closed");
	ASSERT_EQ_U(f->shared->refs, 1);
}
