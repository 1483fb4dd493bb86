// SPDX-License-Identifier: MIT
/*
 * The metrics listener under load: a scraper leaving mid-answer, one that
 * never reads, 100 at once, more than the cap, 2000 silent ones. What is
 * asserted is what happened and in which order (answers complete, the timer
 * on the same loop ticking while scrapes are pending), never how long it took.
 */
#include <dirent.h>

#include "metrics_http_fixture.h"
#include "nofile.h"

struct leaver {
	pthread_t tid;
	atomic_bool done, release;
	bool reset; /* leave with a RST rather than a FIN */
	char err[160];
};

/* Asks for a big answer, reads a few bytes of it and leaves. */
static void *leaver_thread(void *arg)
{
	struct leaver *l = arg;
	int fd = client_connect();
	char buf[64];
	if (fd < 0 || send_all(fd, GET_METRICS) < 0 || recv(fd, buf, sizeof(buf), 0) <= 0)
		snprintf(l->err, sizeof(l->err), "cannot start the scrape: %s", strerror(errno));
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	if (l->reset)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (fd >= 0)
		close(fd);
	atomic_store(&l->done, true);
	return NULL;
}

/* Asks for a big answer and reads none of it until released. */
static void *sleeper_thread(void *arg)
{
	struct leaver *l = arg;
	int fd = client_connect();
	if (fd < 0 || send_all(fd, GET_METRICS) < 0)
		snprintf(l->err, sizeof(l->err), "cannot start the scrape: %s", strerror(errno));
	/* Well past the listener's timeout: it is the listener that closes. */
	for (uint64_t end = test_now_ms() + 45000;
	     !atomic_load(&l->release) && test_now_ms() < end;)
		usleep(1000);
	if (fd >= 0)
		close(fd);
	atomic_store(&l->done, true);
	return NULL;
}

static bool leaver_done(void *arg)
{
	return atomic_load(&((struct leaver *)arg)->done);
}

struct until {
	struct fixture *f;
	unsigned ticks;
	size_t conns;
};

static bool ticked(void *arg)
{
	struct until *u = arg;
	return atomic_load(&u->f->ticks) >= u->ticks;
}

static bool conns_are(void *arg)
{
	struct until *u = arg;
	return metrics_http_counters(u->f->h).conns_now == u->conns;
}

static bool rendered_once(void *arg)
{
	return atomic_load(&((struct fixture *)arg)->renders) >= 1;
}

/* The timer on the listener's loop ticks n more times. */
static void assert_loop_ticks(struct fixture *f, unsigned n, const char *while_what)
{
	struct until u = {.f = f, .ticks = atomic_load(&f->ticks) + n};
	evloop_run_until(f->base, ticked, &u, WAIT_MS, while_what);
}

static void wait_conns(struct fixture *f, size_t n, const char *what)
{
	struct until u = {.f = f, .conns = n};
	evloop_run_until(f->base, conns_are, &u, WAIT_MS, what);
}

static void leave_mid_answer(bool reset)
{
	struct fixture *f = fixture_new(BIG);
	struct leaver l = {.reset = reset};
	if (pthread_create(&l.tid, NULL, leaver_thread, &l) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, leaver_done, &l, WAIT_MS, "the scraper to leave");
	pthread_join(l.tid, NULL);
	if (l.err[0])
		FAIL("%s", l.err);
	/* Its connection and its buffered answer go; the loop goes on. */
	wait_conns(f, 0, "the left scrape's connection to be closed");
	assert_loop_ticks(f, 5, "the timer after a scraper left mid-answer");
	assert_scraped(scrape(f, GET_METRICS));
	ASSERT_EQ_U(atomic_load(&f->renders), 2);
}

TEST(test_a_scraper_leaving_mid_answer_with_a_fin_costs_nothing_after)
{
	leave_mid_answer(false);
}

TEST(test_a_scraper_leaving_mid_answer_with_a_reset_costs_nothing_after)
{
	leave_mid_answer(true);
}

TEST(test_a_scraper_that_never_reads_does_not_block_the_loop)
{
	struct fixture *f = fixture_new(BIG);
	struct leaver l = {0};
	if (pthread_create(&l.tid, NULL, sleeper_thread, &l) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, rendered_once, f, WAIT_MS, "the slow scrape's answer");
	/* Its answer waits in the loop's buffers, the loop does not. */
	assert_loop_ticks(f, 5, "the timer while a scraper does not read");
	assert_scraped(scrape(f, GET_METRICS));
	ASSERT_EQ_U(metrics_http_counters(f->h).conns_now, 1);
	ASSERT_TRUE(!atomic_load(&l.done));
	atomic_store(&l.release, true);
	evloop_run_until(f->base, leaver_done, &l, WAIT_MS, "the slow scraper to leave");
	pthread_join(l.tid, NULL);
	if (l.err[0])
		FAIL("%s", l.err);
	wait_conns(f, 0, "the slow scrape's connection to be closed");
}

