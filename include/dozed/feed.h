/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The activity feed: every service transition becomes one event,
 *
 *   {"ts":"2026-11-24T22:58:00.123Z","event":"sleep","service":"web",
 *    "container":"<id>", ...facts}
 *
 * kept in a bounded in-memory history (oldest dropped, counted), handed to a
 * sink (the daemon broadcasts it to control-socket subscribers) and logged as
 * one human line at LOG_INFO. Facts by event:
 *
 *   sleep        idle_ms, egress_bytes, egress_packets
 *   wake         client ("ADDR:PORT" or "[v6]:PORT"; absent when not woken by a
 *                connection), trigger ("connection" | "command")
 *   ready        start_ms, probe_ms, total_ms
 *   wake_failed  reason
 *   enabled, disabled, removed: none required
 */

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct feed;

/* Called with each new event, which the sink borrows: json_object_get() to keep it. */
typedef void (*feed_sink_fn)(void *userdata, const struct json_object *event);
/* Wall-clock time in milliseconds since the Unix epoch. */
typedef uint64_t (*feed_clock_fn)(void *userdata);

/* history_max >= 1: how many events the history keeps. */
int feed_new(size_t history_max, struct feed **out);
/* Accepts NULL. */
void feed_free(struct feed *f);

/* fn NULL: no sink. */
void feed_set_sink(struct feed *f, feed_sink_fn fn, void *userdata);
/* For tests: replaces the real clock (CLOCK_REALTIME); fn NULL restores it. */
void feed_set_clock(struct feed *f, feed_clock_fn fn, void *userdata);

/*
 * Records one event. event is one of enabled, disabled, sleep, wake, ready,
 * wake_failed, removed; container may be NULL (then absent). facts is a JSON
 * object or NULL, and is taken even on error; its keys must not be ts, event,
 * service or container. -EINVAL for an unknown event or a bad argument.
 */
int feed_emit(struct feed *f, const char *event, const char *service, const char *container,
	      struct json_object *facts);

/* A new JSON array of the history, oldest first. The events in it are shared
 * with the history: read them, do not modify them. */
int feed_history_json(const struct feed *f, struct json_object **out);

size_t feed_history_size(const struct feed *f);
/* Events dropped from the history because it was full. */
uint64_t feed_history_dropped(const struct feed *f);
