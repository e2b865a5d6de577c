/*
 * The circuit breaker (breaker.h).  The window is a ring of BRK_SLOTS
 * slots of window_s / BRK_SLOTS each (at least a second): old slots are
 * forgotten whole, so the window slides in steps of a slot.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/backend.h"
#include "executor/executor.h"
#include "executor/tenants.h"
#include "executor/breaker.h"

#define BRK_SLOTS		10
/* A half-open breaker's probe is out: try again about this soon. */
#define BRK_PROBE_WAIT_MS	1000

enum brk_state { BRK_CLOSED, BRK_OPEN, BRK_HALF_OPEN };

struct slot {
	uint64_t	epoch;		/* mono_ms() / slot width */
	uint32_t	calls;
	uint32_t	fails;
};

struct cell {
	enum brk_state	state;
	uint64_t	open_until;	/* mono_ms(), BRK_OPEN */
	int		probe_out;	/* BRK_HALF_OPEN: its probe runs */
	struct slot	slots[BRK_SLOTS];
};

static const struct config	*conf;
static struct cell		*cells;	/* [tenant * ncatalog + tool] */
static uint64_t			 slot_ms;

void
breaker_init(const struct config *c)
{
	size_t	nt = tenants_count();

	conf = c;
	if (!c->breaker_on || nt == 0 || c->ncatalog == 0)
		return;
	cells = xcalloc(nt * c->ncatalog, sizeof(*cells));
	slot_ms = c->breaker_window_s * 1000 / BRK_SLOTS;
	if (slot_ms < 1000)
		slot_ms = 1000;
}

static struct cell *
cell_for(const char *tenant, const struct tool *tool, int *idx)
{
	int	t;

	if (cells == NULL || (t = tenant_index(tenant)) == -1)
		return NULL;
	*idx = t * (int)conf->ncatalog + (int)(tool - conf->catalog);
	return &cells[*idx];
}

static void
state_change(struct cell *c, enum brk_state to, const char *tenant,
    const struct tool *tool, const char *why)
{
	static const char *const names[] = { "closed", "open", "half_open" };
	struct audit_rec	ar = { .event = "breaker", .uid = -1 };
	char			note[256];

	c->state = to;
	snprintf(note, sizeof(note), "%s: %s", names[to], why);
	log_info("breaker: tenant %s, tool %s: %s", tenant, tool->name,
	    note);
	ar.tenant = tenant;
	ar.tool = tool->name;
	ar.decision = names[to];
	ar.note = note;
	/* A change the audit cannot take is still made: it is safe both ways. */
	if (audit_write(&ar, 0) == -1)
		log_warnx("breaker: the audit log cannot take the change");
}

int
breaker_peek(const char *tenant, const struct tool *tool,
    uint64_t *retry_after_ms)
{
	struct cell	*c;
	uint64_t	 now;
	int		 idx;

	*retry_after_ms = 0;
	if ((c = cell_for(tenant, tool, &idx)) == NULL)
		return 0;
	now = mono_ms();
	if (c->state == BRK_OPEN && now < c->open_until) {
		*retry_after_ms = c->open_until - now;
		return -1;
	}
	if (c->state == BRK_HALF_OPEN && c->probe_out) {
		*retry_after_ms = BRK_PROBE_WAIT_MS;
		return -1;
	}
	return 0;
}

int
breaker_admit(const char *tenant, const struct tool *tool,
    struct brk_ticket *tk, uint64_t *retry_after_ms)
{
	struct cell	*c;
	int		 idx;

	tk->cell = -1;
	tk->probe = 0;
	if (breaker_peek(tenant, tool, retry_after_ms) == -1)
		return -1;
	if ((c = cell_for(tenant, tool, &idx)) == NULL)
		return 0;
	tk->cell = idx;
	if (c->state == BRK_OPEN) {
		/* open_s is over: this call is the probe. */
		state_change(c, BRK_HALF_OPEN, tenant, tool, "open_s passed: "
		    "one call probes the tool");
		c->probe_out = 1;
		tk->probe = 1;
	} else if (c->state == BRK_HALF_OPEN) {
		/* The last probe ended without a verdict: this one probes. */
		c->probe_out = 1;
		tk->probe = 1;
	}
	return 0;
}

/* -1: no verdict on the tool (it was not reached, or cancelled). */
static int
failed(const struct tool_outcome *o)
{
	switch (o->status) {
	case TR_TIMEOUT:
	case TR_UNAVAILABLE:
		return 1;
	case TR_FAILED:
		return o->retryable != 0;
	case TR_OK:
	case TR_BAD_OUTPUT:
		return 0;
	default:
		return -1;
	}
}

static void
count(struct cell *c, int fail, uint32_t *calls, uint32_t *fails)
{
	uint64_t	epoch = mono_ms() / slot_ms;
	struct slot	*s = &c->slots[epoch % BRK_SLOTS];
	size_t		i;

	if (s->epoch != epoch) {
		s->epoch = epoch;
		s->calls = s->fails = 0;
	}
	s->calls++;
	s->fails += fail;
	*calls = *fails = 0;
	for (i = 0; i < BRK_SLOTS; i++)
		if (c->slots[i].epoch + BRK_SLOTS > epoch) {
			*calls += c->slots[i].calls;
			*fails += c->slots[i].fails;
		}
}

static void
trip(struct cell *c, const char *tenant, const struct tool *tool,
    const char *why)
{
	c->open_until = mono_ms() + conf->breaker_open_s * 1000;
	c->probe_out = 0;
	state_change(c, BRK_OPEN, tenant, tool, why);
}

void
breaker_outcome(const struct brk_ticket *tk, const char *tenant,
    const struct tool *tool, const struct tool_outcome *o)
{
	struct cell	*c;
	uint32_t	 calls, fails;
	char		 why[128];
	int		 f;

	if (tk->cell == -1 || cells == NULL)
		return;
	c = &cells[tk->cell];
	f = failed(o);
	if (tk->probe) {
		c->probe_out = 0;
		if (f == 1)
			trip(c, tenant, tool, "the probe failed");
		else if (f == 0) {
			memset(c->slots, 0, sizeof(c->slots));
			state_change(c, BRK_CLOSED, tenant, tool,
			    "the probe succeeded");
		}
		return;
	}
	/* Calls let through before it opened say nothing new. */
	if (c->state != BRK_CLOSED || f == -1)
		return;
	count(c, f, &calls, &fails);
	if (calls >= conf->breaker_min_calls &&
	    (double)fails >= conf->breaker_failure_ratio * (double)calls) {
		snprintf(why, sizeof(why), "%u of the last %u calls failed "
		    "(retryable, timed out or unavailable)", fails, calls);
		trip(c, tenant, tool, why);
	}
}

void
breaker_shutdown(void)
{
	free(cells);
	cells = NULL;
}
