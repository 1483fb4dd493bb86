/* SPDX-License-Identifier: MIT */
#pragma once

/* dozed's version: --version and the metrics' dozed_build_info. */
#define DOZED_VERSION "0.2.0"
