/*
 * The write ledger: one record per idempotency key (TENANT:TOOL:ARGS_HASH).
 *
 * A write's intent is committed before the tool starts and its outcome
 * after it ends.  A record still "running" when the executor starts again
 * is a write whose outcome nobody knows: it becomes "in_doubt" and is never
 * re-run by itself; an operator settles it with gatewayctl resolve.
 *
 * Records are msgpack maps (ledger_encode/ledger_decode); a record that
 * does not decode is treated as in doubt, never as absent.
 */
#ifndef TG_LEDGER_H
#define TG_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

enum ledger_state {
	L_NONE = 0,		/* no record */
	L_RUNNING,		/* intent committed, no outcome yet */
	L_DONE,			/* outcome committed: replay it */
	L_FAILED,		/* the tool failed cleanly: a new attempt may run */
	L_IN_DOUBT,		/* outcome unknown: only an operator decides */
};

struct ledger_rec {
	enum ledger_state state;
	char		*tenant;
	char		*env;
	char		*tool;
	char		*run_id;
	char		*step_id;	/* may be NULL */
	char		*args_hash;
	uint64_t	 uid;
	uint64_t	 started_ms;
	uint64_t	 finished_ms;	/* 0 while running */
	uint64_t	 duration_ms;
	uint64_t	 finished_clock;	/* the store clock at the end */
	char		*response;	/* L_DONE: the response map, packed */
	size_t		 responselen;
	char		*note;		/* why in doubt, who resolved it */
	/* For gatewayctl forensics and compensate (forensics.h). */
	char		*args;		/* canonical JSON, when kept; or NULL */
	size_t		 argslen;
	uint64_t	 asks;		/* callers its run answered */
	char		*approver;	/* who approved it; or NULL */
	char		*compensates;	/* a compensation: the key it undoes */
};

const char	*ledger_state_str(enum ledger_state);
void		 ledger_rec_free(struct ledger_rec *);

/* Encode into a malloc'ed buffer; decode strictly (0 or -1). */
char		*ledger_encode(const struct ledger_rec *, size_t *len);
int		 ledger_decode(const char *buf, size_t len,
		    struct ledger_rec *out);

/* What an entry of the expiry index (DB_EXPIRY, sweep.c) points at. */
#define EXPIRY_LEDGER		'l'	/* a ledger key */
#define EXPIRY_RUN		'r'	/* a run record */
#define EXPIRY_APPROVAL		'a'	/* an approval */

/*
 * Index 'key' of that kind for the sweeper, due at 'clock' on the store
 * clock and 'wall' on the wall clock, inside the transaction that settles
 * it.
 */
int		 ledger_expiry_add(struct store_txn *, uint64_t clock,
		    uint64_t wall, char kind, const char *key, size_t keylen);

/* Inside a transaction. */
int		 ledger_get(struct store_txn *, const char *key,
		    struct ledger_rec *out);
int		 ledger_put(struct store_txn *, const char *key,
		    const struct ledger_rec *);

/*
 * The per-run write record the executor keeps on its own, so a
 * compromised gatewayd can neither exceed max_writes_per_run nor run one
 * key twice in a run.  Returns 0 and counts the write, or LEDGER_DUPLICATE
 * or LEDGER_BUDGET.  With 'again' (an approved write resumed once more
 * after a clean failure) a key the run has already is no duplicate and is
 * not counted twice.
 */
#define LEDGER_DUPLICATE	(-30001)
#define LEDGER_BUDGET		(-30002)
int		 ledger_run_add(struct store_txn *, const char *tenant,
		    const char *run_id, const char *key, uint64_t max_writes,
		    int again, uint64_t clock_ms, uint64_t now_ms);

/*
 * Take key out of the run again: its write was never sent (the backend
 * could not reach the tool), so it neither counts against the run's
 * budget nor makes the same write in the run a duplicate.  0 when the
 * run or the key is not there.
 */
int		 ledger_run_del(struct store_txn *, const char *tenant,
		    const char *run_id, const char *key);

/* 1 when the run has written the key already, 0 when not, or an error. */
int		 ledger_run_has(struct store_txn *, const char *tenant,
		    const char *run_id, const char *key);

/*
 * The keys a run wrote, in the order it wrote them, for forensics.c: fn
 * gets each (NUL-terminated).  *n gets how many; 0 and *n 0 when the run
 * has no record; STORE_BADSIZE when its record is damaged.
 */
int		 ledger_run_keys(struct store_txn *, const char *tenant,
		    const char *run_id, void (*fn)(const char *, void *),
		    void *arg, size_t *n);

/* At start: every running record becomes in doubt.  *n gets the count. */
int		 ledger_recover(struct store *, size_t *n);

/* Call fn for every record in a state (for gatewayctl ledger). */
int		 ledger_each(struct store *, enum ledger_state,
		    void (*fn)(const char *key, const struct ledger_rec *,
		    void *), void *arg);
size_t		 ledger_count(struct store *, enum ledger_state);
/*
 * One page of the records in a state: at most limit, in key order, with
 * keys after 'after' (NULL: from the first); fn (may be NULL) is called
 * for each.  *n gets how many, last the last key, *more whether another
 * follows.
 */
#define LEDGER_KEY_MAX	511
int		 ledger_page(struct store *, enum ledger_state,
		    const char *after, size_t limit,
		    void (*fn)(const char *, const struct ledger_rec *, void *),
		    void *arg, size_t *n, char last[LEDGER_KEY_MAX + 1],
		    int *more);

#endif
