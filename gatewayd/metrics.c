/*
 * gatewayd's metric families (PROTOCOL.md, "Metrics"), counted here and
 * rendered as Prometheus text for metricsd.c, which serves them.
 *
 * gatewayd counts what it sees: every call op and its decision (its own
 * refusals and the executor's answers alike), every answer with a stop
 * reason, the time a call took, and the runs it finishes.  The executor
 * counts what only it sees (executor/metrics.c): nothing is counted in
 * both processes.
 *
 * Labels come from the config (catalog tool names) and from the fixed
 * lists below, never from what an agent sent: a call of a tool the
 * catalog does not have is counted as tool="(other)".  Bumping a counter
 * is an increment; a histogram has fixed buckets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/prom.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/gatewayd.h"

/* The decision label: the statuses of CONTRACT.md, and nothing else. */
static const char *const decisions[] = {
	ST_OK, ST_NEEDS_APPROVAL, ST_PENDING, ST_DENIED, ST_STOPPED, ST_ERROR,
};
#define NDECISIONS	(sizeof(decisions) / sizeof(decisions[0]))

/* The reason label: every stop_reason of proto.h. */
static const char *const reasons[] = {
	R_NOT_ALLOWED, R_UNKNOWN_PRINCIPAL, R_WRITES_DISABLED,
	R_APPROVAL_REQUIRED, R_APPROVAL_DENIED, R_APPROVAL_EXPIRED,
	R_BAD_SIGNATURE, R_DUPLICATE_WRITE, R_LOOP_DETECTED,
	R_BUDGET_EXCEEDED, R_INVALID_OUTPUT, R_RATE_LIMITED, R_CIRCUIT_OPEN,
	R_TOOL_CHANGED,
};
#define NREASONS	(sizeof(reasons) / sizeof(reasons[0]))
#define OTHER		"(other)"

/* Seconds from a call read to its answer queued. */
static const double decision_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10, 30, 60
};
/* Calls in a finished run. */
static const double run_calls_bounds[] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000
};
/* Tokens a finished run reported (the usage op). */
static const double run_tokens_bounds[] = {
	0, 100, 1000, 5000, 10000, 50000, 100000, 500000, 1e6, 5e6, 1e7,
	5e7, 1e8
};

/* calls[tool][decision]; the row past the catalog is "(other)". */
static uint64_t		*calls;
static uint64_t		 stops[NREASONS + 1];
static uint64_t		 runs_stopped[NREASONS + 1];
static struct histo	 decision_h, run_calls_h, run_tokens_h;

/* Counting: plain increments on the hot path. */

