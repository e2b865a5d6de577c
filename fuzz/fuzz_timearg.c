/*
 * libFuzzer target for timearg.c: the input is a --since argument.
 * Properties, each an abort() when broken:
 *
 *  - a refusal says why, and nothing is read past the string;
 *  - a time ago is never after now;
 *  - an accepted RFC 3339 time in UTC ("Z", no fraction) is what
 *    timegm(3) makes of the same fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timearg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NOW	1796228486076ULL

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*why = NULL;
	struct tm	 tm;
	uint64_t	 ms;
	char		*s;

	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (timearg_parse(s, NOW, &ms, &why) == -1) {
		if (why == NULL || why[0] == '\0')
			abort();
	} else if (strlen(s) < 20 && ms > NOW) {
		abort();
	} else if (strlen(s) == 20 && s[19] == 'Z' && s[10] == 'T' &&
	    s[17] != '6') {
		memset(&tm, 0, sizeof(tm));
		if (strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL ||
		    (uint64_t)timegm(&tm) * 1000 != ms) {
			fprintf(stderr, "%s: %llu\n", s,
			    (unsigned long long)ms);
			abort();
		}
	}
	free(s);
	return 0;
}
