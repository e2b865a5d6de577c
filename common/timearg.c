/*
 * Times given on a command line: see timearg.h.  Parsed by hand, digit by
 * digit, rather than with strptime(3), which takes the locale's forms and
 * leading blanks, and has no offsets in C.
 */
#include <stdint.h>
#include <string.h>

#include "common/timearg.h"

#define MAX_REL_S	(100ULL * 366 * 86400)	/* a century */
#define NOT_A_TIME	"not RFC 3339 (2026-12-02T16:30:00Z, or with an" \
			" offset +01:00) nor a time ago (90s, 10m, 2h, 7d)"

/* n decimal digits at s into *v; -1 if one is not a digit. */
static int
digits(const char *s, int n, int *v)
{
	int	i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t	era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
month_days(int y, int m)
{
	static const int	 days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
				    31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

static int
relative(const char *s, uint64_t now_ms, uint64_t *ms, const char **why)
{
	uint64_t	n = 0, unit;
	size_t		i, len = strlen(s);

	if (len < 2) {
		*why = NOT_A_TIME;
		return -1;
	}
	for (i = 0; i + 1 < len; i++) {
		if (s[i] < '0' || s[i] > '9' || n > MAX_REL_S) {
			*why = NOT_A_TIME;
			return -1;
		}
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	switch (s[len - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default:
		*why = NOT_A_TIME;
		return -1;
	}
	if (n * unit > MAX_REL_S) {
		*why = "more than a century ago";
		return -1;
	}
	*ms = n * unit * 1000 > now_ms ? 0 : now_ms - n * unit * 1000;
	return 0;
}

int
timearg_parse(const char *s, uint64_t now_ms, uint64_t *ms,
    const char **why)
{
	int	y, mo, d, h, mi, sec, oh, om, frac_ms = 0, scale = 100, sign;
	int64_t	t;
	size_t	i = 19;

	if (s[0] == '\0') {
		*why = "empty";
		return -1;
	}
	if (strlen(s) < 20 || s[4] != '-')
		return relative(s, now_ms, ms, why);
	*why = NOT_A_TIME;
	if (digits(s, 4, &y) == -1 || s[4] != '-' ||
	    digits(s + 5, 2, &mo) == -1 || s[7] != '-' ||
	    digits(s + 8, 2, &d) == -1 ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) == -1 || s[13] != ':' ||
	    digits(s + 14, 2, &mi) == -1 || s[16] != ':' ||
	    digits(s + 17, 2, &sec) == -1)
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > month_days(y, mo) || h > 23 || mi > 59 || sec > 60) {
		*why = "not a valid date and time";
		return -1;
	}
	if (s[i] == '.') {
		if (s[++i] < '0' || s[i] > '9')
			return -1;
		for (; s[i] >= '0' && s[i] <= '9'; i++) {
			frac_ms += (s[i] - '0') * scale;
			scale /= 10;
		}
	}
	t = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
	    (sec == 60 ? 59 : sec));
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0')
		;
	else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 &&
	    digits(s + i + 1, 2, &oh) == 0 && s[i + 3] == ':' &&
	    digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59) {
		sign = s[i] == '+' ? 1 : -1;
		t -= sign * (int64_t)(oh * 3600 + om * 60);
	} else
		return -1;
	if (t < 0) {
		*why = "before 1970";
		return -1;
	}
	*ms = (uint64_t)t * 1000 + (uint64_t)frac_ms;
	return 0;
}
