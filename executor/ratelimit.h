/*
 * Token buckets (rate_limits): one per tenant over all its calls, and
 * one per tenant and tool named in rate_limits.per_tool.  Enforced here,
 * in the executor, so a compromised gatewayd cannot call faster.
 */
#ifndef TG_RATELIMIT_H
#define TG_RATELIMIT_H

#include <stdint.h>

struct config;

void	ratelimit_init(const struct config *);
/*
 * A call of 'tool' by 'tenant': 0 with a token taken from every bucket
 * it passes, or -1 with none taken and the milliseconds until the
 * emptiest one has a token again in *retry_after_ms.
 */
int	ratelimit_take(const char *tenant, const char *tool,
	    uint64_t *retry_after_ms);
void	ratelimit_shutdown(void);

#endif
