// SPDX-License-Identifier: MIT
#include "testcg.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dozed/cgroup.h"
#include "dozed/macro.h"
#include "harness.h"

/* The harness process: test children are forked from it after constructors ran. */
static pid_t suite_pid;

__attribute__((constructor)) static void remember_suite_pid(void)
{
	suite_pid = getpid();
}

char *testcg_mount(void)
{
	char *mount = NULL;
	if (cgroup2_mount_point(&mount) < 0)
		FAIL("this test needs a cgroup2 mount (see the error above)");
	return mount;
}

char *testcg_suite_dir(void)
{
	_cleanup_free_ char *mount = testcg_mount();
	char *dir = NULL;
	if (asprintf(&dir, "%s/dozed-test.%d", mount, (int)suite_pid) < 0)
		FAIL("out of memory");
	return dir;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		char *sub = NULL;
		if (asprintf(&sub, "%s/%s", dir, e->d_name) >= 0) {
			remove_tree(sub);
			free(sub);
		}
	}
	closedir(d);

	/* Whatever still runs here was started by this suite: cgroup.kill ends
	 * exactly those processes, then the directory can go. */
	char kill_path[4096];
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir);
	int fd = open(kill_path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) {
			/* an empty cgroup is fine */
		}
		close(fd);
	}
	for (int i = 0; i < 200 && rmdir(dir) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

static void remove_cgroup(void *path)
{
	remove_tree(path);
	free(path);
}

void testcg_remove_all(void)
{
	_cleanup_free_ char *mount = NULL;
	if (cgroup2_mount_point(&mount) < 0)
		return;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/dozed-test.%d", mount, (int)suite_pid);
	remove_tree(dir);
}

char *testcg_create(const char *name)
{
	_cleanup_free_ char *base = testcg_suite_dir();
	if (mkdir(base, 0755) < 0 && errno != EEXIST)
		FAIL("mkdir %s: %s", base, strerror(errno));

	char *path = NULL;
	if (asprintf(&path, "%s/%s", base, name) < 0)
		FAIL("out of memory");
	/* Create each level of a nested name. */
	for (char *p = path + strlen(base) + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				FAIL("mkdir %s: %s", path, strerror(errno));
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	char *top = NULL;
	size_t toplen = strcspn(name, "/");
	if (asprintf(&top, "%s/%.*s", base, (int)toplen, name) < 0)
		FAIL("out of memory");
	test_defer(remove_cgroup, top);
	return path;
}

int testcg_enter(const char *dir)
{
	char procs[4096];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	_cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* "0" moves the writer itself. */
	if (write(fd, "0", 1) < 0)
		return -errno;
	return 0;
}

static int send_bytes(unsigned short port, size_t n)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	char buf[65536];
	memset(buf, 'x', sizeof(buf));
	while (n > 0) {
		size_t chunk = n < sizeof(buf) ? n : sizeof(buf);
		ssize_t w = write(fd, buf, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		n -= (size_t)w;
	}
	return 0;
}

pid_t testcg_spawn_sender(const char *dir, unsigned short port, size_t n)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Join the cgroup before the socket exists: a socket belongs to
		 * the cgroup its creator was in at creation time. */
		int r = testcg_enter(dir);
		if (r < 0) {
			fprintf(stderr, "sender: joining %s: %s\n", dir, strerror(-r));
			_exit(2);
		}
		r = send_bytes(port, n);
		if (r < 0) {
			fprintf(stderr, "sender: sending to port %u: %s\n", port, strerror(-r));
			_exit(3);
		}
		_exit(0);
	}
	return pid;
}

void testcg_wait_ok(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid %d: %s", (int)pid, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		FAIL("child %d failed (status 0x%x)", (int)pid, status);
}
