/*
 * Unit tests are small programs.  Each test is a function; ASSERT prints
 * file:line and fails the test.  main() lists the tests with RUN().  The
 * program prints "PASS: name" or "FAIL: name" per test (tests/run counts
 * those lines) and exits non-zero when any failed.
 */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	test_failed;
static int	tests_failed;

#define ASSERT(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: ASSERT(%s) failed\n",		\
		    __FILE__, __LINE__, #c);				\
		test_failed = 1;					\
		return;							\
	}								\
} while (0)

#define ASSERT_STREQ(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {		\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n",		\
		    __FILE__, __LINE__, a_ ? a_ : "(null)",		\
		    b_ ? b_ : "(null)");				\
		test_failed = 1;					\
		return;							\
	}								\
} while (0)

static inline void
run_test(const char *name, void (*fn)(void))
{
	test_failed = 0;
	fn();
	printf("%s: %s\n", test_failed ? "FAIL" : "PASS", name);
	fflush(stdout);
	if (test_failed)
		tests_failed++;
}

#define RUN(fn)	run_test(#fn, fn)

#endif
