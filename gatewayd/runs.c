/*
 * Runs: an agent's sequence of calls, named by its run_id within its
 * tenant.  A stopped run answers every later call with its first stop
 * reason.  Runs are kept in a hash table and a least-recently-used list
 * (common/runtab.c); a timer drops runs idle for longer than runs.idle_s,
 * and no more than runs.max_runs live at once (a new run past that is
 * refused, never made room for by forgetting another run's stop).  Here
 * are gatewayd's own budgets: duplicate writes, writes, tokens and cost.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/runtab.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/runs.h"

static struct runtab	 runs;
static struct event	*sweep_ev;

static void
runs_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	 tv = { 1, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	runtab_sweep(&runs, gw->conf->run_idle_s * 1000);
	evtimer_add(sweep_ev, &tv);
}

/*
 * A run is finished when it stops (counted then, once) or, never
 * stopped, when it is forgotten after runs.idle_s.
 */
static void
run_forgotten(const struct run *r)
{
	if (run_stopped(r) == NULL)
		metrics_run_done(r->steps, r->tokens, NULL);
}

void
runs_init(void)
{
	struct timeval	tv = { 1, 0 };

	/* Our stops are our own words and the executor's: kept whole. */
	runtab_init(&runs, gw->conf->max_runs, gw->conf->max_runs_per_tenant,
	    SIZE_MAX, SIZE_MAX);
	runs.forget = run_forgotten;
	if (gw->base != NULL) {
		sweep_ev = evtimer_new(gw->base, runs_sweep, NULL);
		evtimer_add(sweep_ev, &tv);
	}
}

void
runs_free(void)
{
	runtab_free(&runs);
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	sweep_ev = NULL;
}

size_t
runs_count(void)
{
	return runtab_count(&runs);
}

struct run *
run_get(const char *tenant, const char *run_id, int create)
{
	return runtab_get(&runs, tenant, run_id, create);
}

const char *
runs_full_message(char *buf, size_t len)
{
	snprintf(buf, len, "too many live runs (%s)", runtab_full(&runs) ?
	    runtab_full(&runs) : "runs.max_runs");
	return buf;
}

void
run_stop(struct run *r, const char *reason, const char *message)
{
	if (run_stopped(r) == NULL)
		metrics_run_done(r->steps, r->tokens, reason);
	runtab_stop(&runs, r, reason, message);
}

const char *
run_account(struct run *r, const char *tool, const char *hash, int write,
    char *msg, size_t len)
{
	const struct config	*c = gw->conf;
	struct run_seen		*s;
	const char		*reason;

	if ((reason = run_step(r, tool, hash, c->max_steps_per_run, &s, msg,
	    len)) != NULL)
		return reason;
	if (write && s->wrote) {
		snprintf(msg, len, "%s with args hash %s was already written"
		    " in this run", tool, hash);
		return R_DUPLICATE_WRITE;
	}
	if ((reason = run_repeat(s, tool, c->repeat_limit, msg, len)) != NULL)
		return reason;
	if (write) {
		if (c->max_writes_per_run &&
		    r->writes + 1 > c->max_writes_per_run) {
			snprintf(msg, len, "the run wrote %llu times already"
			    " (budgets.max_writes_per_run)",
			    (unsigned long long)r->writes);
			return R_BUDGET_EXCEEDED;
		}
		r->writes++;
		s->wrote = 1;
	}
	return NULL;
}

void
run_unwrite(struct run *r, const char *tool, const char *hash)
{
	struct run_seen	*s = run_seen_find(r, tool, hash);

	if (s == NULL || !s->wrote)
		return;
	s->wrote = 0;
	if (r->writes > 0)
		r->writes--;
}

const char *
run_usage(struct run *r, uint64_t tokens, double cost, char *msg,
    size_t len)
{
	const struct config	*c = gw->conf;

	r->tokens = tokens > UINT64_MAX - r->tokens ? UINT64_MAX :
	    r->tokens + tokens;
	r->cost += cost;
	if (c->max_tokens_per_run && r->tokens > c->max_tokens_per_run) {
		snprintf(msg, len, "the run used %llu tokens"
		    " (budgets.max_tokens_per_run is %llu)",
		    (unsigned long long)r->tokens,
		    (unsigned long long)c->max_tokens_per_run);
		return R_BUDGET_EXCEEDED;
	}
	if (c->max_cost_per_run > 0 && r->cost > c->max_cost_per_run) {
		snprintf(msg, len, "the run cost %.4f"
		    " (budgets.max_cost_per_run is %.4f)", r->cost,
		    c->max_cost_per_run);
		return R_BUDGET_EXCEEDED;
	}
	return NULL;
}