uint64_t
metrics_clock(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static size_t
decision_index(const char *status)
{
	size_t	i;

	for (i = 0; i < NDECISIONS; i++)
		if (strcmp(decisions[i], status) == 0)
			return i;
	return NDECISIONS - 1;	/* never: statuses are ours; say error */
}

void
metrics_call(const struct tool *t, const char *status, uint64_t started_us)
{
	size_t	row;

	if (calls == NULL)
		return;
	row = t != NULL ? (size_t)(t - gw->conf->catalog) : gw->conf->ncatalog;
	calls[row * NDECISIONS + decision_index(status)]++;
	histo_observe(&decision_h,
	    (double)(metrics_clock() - started_us) / 1e6);
}

/* Its place in reasons[], or NREASONS: "(other)". */
static size_t
reason_index(const char *reason)
{
	size_t	i;

	for (i = 0; i < NREASONS; i++)
		if (reason != NULL && strcmp(reasons[i], reason) == 0)
			break;
	return i;
}

void
metrics_stop_reason(const char *reason)
{
	stops[reason_index(reason)]++;
}

void
metrics_run_done(uint64_t ncalls, uint64_t tokens, const char *stopped)
{
	if (stopped != NULL)
		runs_stopped[reason_index(stopped)]++;
	histo_observe(&run_calls_h, (double)ncalls);
	histo_observe(&run_tokens_h, (double)tokens);
}

/* Rendering. */

/* A counter family by stop reason, the fixed list and "(other)". */
static void
by_reason(FILE *fp, const char *name, const char *help,
    const uint64_t counts[NREASONS + 1])
{
	char	lb[256];
	size_t	i;

	prom_head(fp, name, "counter", help);
	for (i = 0; i <= NREASONS; i++) {
		lb[0] = '\0';
		prom_label(lb, sizeof(lb), "reason", i < NREASONS ?
		    reasons[i] : OTHER);
		prom_sample(fp, name, lb, counts[i]);
	}
}

void
metrics_render(FILE *fp, int executor_up)
{
	const struct tool	*t;
	char			 lb[256];
	size_t			 i, k;

	prom_head(fp, "toolgate_calls_total", "counter",
	    "Call ops answered, by catalog tool, its mode and the decision"
	    " (gatewayd).");
	for (i = 0; i <= gw->conf->ncatalog; i++) {
		t = i < gw->conf->ncatalog ? &gw->conf->catalog[i] : NULL;
		for (k = 0; k < NDECISIONS; k++) {
			lb[0] = '\0';
			prom_label(lb, sizeof(lb), "tool", t ? t->name : OTHER);
			prom_label(lb, sizeof(lb), "mode", t == NULL ? OTHER :
			    t->mode == TOOL_READ ? "read" : "write");
			prom_label(lb, sizeof(lb), "decision", decisions[k]);
			prom_sample(fp, "toolgate_calls_total", lb,
			    calls[i * NDECISIONS + k]);
		}
	}
	by_reason(fp, "toolgate_stops_total", "Answers that carried a"
	    " stop_reason (denied or stopped), by reason (gatewayd).", stops);
	by_reason(fp, "toolgate_runs_stopped_total", "Runs stopped, once each,"
	    " by their first stop reason (gatewayd).", runs_stopped);
	prom_head(fp, "toolgate_decision_seconds", "histogram",
	    "Seconds from a call op read to its answer, tool runs included"
	    " (gatewayd).");
	prom_histo(fp, "toolgate_decision_seconds", "", &decision_h);
	prom_head(fp, "toolgate_run_calls", "histogram",
	    "Calls of each finished run: stopped, or forgotten after"
	    " runs.idle_s (gatewayd).");
	prom_histo(fp, "toolgate_run_calls", "", &run_calls_h);
	prom_head(fp, "toolgate_run_tokens", "histogram",
	    "Tokens reported by each finished run (gatewayd).");
	prom_histo(fp, "toolgate_run_tokens", "", &run_tokens_h);
	prom_head(fp, "toolgate_runs", "gauge",
	    "Runs gatewayd keeps now (gatewayd).");
	prom_sample(fp, "toolgate_runs", "", runs_count());
	prom_head(fp, "toolgate_writes_enabled", "gauge",
	    "1 while writes are enabled: writes.enabled and the kill switch"
	    " (gatewayd).");
	prom_sample(fp, "toolgate_writes_enabled", "",
	    gw->conf->writes_enabled && gw->writes_on ? 1 : 0);
	prom_head(fp, "toolgate_executor_up", "gauge",
	    "1 when the executor answered this scrape in time; 0: its"
	    " families are missing from it (gatewayd).");
	prom_sample(fp, "toolgate_executor_up", "", executor_up ? 1 : 0);
}

void
metrics_init(void)
{
	size_t	n = gw->conf->ncatalog + 1;

	calls = xcalloc(n * NDECISIONS, sizeof(*calls));
	memset(stops, 0, sizeof(stops));
	memset(runs_stopped, 0, sizeof(runs_stopped));
	histo_init(&decision_h, decision_bounds,
	    sizeof(decision_bounds) / sizeof(decision_bounds[0]));
	histo_init(&run_calls_h, run_calls_bounds,
	    sizeof(run_calls_bounds) / sizeof(run_calls_bounds[0]));
	histo_init(&run_tokens_h, run_tokens_bounds,
	    sizeof(run_tokens_bounds) / sizeof(run_tokens_bounds[0]));
}

void
metrics_free(void)
{
	free(calls);
	calls = NULL;
}
