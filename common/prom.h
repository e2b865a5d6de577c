/*
 * Prometheus text format 0.0.4, written by both processes: gatewayd its
 * own families, the executor its own (sent over the socketpair as text,
 * proto.h MSG_METRICS_ANS).  Counters are plain integers bumped on the
 * hot path; a histogram has fixed buckets chosen where it is declared,
 * so an observation is a short scan and two additions.
 */
#ifndef TG_PROM_H
#define TG_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HISTO_MAX_BOUNDS	16

struct histo {
	const double	*bounds;	/* ascending; +Inf is implied */
	size_t		 nbounds;
	uint64_t	 buckets[HISTO_MAX_BOUNDS + 1];	/* not cumulative */
	uint64_t	 count;
	double		 sum;
};

void	histo_init(struct histo *, const double *bounds, size_t nbounds);
void	histo_observe(struct histo *, double v);

/* # HELP and # TYPE of a family. */
void	prom_head(FILE *, const char *name, const char *type,
	    const char *help);
/*
 * One label pair, key="value" with the value escaped, appended to buf
 * (comma-separated); the caller starts with buf[0] = '\0'.
 */
void	prom_label(char *buf, size_t len, const char *key, const char *value);
/* name{labels} value; labels may be "". */
void	prom_sample(FILE *, const char *name, const char *labels,
	    uint64_t value);
/* The _bucket (cumulative, le), _sum and _count lines of one series. */
void	prom_histo(FILE *, const char *name, const char *labels,
	    const struct histo *);

#endif
