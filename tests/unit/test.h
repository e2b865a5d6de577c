/*
 * Unit tests are small programs.  Each test is a function; an ASSERT that
 * does not hold prints file:line and fails the test.  main() lists the
 * tests with RUN().  The program prints "PASS: name" or "FAIL: name" per
 * test (tests/run counts those lines) and exits non-zero when any failed.
 *
 * ASSERT(c) prints the condition.  The comparisons print the expressions
 * and the values they compared, so a failure says what was there:
 *
 *	ASSERT_EQ_INT(a, b)	integers (of any width or sign) equal
 *	ASSERT_EQ_STR(a, b)	strings equal (NULL is no string)
 *	ASSERT_EQ_MEM(a, b, n)	n bytes equal; the first difference printed
 *
 * Each evaluates its arguments once.
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

static inline void
test_fail_int(const char *file, int line, const char *ea, const char *eb,
    long long a, long long b)
{
	fprintf(stderr, "%s:%d: ASSERT_EQ_INT(%s, %s) failed: "
	    "%lld (%#llx) != %lld (%#llx)\n", file, line, ea, eb,
	    a, (unsigned long long)a, b, (unsigned long long)b);
	test_failed = 1;
}

/* A floating value would be truncated: compare those with ASSERT. */
#define TEST_NOT_FLOAT(x)						\
	_Generic((x), float: 0, double: 0, long double: 0, default: 1)

#define ASSERT_EQ_INT(a, b) do {					\
	_Static_assert(TEST_NOT_FLOAT(a) && TEST_NOT_FLOAT(b),		\
	    "ASSERT_EQ_INT of a floating value");			\
	long long a_ = (a), b_ = (b);					\
	if (a_ != b_) {							\
		test_fail_int(__FILE__, __LINE__, #a, #b, a_, b_);	\
		return;							\
	}								\
} while (0)

static inline int
test_eq_str(const char *file, int line, const char *ea, const char *eb,
    const char *a, const char *b)
{
	if (a != NULL && b != NULL && strcmp(a, b) == 0)
		return 1;
	fprintf(stderr, "%s:%d: ASSERT_EQ_STR(%s, %s) failed: "
	    "\"%s\" != \"%s\"\n", file, line, ea, eb,
	    a ? a : "(null)", b ? b : "(null)");
	test_failed = 1;
	return 0;
}

#define ASSERT_EQ_STR(a, b) do {					\
	if (!test_eq_str(__FILE__, __LINE__, #a, #b, (a), (b)))	\
		return;							\
} while (0)

static inline int
test_eq_mem(const char *file, int line, const char *ea, const char *eb,
    const void *a, const void *b, size_t n)
{
	const unsigned char	*x = a, *y = b;
	size_t			 i, j;

	for (i = 0; i < n && x[i] == y[i]; i++)
		;
	if (i == n)
		return 1;
	fprintf(stderr, "%s:%d: ASSERT_EQ_MEM(%s, %s, %zu) failed at byte "
	    "%zu:\n  ", file, line, ea, eb, n, i);
	for (j = i; j < n && j < i + 16; j++)
		fprintf(stderr, "%02x", x[j]);
	fprintf(stderr, "\n  ");
	for (j = i; j < n && j < i + 16; j++)
		fprintf(stderr, "%02x", y[j]);
	fprintf(stderr, "\n");
	test_failed = 1;
	return 0;
}

#define ASSERT_EQ_MEM(a, b, n) do {					\
	if (!test_eq_mem(__FILE__, __LINE__, #a, #b, (a), (b), (n)))	\
		return;							\
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
