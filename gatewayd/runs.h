/* The run record is common/runtab.h; runs.c adds gatewayd's budgets. */
#ifndef TG_RUNS_H
#define TG_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "common/runtab.h"

void	runs_free(void);
/* After run_get found no room: "too many live runs (KEY)" in buf. */
const char	*runs_full_message(char *buf, size_t len);

/*
 * Count a call in the run.  Returns NULL, or the stop reason (with a
 * sentence in msg) when this call passes one of the run's limits.
 */
const char	*run_account(struct run *, const char *tool, const char *hash,
		    int write, char *msg, size_t len);
/*
 * A write run_account() counted was refused before it started (the
 * executor answered unavailable): it is not a write of the run, so the
 * same write may be retried in it.
 */
void		 run_unwrite(struct run *, const char *tool, const char *hash);
/* Add reported usage; the stop reason once a budget is passed. */
const char	*run_usage(struct run *, uint64_t tokens, double cost,
		    char *msg, size_t len);

#endif
