// SPDX-License-Identifier: MIT
/*
 * The config file: any bytes as /etc/dozed/dozed.conf, read by the real
 * dozed_config_load_file() through a memfd (no file on disk per run), then
 * validated. Every refusal comes with a message naming the file; an accepted
 * file leaves settings within their documented bounds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dozed/config.h"
#include "dozed/duration.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("dozed.conf", MFD_CLOEXEC);
		FUZZ_ASSERT(memfd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
	FUZZ_ASSERT(pwrite(memfd, data, size, 0) == (ssize_t)size);

	struct dozed_config c;
	FUZZ_ASSERT(dozed_config_defaults(&c) == 0);
	char *err = NULL;
	int r = dozed_config_load_file(&c, path, true, &err);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM);
		FUZZ_ASSERT(r == -ENOMEM || (err && strstr(err, path) == err));
	} else {
		FUZZ_ASSERT(!err);
		FUZZ_ASSERT(c.activator_port != 0);
		FUZZ_ASSERT(c.runtime_socket && c.runtime_socket[0] == '/');
		FUZZ_ASSERT(c.control_path && c.state_dir && c.nft_table && c.nft_table[0]);
		FUZZ_ASSERT(c.max_held > 0);
		/* settings_parse_idle()'s bounds, whatever the file says. */
		FUZZ_ASSERT(c.idle_us >= DOZED_IDLE_MIN_US && c.idle_us <= DURATION_MAX_US);
		FUZZ_ASSERT(strcmp(c.config_path, path) == 0);
		/* metrics_listen_parse()'s: a numeric address and a port, or none. */
		if (c.metrics_listen) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&c.metrics_addr;
			const struct sockaddr_in6 *in6 =
			    (const struct sockaddr_in6 *)&c.metrics_addr;
			FUZZ_ASSERT(c.metrics_addr.ss_family == AF_INET
					? in->sin_port != 0
					: c.metrics_addr.ss_family == AF_INET6 &&
					      in6->sin6_port != 0);
		}
		r = dozed_config_validate(&c, &err);
		FUZZ_ASSERT(r == 0 ? !err : err != NULL);
	}
	free(err);
	dozed_config_free(&c);
	return 0;
}
