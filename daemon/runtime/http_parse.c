// SPDX-License-Identifier: MIT
#include "dozed/http_unix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	ST_STATUS_LINE,
	ST_HEADER,
	ST_BODY_LENGTH,
	ST_CHUNK_SIZE,
	ST_CHUNK_DATA,
	ST_CHUNK_DATA_END, /* the CRLF after a chunk's data */
	ST_TRAILER,
	ST_BODY_UNTIL_CLOSE,
	ST_DONE,
};

void http_response_parser_init(struct http_response_parser *p,
			       int (*on_body)(void *userdata, const char *data, size_t len),
			       void *userdata)
{
	memset(p, 0, sizeof(*p));
	p->state = ST_STATUS_LINE;
	p->on_body = on_body;
	p->userdata = userdata;
}

static int parse_status_line(struct http_response_parser *p, const char *line)
{
	/* HTTP/1.x SP 3DIGIT SP reason */
	if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
	    line[8] != ' ')
		return -EPROTO;
	const char *s = line + 9;
	for (int i = 0; i < 3; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EPROTO;
	if (s[3] != '\0' && s[3] != ' ')
		return -EPROTO;
	p->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (p->status < 100)
		return -EPROTO;
	return 0;
}

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static bool token_list_has(const char *list, const char *token)
{
	size_t tl = strlen(token);
	const char *s = list;
	while (*s) {
		s = skip_space(s);
		size_t n = strcspn(s, ",");
		size_t m = n;
		while (m > 0 && (s[m - 1] == ' ' || s[m - 1] == '\t'))
			m--;
		if (m == tl && strncasecmp(s, token, tl) == 0)
			return true;
		s += n;
		if (*s == ',')
			s++;
	}
	return false;
}

static int parse_header(struct http_response_parser *p, const char *line)
{
	const char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return -EPROTO;
	size_t name_len = (size_t)(colon - line);
	const char *value = skip_space(colon + 1);

	if (name_len == strlen("Content-Length") &&
	    strncasecmp(line, "Content-Length", name_len) == 0) {
		if (*value < '0' || *value > '9')
			return -EPROTO;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(value, &end, 10);
		if (errno != 0 || *skip_space(end) != '\0')
			return -EPROTO;
		/* Two different lengths make the message ambiguous (RFC 9112 6.3). */
		if (p->has_length && p->remaining != n)
			return -EPROTO;
		p->has_length = true;
		p->remaining = n;
	} else if (name_len == strlen("Transfer-Encoding") &&
		   strncasecmp(line, "Transfer-Encoding", name_len) == 0) {
		if (token_list_has(value, "chunked"))
			p->chunked = true;
	}
	return 0;
}

/* The headers are complete: how is the body delimited? */
static int start_body(struct http_response_parser *p)
{
	if (p->status >= 100 && p->status < 200) {
		/* An interim answer (100 Continue): the real one follows. */
		int (*on_body)(void *, const char *, size_t) = p->on_body;
		void *ud = p->userdata;
		size_t header_bytes = p->header_bytes;
		http_response_parser_init(p, on_body, ud);
		p->header_bytes = header_bytes;
		return 0;
	}
	p->head_done = true;
	if (p->status == 204 || p->status == 304) {
		p->no_body = true;
		p->state = ST_DONE;
	} else if (p->chunked) {
		/* Transfer-Encoding overrides Content-Length (RFC 9112 6.3). */
		p->has_length = false;
		p->state = ST_CHUNK_SIZE;
	} else if (p->has_length) {
		p->state = p->remaining == 0 ? ST_DONE : ST_BODY_LENGTH;
	} else {
		p->state = ST_BODY_UNTIL_CLOSE;
	}
	return 0;
}

static int parse_chunk_size(struct http_response_parser *p, const char *line)
{
	uint64_t n = 0;
	const char *s = line;
	if (!*s)
		return -EPROTO;
	for (; *s && *s != ';' && *s != ' ' && *s != '\t'; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EPROTO;
		if (n > (UINT64_MAX >> 4))
			return -EPROTO;
		n = (n << 4) | (uint64_t)d;
	}
	if (s == line)
		return -EPROTO;
	p->remaining = n;
	p->state = n == 0 ? ST_TRAILER : ST_CHUNK_DATA;
	return 0;
}

/* One complete line (CRLF stripped) in p->line. */
static int handle_line(struct http_response_parser *p)
{
	const char *line = p->line;
	switch (p->state) {
	case ST_STATUS_LINE:
		p->state = ST_HEADER;
		return parse_status_line(p, line);
	case ST_HEADER:
		if (*line == '\0')
			return start_body(p);
		/* Obsolete line folding is not sent by the runtimes; ignore it. */
		if (*line == ' ' || *line == '\t')
			return 0;
		return parse_header(p, line);
	case ST_CHUNK_SIZE:
		return parse_chunk_size(p, line);
	case ST_CHUNK_DATA_END:
		if (*line != '\0')
			return -EPROTO;
		p->state = ST_CHUNK_SIZE;
		return 0;
	case ST_TRAILER:
		if (*line == '\0')
			p->state = ST_DONE;
		return 0;
	default:
		return -EPROTO;
	}
}

static bool in_line_state(int state)
{
	return state == ST_STATUS_LINE || state == ST_HEADER || state == ST_CHUNK_SIZE ||
	       state == ST_CHUNK_DATA_END || state == ST_TRAILER;
}

static int deliver(struct http_response_parser *p, const char *data, size_t len)
{
	if (len == 0 || !p->on_body)
		return 0;
	int r = p->on_body(p->userdata, data, len);
	return r < 0 ? r : 0;
}

int http_response_parser_feed(struct http_response_parser *p, const char *data, size_t len,
			      size_t *consumed)
{
	size_t i = 0;
	int r = 0;

	while (i < len && p->state != ST_DONE) {
		if (in_line_state(p->state)) {
			const char *nl = memchr(data + i, '\n', len - i);
			size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
			if (!p->head_done) {
				p->header_bytes += n + (nl ? 1 : 0);
				if (p->header_bytes > HTTP_MAX_HEADER_BYTES) {
					r = -EMSGSIZE;
					break;
				}
			}
			if (p->line_len + n >= sizeof(p->line)) {
				r = -EMSGSIZE;
				break;
			}
			memcpy(p->line + p->line_len, data + i, n);
			p->line_len += n;
			i += n;
			if (!nl)
				break;
			i++; /* the '\n' */
			if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
				p->line_len--;
			p->line[p->line_len] = '\0';
			p->line_len = 0;
			r = handle_line(p);
			if (r < 0)
				break;
			continue;
		}

		size_t n = len - i;
		if (p->state != ST_BODY_UNTIL_CLOSE && n > p->remaining)
			n = (size_t)p->remaining;
		r = deliver(p, data + i, n);
		if (r < 0)
			break;
		i += n;
		if (p->state == ST_BODY_UNTIL_CLOSE)
			continue;
		p->remaining -= n;
		if (p->remaining == 0)
			p->state = p->state == ST_CHUNK_DATA ? ST_CHUNK_DATA_END : ST_DONE;
	}

	if (consumed)
		*consumed = i;
	if (r < 0)
		return r;
	return p->state == ST_DONE ? 1 : 0;
}

int http_response_parser_eof(struct http_response_parser *p)
{
	if (p->state == ST_DONE)
		return 1;
	if (p->state == ST_BODY_UNTIL_CLOSE) {
		p->state = ST_DONE;
		return 1;
	}
	return -ECONNRESET;
}
