/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Durations as users write them: an unsigned integer and exactly one unit,
 * ms, s, m or h ("30ms", "10s", "10m", "2h"). Nothing else is accepted: no
 * sign, no leading zero, no fraction, no space, no bare number, no mixed units.
 */

#define DURATION_US_PER_MS   UINT64_C(1000)
#define DURATION_US_PER_SEC  UINT64_C(1000000)
#define DURATION_US_PER_MIN  (60 * DURATION_US_PER_SEC)
#define DURATION_US_PER_HOUR (60 * DURATION_US_PER_MIN)

/*
 * The longest duration any setting takes: a year, written 8760h. A deadline
 * is "now + duration" in 64-bit microseconds; bounding every duration keeps
 * that sum far from wrapping, whatever a user, a label or a file says.
 */
#define DURATION_MAX_US	  (8760 * DURATION_US_PER_HOUR)
#define DURATION_MAX_TEXT "8760h (a year)"

/* Room for any duration_format() result. */
#define DURATION_FORMAT_MAX 32

/* 0 and *out_us; -EINVAL for text that is not a duration, -ERANGE for one
 * over DURATION_MAX_US; pure, logs nothing. */
int duration_parse_us(const char *s, uint64_t *out_us);

/*
 * Human-short form, truncated to its two largest units: "850ms", "12s",
 * "3m04s", "2h01m", "0ms". A whole number of one unit prints as that unit
 * alone ("10m", "2h", "30ms"), so configured values read back as written.
 * Returns buf; the text is cut to fit len (DURATION_FORMAT_MAX is enough).
 */
char *duration_format(uint64_t us, char *buf, size_t len);
