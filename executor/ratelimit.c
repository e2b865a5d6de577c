/*
 * Token buckets (ratelimit.h), refilled continuously on the monotonic
 * clock: a bucket of 'burst' tokens gains 'rate' a second, and a call
 * takes one.  State lives in arrays sized from the config (tenants.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/tenants.h"
#include "executor/ratelimit.h"

struct bucket {
	double		tokens;
	uint64_t	last_ms;	/* mono_ms() of the last refill */
	int		used;		/* 0: full, never touched */
};

static const struct config	*conf;
static struct bucket		*tenant_b;	/* [tenant] */
static struct bucket		*tool_b;	/* [tenant * nrate_tools + rule] */

void
ratelimit_init(const struct config *c)
{
	size_t	nt = tenants_count();

	conf = c;
	if (c->rate_tenant > 0)
		tenant_b = xcalloc(nt ? nt : 1, sizeof(*tenant_b));
	if (c->nrate_tools > 0)
		tool_b = xcalloc((nt ? nt : 1) * c->nrate_tools,
		    sizeof(*tool_b));
}

/* Refill b to now; how many tokens it holds. */
static double
refill(struct bucket *b, double rate, uint64_t burst, uint64_t now)
{
	if (!b->used) {
		b->used = 1;
		b->tokens = (double)burst;
	} else if (now > b->last_ms) {
		b->tokens += rate * (double)(now - b->last_ms) / 1000.0;
		if (b->tokens > (double)burst)
			b->tokens = (double)burst;
	}
	b->last_ms = now;
	return b->tokens;
}

/* Milliseconds until b holds one token (at least 1). */
static uint64_t
wait_ms(const struct bucket *b, double rate)
{
	double	ms = ceil((1.0 - b->tokens) * 1000.0 / rate);

	return ms < 1 ? 1 : ms > 3600000 ? 3600000 : (uint64_t)ms;
}

static const struct rate_rule *
rule_for(const char *tool, size_t *idx)
{
	size_t	i;

	/* A handful of rules at most: a scan is the simplest lookup. */
	for (i = 0; i < conf->nrate_tools; i++)
		if (strcmp(conf->rate_tools[i].tool, tool) == 0) {
			*idx = i;
			return &conf->rate_tools[i];
		}
	return NULL;
}

int
ratelimit_take(const char *tenant, const char *tool, uint64_t *retry_after_ms)
{
	const struct rate_rule	*rule;
	struct bucket		*tb = NULL, *ub = NULL;
	uint64_t		 now, w = 0;
	size_t			 ri = 0;
	int			 t;

	*retry_after_ms = 0;
	if (tenant_b == NULL && tool_b == NULL)
		return 0;
	/* Every caller's tenant is the config's: request.c checked it. */
	if ((t = tenant_index(tenant)) == -1)
		return 0;
	now = mono_ms();
	if (tenant_b != NULL) {
		tb = &tenant_b[t];
		if (refill(tb, conf->rate_tenant, conf->burst_tenant, now) < 1)
			w = wait_ms(tb, conf->rate_tenant);
	}
	if (tool_b != NULL && (rule = rule_for(tool, &ri)) != NULL) {
		ub = &tool_b[(size_t)t * conf->nrate_tools + ri];
		if (refill(ub, rule->rate, rule->burst, now) < 1 &&
		    wait_ms(ub, rule->rate) > w)
			w = wait_ms(ub, rule->rate);
	}
	/* Both or neither: a refused call costs no bucket a token. */
	if (w > 0) {
		*retry_after_ms = w;
		return -1;
	}
	if (tb != NULL)
		tb->tokens -= 1;
	if (ub != NULL)
		ub->tokens -= 1;
	return 0;
}

void
ratelimit_shutdown(void)
{
	free(tenant_b);
	free(tool_b);
	tenant_b = tool_b = NULL;
}
