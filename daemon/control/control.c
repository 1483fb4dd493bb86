// SPDX-License-Identifier: MIT
/* The control socket: where it lives, who may connect, and accepting them. */
#include "dozed/control.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_internal.h"
#include "dozed/clock.h"
#include "dozed/control_request.h"
#include "dozed/log.h"
#include "dozed/macro.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define ACCEPT_RETRY_MS 100

void control_config_defaults(struct control_config *cfg)
{
	*cfg = (struct control_config){
	    .path = DOZED_CONTROL_PATH_DEFAULT,
	    .mode = 0660,
	    .gid = (gid_t)-1,
	    .max_request = CONTROL_MAX_REQUEST_DEFAULT,
	    .max_backlog = CONTROL_MAX_BACKLOG_DEFAULT,
	    .max_clients = CONTROL_MAX_CLIENTS_DEFAULT,
	    .idle_timeout_us = DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US,
	};
}

static int sockaddr_of(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(sa->sun_path))
		return log_error_errno(SYNTHETIC_ERRNO(ENAMETOOLONG),
				       "Control socket path '%s' must be 1 to %zu characters", path,
				       sizeof(sa->sun_path) - 1);
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

static int mkdir_parents(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return log_error_errno(ENOMEM, "Failed to create the control socket's directory");
	char *dir = dirname(copy);
	struct stat st;
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode)
			   ? 0
			   : log_error_errno(SYNTHETIC_ERRNO(ENOTDIR),
					     "Cannot create %s: %s is not a directory", path, dir);
	if (errno != ENOENT)
		return log_error_errno(errno, "Cannot use the directory %s", dir);
	int r = mkdir_parents(dir);
	if (r < 0)
		return r;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return log_error_errno(errno, "Failed to create the directory %s", dir);
	return 0;
}

/* A socket file is stale when nothing accepts on it; a live one is never taken over. */
static int remove_stale_socket(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno(errno, "Cannot check %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return log_error_errno(SYNTHETIC_ERRNO(EEXIST),
				       "Cannot listen on %s: it exists and is not a socket; remove "
				       "it or choose another --control path",
				       path);

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(errno, "Failed to create a socket");
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN ||
	    errno == EINPROGRESS)
		return log_error_errno(SYNTHETIC_ERRNO(EADDRINUSE),
				       "Cannot listen on %s: another dozed is listening there",
				       path);
	if (errno == ENOENT)
		return 0;
	if (errno != ECONNREFUSED)
		return log_error_errno(errno, "Cannot tell whether %s is in use", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_error_errno(errno, "Failed to remove the stale socket %s", path);
	log_notice("Removed the stale control socket %s", path);
	return 0;
}

