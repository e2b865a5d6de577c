/*
 * The store shared by many hosts (store.backend: postgresql): what of the
 * store lives in PostgreSQL, over pg.h.  The ledger's intents and outcomes
 * (asked by write.c one loop turn at a time, answered when the database
 * has committed them), the kill switch (a row, and a NOTIFY that reaches
 * every executor at once), this host's public key and audit head, the
 * retention sweep, the approvals.  Runs, pins, approval quotas and the
 * audit log stay in the host's own LMDB store and state dir
 * (executor/store.h).
 *
 * While the database cannot be reached, pgstore_up() is 0: writes are
 * refused (fail closed), reads go on, pg.c reconnects with a backoff.
 */
#ifndef TG_PGSTORE_H
#define TG_PGSTORE_H

#include <stddef.h>
#include <stdint.h>

struct mpmap;

/* 1 when store.backend is postgresql. */
int	pgstore_on(void);
/* 1 when the shared store takes writes. */
int	pgstore_up(void);
void	pgstore_init(void);
void	pgstore_shutdown(void);

/*
 * The kill switch, for every host: 0, or -1 when the database could not
 * be asked (down).  Turning it off then is kept and sent when the
 * connection is back; turning it on is refused.
 */
int	pgstore_set_writes_off(int off, const char *who);

/* What the database said of one intent of a batch. */
enum pg_verdict {
	PV_RUN,			/* recorded: start the tool */
	PV_REPLAY,		/* done: 'prior' is its record */
	PV_IN_DOUBT,		/* 'prior' is its record, 'why' the note */
	PV_WAIT,		/* running on a live executor ('why': its host) */
	PV_OFF,			/* the kill switch is thrown */
	PV_RETRY,		/* not recorded ('why'): refused, may be retried */
	PV_USED,		/* its approval was used, its record is gone */
};

struct pg_item {
	const char	*key;
	const char	*state;		/* outcomes: "done", "failed", ... */
	const char	*rec;		/* ledger_encode()'s bytes */
	size_t		 reclen;
	const char	*note;		/* outcomes: NULL or why in doubt */
	const char	*approval_id;	/* intents: the approval resumed, or NULL */
	/* Intents: the answer. */
	enum pg_verdict	 verdict;
	char		*prior;		/* malloc'ed; NULL when none */
	size_t		 priorlen;
	char		*why;
};

/*
 * Commit one batch: outcomes[0..nout) then intents[0..nin), in one
 * transaction.  fn gets ok=1 once committed (intents' verdicts filled
 * in), ok=0 when it failed or the connection was lost (nothing known:
 * intents are not to run, outcomes may not be recorded).  Returns -1
 * (fn not called) when the database is not up.
 */
int	pgstore_batch(struct pg_item *outcomes, size_t nout,
	    struct pg_item *intents, size_t nin,
	    void (*fn)(int ok, void *arg), void *arg);

/* Called by write.c: a key's outcome was committed by some executor. */
void	write_shared_settled(const char *key);
/* Called by write.c: the connection is back; its waits are asked again. */
void	write_shared_up(void);
/* This executor's keys running now (write.c): not to be marked in doubt. */
size_t	write_running_keys(const char ***keys);

/*
 * gatewayctl ledger: one page of the shared writes in doubt (and running
 * records whose executor is gone), keys after 'after' (NULL: from the
 * first), at most limit.  fn gets ok=0 when the database failed; else n
 * keys and records (a record that does not decode has only its key and
 * state), and more=1 when another page follows.  -1 when not up.
 */
struct ledger_rec;
int	pgstore_ledger_page(const char *after, size_t limit,
	    void (*fn)(int ok, size_t n, char **keys, struct ledger_rec *,
	    int more, void *arg), void *arg);

/*
 * gatewayctl forensics on the shared ledger: the records of keys[0..n).
 * fn gets ok=0 when the database failed; else recs[i] is the record of
 * keys[i], zeroed (L_NONE) when there is none, in doubt when it is running
 * on an executor that is gone.  -1 when not up.
 */
int	pgstore_records(char *const *keys, size_t n,
	    void (*fn)(int ok, struct ledger_rec *recs, void *arg), void *arg);

/*
 * gatewayctl resolve on the shared ledger: the record is read, settled by
 * settle() (write.c: the same as with LMDB) and written back only if no
 * one changed it meanwhile.  fn gets NULL when resolved, else why not.
 * -1 when not up.
 */
int	pgstore_resolve(const char *key,
	    int (*settle)(struct ledger_rec *, void *), void *sarg,
	    void (*fn)(const char *err, void *arg), void *arg);

/*
 * Approvals as rows (apstore.h's records, encoded).  Each returns -1 when
 * the database is not up (fn not called).
 *
 * insert: a new pending approval; fn(1) once committed, fn(0) if not.
 * get: fn(1, a) found (a is fn's to read, freed after), fn(0) none,
 * fn(-1) the database failed; host_id is the requesting host's.
 * decide: a, decided, replaces the pending record: fn(1) done (every
 * executor is told on tg_approval), fn(0) it was not pending any more,
 * fn(-1) failed.
 * page: the pending ones with ids after 'after', at most limit, in id
 * order, not expired by the database's clock.
 */
struct approval;
int	pgstore_approval_insert(const struct approval *,
	    void (*fn)(int ok, void *), void *);
int	pgstore_approval_get(const char *id,
	    void (*fn)(int rc, struct approval *, const char *host_id, void *),
	    void *);
int	pgstore_approval_decide(const struct approval *,
	    void (*fn)(int rc, void *), void *);
int	pgstore_approvals_page(const char *after, size_t limit,
	    void (*fn)(int ok, size_t n, struct approval *, int more, void *),
	    void *);
/*
 * Checkpoint keys: this host's public keys published (at each connection,
 * and after a rotation), the other hosts' read into checkpoint.c (fn(1)
 * once they verify).  -1 when the database is not up.
 */
int	pgstore_publish_keys(void);
int	pgstore_peer_keys(void (*fn)(int ok, void *), void *);

/*
 * This host's audit head (its JSON text, seq its number) kept in the
 * database, never older than the one there; the one there is given to
 * audit_shared_head() at each connection.  -1 when not up.
 */
int	pgstore_audit_head_put(uint64_t seq, const char *json);

/* Called on tg_approval (apshared.c): approval id was decided. */
void	approval_shared_decided(const char *id);

/* Shared writes in doubt, as counted every 2 s (gatewayctl status). */
uint64_t pgstore_in_doubt(void);

/* gatewayctl status: store_backend, store. */
void	pgstore_status(struct mpmap *);
/* Prometheus text: the connection's families. */
void	pgstore_metrics(void *fp);

#endif
