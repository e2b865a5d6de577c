/*
 * jsonout writes what jansson's json_dumps(JSON_COMPACT |
 * JSON_ENSURE_ASCII) writes, byte for byte, and refuses what json_string()
 * refuses.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonout.h"
#include "tests/unit/test.h"

/* jsonout_str(s) and jansson agree: the same text, or both refuse. */
static int
same_str(const char *s)
{
	struct jsonout	 o = { NULL, 0, 0 };
	json_t		*j;
	char		*want = NULL;
	int		 r, ok;

	if ((j = json_string(s)) != NULL)
		want = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
		    JSON_ENCODE_ANY);
	json_decref(j);
	r = jsonout_str(&o, s);
	ok = want == NULL ? r == -1 && o.len == 0 : r == 0 &&
	    o.len == strlen(want) && memcmp(o.buf, want, o.len) == 0;
	if (!ok)
		fprintf(stderr, "'%s': jansson %s, jsonout %d '%.*s'\n", s,
		    want ? want : "(refused)", r, (int)o.len,
		    o.buf ? o.buf : "");
	free(want);
	free(o.buf);
	return ok;
}

static void
test_strings(void)
{
	static const char	*ss[] = {
		"", "plain", "a\"b\\c/d", "\b\f\n\r\t\x01\x1f\x7f",
		"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf",
		"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80!",
		"\xed\x9f\xbf",
		/* Refused: overlong, surrogate, past U+10FFFF, cut short. */
		"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80", "\xc3", "a\xe2\x82", "\x80", "\xff",
	};
	char		 s[2];
	size_t		 i;

	for (i = 0; i < sizeof(ss) / sizeof(ss[0]); i++)
		ASSERT(same_str(ss[i]));
	s[1] = '\0';
	for (i = 1; i < 256; i++) {
		s[0] = (char)i;
		ASSERT(same_str(s));
	}
}

/* Random bytes, mostly from a set that makes UTF-8 and escapes often. */
static void
test_random(void)
{
	static const unsigned char	set[] = { 'a', '"', '\\', '\n', 0x01,
	    0x7f, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xed,
	    0xa0, 0xbf, 0xf4, 0x8f };
	unsigned	 seed = 7;
	char		 s[16];
	int		 i, j, n;

	for (i = 0; i < 20000; i++) {
		n = rand_r(&seed) % (int)(sizeof(s) - 1);
		for (j = 0; j < n; j++)
			s[j] = (char)(rand_r(&seed) % 4 == 0 ?
			    1 + rand_r(&seed) % 255 :
			    set[rand_r(&seed) % sizeof(set)]);
		s[n] = '\0';
		ASSERT(same_str(s));
	}
}

static void
test_ints(void)
{
	static const long long	vs[] = { 0, 1, -1, 1234567890123LL,
	    LLONG_MAX, LLONG_MIN };
	struct jsonout		o = { NULL, 0, 0 };
	json_t			*j;
	char			*want;
	size_t			 i;

	for (i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		o.len = 0;
		jsonout_int(&o, vs[i]);
		j = json_integer(vs[i]);
		want = json_dumps(j, JSON_ENCODE_ANY);
		json_decref(j);
		ASSERT(want != NULL && o.len == strlen(want) &&
		    memcmp(o.buf, want, o.len) == 0);
		free(want);
	}
	free(o.buf);
}

int
main(void)
{
	RUN(test_strings);
	RUN(test_random);
	RUN(test_ints);
	return tests_failed != 0;
}
