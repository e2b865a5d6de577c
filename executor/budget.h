/*
 * The budgets of a run the executor can observe itself, enforced for
 * writes whatever gatewayd says: steps (every call of the run that reached
 * us, reads included), repeats (one tool with the same args more than
 * budgets.repeat_limit times), and stops (a run we stopped, or one
 * gatewayd reported stopped).  Writes per run and duplicates are the
 * ledger's (ledger.c, DB_RUNS).  Tokens and cost are the agent's own
 * report to gatewayd: we never see them, only gatewayd's stop.
 */
#ifndef TG_BUDGET_H
#define TG_BUDGET_H

#include <stddef.h>

struct call;

void	budget_init(void);
void	budget_shutdown(void);
/* Why a call may not go on, for its answer. */
struct refusal {
	const char	*status;
	/* Static, or the run's own (which lives on while it is checked). */
	const char	*reason;
	const char	*message;	/* the run's, or buf */
	char		 buf[512];
};
/*
 * Count c in its run (a resumed approval is the step it was already).
 * Returns 0 when it may go on, or -1 for a write the run may not take,
 * with why (stopped, with the run's first reason; or unavailable when
 * runs.max_runs runs are live), which the caller answers.  Reads always
 * go on.
 */
int	budget_check(const struct call *c, int write, struct refusal *why);
/* The run stops, with this reason unless it stopped already. */
void	budget_stop(const char *tenant, const char *run_id, const char *reason,
	    const char *message);
size_t	budget_runs(void);

#endif