#define STORM 100

struct storm {
	pthread_t tid;
	atomic_bool done;
	struct fixture *f;
	struct job jobs[STORM];
	char err[160];
};

/*
 * STORM requests sent at once; their answers read only once the loop's timer
 * has ticked with all of them pending, then each to its end.
 */
static void *storm_thread(void *arg)
{
	struct storm *s = arg;
	int fds[STORM];
	size_t n = 0;
	for (; n < STORM; n++) {
		fds[n] = client_connect();
		if (fds[n] < 0 || send_all(fds[n], GET_METRICS) < 0) {
			snprintf(s->err, sizeof(s->err), "scrape %zu: %s", n, strerror(errno));
			break;
		}
	}
	atomic_store(&s->f->storm_pending, true);
	for (uint64_t end = test_now_ms() + WAIT_MS;
	     atomic_load(&s->f->storm_ticks) < 3 && test_now_ms() < end;)
		usleep(1000);
	for (size_t i = 0; i < n; i++)
		read_answer(&s->jobs[i], fds[i]);
	atomic_store(&s->f->storm_pending, false);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	atomic_store(&s->done, true);
	return NULL;
}

static bool storm_done(void *arg)
{
	return atomic_load(&((struct storm *)arg)->done);
}

TEST(test_100_concurrent_scrapes_all_complete_while_the_loop_ticks)
{
	struct fixture *f = fixture_new(200 * 1024);
	struct storm *s = calloc(1, sizeof(*s));
	if (!s)
		FAIL("out of memory");
	test_defer(free, s);
	s->f = f;
	if (pthread_create(&s->tid, NULL, storm_thread, s) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, storm_done, s, 3 * WAIT_MS, "100 concurrent scrapes");
	pthread_join(s->tid, NULL);
	if (s->err[0])
		FAIL("%s", s->err);
	ASSERT_GE_U(atomic_load(&f->storm_ticks), 3);
	for (size_t i = 0; i < STORM; i++) {
		if (s->jobs[i].err[0])
			FAIL("scrape %zu: %s", i, s->jobs[i].err);
		assert_scraped(&s->jobs[i]);
	}
	ASSERT_EQ_U(atomic_load(&f->renders), STORM);
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, STORM);
}

struct crowd {
	pthread_t tid;
	atomic_bool done, over_sent, release;
	struct fixture *f;
	struct job after;
	size_t kept;
	char err[160];
};

#define GET_KEEP "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"

/* METRICS_HTTP_MAX_CONNS kept-alive connections, one more waiting in the
 * kernel's backlog with its request, then one fewer. */
static void *crowd_thread(void *arg)
{
	struct crowd *c = arg;
	int fds[METRICS_HTTP_MAX_CONNS];
	size_t n = 0;
	for (; n < METRICS_HTTP_MAX_CONNS; n++) {
		struct job j = {0};
		fds[n] = client_connect();
		if (fds[n] < 0 || send_all(fds[n], GET_KEEP) < 0)
			break;
		read_answer_ex(&j, fds[n], true);
		if (j.status != 200)
			break;
	}
	c->kept = n;
	int over = n == METRICS_HTTP_MAX_CONNS ? client_connect() : -1;
	if (over >= 0 && send_all(over, GET_METRICS) == 0)
		atomic_store(&c->over_sent, true);
	for (uint64_t end = test_now_ms() + WAIT_MS;
	     !atomic_load(&c->release) && test_now_ms() < end;)
		usleep(1000);
	/* One leaves: the one waiting is accepted and served. */
	if (n > 0)
		close(fds[--n]);
	if (over >= 0) {
		read_answer(&c->after, over);
		close(over);
	}
	while (n > 0)
		close(fds[--n]);
	atomic_store(&c->done, true);
	return NULL;
}

static bool crowd_done(void *arg)
{
	return atomic_load(&((struct crowd *)arg)->done);
}

static bool crowd_over_sent(void *arg)
{
	struct crowd *c = arg;
	return atomic_load(&c->over_sent) || atomic_load(&c->done);
}

