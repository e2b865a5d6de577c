/*
 * The circuit breaker (breaker section), one per tenant and catalog tool,
 * over the calls that reached the tool: when, within window_s, at least
 * min_calls ended and at least failure_ratio of them were retryable
 * failures, timeouts or unavailable, it opens.  Calls are then refused
 * (denied/circuit_open) without reaching the tool for open_s; then one
 * call goes through as a probe, and its outcome closes the breaker or
 * opens it again.  Every change of state is audited and logged.
 * backend.c asks it before every run and tells it every outcome.
 */
#ifndef TG_BREAKER_H
#define TG_BREAKER_H

#include <stdint.h>

struct config;
struct tool;
struct tool_outcome;

/* What a run admitted carries to its outcome. */
struct brk_ticket {
	int	cell;		/* -1: no breaker watches this run */
	int	probe;		/* the one call of a half-open breaker */
};

void	breaker_init(const struct config *);
/*
 * May tenant's call reach tool now?  0 with a ticket, or -1 with the
 * milliseconds until it may in *retry_after_ms.
 */
int	breaker_admit(const char *tenant, const struct tool *tool,
	    struct brk_ticket *, uint64_t *retry_after_ms);
/* Is it open, without taking the probe's place?  As breaker_admit. */
int	breaker_peek(const char *tenant, const struct tool *tool,
	    uint64_t *retry_after_ms);
/* A run admitted with this ticket ended so. */
void	breaker_outcome(const struct brk_ticket *, const char *tenant,
	    const struct tool *, const struct tool_outcome *);
void	breaker_shutdown(void);

#endif
