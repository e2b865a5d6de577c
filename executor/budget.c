/*
 * Per-run budgets, kept by the executor itself (see budget.h).  In memory,
 * in a table of runs as gatewayd's runs.c (common/runtab.c), and bounded
 * like it: a run idle for runs.idle_s is forgotten (swept as runs are
 * looked up), and no more than runs.max_runs live at once.  When full, a
 * write of a new run is refused rather than room made by forgetting
 * another run's counts or stop.
 *
 * Our counts never pass gatewayd's when it is honest: it counts every
 * call it forwards, and more (calls it refuses itself), and forgets a run
 * no sooner than we do.  So an honest gatewayd never meets a refusal
 * from here that it would not have made first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/runtab.h"
#include "proto/proto.h"
#include "executor/executor.h"
#include "executor/request.h"
#include "executor/budget.h"

/* What we keep of a stop gatewayd reported: its words are bounded. */
#define MAX_REASON	64
#define MAX_MESSAGE	512

static struct runtab	runs;

/* The run, used now; created if there is room; NULL when full. */
static struct run *
budget_run(const char *tenant, const char *run_id)
{
	runtab_sweep(&runs, ex->conf->run_idle_s * 1000);
	return runtab_get(&runs, tenant, run_id, 1);
}

/* Count one call; the reason it passes a budget, with a sentence, or NULL. */
static const char *
budget_account(struct run *r, const char *tool, const char *hash, char *msg,
    size_t len)
{
	const struct config	*c = ex->conf;
	struct run_seen		*s;
	const char		*reason;

	if ((reason = run_step(r, tool, hash, c->max_steps_per_run, &s, msg,
	    len)) != NULL)
		return reason;
	return run_repeat(s, tool, c->repeat_limit, msg, len);
}

int
budget_check(const struct call *c, int write, struct refusal *why)
{
	struct run	*r = NULL;
	const char	*reason;
	char		 msg[512];

	if (c->run_id != NULL && c->tenant != NULL)
		r = budget_run(c->tenant, c->run_id);
	if (r == NULL) {
		/* Not counted: fail closed for what changes something. */
		if (!write)
			return 0;
		why->status = ST_ERROR;
		why->reason = E_UNAVAILABLE;
		snprintf(why->buf, sizeof(why->buf),
		    "too many live runs (%s)", runtab_full(&runs) ?
		    runtab_full(&runs) : "runs.max_runs");
		why->message = why->buf;
		return -1;
	}
	/* A resumed approval is the write its CALL counted already. */
	if (c->approval_id == NULL && (reason = budget_account(r, c->tool, c->args_hash,
	    msg, sizeof(msg))) != NULL)
		runtab_stop(&runs, r, reason, msg);
	if (!write || run_stopped(r) == NULL)
		return 0;
	why->status = ST_STOPPED;
	why->reason = run_stopped(r);
	why->message = run_stop_message(r);
	return -1;
}

void
budget_stop(const char *tenant, const char *run_id, const char *reason,
    const char *message)
{
	struct run	*r;

	if ((r = budget_run(tenant, run_id)) == NULL) {
		/* Full: this run's writes are refused as a new run's are. */
		log_warnx("run %s/%s stopped (%s), but %s is reached: not"
		    " kept", tenant, run_id, reason, runtab_full(&runs) ?
		    runtab_full(&runs) : "runs.max_runs");
		return;
	}
	runtab_stop(&runs, r, reason, message);
}

size_t
budget_runs(void)
{
	return runtab_count(&runs);
}

void
budget_init(void)
{
	runtab_init(&runs, ex->conf->max_runs, ex->conf->max_runs_per_tenant,
	    MAX_REASON, MAX_MESSAGE);
}

void
budget_shutdown(void)
{
	runtab_free(&runs);
}
