/*
 * Prometheus text (common/prom.c): label values escaped, histogram
 * buckets cumulative and ending in +Inf, sum and count; the golden text
 * below is the format 0.0.4 shape `promtool check metrics` accepts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prom.h"
#include "tests/unit/test.h"

static char *
text_of(void (*fn)(FILE *))
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*fp = open_memstream(&text, &len);

	if (fp == NULL)
		abort();
	fn(fp);
	if (fclose(fp) != 0)
		abort();
	return text;
}

static void
write_labels(FILE *fp)
{
	char	lb[128];

	lb[0] = '\0';
	prom_label(lb, sizeof(lb), "tool", "a\"b\\c\nd");
	prom_label(lb, sizeof(lb), "class", "ok");
	prom_head(fp, "toolgate_x_total", "counter", "A test.");
	prom_sample(fp, "toolgate_x_total", lb, 7);
	prom_sample(fp, "toolgate_y", "", 0);
}

static void
test_labels(void)
{
	char	*t = text_of(write_labels);

	ASSERT_EQ_STR(t, "# HELP toolgate_x_total A test.\n"
	    "# TYPE toolgate_x_total counter\n"
	    "toolgate_x_total{tool=\"a\\\"b\\\\c\\nd\",class=\"ok\"} 7\n"
	    "toolgate_y 0\n");
	free(t);
}

static const double bounds[] = { 0.5, 1, 10 };

static void
write_histo(FILE *fp)
{
	struct histo	h;

	histo_init(&h, bounds, 3);
	histo_observe(&h, 0.25);
	histo_observe(&h, 0.5);		/* le is "less or equal" */
	histo_observe(&h, 3);
	histo_observe(&h, 100);
	prom_histo(fp, "toolgate_h", "tool=\"t\"", &h);
	histo_init(&h, bounds, 3);
	prom_histo(fp, "toolgate_e", "", &h);
}

static void
test_histo(void)
{
	char	*t = text_of(write_histo);

	ASSERT_EQ_STR(t,
	    "toolgate_h_bucket{tool=\"t\",le=\"0.5\"} 2\n"
	    "toolgate_h_bucket{tool=\"t\",le=\"1\"} 2\n"
	    "toolgate_h_bucket{tool=\"t\",le=\"10\"} 3\n"
	    "toolgate_h_bucket{tool=\"t\",le=\"+Inf\"} 4\n"
	    "toolgate_h_sum{tool=\"t\"} 103.75\n"
	    "toolgate_h_count{tool=\"t\"} 4\n"
	    "toolgate_e_bucket{le=\"0.5\"} 0\n"
	    "toolgate_e_bucket{le=\"1\"} 0\n"
	    "toolgate_e_bucket{le=\"10\"} 0\n"
	    "toolgate_e_bucket{le=\"+Inf\"} 0\n"
	    "toolgate_e_sum 0\n"
	    "toolgate_e_count 0\n");
	free(t);
}

int
main(void)
{
	RUN(test_labels);
	RUN(test_histo);
	return tests_failed != 0;
}
