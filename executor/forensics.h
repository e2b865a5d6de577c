/*
 * Forensics: what a run wrote, from the executor's own records (the run
 * record, DB_RUNS, and each key's ledger record, DB_LEDGER), for
 * gatewayctl forensics and gatewayctl compensate (compensate.c).
 *
 * A write's ledger record keeps, beside its state and outcome, what
 * forensics needs and the ledger did not hold: its args (canonical JSON,
 * only when its tool names an entity or a compensation, and only up to
 * FORENSICS_ARGS_MAX), who approved it, how many callers it answered, and
 * for a compensation the key it undoes.  They live and are swept with the
 * record (writes.retention_s): nothing grows beside the ledger.
 */
#ifndef TG_FORENSICS_H
#define TG_FORENSICS_H

#include <stddef.h>

#include "executor/ledger.h"

#define FORENSICS_ARGS_MAX	65536	/* bytes of args a record keeps */
#define FORENSICS_WRITES_MAX	1000	/* writes of a run in one answer */
#define COMPENSATE_SUFFIX	":compensate"

struct call;
struct tool;

/* Fill the forensic fields of a write's intent (write.c fill_intent). */
void	forensics_intent(struct ledger_rec *, const struct tool *,
	    const struct call *);

/* One write of a run: its key and its ledger record. */
struct run_write {
	char			*tenant;
	char			*key;
	struct ledger_rec	 rec;
	char			*comp_key;	/* its compensation's key */
	struct ledger_rec	 comp;		/* ... and record (L_NONE) */
};

struct run_writes {
	struct run_write	*v;
	size_t			 n;
	int			 truncated;	/* FORENSICS_WRITES_MAX reached */
};

/*
 * The writes of run_id, of 'tenant' or (NULL) of every tenant of the
 * config, in the order each tenant's run wrote them, with their records
 * from this host's LMDB store.  0, or -1 with why in err.
 */
int	forensics_load(const char *tenant, const char *run_id,
	    struct run_writes *, char *err, size_t errlen);
/*
 * The same on the shared store: the keys from this host's run record
 * (runs are per host), their records and their compensations' from the
 * database, given to fn when it answers: rw, or NULL and why.  rw is
 * freed when fn returns.  -1 with why in err when nothing was asked (fn
 * is not called).
 */
typedef void (*forensics_fn)(struct run_writes *rw, const char *err,
    void *arg);
int	forensics_load_shared(const char *tenant, const char *run_id,
	    forensics_fn, void *arg, char *err, size_t errlen);
void	forensics_free(struct run_writes *);

/*
 * A record's args as a packed msgpack map (malloc'ed), or NULL when it
 * kept none (or they do not parse: a damaged record, never guessed at).
 */
char	*forensics_args(const struct ledger_rec *, size_t *len);

#endif
