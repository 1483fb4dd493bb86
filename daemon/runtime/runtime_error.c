// SPDX-License-Identifier: MIT
/* What a failed call says: the -errno and the sentence for the log, for
 * every call of runtime.c, runtime_ops.c and runtime_exec.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/macro.h"
#include "dozed/runtime.h"
#include "runtime_internal.h"

static const char *errno_text(int err)
{
	return strerror(err < 0 ? -err : err);
}

static int status_to_errno(int status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EBUSY;
	default:
		if (status >= 500)
			return -EIO;
		/* A success or redirect this call does not expect. */
		return status >= 400 ? -EINVAL : -EPROTO;
	}
}

/* A short, printable excerpt of a non-JSON error body, or NULL. */
static char *body_excerpt(const char *body, size_t len)
{
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' '))
		len--;
	if (len == 0)
		return NULL;
	if (len > 200)
		len = 200;
	char *s = strndup(body, len);
	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return s;
}

int runtime_describe_failure(const struct runtime *rt, const char *method, const char *target,
			     uint64_t timeout_us, int err, int status, const char *body,
			     size_t body_len, char **message)
{
	const char *path = rt->socket_path;
	char *msg = NULL;
	int r;

	if (err == 0 && status != 0) {
		r = status_to_errno(status);
		msg = body ? runtime_parse_error_message(body, body_len) : NULL;
		if (!msg) {
			_cleanup_free_ char *text = body ? body_excerpt(body, body_len) : NULL;
			if (asprintf(&msg, "HTTP %d from the container runtime at %s for %s %s%s%s",
				     status, path, method, target, text ? ": " : "",
				     text ? text : "") < 0)
				msg = NULL;
		}
		*message = msg;
		return r;
	}

	r = err < 0 ? err : -EIO;
	int n;
	switch (-r) {
	case ENOENT:
	case ECONNREFUSED:
	case EACCES:
	case ENOTSOCK:
	case EPERM:
		n = asprintf(&msg,
			     "Cannot connect to the container runtime at %s: %s (is dockerd or "
			     "'podman system service' running? DOCKER_HOST=unix:///PATH names "
			     "another socket)",
			     path, errno_text(r));
		break;
	case ETIMEDOUT:
		n = asprintf(&msg,
			     "No answer from the container runtime at %s to %s %s within %.1f s",
			     path, method, target, (double)timeout_us / 1e6);
		break;
	case ECONNRESET:
	case EPIPE:
		n = asprintf(&msg,
			     "The container runtime at %s closed the connection before answering "
			     "%s %s",
			     path, method, target);
		break;
	case EPROTO:
		n = asprintf(&msg,
			     "Malformed HTTP answer from the container runtime at %s to %s %s",
			     path, method, target);
		break;
	case EMSGSIZE:
		n = asprintf(&msg,
			     "The answer of the container runtime at %s to %s %s is over the size "
			     "limit (%zu bytes)",
			     path, method, target, rt->cfg.max_response_bytes);
		break;
	case EBADMSG:
		n = asprintf(&msg,
			     "Unexpected answer from the container runtime at %s to %s %s: not the "
			     "JSON the Docker Engine API describes",
			     path, method, target);
		break;
	default:
		n = asprintf(&msg, "%s %s to the container runtime at %s failed: %s", method,
			     target, path, errno_text(r));
		break;
	}
	*message = n < 0 ? NULL : msg;
	return r;
}
