// SPDX-License-Identifier: MIT
/*
 * The control socket's requests: any line a local client may send, through
 * the real control_request_parse(). A refusal always comes with a message
 * that fits its buffer and is valid UTF-8 (it is sent back in a JSON reply);
 * an accepted request is a JSON object. And its UTF-8 check agrees with an
 * independent one on every input.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "dozed/control_request.h"
#include "dozed/control_settings.h"
#include "dozed/macro.h"
#include "dozed/utf8.h"
#include "fuzz.h"

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Written apart from the daemon's, to check it. */
static int reference_utf8_valid(const unsigned char *s, size_t len)
{
	const unsigned char *end = s + len;
	while (s < end) {
		unsigned c = *s++;
		int more = c < 0x80		    ? 0
			   : c >= 0xc2 && c <= 0xdf ? 1
			   : c >= 0xe0 && c <= 0xef ? 2
			   : c >= 0xf0 && c <= 0xf4 ? 3
						    : -1;
		if (more < 0)
			return 0;
		unsigned cp = more == 1 ? c & 0x1f : more == 2 ? c & 0x0f : c & 0x07;
		if (end - s < more)
			return 0;
		for (int i = 0; i < more; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
	}
	return 1;
}

static const struct control_field enable_fields[] = {
    {"container", CONTROL_FIELD_STRING, "a string: a container's name or id"},
    CONTROL_SETTINGS_FIELDS,
};

/* An enable's settings, as the daemon reads them: a refusal is a message
 * that fits (any buffer, cut between characters) and is UTF-8; what is taken
 * keeps the tiers in order. */
static void check_settings(struct json_object *req, uint8_t seed)
{
	char err[512];
	if (control_request_check_fields(req, "enable", enable_fields, ARRAY_SIZE(enable_fields),
					 err, sizeof(err)) < 0)
		return;
	struct service_settings s = {.idle_us = 7};
	size_t len = 1 + seed % sizeof(err);
	memset(err, 'x', sizeof(err));
	uint64_t default_idle = UINT64_C(600) * 1000000;
	int r = control_request_settings(req, default_idle, &s, err, len);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL);
		FUZZ_ASSERT(memchr(err, '\0', len));
		FUZZ_ASSERT(reference_utf8_valid((const unsigned char *)err, strlen(err)));
		FUZZ_ASSERT(s.idle_us == 7);
		return;
	}
	uint64_t idle = s.idle_set ? s.idle_us : default_idle;
	FUZZ_ASSERT(s.freeze_after_us == 0 || idle == DOZED_IDLE_NEVER || s.freeze_after_us < idle);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly the line's bytes: ASan sees a read past them. */
	char *line = malloc(size ? size : 1);
	if (!line)
		abort();
	memcpy(line, data, size);
	char err[256];
	memset(err, 'x', sizeof(err));
	struct json_object *req = NULL;
	int r = control_request_parse(line, size, &req, err, sizeof(err));
	if (r == 0) {
		FUZZ_ASSERT(req && json_object_is_type(req, json_type_object));
	} else {
		FUZZ_ASSERT(r < 0);
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)));
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(reference_utf8_valid((const unsigned char *)err, strlen(err)));
	}
	if (r == 0)
		FUZZ_ASSERT(size <= CONTROL_REQUEST_MAX && !memchr(line, '\0', size));

	bool valid = reference_utf8_valid(data, size);
	FUZZ_ASSERT(utf8_valid(line, size) == valid);
	if (r == 0)
		FUZZ_ASSERT(valid);
	if (valid && size > 0) {
		size_t max = data[0] % (size + 1);
		size_t prefix = utf8_prefix(line, size, max);
		FUZZ_ASSERT(prefix <= max);
		FUZZ_ASSERT(reference_utf8_valid(data, prefix));
		/* The longest: the next character would not fit. */
		if (prefix < size) {
			size_t next = prefix + 1;
			while (next < size && (data[next] & 0xc0) == 0x80)
				next++;
			FUZZ_ASSERT(next > max);
		}
	}
	if (r == 0)
		check_settings(req, data[0]);
	json_object_put(req);
	free(line);
	return 0;
}
