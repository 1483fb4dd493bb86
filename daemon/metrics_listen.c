// SPDX-License-Identifier: MIT
/* metrics_listen_parse (metrics_http.h), apart from the listener: the config
 * parser and dozectl's checks need it without evhttp. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dozed/metrics_http.h"

#define FORMS "expected ADDR:PORT with a numeric address, like 127.0.0.1:9321 or [::1]:9321"

int metrics_listen_parse(const char *text, struct sockaddr_storage *out, char *why, size_t why_len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text;
	size_t host_len;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':') {
			snprintf(why, why_len, "%s", FORMS);
			return -EINVAL;
		}
		host_len = (size_t)(close - text - 1);
		if (host_len == 0 || host_len >= sizeof(host)) {
			snprintf(why, why_len, "%s", FORMS);
			return -EINVAL;
		}
		memcpy(host, text + 1, host_len);
		port_text = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || colon == text || memchr(text, ':', (size_t)(colon - text))) {
			/* "::1:9321" is ambiguous: IPv6 goes in brackets. */
			snprintf(why, why_len, "%s%s", FORMS,
				 colon && colon != text ? " (an IPv6 address in brackets)" : "");
			return -EINVAL;
		}
		host_len = (size_t)(colon - text);
		if (host_len >= sizeof(host)) {
			snprintf(why, why_len, "%s", FORMS);
			return -EINVAL;
		}
		memcpy(host, text, host_len);
		port_text = colon + 1;
	}
	host[host_len] = '\0';

	unsigned long port = 0;
	size_t digits = strspn(port_text, "0123456789");
	if (digits == 0 || digits > 5 || port_text[digits] != '\0' ||
	    (port_text[0] == '0' && digits > 1) || (port = strtoul(port_text, NULL, 10)) == 0 ||
	    port > 65535) {
		snprintf(why, why_len,
			 "expected a port 1-65535 after the address, like "
			 "127.0.0.1:9321");
		return -EINVAL;
	}

	struct sockaddr_storage ss = {0};
	if (text[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
			snprintf(why, why_len, "%s is not an IPv4 address; %s", host, FORMS);
			return -EINVAL;
		}
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
			snprintf(why, why_len, "[%s] is not an IPv6 address; %s", host, FORMS);
			return -EINVAL;
		}
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	}
	*out = ss;
	return 0;
}
