/*
 * Prometheus text format 0.0.4 (prom.h): the few shapes toolgate needs.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/prom.h"

void
histo_init(struct histo *h, const double *bounds, size_t nbounds)
{
	if (nbounds > HISTO_MAX_BOUNDS)
		fatalx("histogram with %zu buckets", nbounds);
	memset(h, 0, sizeof(*h));
	h->bounds = bounds;
	h->nbounds = nbounds;
}

void
histo_observe(struct histo *h, double v)
{
	size_t	i;

	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	h->buckets[i]++;
	h->count++;
	h->sum += v;
}

void
prom_head(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
void
prom_label(char *buf, size_t len, const char *key, const char *value)
{
	size_t	n = strlen(buf);

	if (n > 0 && n + 1 < len)
		buf[n++] = ',';
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s=\"", key);
	for (; *value != '\0' && n + 3 < len; value++) {
		if (*value == '\\' || *value == '"' || *value == '\n') {
			buf[n++] = '\\';
			buf[n++] = *value == '\n' ? 'n' : *value;
		} else
			buf[n++] = *value;
	}
	if (n + 1 < len) {
		buf[n++] = '"';
		buf[n] = '\0';
	} else
		fatalx("metric label %s too long", key);
}

void
prom_sample(FILE *fp, const char *name, const char *labels, uint64_t value)
{
	if (labels[0] != '\0')
		fprintf(fp, "%s{%s} %llu\n", name, labels,
		    (unsigned long long)value);
	else
		fprintf(fp, "%s %llu\n", name, (unsigned long long)value);
}

void
prom_histo(FILE *fp, const char *name, const char *labels,
    const struct histo *h)
{
	const char	*sep = labels[0] != '\0' ? "," : "";
	uint64_t	 cum = 0;
	size_t		 i;

	for (i = 0; i < h->nbounds; i++) {
		cum += h->buckets[i];
		fprintf(fp, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
		    sep, h->bounds[i], (unsigned long long)cum);
	}
	cum += h->buckets[h->nbounds];
	fprintf(fp, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
	    (unsigned long long)cum);
	if (labels[0] != '\0') {
		fprintf(fp, "%s_sum{%s} %.17g\n", name, labels, h->sum);
		fprintf(fp, "%s_count{%s} %llu\n", name, labels,
		    (unsigned long long)h->count);
	} else {
		fprintf(fp, "%s_sum %.17g\n", name, h->sum);
		fprintf(fp, "%s_count %llu\n", name,
		    (unsigned long long)h->count);
	}
}
