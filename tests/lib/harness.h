/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A small test harness. Each TEST runs in its own forked child with an alarm,
 * so a crash, a hang or a failed assertion ends that test only. A test
 * registers cleanups with test_defer(); they run (last first) when the test
 * ends, whether it passed or failed. Output, one line per test:
 *   PASS name (N ms) | FAIL name: why | SKIP name: why
 * and the binary exits 1 if any test failed.
 */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef void (*test_cleanup_fn)(void *arg);

void test_register(const char *name, test_fn fn);
void test_defer(test_cleanup_fn fn, void *arg);
/* Closes fd when the test ends. */
void test_defer_close(int fd);
/* Ends the current test as failed, after running its cleanups. */
__attribute__((noreturn, format(printf, 3, 4))) void test_fail(const char *file, int line,
							       const char *fmt, ...);
/* Ends the current test as skipped: only for what truly cannot run here. */
__attribute__((noreturn, format(printf, 1, 2))) void test_skip(const char *fmt, ...);
/* Seconds before a test is killed as hung (default 60); call from main via TEST_TIMEOUT. */
void test_set_timeout(unsigned seconds);
uint64_t test_now_ms(void);
/* Optional, defined by a test binary: runs once after all its tests. */
void test_suite_teardown(void);

#define TEST(name)                                                                                 \
	static void name(void);                                                                    \
	__attribute__((constructor)) static void register_##name(void)                             \
	{                                                                                          \
		test_register(#name, name);                                                        \
	}                                                                                          \
	static void name(void)

#define FAIL(...) test_fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT_TRUE(cond)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL("expected %s", #cond);                                                \
	} while (0)

#define ASSERT_OK(expr)                                                                            \
	do {                                                                                       \
		long _r_ = (long)(expr);                                                           \
		if (_r_ < 0)                                                                       \
			FAIL("%s returned %ld (%s)", #expr, _r_, strerror((int)-_r_));             \
	} while (0)

#define ASSERT_ERR(expr, err)                                                                      \
	do {                                                                                       \
		long _r_ = (long)(expr);                                                           \
		if (_r_ != -(long)(err))                                                           \
			FAIL("%s returned %ld, expected -%s", #expr, _r_, #err);                   \
	} while (0)

#define ASSERT_EQ_U(a, b)                                                                          \
	do {                                                                                       \
		unsigned long long _a_ = (a), _b_ = (b);                                           \
		if (_a_ != _b_)                                                                    \
			FAIL("%s == %llu, expected %s == %llu", #a, _a_, #b, _b_);                 \
	} while (0)

#define ASSERT_GE_U(a, b)                                                                          \
	do {                                                                                       \
		unsigned long long _a_ = (a), _b_ = (b);                                           \
		if (_a_ < _b_)                                                                     \
			FAIL("%s == %llu, expected >= %s == %llu", #a, _a_, #b, _b_);              \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                         \
	do {                                                                                       \
		const char *_a_ = (a), *_b_ = (b);                                                 \
		if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0)                                         \
			FAIL("%s == \"%s\", expected \"%s\"", #a, _a_ ? _a_ : "(null)",            \
			     _b_ ? _b_ : "(null)");                                                \
	} while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
	do {                                                                                       \
		const char *_h_ = (hay), *_n_ = (needle);                                          \
		if (!_h_ || !strstr(_h_, _n_))                                                     \
			FAIL("%s == \"%s\" does not contain \"%s\"", #hay, _h_ ? _h_ : "(null)",   \
			     _n_);                                                                 \
	} while (0)
