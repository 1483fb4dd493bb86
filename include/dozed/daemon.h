/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dozed itself: the egress counter, the nft table, the activator, the runtime
 * client, the control socket and the activity feed, joined by the service
 * state machine on one libevent base.
 */

#include <stdbool.h>

struct event_base;
struct dozed_config;
struct dozed;

/* Listening sockets handed over by systemd (socket activation), or -1. */
struct dozed_fds {
	int activator[2]; /* IPv4 and/or IPv6 listeners on the activator port */
	int control;
};

/*
 * Builds every part and starts loading the enabled services: the saved ones
 * and the containers labelled dozed.enable=true. ready is called once they
 * are all known and the redirect set is reconciled (sd_notify READY=1).
 */
int dozed_new(struct event_base *base, const struct dozed_config *cfg, const struct dozed_fds *fds,
	      void (*ready)(void *userdata), void *userdata, struct dozed **out);
/* Accepts NULL. The nft table stays: sleeping services stay redirected. */
void dozed_free(struct dozed *d);

/* "3 services: 1 awake, 2 asleep", for sd_notify STATUS=. */
void dozed_status_text(struct dozed *d, char *buf, size_t len);
