// SPDX-License-Identifier: MIT
/*
 * The runtime's HTTP/1.1 answers (status line, headers, Content-Length,
 * chunked, until close): any bytes, fed whole, one byte at a time and in
 * pieces of random sizes. However the socket splits a response, the parser
 * must give the same result, the same body and stop at the same byte.
 */
#include <errno.h>

#include "dozed/http_unix.h"
#include "fuzz.h"

struct outcome {
	int r;		 /* the last feed's, or eof's */
	size_t consumed; /* of the input, when r is 1 */
	int status;
	char *body;
	size_t body_len, body_cap;
};

static int on_body(void *userdata, const char *data, size_t len)
{
	struct outcome *o = userdata;
	FUZZ_ASSERT(len > 0);
	if (o->body_len + len > o->body_cap) {
		o->body_cap = (o->body_len + len) * 2;
		o->body = realloc(o->body, o->body_cap);
		if (!o->body)
			abort();
	}
	memcpy(o->body + o->body_len, data, len);
	o->body_len += len;
	return 0;
}

/* Pieces of 1..max_piece bytes from a small generator seeded by the input. */
static void run(const uint8_t *data, size_t size, size_t max_piece, uint32_t seed,
		struct outcome *o)
{
	static struct http_response_parser p; /* 8 KiB: not on the stack */
	memset(o, 0, sizeof(*o));
	http_response_parser_init(&p, on_body, o);
	size_t off = 0;
	int r = 0;
	while (off < size) {
		size_t piece = max_piece;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 16) % max_piece;
		}
		if (piece > size - off)
			piece = size - off;
		/* A copy of exactly the piece, so ASan sees a read past it. */
		char *buf = malloc(piece);
		if (!buf)
			abort();
		memcpy(buf, data + off, piece);
		size_t used = (size_t)-1;
		r = http_response_parser_feed(&p, buf, piece, &used);
		free(buf);
		FUZZ_ASSERT(used <= piece);
		FUZZ_ASSERT(r == 0 || r == 1 || r == -EPROTO || r == -EMSGSIZE);
		if (r == 0)
			FUZZ_ASSERT(used == piece);
		if (r != 0) {
			o->consumed = off + used;
			break;
		}
		off += piece;
	}
	if (r == 0)
		r = http_response_parser_eof(&p);
	FUZZ_ASSERT(r == 1 || r == -EPROTO || r == -EMSGSIZE || r == -ECONNRESET);
	if (r == 1) {
		FUZZ_ASSERT(p.head_done);
		FUZZ_ASSERT(p.status >= 200 && p.status <= 999);
		if (p.no_body)
			FUZZ_ASSERT(o->body_len == 0);
	}
	o->r = r;
	o->status = p.head_done ? p.status : 0;
}

static void same(const struct outcome *a, const struct outcome *b)
{
	FUZZ_ASSERT(a->r == b->r);
	FUZZ_ASSERT(a->status == b->status);
	FUZZ_ASSERT(a->body_len == b->body_len);
	FUZZ_ASSERT(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
	if (a->r == 1)
		FUZZ_ASSERT(a->consumed == b->consumed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, bytes, pieces;
	run(data, size, size ? size : 1, 0, &whole);
	run(data, size, 1, 0, &bytes);
	uint32_t seed = 2166136261u;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	run(data, size, 64, seed | 1, &pieces);
	same(&whole, &bytes);
	same(&whole, &pieces);
	free(whole.body);
	free(bytes.body);
	free(pieces.body);
	return 0;
}
