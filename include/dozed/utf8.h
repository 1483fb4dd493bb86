/* SPDX-License-Identifier: MIT */
#pragma once

/* UTF-8 checks for text from outside (requests, container logs); pure. */

#include <stdbool.h>
#include <stddef.h>

/* The length of the valid UTF-8 character at s[0..len), or 0 when there is
 * none (an invalid or cut sequence). Shortest forms, no surrogates, at most
 * U+10FFFF. */
size_t utf8_char_len(const char *s, size_t len);

/* True when s[0..len) is UTF-8 (as utf8_char_len counts it). */
bool utf8_valid(const char *s, size_t len);

/* The longest prefix of UTF-8 s[0..len) of at most max bytes that ends between characters. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

/* Replaces each byte of s that is not part of a valid character by '?', in
 * place: text cut to a buffer, or a container's output, becomes UTF-8. */
void utf8_sanitize(char *s);
