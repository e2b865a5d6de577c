/*
 * The executor's counters (metrics.h).  One slot per catalog tool, found
 * by the tool's place in the catalog: the labels are the config's names
 * and the fixed words below, never an agent's, so the series are bounded
 * by the catalog.  Bumping one is an increment; rendering happens only
 * when gatewayd asks, once per scrape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/prom.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/apstore.h"
#include "executor/backend.h"
#include "executor/breaker.h"
#include "executor/executor.h"
#include "executor/response.h"
#include "executor/metrics.h"
#include "executor/pgstore.h"

/* toolgate_tool_outcomes_total's class label. */
enum tool_class { TC_OK, TC_FAILED, TC_TIMEOUT, TC_RETRYABLE, TC_N };

static const char *const class_names[TC_N] = {
	"ok", "failed", "timeout", "retryable"
};
static const char *const write_names[WO_N] = {
	"ok", "replayed", "failed", "in_doubt"
};

/* Seconds: a local process in milliseconds up to an API's slow minute. */
static const double tool_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
};

struct tool_counters {
	uint64_t	 outcomes[TC_N];
	uint64_t	 writes[WO_N];
	struct histo	 seconds;
};

static const struct config	*conf;
static struct tool_counters	*tc;	/* [ncatalog] */

void
metrics_init(const struct config *c)
{
	size_t	i;

	conf = c;
	tc = xcalloc(c->ncatalog ? c->ncatalog : 1, sizeof(*tc));
	for (i = 0; i < c->ncatalog; i++)
		histo_init(&tc[i].seconds, tool_bounds,
		    sizeof(tool_bounds) / sizeof(tool_bounds[0]));
}

void
metrics_shutdown(void)
{
	free(tc);
	tc = NULL;
}

static struct tool_counters *
slot(const struct tool *t)
{
	if (tc == NULL || t == NULL || t < conf->catalog ||
	    t >= conf->catalog + conf->ncatalog)
		return NULL;
	return &tc[t - conf->catalog];
}

/*
 * Only runs that reached the tool, or tried to (unavailable: a later try
 * may work), have a class.  A changed definition or an open breaker sent
 * nothing (they show as stops); a run cancelled because its agent hung
 * up says nothing about the tool.
 */
static int
outcome_class(const struct tool_outcome *o)
{
	switch (o->status) {
	case TR_OK:
		return TC_OK;
	case TR_FAILED:
		return o->retryable ? TC_RETRYABLE : TC_FAILED;
	case TR_BAD_OUTPUT:
		return TC_FAILED;
	case TR_TIMEOUT:
		return TC_TIMEOUT;
	case TR_UNAVAILABLE:
		return TC_RETRYABLE;
	case TR_CANCELLED:
	case TR_CHANGED:
	case TR_CIRCUIT:
		break;
	}
	return -1;
}

void
metrics_tool_run(const struct tool *t, const struct tool_outcome *o)
{
	struct tool_counters	*s = slot(t);
	int			 cl = outcome_class(o);

	if (s == NULL || cl == -1)
		return;
	s->outcomes[cl]++;
	histo_observe(&s->seconds, (double)o->duration_ms / 1000.0);
}

void
metrics_tool_run_name(const char *tool, const struct tool_outcome *o)
{
	if (conf != NULL)
		metrics_tool_run(policy_tool(conf, tool), o);
}

void
metrics_write(const struct tool *t, enum write_outcome wo)
{
	struct tool_counters	*s = slot(t);

	if (s != NULL)
		s->writes[wo]++;
}

void
metrics_write_name(const char *tool, enum write_outcome wo)
{
	if (conf != NULL)
		metrics_write(policy_tool(conf, tool), wo);
}

static void
render(FILE *fp)
{
	const struct tool	*t;
	char			 lb[256];
	uint64_t		 oldest, now;
	size_t			 i, n;
	int			 k;

	prom_head(fp, "toolgate_tool_outcomes_total", "counter",
	    "Runs of a catalog tool that reached it, by class (executor).");
	for (i = 0; i < conf->ncatalog; i++)
		for (k = 0; k < TC_N; k++) {
			lb[0] = '\0';
			prom_label(lb, sizeof(lb), "tool", conf->catalog[i].name);
			prom_label(lb, sizeof(lb), "class", class_names[k]);
			prom_sample(fp, "toolgate_tool_outcomes_total", lb,
			    tc[i].outcomes[k]);
		}
	prom_head(fp, "toolgate_tool_seconds", "histogram",
	    "How long a catalog tool's runs took (executor).");
	for (i = 0; i < conf->ncatalog; i++) {
		lb[0] = '\0';
		prom_label(lb, sizeof(lb), "tool", conf->catalog[i].name);
		prom_histo(fp, "toolgate_tool_seconds", lb, &tc[i].seconds);
	}
	prom_head(fp, "toolgate_writes_total", "counter",
	    "Writes by outcome: ok, replayed, failed, in_doubt (executor).");
	for (i = 0; i < conf->ncatalog; i++) {
		t = &conf->catalog[i];
		if (t->mode != TOOL_WRITE)
			continue;
		for (k = 0; k < WO_N; k++) {
			lb[0] = '\0';
			prom_label(lb, sizeof(lb), "tool", t->name);
			prom_label(lb, sizeof(lb), "outcome", write_names[k]);
			prom_sample(fp, "toolgate_writes_total", lb,
			    tc[i].writes[k]);
		}
	}
	prom_head(fp, "toolgate_breakers_open", "gauge",
	    "Tenants whose circuit breaker of the tool is open or half-open"
	    " (executor).");
	for (i = 0; i < conf->ncatalog; i++) {
		lb[0] = '\0';
		prom_label(lb, sizeof(lb), "tool", conf->catalog[i].name);
		prom_sample(fp, "toolgate_breakers_open", lb,
		    breaker_not_closed(i));
	}
	n = approvals_pending_oldest(&oldest);
	prom_head(fp, "toolgate_pending_approvals", "gauge",
	    "Approvals waiting for an operator's decision (executor).");
	prom_sample(fp, "toolgate_pending_approvals", "", n);
	now = now_ms();
	prom_head(fp, "toolgate_oldest_pending_approval_seconds", "gauge",
	    "How long the oldest pending approval has waited; 0: none"
	    " (executor).");
	prom_sample(fp, "toolgate_oldest_pending_approval_seconds", "",
	    oldest != 0 && now > oldest ? (now - oldest) / 1000 : 0);
	if (pgstore_on())
		pgstore_metrics(fp);
}

void
metrics_answer(const struct proto_msg *m)
{
	struct msgbuf	 mb;
	struct mpmap	 body;
	FILE		*fp;
	char		*text = NULL;
	size_t		 len = 0;

	if ((fp = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	render(fp);
	if (fclose(fp) != 0)
		fatal("metrics");
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_METRICS_ANS, m->id, &body);
	mpmap_str(&body, "text", text);
	mpmap_end(&body);
	gw_send(&mb);
	msgbuf_free(&mb);
	free(text);
}
