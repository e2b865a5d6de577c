/*
 * Per-run budgets, kept by the executor itself (see budget.h).  In memory
 * and bounded like gatewayd's runs.c: a run idle for runs.idle_s is
 * forgotten, and no more than runs.max_runs live at once.  When full, a
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
#include <sys/queue.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/budget.h"
#include "executor/call.h"
#include "executor/executor.h"
#include "proto/proto.h"

/* Distinct (tool, args hash) pairs one run may have, as in gatewayd. */
#define MAX_SEEN	4096
/* What we keep of a stop gatewayd reported: its words are bounded. */
#define MAX_REASON	64
#define MAX_MESSAGE	512

struct seen {
	char		key[160];	/* tool \0 args hash */
	uint64_t	calls;
};

struct brun {
	struct brun		*next;		/* hash chain */
	TAILQ_ENTRY(brun)	 lru_entry;
	uint64_t		 hash;
	char			*tenant;
	char			*run_id;
	uint64_t		 last_used;	/* mono_ms */
	uint64_t		 steps;
	char			*stop_reason;	/* NULL while the run goes on */
	char			*stop_message;
	struct seen		*seen;
	size_t			 nseen;
};

static struct brun		**buckets;
static size_t			  nbuckets;
static size_t			  nruns;
static TAILQ_HEAD(, brun)	  lru = TAILQ_HEAD_INITIALIZER(lru);

static uint64_t
brun_hash(const char *tenant, const char *run_id)
{
	uint64_t	h = 1469598103934665603ULL;
	const char	*p;

	for (p = tenant; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h *= 1099511628211ULL;			/* the separator */
	for (p = run_id; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static void
brun_free(struct brun *r)
{
	struct brun	**pp;

	for (pp = &buckets[r->hash & (nbuckets - 1)]; *pp != r;
	    pp = &(*pp)->next)
		;
	*pp = r->next;
	TAILQ_REMOVE(&lru, r, lru_entry);
	nruns--;
	free(r->tenant);
	free(r->run_id);
	free(r->stop_reason);
	free(r->stop_message);
	free(r->seen);
	free(r);
}

/* The list is in order of last use: the idle ones are at its head. */
static void
sweep(void)
{
	struct brun	*r;
	uint64_t	 now = mono_ms(), idle = ex->conf->run_idle_s * 1000;

	while ((r = TAILQ_FIRST(&lru)) != NULL && now - r->last_used >= idle)
		brun_free(r);
}

/* The run, used now; created if there is room; NULL when full. */
static struct brun *
brun_get(const char *tenant, const char *run_id)
{
	struct brun	*r;
	uint64_t	 h = brun_hash(tenant, run_id);

	sweep();
	for (r = buckets[h & (nbuckets - 1)]; r != NULL; r = r->next) {
		if (r->hash == h && strcmp(r->tenant, tenant) == 0 &&
		    strcmp(r->run_id, run_id) == 0) {
			r->last_used = mono_ms();
			TAILQ_REMOVE(&lru, r, lru_entry);
			TAILQ_INSERT_TAIL(&lru, r, lru_entry);
			return r;
		}
	}
	if (nruns >= ex->conf->max_runs)
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

static void
brun_stop(struct brun *r, const char *reason, const char *message)
{
	/* The first reason stands: later ones only confirm the stop. */
	if (r->stop_reason != NULL)
		return;
	if (message == NULL)
		message = reason;
	/* xstrndup copies n bytes: cut at the string's end, not past it. */
	r->stop_reason = xstrndup(reason, strnlen(reason, MAX_REASON));
	r->stop_message = xstrndup(message, strnlen(message, MAX_MESSAGE));
	log_info("run %s/%s stopped: %s", r->tenant, r->run_id,
	    r->stop_reason);
}

static struct seen *
brun_seen(struct brun *r, const char *tool, const char *hash)
{
	char	key[sizeof(r->seen[0].key)];
	size_t	i, tl = strlen(tool), hl = strlen(hash);

	if (tl + 1 + hl + 1 > sizeof(key))
		return NULL;
	memset(key, 0, sizeof(key));
	memcpy(key, tool, tl + 1);
	memcpy(key + tl + 1, hash, hl + 1);
	for (i = 0; i < r->nseen; i++)
		if (memcmp(r->seen[i].key, key, tl + 1 + hl + 1) == 0)
			return &r->seen[i];
	if (r->nseen == MAX_SEEN)
		return NULL;
	r->seen = xreallocarray(r->seen, r->nseen + 1, sizeof(*r->seen));
	memset(&r->seen[r->nseen], 0, sizeof(r->seen[0]));
	memcpy(r->seen[r->nseen].key, key, sizeof(key));
	return &r->seen[r->nseen++];
}

/* Count one call; the reason it passes a budget, with a sentence, or NULL. */
static const char *
brun_account(struct brun *r, const char *tool, const char *hash, char *msg,
    size_t len)
{
	const struct config	*c = ex->conf;
	struct seen		*s;

	r->steps++;
	if (c->max_steps_per_run && r->steps > c->max_steps_per_run) {
		snprintf(msg, len, "the run took more than %llu steps"
		    " (budgets.max_steps_per_run)",
		    (unsigned long long)c->max_steps_per_run);
		return R_BUDGET_EXCEEDED;
	}
	if ((s = brun_seen(r, tool, hash)) == NULL) {
		snprintf(msg, len, "the run called more than %d distinct"
		    " tools and args", MAX_SEEN);
		return R_BUDGET_EXCEEDED;
	}
	s->calls++;
	if (c->repeat_limit && s->calls > c->repeat_limit) {
		snprintf(msg, len, "%s was called with the same args %llu"
		    " times (budgets.repeat_limit is %llu)", tool,
		    (unsigned long long)s->calls,
		    (unsigned long long)c->repeat_limit);
		return R_LOOP_DETECTED;
	}
	return NULL;
}

int
budget_check(struct call *c, int write)
{
	struct brun	*r = NULL;
	const char	*reason;
	char		 msg[512];

	if (c->run_id != NULL && c->tenant != NULL)
		r = brun_get(c->tenant, c->run_id);
	if (r == NULL) {
		/* Not counted: fail closed for what changes something. */
		if (!write)
			return 0;
		call_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "too many live runs (runs.max_runs)");
		return -1;
	}
	/* A resumed approval is the write its CALL counted already. */
	if (!c->resumed && (reason = brun_account(r, c->tool, c->args_hash,
	    msg, sizeof(msg))) != NULL)
		brun_stop(r, reason, msg);
	if (!write || r->stop_reason == NULL)
		return 0;
	call_refuse(c, ST_STOPPED, r->stop_reason, r->stop_message);
	return -1;
}

void
budget_stop(const char *tenant, const char *run_id, const char *reason,
    const char *message)
{
	struct brun	*r;

	if ((r = brun_get(tenant, run_id)) == NULL) {
		/* Full: this run's writes are refused as a new run's are. */
		log_warnx("run %s/%s stopped (%s), but runs.max_runs runs are"
		    " live: not kept", tenant, run_id, reason);
		return;
	}
	brun_stop(r, reason, message);
}

size_t
budget_runs(void)
{
	return nruns;
}

void
budget_init(void)
{
	nbuckets = 64;
	while (nbuckets < ex->conf->max_runs && nbuckets < (1u << 24))
		nbuckets <<= 1;
	buckets = xcalloc(nbuckets, sizeof(*buckets));
}

void
budget_shutdown(void)
{
	struct brun	*r;

	while ((r = TAILQ_FIRST(&lru)) != NULL)
		brun_free(r);
	free(buckets);
	buckets = NULL;
}
