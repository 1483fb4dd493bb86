// SPDX-License-Identifier: MIT
/* UTF-8 as the control protocol and the activity feed require it. */
#include "dozed/utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_char_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	if (len == 0)
		return 0;
	unsigned c = p[0];
	size_t n;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0; /* a continuation byte first, or 0xc0, 0xc1, 0xf5.. */
	if (len - 1 < n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char_len(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* Back off continuation bytes: the cut then falls before a character's first byte. */
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

void utf8_sanitize(char *s)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char_len(s + i, len - i);
		if (n == 0) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}
