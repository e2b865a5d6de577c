/*
 * A table of runs keyed by (tenant, run_id), with what both processes
 * count in a run: steps, calls per (tool, args hash), and the first stop.
 * gatewayd (gatewayd/runs.c) and the executor (executor/budget.c) each
 * keep one; each drives its own idle sweep and adds its own budgets.
 */
#ifndef TG_RUNTAB_H
#define TG_RUNTAB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* Distinct (tool, args hash) pairs one run may have: bounds its memory. */
#define MAX_SEEN	4096

/* How often one (tool, args hash) was called in a run. */
struct run_seen {
	char		key[160];	/* tool \0 args hash */
	uint64_t	calls;
	int		wrote;		/* gatewayd's: written in this run */
};

/* How many live runs one tenant has: few tenants, so a short list. */
struct tenant_runs {
	struct tenant_runs	*next;
	char			*tenant;
	uint64_t		 nruns;
};

struct run {
	struct run		*next;		/* hash chain */
	struct tenant_runs	*tr;		/* its tenant's count */
	TAILQ_ENTRY(run)	 lru_entry;
	uint64_t		 hash;
	char			*tenant;
	char			*run_id;
	uint64_t		 last_used;	/* mono_ms */
	char			*stop_reason;	/* NULL while the run goes on */
	char			*stop_message;
	uint64_t		 steps;
	struct run_seen		*seen;
	size_t			 nseen;
	/* gatewayd's budgets (runs.c); the executor never sees these. */
	uint64_t		 writes;
	uint64_t		 tokens;
	double			 cost;
};

struct runtab {
	struct run		**buckets;
	size_t			  nbuckets;
	size_t			  nruns;
	uint64_t		  max_runs;
	uint64_t		  max_per_tenant;
	struct tenant_runs	 *tenants;	/* those with live runs */
	const char		 *full;		/* the cap the last get met */
	size_t			  max_reason;	/* bytes kept of a stop */
	size_t			  max_message;
	TAILQ_HEAD(, run)	  lru;		/* least recently used first */
	/* Called with each run the sweep forgets, before it goes; or NULL. */
	void			(*forget)(const struct run *);
};

/*
 * No more than max_runs runs live at once, and no more than max_per_tenant
 * of one tenant (so one tenant cannot take the table from the others); a
 * stop keeps no more than max_reason and max_message bytes of its words
 * (SIZE_MAX: all of them).
 */
void		 runtab_init(struct runtab *, uint64_t max_runs,
		    uint64_t max_per_tenant, size_t max_reason,
		    size_t max_message);
/* Forget every run; the table may be initialized again after. */
void		 runtab_free(struct runtab *);
/* Forget the runs unused for idle_ms or longer. */
void		 runtab_sweep(struct runtab *, uint64_t idle_ms);
size_t		 runtab_count(const struct runtab *);
/*
 * The run, used now.  Created if create is set and there is room; NULL
 * when it is not there, or when max_runs runs are live or max_per_tenant
 * of its tenant (never made room for by forgetting another run's stop).
 */
struct run	*runtab_get(struct runtab *, const char *tenant,
		    const char *run_id, int create);
/* The config key of the cap that kept the last runtab_get from creating. */
const char	*runtab_full(const struct runtab *);
/* The live runs of tenant. */
uint64_t	 runtab_tenant_count(const struct runtab *, const char *tenant);
/* The run stops, with this reason unless it stopped already. */
void		 runtab_stop(struct runtab *, struct run *, const char *reason,
		    const char *message);

const char	*run_stopped(const struct run *);	/* first stop reason or NULL */
const char	*run_stop_message(const struct run *);
/*
 * Count a step of the run, a call of tool with args hash.  NULL with its
 * entry in *sp, or the stop reason (with a sentence in msg) once the run
 * passes max_steps (0: no limit) or MAX_SEEN distinct pairs.
 */
const char	*run_step(struct run *, const char *tool, const char *hash,
		    uint64_t max_steps, struct run_seen **sp, char *msg,
		    size_t len);
/* The entry of a (tool, args hash) the run called, or NULL. */
struct run_seen	*run_seen_find(struct run *, const char *tool,
		    const char *hash);
/* The stop reason once s was called more than repeat_limit times, or NULL. */
const char	*run_repeat(const struct run_seen *s, const char *tool,
		    uint64_t repeat_limit, char *msg, size_t len);

#endif
