// SPDX-License-Identifier: MIT
/* Unread work in a namespace's sockets, from /proc/PID/net (net_queued.h). */
#include "dozed/net_queued.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/fileio.h"
#include "dozed/macro.h"

/* The kernel's TCP states, as the tables print them. */
#define ST_ESTABLISHED 0x01
#define ST_UDP_UNCONN  0x07
#define ST_CLOSE_WAIT  0x08
#define ST_LISTEN      0x0a

/* "0100007F:0050" (IPv4, in the kernel's byte order) or 32 hex digits. */
static int addr_parse(const char *s, char *text, size_t len, bool *loopback)
{
	const char *colon = strchr(s, ':');
	if (!colon)
		return -EINVAL;
	size_t hex = (size_t)(colon - s);
	unsigned port;
	if (sscanf(colon + 1, "%4x", &port) != 1)
		return -EINVAL;
	if (hex == 8) {
		uint32_t a;
		if (sscanf(s, "%8" SCNx32, &a) != 1)
			return -EINVAL;
		struct in_addr in = {.s_addr = a};
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &in, ip, sizeof(ip));
		*loopback = (ntohl(a) >> 24) == 127;
		snprintf(text, len, "%s:%u", ip, port);
		return 0;
	}
	if (hex != 32)
		return -EINVAL;
	struct in6_addr in6;
	for (int w = 0; w < 4; w++) {
		uint32_t v;
		char word[9];
		memcpy(word, s + w * 8, 8);
		word[8] = '\0';
		if (sscanf(word, "%8" SCNx32, &v) != 1)
			return -EINVAL;
		memcpy(&in6.s6_addr[w * 4], &v, 4);
	}
	char ip[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, &in6, ip, sizeof(ip));
	*loopback =
	    IN6_IS_ADDR_LOOPBACK(&in6) || (IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127);
	snprintf(text, len, "[%s]:%u", ip, port);
	return 0;
}

int net_queued_parse(const char *text, bool udp, bool data_only, char *who, size_t who_len)
{
	const char *line = strchr(text, '\n'); /* the header */
	if (!line || !strstr(text, "local_address"))
		return -EINVAL;
	int found = 0;
	for (line++; *line;) {
		const char *eol = strchr(line, '\n');
		char row[512];
		size_t n = eol ? (size_t)(eol - line) : strlen(line);
		snprintf(row, sizeof(row), "%.*s", (int)(n < sizeof(row) ? n : sizeof(row) - 1),
			 line);
		line = eol ? eol + 1 : line + n;
		char local[64], peer[64];
		unsigned st;
		unsigned long tx, rx;
		if (sscanf(row, " %*u: %63s %63s %x %lx:%lx", local, peer, &st, &tx, &rx) != 5)
			continue;
		if (rx == 0)
			continue;
		bool listen = !udp && st == ST_LISTEN;
		bool data = udp ? st == ST_UDP_UNCONN || st == ST_ESTABLISHED
				: st == ST_ESTABLISHED || st == ST_CLOSE_WAIT;
		if (!(data || (listen && !data_only)))
			continue;
		char peer_text[80] = "", local_text[80] = "";
		bool lo = false, local_lo = false;
		if (addr_parse(peer, peer_text, sizeof(peer_text), &lo) < 0 ||
		    addr_parse(local, local_text, sizeof(local_text), &local_lo) < 0)
			continue;
		/* The container's own (a listener's peer is the any address). */
		if ((data && lo) || (listen && local_lo))
			continue;
		if (found++ == 0 && who) {
			if (listen)
				snprintf(who, who_len, "a connection not yet accepted on %s",
					 local_text);
			else if (udp)
				snprintf(who, who_len, "%lu unread bytes of datagrams on %s", rx,
					 local_text);
			else
				snprintf(who, who_len, "a client from %s with %lu unread bytes",
					 peer_text, rx);
		}
	}
	return found;
}

int net_queued(pid_t pid, bool data_only, char *who, size_t who_len)
{
	static const char *const files[] = {"tcp", "tcp6", "udp", "udp6"};
	int total = 0, read_any = -ENOENT;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, files[i]);
		_cleanup_free_ char *text = NULL;
		int r = file_read_text(path, &text);
		if (r < 0) {
			read_any = read_any == 0 ? 0 : r;
			continue;
		}
		read_any = 0;
		r = net_queued_parse(text, i >= 2, data_only, total ? NULL : who, who_len);
		if (r > 0)
			total += r;
	}
	return total > 0 ? total : read_any;
}
