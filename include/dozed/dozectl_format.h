/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dozectl's human output, from the control protocol's JSON (SERVICE and EVENT
 * objects, see daemon/dozectl/dozectl.c). Pure: writes to the stream it is given, so
 * the layout is tested on fixed objects. Missing or null fields print as "-"
 * in tables and are left out of key: value lines.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;

/* "850ms", "12s", "3m04s", "2h01m". */
char *dozectl_format_ms(uint64_t ms, char *buf, size_t len);
/* Wake timings keep their milliseconds below 10 s ("1523ms"), else as above ("2s"). */
char *dozectl_format_timing_ms(uint64_t ms, char *buf, size_t len);
/* A thaw's timing: "850us", "1.2ms" below 10 ms, then as a wake timing ("25ms"). */
char *dozectl_format_timing_us(uint64_t us, char *buf, size_t len);
/* "850 B", "1.2 kB", "3.4 MB", "1.1 GB" (SI units). */
char *dozectl_format_bytes(uint64_t bytes, char *buf, size_t len);

/*
 * Text from the daemon made safe for a terminal, into buf (cut between
 * characters to fit): each byte that is not valid UTF-8, each control
 * character (C0, DEL, C1) and each bidirectional override becomes '?'. A
 * container's name or a peer's is whatever its runtime let through.
 */
char *dozectl_sanitize(const char *s, char *buf, size_t len);
/* The columns text takes on a terminal: its characters (as sanitized). */
size_t dozectl_text_width(const char *s);

/* o's string field key, or NULL when absent or not a string. */
const char *dozectl_json_str(struct json_object *o, const char *key);
/* o's field key when it is an integer >= 0 (up to UINT64_MAX). */
bool dozectl_json_u64(struct json_object *o, const char *key, uint64_t *out);

/* A FLOW's or an OPEN_CONN's peer: "db (10.88.0.7:5432)" when the daemon
 * named the managed service behind the address, else "10.88.0.7:5432";
 * "-" when absent. Sanitized. */
char *dozectl_format_peer(struct json_object *flow, char *buf, size_t len);
/* A flow_table object: "123 of 32768 entries, 0 evicted" ("-" for a
 * missing number). */
char *dozectl_format_flow_table(struct json_object *table, char *buf, size_t len);

/* An aligned table: the header row, then n rows of ncols cells each
 * (cells[i * ncols + c]), padded by characters (UTF-8), two spaces apart. */
void dozectl_print_table(FILE *out, const char *const *headers, const char *const *cells,
			 size_t ncols, size_t n);
/* Whether a SERVICE is never stopped: "idle_timeout_ms" null (or as long
 * as UINT64_MAX microseconds). */
bool dozectl_idle_is_never(struct json_object *service);
/*
 * A SERVICE's light sleep, into buf (daemon/dozectl/dozectl_sleep.c), from
 * its "freeze_after_ms" (null or 0: none), "idle_timeout_ms" (null: never
 * stopped), "reclaim_frozen", "freezes", "thaws", "last_thaw_us" and
 * "freeze_refused": "frozen after 30s idle, stopped after 10m; 3 freezes, 3
 * thaws, last thaw 1.2ms", "off", "off (the runtime refused to pause it:
 * WHY)". NULL when the daemon sent neither freeze_after_ms nor
 * freeze_refused (no light sleep there). Sanitized.
 */
const char *dozectl_format_light_sleep(struct json_object *service, char *buf, size_t len);
/* The aligned table NAME STATE PORTS IDLE-FOR LAST-WAKE of an array of SERVICE. */
void dozectl_print_list(FILE *out, struct json_object *services);
/* One SERVICE as "key: value" lines, the reason included. */
void dozectl_print_status(FILE *out, struct json_object *service);
/* One line: "web: asleep (reason)". */
void dozectl_print_summary(FILE *out, struct json_object *service);
/* One EVENT as "TIME SERVICE EVENT key=value...". */
void dozectl_print_event(FILE *out, struct json_object *event);
/* The reply of the flows command: per service, an aligned table of its
 * flows (daemon/dozectl/dozectl_flows.c). */
void dozectl_print_flows(FILE *out, struct json_object *reply);
/* The explainer's "key: value" lines of one SERVICE (its "activity" and
 * "flow_table"): last counted traffic, what was ignored, the open
 * connections a sleep would cut (dozectl_flows.c; dozectl_print_status
 * calls it). label_width: the column of the values. */
void dozectl_print_activity(FILE *out, struct json_object *service, int label_width);
/* A sleep event's top_flows: "10.88.0.1:41234 1.2 kB, 10.88.0.53:53 300 B
 * (ignored: DNS)", into buf. */
char *dozectl_format_top_flows(struct json_object *flows, char *buf, size_t len);
