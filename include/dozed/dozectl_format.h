/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dozectl's human output, from the control protocol's JSON (SERVICE and EVENT
 * objects, see daemon/dozectl/dozectl.c). Pure: writes to the stream it is given, so
 * the layout is tested on fixed objects. Missing or null fields print as "-"
 * in tables and are left out of key: value lines.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;

/* "850ms", "12s", "3m04s", "2h01m". */
char *dozectl_format_ms(uint64_t ms, char *buf, size_t len);
/* Wake timings keep their milliseconds below 10 s ("1523ms"), else as above ("2s"). */
char *dozectl_format_timing_ms(uint64_t ms, char *buf, size_t len);
/* "850 B", "1.2 kB", "3.4 MB", "1.1 GB" (SI units). */
char *dozectl_format_bytes(uint64_t bytes, char *buf, size_t len);

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
