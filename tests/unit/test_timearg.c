/*
 * gatewayctl's times: RFC 3339 with its offsets and fractions, and times
 * ago; anything else refused with a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/timearg.h"
#include "tests/unit/test.h"

#define NOW	1796228486076ULL	/* 2026-12-02T16:21:26.076Z */

static uint64_t
at(const char *s)
{
	const char	*why = NULL;
	uint64_t	 ms = 0;

	if (timearg_parse(s, NOW, &ms, &why) == -1) {
		fprintf(stderr, "%s: %s\n", s, why);
		return UINT64_MAX;
	}
	return ms;
}

static int
refused(const char *s)
{
	const char	*why = NULL;
	uint64_t	 ms;

	return timearg_parse(s, NOW, &ms, &why) == -1 && why != NULL &&
	    why[0] != '\0';
}

static void
test_rfc3339(void)
{
	ASSERT_EQ_INT(at("1970-01-01T00:00:00Z"), 0);
	ASSERT_EQ_INT(at("2026-12-02T16:21:26Z"), 1796228486000ULL);
	ASSERT_EQ_INT(at("2026-12-02t16:21:26.076z"), NOW);
	ASSERT_EQ_INT(at("2026-12-02 16:21:26.0761234Z"), NOW);
	ASSERT_EQ_INT(at("2026-12-02T17:21:26.076+01:00"), NOW);
	ASSERT_EQ_INT(at("2026-12-02T11:51:26.076-04:30"), NOW);
	ASSERT_EQ_INT(at("2024-02-29T00:00:00Z"), 1709164800000ULL);
	ASSERT_EQ_INT(at("2000-03-01T00:00:00Z"), 951868800000ULL);
}

static void
test_relative(void)
{
	ASSERT_EQ_INT(at("0s"), NOW);
	ASSERT_EQ_INT(at("90s"), NOW - 90000);
	ASSERT_EQ_INT(at("10m"), NOW - 600000);
	ASSERT_EQ_INT(at("2h"), NOW - 7200000);
	ASSERT_EQ_INT(at("7d"), NOW - 7 * 86400000ULL);
	ASSERT_EQ_INT(at("36500d"), 0);
}

static void
test_refused(void)
{
	ASSERT(refused(""));
	ASSERT(refused("10"));
	ASSERT(refused("m"));
	ASSERT(refused("-10m"));
	ASSERT(refused("10 m"));
	ASSERT(refused("10w"));
	ASSERT(refused("99999999999999999999d"));
	ASSERT(refused("36700d"));
	ASSERT(refused("2026-12-02"));
	ASSERT(refused("2026-12-02T16:21:26"));
	ASSERT(refused("2026-12-02T16:21:26+0100"));
	ASSERT(refused("2026-12-02T16:21:26Zjunk"));
	ASSERT(refused("2026-02-29T00:00:00Z"));
	ASSERT(refused("2026-13-01T00:00:00Z"));
	ASSERT(refused("2026-12-02T24:00:00Z"));
	ASSERT(refused("2026-12-02T16:21:26.Z"));
	ASSERT(refused("1969-12-31T23:59:59Z"));
	ASSERT(refused("1970-01-01T00:30:00+01:00"));
	ASSERT(refused("+026-12-02T16:21:26Z"));
}

int
main(void)
{
	RUN(test_rfc3339);
	RUN(test_relative);
	RUN(test_refused);
	return tests_failed != 0;
}