TEST(test_over_the_cap_a_connection_waits_unaccepted_until_one_leaves)
{
	struct fixture *f = fixture_new(100);
	struct crowd *c = calloc(1, sizeof(*c));
	if (!c)
		FAIL("out of memory");
	test_defer(free, c);
	c->f = f;
	if (pthread_create(&c->tid, NULL, crowd_thread, c) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, crowd_over_sent, c, 3 * WAIT_MS, "the crowd of scrapers");
	/* The listener accepts nothing at the cap: the request waits unanswered
	 * however long the loop runs. */
	assert_loop_ticks(f, 50, "the timer at the cap");
	struct metrics_http_counters at_cap = metrics_http_counters(f->h);
	atomic_store(&c->release, true);
	evloop_run_until(f->base, crowd_done, c, 3 * WAIT_MS, "the one over the cap");
	pthread_join(c->tid, NULL);
	ASSERT_EQ_U(c->kept, METRICS_HTTP_MAX_CONNS);
	ASSERT_TRUE(atomic_load(&c->over_sent));
	ASSERT_EQ_U(at_cap.conns_now, METRICS_HTTP_MAX_CONNS);
	ASSERT_EQ_U(at_cap.scrapes, METRICS_HTTP_MAX_CONNS);
	if (c->after.err[0])
		FAIL("the one over the cap: %s", c->after.err);
	assert_scraped(&c->after);
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, METRICS_HTTP_MAX_CONNS + 1);
	ASSERT_EQ_U(metrics_http_counters(f->h).refused, 0);
	wait_conns(f, 0, "every connection to be closed");
}

/* Connects and sends nothing: what it sees is dozed closing it. */
static void *silent_thread(void *arg)
{
	struct leaver *l = arg;
	int fd = client_connect();
	char c;
	if (fd < 0)
		snprintf(l->err, sizeof(l->err), "connect: %s", strerror(-fd));
	else if (recv(fd, &c, 1, 0) != 0)
		snprintf(l->err, sizeof(l->err), "expected the listener to close the connection");
	if (fd >= 0)
		close(fd);
	atomic_store(&l->done, true);
	return NULL;
}

/* What a scraper that stalls costs is bounded in time: evhttp's timeout. */
TEST(test_a_stalled_scraper_is_closed_after_the_timeout)
{
	struct fixture *f = fixture_new(BIG);
	struct leaver reader = {0}, silent = {0};
	if (pthread_create(&reader.tid, NULL, sleeper_thread, &reader) != 0 ||
	    pthread_create(&silent.tid, NULL, silent_thread, &silent) != 0)
		FAIL("pthread_create failed");
	/* Both count from their accept; the stalled one has had its answer. */
	evloop_run_until(f->base, rendered_once, f, WAIT_MS, "the stalled scrape's request");
	wait_conns(f, 2, "the stalled scrape and the silent connection");
	struct until u = {.f = f, .conns = 0};
	evloop_run_until(f->base, conns_are, &u, 4 * METRICS_HTTP_TIMEOUT_S * 1000,
			 "the stalled scrape to be closed by the timeout");
	ASSERT_TRUE(!atomic_load(&reader.done));
	evloop_run_until(f->base, leaver_done, &silent, 4 * METRICS_HTTP_TIMEOUT_S * 1000,
			 "the silent connection to be closed by the timeout");
	atomic_store(&reader.release, true);
	evloop_run_until(f->base, leaver_done, &reader, WAIT_MS, "the stalled scraper to leave");
	pthread_join(reader.tid, NULL);
	pthread_join(silent.tid, NULL);
	if (silent.err[0])
		FAIL("%s", silent.err);
}

/* --- many silent connections ------------------------------------------------------- */

#define SILENT 2000

struct silent_fds {
	int fd[SILENT];
};

static void silent_fds_close(void *arg)
{
	struct silent_fds *s = arg;
	for (size_t i = 0; i < SILENT; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	free(s);
}

static int inode_cmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return x < y ? -1 : x > y;
}

/* The listener's own connections as the kernel sees them: sockets of this
 * process whose local port is PORT and that do not listen (the clients'
 * sockets have PORT as their remote port). -errno when /proc cannot say. */