static int bind_socket(struct control *c, const char *path)
{
	struct sockaddr_un sa;
	int r = sockaddr_of(path, &sa);
	if (r < 0)
		return r;
	r = mkdir_parents(path);
	if (r < 0)
		return r;
	r = remove_stale_socket(path, &sa);
	if (r < 0)
		return r;

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(errno, "Failed to create the control socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return log_error_errno(errno, "Failed to bind the control socket to %s", path);

	c->path = strdup(path);
	if (!c->path) {
		unlink(path);
		return log_error_errno(ENOMEM, "Failed to set up the control socket");
	}
	/* Mode and group are set before listen(): nobody connects in between. */
	struct stat st;
	if (chmod(path, c->cfg.mode) < 0)
		r = log_error_errno(errno, "Failed to set the mode of %s", path);
	else if (c->cfg.gid != (gid_t)-1 && chown(path, (uid_t)-1, c->cfg.gid) < 0)
		r = log_error_errno(errno, "Failed to give %s the group %u", path,
				    (unsigned)c->cfg.gid);
	else if (stat(path, &st) < 0)
		r = log_error_errno(errno, "Cannot stat %s", path);
	else if (listen(fd, SOMAXCONN) < 0)
		r = log_error_errno(errno, "Failed to listen on %s", path);
	if (r < 0) {
		unlink(path);
		return r;
	}
	c->path_dev = st.st_dev;
	c->path_ino = st.st_ino;
	c->gid = c->cfg.gid;
	return TAKE_FD(fd);
}

bool control_warn_allowed(struct control *c, char *note, size_t len)
{
	uint64_t now = clock_monotonic_us();
	if (c->warn_last_us && now - c->warn_last_us < 1000000) {
		c->warn_suppressed++;
		return false;
	}
	c->warn_last_us = now;
	note[0] = '\0';
	if (c->warn_suppressed)
		snprintf(note, len, " (%llu more refused or closed since the last warning)",
			 (unsigned long long)c->warn_suppressed);
	c->warn_suppressed = 0;
	return true;
}

static bool peer_in_group(int fd, gid_t gid)
{
	gid_t small[64];
	_cleanup_free_ gid_t *big = NULL;
	gid_t *groups = small;
	socklen_t len = sizeof(small);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			return false;
		big = malloc(len);
		if (!big || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, big, &len) < 0)
			return false;
		groups = big;
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

static bool peer_allowed(const struct control *c, int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) {
		log_warning_errno(errno, "Cannot read a control client's credentials");
		*cred = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
		return false;
	}
	if (cred->uid == 0 || cred->uid == c->euid)
		return true;
	if (c->gid == (gid_t)-1)
		return false;
	return cred->gid == c->gid || peer_in_group(fd, c->gid);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	struct control *c = arg;
	struct ucred cred;
	char msg[160], note[80];

	c->counters.accepted++;
	if (!peer_allowed(c, fd, &cred)) {
		c->counters.rejected_peer++;
		if (control_warn_allowed(c, note, sizeof(note)))
			log_warning("Refused a control client: pid %d, uid %u, gid %u is not root, "
				    "dozed's user or in the socket's group%s",
				    (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid, note);
		snprintf(msg, sizeof(msg),
			 "permission denied: uid %u is not root, dozed's user or in the control "
			 "socket's group",
			 (unsigned)cred.uid);
		control_send_error_and_close(fd, msg);
		return;
	}
	/* Root keeps a few slots of its own, and past them takes the idlest one:
	 * whoever fills the socket, a root "dozectl list" gets in. */
	bool privileged = cred.uid == 0 || cred.uid == c->euid;
	size_t limit = c->cfg.max_clients + (privileged ? CONTROL_ROOT_RESERVE : 0);
	if (c->counters.clients_now >= limit && !(privileged && control_connection_evict(c))) {
		c->counters.rejected_full++;
		if (control_warn_allowed(c, note, sizeof(note)))
			log_warning(
			    "Refused a control client (uid %u): %zu are connected already%s",
			    (unsigned)cred.uid, (size_t)c->counters.clients_now, note);
		snprintf(msg, sizeof(msg), "too many control clients (limit %zu)",
			 c->cfg.max_clients);
		control_send_error_and_close(fd, msg);
		return;
	}
	control_connection_add(c, fd, cred.uid);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control *c = arg;
	evconnlistener_enable(c->listener);
}

/* Out of file descriptors or memory: pause accepting rather than spin on the listener. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct control *c = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_RETRY_MS * 1000};
	log_warning_errno(err, "Failed to accept a control client; retrying in %d ms",
			  ACCEPT_RETRY_MS);
	evconnlistener_disable(l);
	evtimer_add(c->accept_retry, &tv);
}

static int control_alloc(struct event_base *base, const struct control_config *cfg,
			 control_handler_fn handler, void *userdata, struct control **out)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return log_error_errno(ENOMEM, "Failed to allocate the control socket");
	control_config_defaults(&c->cfg);
	if (cfg) {
		c->cfg = *cfg;
		if (!c->cfg.path)
			c->cfg.path = DOZED_CONTROL_PATH_DEFAULT;
		if (c->cfg.mode == 0)
			c->cfg.mode = 0660;
		if (c->cfg.max_request == 0)
			c->cfg.max_request = CONTROL_MAX_REQUEST_DEFAULT;
		if (c->cfg.max_backlog == 0)
			c->cfg.max_backlog = CONTROL_MAX_BACKLOG_DEFAULT;
		if (c->cfg.max_clients == 0)
			c->cfg.max_clients = CONTROL_MAX_CLIENTS_DEFAULT;
		if (c->cfg.idle_timeout_us == 0)
			c->cfg.idle_timeout_us = DOZED_CONTROL_IDLE_TIMEOUT_DEFAULT_US;
	}
	if (c->cfg.max_request > CONTROL_REQUEST_MAX)
		c->cfg.max_request = CONTROL_REQUEST_MAX;
	c->cfg.path = NULL; /* not kept: c->path is the copy */
	c->base = base;
	c->handler = handler;
	c->userdata = userdata;
	c->gid = (gid_t)-1;
	c->euid = geteuid();
	c->next_id = 1;
	c->accept_retry = evtimer_new(base, on_accept_retry, c);
	if (!c->accept_retry) {
		control_free(c);
		return log_error_errno(ENOMEM, "Failed to set up the control socket");
	}
	*out = c;
	return 0;
}

