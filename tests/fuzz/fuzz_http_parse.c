// SPDX-License-Identifier: MIT
/*
 * The runtime's HTTP/1.1 answers (status line, headers, Content-Length,
 * chunked with extensions and trailers, 1xx interim answers, until close).
 *
 * Raw mode (any input not starting with 0xff): the bytes as an answer, fed
 * whole, one byte at a time, in pieces of random sizes and in two pieces cut
 * at every byte boundary (at 64 spread boundaries above 512 bytes). However the
 * socket splits a response, the parser must give the same result, the same
 * body and stop at the same byte.
 *
 * Built mode (0xff first): the rest drives a generator of a valid answer —
 * version, interim 100s, status, CRLF or bare LF line ends, headers, framing
 * (Content-Length, chunked with random chunk sizes, hex case, leading zeros,
 * extensions and trailers, or until close), a body of any bytes, then
 * trailing garbage. The parser must accept it with exactly that status and
 * body and stop exactly at its end, fed in every way the raw mode feeds.
 */
#include <errno.h>

#include "dozed/http_unix.h"
#include "fuzz.h"

struct outcome {
	int r;		 /* the last feed's, or eof's */
	size_t consumed; /* of the input, when a feed returned non-zero */
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

/*
 * Feeds data in pieces: cut > 0 gives [0, cut) and [cut, size); else pieces of
 * 1..max_piece bytes from a small generator seeded by seed (0: all max_piece).
 */
static void run(const uint8_t *data, size_t size, size_t max_piece, uint32_t seed, size_t cut,
		struct outcome *o)
{
	static struct http_response_parser p; /* 8 KiB: not on the stack */
	memset(o, 0, sizeof(*o));
	http_response_parser_init(&p, on_body, o);
	size_t off = 0;
	int r = 0;
	while (off < size) {
		size_t piece = max_piece;
		if (cut > 0) {
			piece = off < cut ? cut : size - off;
		} else if (seed) {
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
	/* A finished parser takes nothing more. */
	if (r == 1) {
		size_t used = (size_t)-1;
		FUZZ_ASSERT(http_response_parser_feed(&p, "x", 1, &used) == 1 && used == 0);
		FUZZ_ASSERT(http_response_parser_eof(&p) == 1);
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

/* Every way of feeding: each outcome must be the whole feed's; *whole is kept. */
static void run_all(const uint8_t *data, size_t size, struct outcome *whole)
{
	struct outcome o;
	run(data, size, size ? size : 1, 0, 0, whole);
	run(data, size, 1, 0, 0, &o);
	same(whole, &o);
	free(o.body);
	uint32_t seed = 2166136261u;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	run(data, size, 64, seed | 1, 0, &o);
	same(whole, &o);
	free(o.body);
	/* Two pieces, cut at every boundary; spread cuts for large inputs. */
	size_t step = size <= 512 ? 1 : size / 64;
	for (size_t cut = 1; cut < size; cut += step) {
		run(data, size, size, 0, cut, &o);
		same(whole, &o);
		free(o.body);
	}
}

/* --- built mode: a valid answer from the input ------------------------------------- */

struct gen {
	const uint8_t *in;
	size_t len, pos;
	char *out;
	size_t out_len, out_cap;
	char *body;
	size_t body_len;
};

static unsigned take(struct gen *g, unsigned mod)
{
	unsigned v = g->pos < g->len ? g->in[g->pos++] : 0;
	return mod ? v % mod : v;
}

static void put(struct gen *g, const void *s, size_t n)
{
	if (g->out_len + n > g->out_cap) {
		g->out_cap = (g->out_len + n) * 2 + 256;
		g->out = realloc(g->out, g->out_cap);
		if (!g->out)
			abort();
	}
	memcpy(g->out + g->out_len, s, n);
	g->out_len += n;
}

static void puts_(struct gen *g, const char *s)
{
	put(g, s, strlen(s));
}

/* A line end: CRLF, or the bare LF the parser also takes. */
static void eol(struct gen *g)
{
	puts_(g, take(g, 8) == 0 ? "\n" : "\r\n");
}

/* A header value or extension: printable bytes from the input, no CR or LF. */
static void put_text(struct gen *g, unsigned max)
{
	unsigned n = take(g, max + 1);
	for (unsigned i = 0; i < n; i++) {
		char c = (char)(' ' + take(g, 95));
		put(g, &c, 1);
	}
}

static const char *const filler_names[] = {"Api-Version",    "Content-Type",	"Server",  "Date",
					   "X-Reference-Id", "Content-Lengthy", "Transfer"};

static void put_filler_headers(struct gen *g)
{
	unsigned n = take(g, 4);
	for (unsigned i = 0; i < n; i++) {
		puts_(g, filler_names[take(g, sizeof(filler_names) / sizeof(filler_names[0]))]);
		puts_(g, take(g, 2) ? ": " : ":");
		put_text(g, 40);
		eol(g);
	}
}

static void put_chunk_size(struct gen *g, size_t n)
{
	char hex[32];
	for (unsigned z = take(g, 4); z > 0; z--)
		puts_(g, "0");
	snprintf(hex, sizeof(hex), take(g, 2) ? "%zx" : "%zX", n);
	puts_(g, hex);
	switch (take(g, 4)) {
	case 1:
		puts_(g, ";");
		put_text(g, 20);
		break;
	case 2:
		puts_(g, take(g, 2) ? " ;" : "\t;");
		put_text(g, 20);
		break;
	default:
		break;
	}
	eol(g);
}

enum framing { FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE };

/* Builds the answer into g->out; returns its length (before the garbage), or
 * 0 for an answer that runs until close. *status: the final status. */
static size_t build(struct gen *g, int *status)
{
	for (unsigned k = take(g, 4) == 0 ? 1 + take(g, 2) : 0; k > 0; k--) {
		puts_(g, "HTTP/1.1 100 Continue");
		eol(g);
		put_filler_headers(g);
		eol(g);
	}
	unsigned lo = take(g, 0), hi = take(g, 0);
	*status = 200 + (int)((lo | hi << 8) % 800);
	enum framing framing = (enum framing)take(g, 3);
	unsigned minor = take(g, 2);
	bool reason = take(g, 2);
	char line[64];
	snprintf(line, sizeof(line), "HTTP/1.%u %03d%s", minor, *status,
		 reason ? " Reason Phrase" : "");
	puts_(g, line);
	eol(g);
	put_filler_headers(g);
	unsigned blo = take(g, 0), bhi = take(g, 0);
	size_t body_len = g->len > g->pos ? (blo | bhi << 8) % (g->len - g->pos + 1) : 0;
	bool no_body = *status == 204 || *status == 304;
	if (framing == FRAME_LENGTH || (framing == FRAME_CHUNKED && take(g, 2))) {
		/* With chunked, Transfer-Encoding wins (RFC 9112 6.3). */
		snprintf(line, sizeof(line), "%s: %zu",
			 take(g, 2) ? "Content-Length" : "content-length",
			 framing == FRAME_LENGTH ? body_len : body_len + 7);
		for (unsigned k = 1 + take(g, 2); k > 0; k--) {
			puts_(g, line);
			eol(g);
		}
	}
	if (framing == FRAME_CHUNKED) {
		static const char *const te[] = {"Transfer-Encoding: chunked",
						 "transfer-encoding: gzip, chunked",
						 "Transfer-Encoding:CHUNKED \t"};
		puts_(g, te[take(g, 3)]);
		eol(g);
	}
	put_filler_headers(g);
	eol(g);
	if (no_body)
		body_len = 0;
	/* The body: raw input bytes, any value. */
	g->body = malloc(body_len + 1);
	if (!g->body)
		abort();
	for (size_t i = 0; i < body_len; i++)
		g->body[i] = (char)take(g, 0);
	g->body_len = body_len;
	if (no_body)
		return g->out_len;
	if (framing == FRAME_LENGTH) {
		put(g, g->body, body_len);
	} else if (framing == FRAME_CHUNKED) {
		size_t off = 0;
		while (off < body_len) {
			size_t n = 1 + take(g, 0) % (body_len - off < 300 ? body_len - off : 300);
			put_chunk_size(g, n);
			put(g, g->body + off, n);
			eol(g);
			off += n;
		}
		put_chunk_size(g, 0);
		for (unsigned k = take(g, 3); k > 0; k--) {
			puts_(g, "X-Trailer: ");
			put_text(g, 30);
			eol(g);
		}
		eol(g);
	} else {
		put(g, g->body, body_len);
		return 0;
	}
	return g->out_len;
}

static void run_built(const uint8_t *data, size_t size)
{
	struct gen g = {.in = data, .len = size};
	int status;
	size_t end = build(&g, &status);
	/* Garbage after a complete answer: the parser must stop before it. */
	if (end > 0)
		for (unsigned k = take(&g, 16); k > 0; k--) {
			char c = (char)take(&g, 0);
			put(&g, &c, 1);
		}
	struct outcome whole;
	run_all((const uint8_t *)g.out, g.out_len, &whole);
	FUZZ_ASSERT(whole.r == 1);
	FUZZ_ASSERT(whole.status == status);
	FUZZ_ASSERT(whole.body_len == g.body_len);
	FUZZ_ASSERT(g.body_len == 0 || memcmp(whole.body, g.body, g.body_len) == 0);
	if (end > 0)
		FUZZ_ASSERT(whole.consumed == end);
	free(whole.body);
	free(g.out);
	free(g.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 0xff) {
		run_built(data + 1, size - 1);
		return 0;
	}
	struct outcome whole;
	run_all(data, size, &whole);
	free(whole.body);
	return 0;
}