static long listener_socket_fds(void)
{
	size_t cap = 4096, n = 0;
	unsigned long *inodes = malloc(cap * sizeof(*inodes));
	DIR *d = opendir("/proc/self/fd");
	if (!inodes || !d) {
		int r = inodes ? -errno : -ENOMEM;
		free(inodes);
		if (d)
			closedir(d);
		return r;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], link[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		unsigned long ino;
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		if (n == cap) {
			unsigned long *more = realloc(inodes, 2 * cap * sizeof(*inodes));
			if (!more)
				break;
			inodes = more;
			cap *= 2;
		}
		inodes[n++] = ino;
	}
	closedir(d);
	qsort(inodes, n, sizeof(*inodes), inode_cmp);
	FILE *tcp = fopen("/proc/self/net/tcp", "re");
	if (!tcp) {
		int r = -errno;
		free(inodes);
		return r;
	}
	char line[512];
	long count = 0;
	while (fgets(line, sizeof(line), tcp)) {
		unsigned lport, st;
		unsigned long ino;
		if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lport,
			   &st, &ino) != 3)
			continue; /* the heading */
		if (lport == PORT && st != 0x0A /* TCP_LISTEN */ && ino != 0 &&
		    bsearch(&ino, inodes, n, sizeof(*inodes), inode_cmp))
			count++;
	}
	fclose(tcp);
	free(inodes);
	return count;
}

struct watch {
	struct fixture *f;
	size_t max_conns, conns;
	unsigned ticks;
};

/* Each check of the loop notes the most connections the listener held. */
static void watch_note(struct watch *w)
{
	size_t now = metrics_http_counters(w->f->h).conns_now;
	if (now > w->max_conns)
		w->max_conns = now;
}

static bool watch_conns_reach(void *arg)
{
	struct watch *w = arg;
	watch_note(w);
	return metrics_http_counters(w->f->h).conns_now >= w->conns;
}

static bool watch_ticked(void *arg)
{
	struct watch *w = arg;
	watch_note(w);
	return atomic_load(&w->f->ticks) >= w->ticks;
}

static bool watch_all_closed(void *arg)
{
	struct watch *w = arg;
	watch_note(w);
	return metrics_http_counters(w->f->h).conns_now == 0 && listener_socket_fds() == 0;
}

TEST(test_2000_silent_connections_cost_at_most_the_cap)
{
	ASSERT_OK(nofile_raise(SILENT + METRICS_HTTP_MAX_CONNS + 512));
	struct fixture *f = fixture_new(100);
	struct silent_fds *s = malloc(sizeof(*s));
	if (!s)
		FAIL("out of memory");
	for (size_t i = 0; i < SILENT; i++)
		s->fd[i] = -1;
	test_defer(silent_fds_close, s);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Non-blocking: past the backlog the kernel keeps them connecting. */
	for (size_t i = 0; i < SILENT; i++) {
		s->fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd[i] < 0)
			FAIL("socket %zu: %s", i, strerror(errno));
		if (connect(s->fd[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno != EINPROGRESS)
			FAIL("connect %zu: %s", i, strerror(errno));
	}
	struct watch w = {.f = f, .conns = METRICS_HTTP_MAX_CONNS};
	evloop_run_until(f->base, watch_conns_reach, &w, 3 * WAIT_MS,
			 "the listener to hold the cap of silent connections");
	/* At the cap, the loop runs on and the listener takes no more. */
	w.ticks = atomic_load(&f->ticks) + 200;
	evloop_run_until(f->base, watch_ticked, &w, WAIT_MS, "the timer at the cap");
	long held = listener_socket_fds();
	if (held < 0)
		FAIL("counting the listener's sockets in /proc/self: %s", strerror((int)-held));
	ASSERT_TRUE(held <= METRICS_HTTP_MAX_CONNS);
	ASSERT_EQ_U(metrics_http_counters(f->h).conns_now, METRICS_HTTP_MAX_CONNS);
	/* The clients leave; their connections go, the backlog's too, and a
	 * scrape is served. */
	for (size_t i = 0; i < SILENT; i++) {
		close(s->fd[i]);
		s->fd[i] = -1;
	}
	evloop_run_until(f->base, watch_all_closed, &w, 3 * WAIT_MS,
			 "every silent connection to be closed");
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		FAIL("out of memory");
	test_defer(free, j);
	j->request = GET_METRICS;
	if (pthread_create(&j->tid, NULL, scrape_thread, j) != 0)
		FAIL("pthread_create failed");
	evloop_run_until(f->base, job_done, j, 3 * WAIT_MS, "the scrape after the silent ones");
	pthread_join(j->tid, NULL);
	if (j->err[0])
		FAIL("scrape: %s", j->err);
	assert_scraped(j);
	evloop_run_until(f->base, watch_all_closed, &w, 3 * WAIT_MS,
			 "the scrape's connection to be closed");
	ASSERT_TRUE(w.max_conns <= METRICS_HTTP_MAX_CONNS);
	ASSERT_EQ_U(metrics_http_counters(f->h).scrapes, 1);
}
