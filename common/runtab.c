/*
 * Runs: an agent's sequence of calls, named by its run_id within its
 * tenant.  A stopped run keeps its first stop reason.  Runs are kept in a
 * hash table and a least-recently-used list; the owner's sweep drops runs
 * idle for longer than runs.idle_s, and no more than runs.max_runs live at
 * once, runs.max_runs_per_tenant of one tenant (a new run past either is
 * refused, never made room for by forgetting another run's stop).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/log.h"
#include "common/runtab.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"

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

static struct tenant_runs *
tenant_find(const struct runtab *t, const char *tenant)
{
	struct tenant_runs	*tr;

	for (tr = t->tenants; tr != NULL; tr = tr->next)
		if (strcmp(tr->tenant, tenant) == 0)
			return tr;
	return NULL;
}

/* One run fewer for its tenant; a tenant with none left is forgotten. */
static void
tenant_put(struct runtab *t, struct tenant_runs *tr)
{
	struct tenant_runs	**pp;

	if (--tr->nruns > 0)
		return;
	for (pp = &t->tenants; *pp != tr; pp = &(*pp)->next)
		;
	*pp = tr->next;
	free(tr->tenant);
	free(tr);
}

uint64_t
runtab_tenant_count(const struct runtab *t, const char *tenant)
{
	struct tenant_runs	*tr = tenant_find(t, tenant);

	return tr != NULL ? tr->nruns : 0;
}

const char *
runtab_full(const struct runtab *t)
{
	return t->full;
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
run_unlink(struct runtab *t, struct run *r)
{
	struct run	**pp;

	for (pp = &t->buckets[r->hash & (t->nbuckets - 1)]; *pp != r;
	    pp = &(*pp)->next)
		;
	*pp = r->next;
	TAILQ_REMOVE(&t->lru, r, lru_entry);
	t->nruns--;
	tenant_put(t, r->tr);
	r->tr = NULL;
}

void
runtab_init(struct runtab *t, uint64_t max_runs, uint64_t max_per_tenant,
    size_t max_reason, size_t max_message)
{
	memset(t, 0, sizeof(*t));
	TAILQ_INIT(&t->lru);
	t->max_runs = max_runs;
	t->max_per_tenant = max_per_tenant;
	t->max_reason = max_reason;
	t->max_message = max_message;
	t->nbuckets = 64;
	while (t->nbuckets < max_runs && t->nbuckets < (1u << 24))
		t->nbuckets <<= 1;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
}

void
runtab_free(struct runtab *t)
{
	struct run	*r;

	/* A table never initialized (all zero) has nothing to free. */
	while ((r = TAILQ_FIRST(&t->lru)) != NULL) {
		run_unlink(t, r);
		run_free(r);
	}
	free(t->buckets);
	t->buckets = NULL;
}

void
runtab_sweep(struct runtab *t, uint64_t idle_ms)
{
	struct run	*r;
	uint64_t	 now = mono_ms();

	/* The list is in order of last use: stop at the first fresh run. */
	while ((r = TAILQ_FIRST(&t->lru)) != NULL &&
	    now - r->last_used >= idle_ms) {
		if (t->forget != NULL)
			t->forget(r);
		run_unlink(t, r);
		run_free(r);
	}
}

size_t
runtab_count(const struct runtab *t)
{
	return t->nruns;
}

struct run *
runtab_get(struct runtab *t, const char *tenant, const char *run_id,
    int create)
{
	struct tenant_runs	*tr;
	struct run		*r;
	uint64_t		 h = run_hash(tenant, run_id);
	size_t			 b = h & (t->nbuckets - 1);

	for (r = t->buckets[b]; r != NULL; r = r->next) {
		if (r->hash == h && strcmp(r->tenant, tenant) == 0 &&
		    strcmp(r->run_id, run_id) == 0) {
			r->last_used = mono_ms();
			TAILQ_REMOVE(&t->lru, r, lru_entry);
			TAILQ_INSERT_TAIL(&t->lru, r, lru_entry);
			return r;
		}
	}
	t->full = NULL;
	if (!create)
		return NULL;
	if (t->nruns >= t->max_runs) {
		t->full = "runs.max_runs";
		return NULL;
	}
	/* One tenant's runs never take the others' room. */
	tr = tenant_find(t, tenant);
	if ((tr != NULL ? tr->nruns : 0) >= t->max_per_tenant) {
		t->full = "runs.max_runs_per_tenant";
		return NULL;
	}
	if (tr == NULL) {
		tr = xcalloc(1, sizeof(*tr));
		tr->tenant = xstrdup(tenant);
		tr->next = t->tenants;
		t->tenants = tr;
	}
	tr->nruns++;
	r = xcalloc(1, sizeof(*r));
	r->tr = tr;
	r->hash = h;
	r->tenant = xstrdup(tenant);
	r->run_id = xstrdup(run_id);
	r->last_used = mono_ms();
	r->next = t->buckets[b];
	t->buckets[b] = r;
	TAILQ_INSERT_TAIL(&t->lru, r, lru_entry);
	t->nruns++;
	return r;
}

void
runtab_stop(struct runtab *t, struct run *r, const char *reason,
    const char *message)
{
	/* The first reason stands: later ones only confirm the stop. */
	if (r->stop_reason != NULL)
		return;
	if (message == NULL)
		message = reason;
	/* xstrndup copies n bytes: cut at the string's end, not past it. */
	r->stop_reason = xstrndup(reason, strnlen(reason, t->max_reason));
	r->stop_message = xstrndup(message, strnlen(message, t->max_message));
	log_info("run %s/%s stopped: %s", r->tenant, r->run_id,
	    r->stop_reason);
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

/* The entry of (tool, hash), created when create is set and there is room. */
static struct run_seen *
run_seen(struct run *r, const char *tool, const char *hash, int create)
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
	if (!create || r->nseen == MAX_SEEN)
		return NULL;
	r->seen = xreallocarray(r->seen, r->nseen + 1, sizeof(*r->seen));
	memset(&r->seen[r->nseen], 0, sizeof(r->seen[0]));
	memcpy(r->seen[r->nseen].key, key, tl + 1 + hl + 1);
	return &r->seen[r->nseen++];
}

struct run_seen *
run_seen_find(struct run *r, const char *tool, const char *hash)
{
	return run_seen(r, tool, hash, 0);
}

const char *
run_step(struct run *r, const char *tool, const char *hash,
    uint64_t max_steps, struct run_seen **sp, char *msg, size_t len)
{
	struct run_seen	*s;

	r->steps++;
	if (max_steps && r->steps > max_steps) {
		snprintf(msg, len, "the run took more than %llu steps"
		    " (budgets.max_steps_per_run)",
		    (unsigned long long)max_steps);
		return R_BUDGET_EXCEEDED;
	}
	if ((s = run_seen(r, tool, hash, 1)) == NULL) {
		snprintf(msg, len, "the run called more than %d distinct"
		    " tools and args", MAX_SEEN);
		return R_BUDGET_EXCEEDED;
	}
	s->calls++;
	*sp = s;
	return NULL;
}

const char *
run_repeat(const struct run_seen *s, const char *tool,
    uint64_t repeat_limit, char *msg, size_t len)
{
	if (repeat_limit && s->calls > repeat_limit) {
		snprintf(msg, len, "%s was called with the same args %llu"
		    " times (budgets.repeat_limit is %llu)", tool,
		    (unsigned long long)s->calls,
		    (unsigned long long)repeat_limit);
		return R_LOOP_DETECTED;
	}
	return NULL;
}