/* Takes fd, a listening socket. */
static int control_listen(struct control *c, int fd)
{
	c->listener = evconnlistener_new(c->base, on_accept, c,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!c->listener) {
		close(fd);
		return log_error_errno(ENOMEM, "Failed to watch the control socket");
	}
	evconnlistener_set_error_cb(c->listener, on_accept_error);
	return 0;
}

int control_new(struct event_base *base, const struct control_config *cfg,
		control_handler_fn handler, void *userdata, struct control **out)
{
	struct control *c = NULL;
	const char *path = cfg && cfg->path ? cfg->path : DOZED_CONTROL_PATH_DEFAULT;
	int r = control_alloc(base, cfg, handler, userdata, &c);
	if (r < 0)
		return r;
	int fd = bind_socket(c, path);
	if (fd < 0 || (r = control_listen(c, fd)) < 0) {
		control_free(c);
		return fd < 0 ? fd : r;
	}
	log_debug("Control socket listening on %s", path);
	*out = c;
	return 0;
}

static int check_listening_unix_stream(int fd)
{
	int domain = 0, type = 0, listening = 0;
	socklen_t len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return log_error_errno(errno, "Control socket fd %d is not a socket", fd);
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return log_error_errno(errno, "Cannot read the type of control socket fd %d", fd);
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return log_error_errno(errno, "Cannot tell whether control fd %d listens", fd);
	if (domain != AF_UNIX || type != SOCK_STREAM || !listening)
		return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
				       "Control socket fd %d is not a listening unix stream socket "
				       "(check ListenStream= in dozed.socket)",
				       fd);
	return 0;
}

/* The group of the socket file behind fd, or (gid_t)-1 when it has none. */
static gid_t socket_file_group(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	struct stat st;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
		return (gid_t)-1;
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	return stat(sa.sun_path, &st) == 0 ? st.st_gid : (gid_t)-1;
}

int control_new_from_fd(struct event_base *base, int fd, const struct control_config *cfg,
			control_handler_fn handler, void *userdata, struct control **out)
{
	struct control *c = NULL;
	int r = check_listening_unix_stream(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = log_error_errno(errno, "Failed to make control socket fd %d non-blocking", fd);
		close(fd);
		return r;
	}
	r = control_alloc(base, cfg, handler, userdata, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	c->gid = c->cfg.gid != (gid_t)-1 ? c->cfg.gid : socket_file_group(fd);
	r = control_listen(c, fd);
	if (r < 0) {
		control_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	control_connection_free_all(c);
	if (c->listener)
		evconnlistener_free(c->listener);
	if (c->accept_retry)
		event_free(c->accept_retry);
	/* Only our own file: a successor may have replaced it already. */
	struct stat st;
	if (c->path && stat(c->path, &st) == 0 && st.st_dev == c->path_dev &&
	    st.st_ino == c->path_ino)
		unlink(c->path);
	free(c->path);
	free(c);
}

void control_get_counters(const struct control *c, struct control_counters *out)
{
	*out = c->counters;
}
