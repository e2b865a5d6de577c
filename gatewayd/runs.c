/*
 * Runs: an agent's sequence of calls, named by its run_id within its
 * tenant.  A stopped run answers every later call with its first stop
 * reason.  Runs are kept in a hash table and a least-recently-used list;
 * a timer drops runs idle for longer than runs.idle_s, and no more than
 * runs.max_runs live at once (a new run past that is refused, never made
 * room for by forgetting another run's stop).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/runs.h"
#include "proto/proto.h"

static struct run	**buckets;
static size_t		  nbuckets;
static size_t		  nruns;
static TAILQ_HEAD(, run)  lru = TAILQ_HEAD_INITIALIZER(lru);
static struct event	 *sweep_ev;

static uint64_t
run_hash(const char *tenant, const char *run_id)
{
	uint64_t	h = 1469598103934665603ULL;
	const char	*p;

	for (p = tenant; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0) * 1099511628211ULL;		/* the separator */
	for (p = run_id; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static void
run_free(struct run *r)
{
	free(r->tenant);
	free(r->run_id);
	free(r->stop_reason);
	free(r->stop_message);
	free(r->seen);
	free(r);
}

static void
run_unlink(struct run *r)
{
	struct run	**pp;

	for (pp = &buckets[r->hash & (nbuckets - 1)]; *pp != r;
	    pp = &(*pp)->next)
		;
	*pp = r->next;
	TAILQ_REMOVE(&lru, r, lru_entry);
	nruns--;
}

static void
runs_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	 tv = { 1, 0 };
	struct run	*r;
	uint64_t	 now = mono_ms(), idle = gw->conf->run_idle_s * 1000;

	(void)fd;
	(void)what;
	(void)arg;
	/* The list is in order of last use: stop at the first fresh run. */
	while ((r = TAILQ_FIRST(&lru)) != NULL && now - r->last_used >= idle) {
		run_unlink(r);
		run_free(r);
	}
	evtimer_add(sweep_ev, &tv);
}

void
runs_init(void)
{
	struct timeval	tv = { 1, 0 };

	nbuckets = 64;
	while (nbuckets < gw->conf->max_runs && nbuckets < (1u << 24))
		nbuckets <<= 1;
	buckets = xcalloc(nbuckets, sizeof(*buckets));
	if (gw->base != NULL) {
		sweep_ev = evtimer_new(gw->base, runs_sweep, NULL);
		evtimer_add(sweep_ev, &tv);
	}
}

void
runs_free(void)
{
	struct run	*r;

	while ((r = TAILQ_FIRST(&lru)) != NULL) {
		run_unlink(r);
		run_free(r);
	}
	free(buckets);
	buckets = NULL;
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	sweep_ev = NULL;
}

size_t
runs_count(void)
{
	return nruns;
}

struct run *
run_get(const char *tenant, const char *run_id, int create)
{
	struct run	*r;
	uint64_t	 h = run_hash(tenant, run_id);

	for (r = buckets[h & (nbuckets - 1)]; r != NULL; r = r->next) {
		if (r->hash == h && strcmp(r->tenant, tenant) == 0 &&
		    strcmp(r->run_id, run_id) == 0) {
			r->last_used = mono_ms();
			TAILQ_REMOVE(&lru, r, lru_entry);
			TAILQ_INSERT_TAIL(&lru, r, lru_entry);
			return r;
		}
	}
	if (!create || nruns >= gw->conf->max_runs)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->hash = h;
	r->tenant = xstrdup(tenant);
	r->run_id = xstrdup(run_id);
	r->last_used = mono_ms();
	r->next = buckets[h & (nbuckets - 1)];
	buckets[h & (nbuckets - 1)] = r;
	TAILQ_INSERT_TAIL(&lru, r, lru_entry);
	nruns++;
	return r;
}

const char *
run_stopped(const struct run *r)
{
	return r->stop_reason;
}

const char *
run_stop_message(const struct run *r)
{
	return r->stop_message;
}

void
run_stop(struct run *r, const char *reason, const char *message)
{
	/* The first reason stands: later ones only confirm the stop. */
	if (r->stop_reason != NULL)
		return;
	r->stop_reason = xstrdup(reason);
	r->stop_message = xstrdup(message != NULL ? message : reason);
	log_info("run %s/%s stopped: %s", r->tenant, r->run_id, reason);
}

/* Distinct (tool, args hash) pairs one run may have: bounds its memory. */
#define MAX_SEEN	4096

static struct run_seen *
run_seen(struct run *r, const char *tool, const char *hash)
{
	char	key[sizeof(r->seen[0].key)];
	size_t	i, tl = strlen(tool), hl = strlen(hash);

	if (tl + 1 + hl + 1 > sizeof(key))
		return NULL;
	memcpy(key, tool, tl + 1);
	memcpy(key + tl + 1, hash, hl + 1);
	for (i = 0; i < r->nseen; i++)
		if (memcmp(r->seen[i].key, key, tl + 1 + hl + 1) == 0)
			return &r->seen[i];
	if (r->nseen == MAX_SEEN)
		return NULL;
	r->seen = xreallocarray(r->seen, r->nseen + 1, sizeof(*r->seen));
	memset(&r->seen[r->nseen], 0, sizeof(r->seen[0]));
	memcpy(r->seen[r->nseen].key, key, tl + 1 + hl + 1);
	return &r->seen[r->nseen++];
}

const char *
run_account(struct run *r, const char *tool, const char *hash, int write,
    char *msg, size_t len)
{
	const struct config	*c = gw->conf;
	struct run_seen		*s;

	r->steps++;
	if (c->max_steps_per_run && r->steps > c->max_steps_per_run) {
		snprintf(msg, len, "the run took more than %llu steps"
		    " (budgets.max_steps_per_run)",
		    (unsigned long long)c->max_steps_per_run);
		return R_BUDGET_EXCEEDED;
	}
	if ((s = run_seen(r, tool, hash)) == NULL) {
		snprintf(msg, len, "the run called more than %d distinct"
		    " tools and args", MAX_SEEN);
		return R_BUDGET_EXCEEDED;
	}
	s->calls++;
	if (write && s->wrote) {
		snprintf(msg, len, "%s with args hash %s was already written"
		    " in this run", tool, hash);
		return R_DUPLICATE_WRITE;
	}
	if (c->repeat_limit && s->calls > c->repeat_limit) {
		snprintf(msg, len, "%s was called with the same args %u times"
		    " (budgets.repeat_limit is %llu)", tool, s->calls,
		    (unsigned long long)c->repeat_limit);
		return R_LOOP_DETECTED;
	}
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
