/*
 * A point in time given on a command line (gatewayctl audit show --since):
 * RFC 3339, "2026-12-02T16:30:00Z" (a fraction of a second and an offset
 * "+01:00" allowed, "T" or a space between date and time), or a time
 * before now: a whole number and a unit, "90s", "10m", "2h", "7d".
 */
#ifndef TG_TIMEARG_H
#define TG_TIMEARG_H

#include <stdint.h>

/*
 * The time s names, in milliseconds since the epoch, into *ms; now_ms is
 * now, for the relative form.  0, or -1 with why set.
 */
int	timearg_parse(const char *s, uint64_t now_ms, uint64_t *ms,
	    const char **why);

#endif
