/*
 * The executor's LMDB environment: the kill switch state now, the write
 * ledger and approvals as they come.  Opened only by the executor, after
 * exec, never shared across fork.  Default durability: a commit is on disk
 * when store_write() returns.
 */
#ifndef TG_STORE_H
#define TG_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_db {
	DB_META,		/* small state: the kill switch, the clock */
	DB_LEDGER,		/* idempotency key -> write record */
	DB_APPROVALS,		/* approval id -> approval record */
	DB_RUNS,		/* tenant\0run_id -> per-run write record */
	DB_EXPIRY,		/* be64 time, kind, key -> "": what to sweep when */
	DB_PENDING,		/* pending approvals per tenant (apquota.c) */
	DB_PINS,		/* catalog tool -> pinned MCP definition (pins.c) */
	DB_COUNT
};

struct store;
struct store_txn;		/* one transaction, inside store_write/read */
struct store_cursor;		/* a walk over one database */

/* A key or a value in the store. */
struct store_val {
	size_t	 size;
	void	*data;
};

/*
 * What the store's functions return besides 0, a code of a transaction
 * function's own and an errno: LMDB's error codes do not leave the store.
 */
#define STORE_NOTFOUND	(-30301)	/* no such record */
#define STORE_FULL	(-30302)	/* the map is at store.max_map_size */
#define STORE_ERR	(-30303)	/* any other LMDB error */
/*
 * Returned by transaction functions for what they find wrong themselves;
 * they leave the store as STORE_ERR, with LMDB's own messages for a bad
 * value size and a corrupted record.
 */
#define STORE_BADSIZE	(-30304)	/* a key or value too large */
#define STORE_CORRUPT	(-30305)	/* a record of the wrong shape */
const char	*store_strerror(int);

struct store	*store_open(const char *dir, uint64_t map_size,
		    uint64_t max_map_size, char *err, size_t errlen);
void		 store_close(struct store *);

/*
 * Run fn inside one write transaction and commit it.  When the map is full
 * the transaction is aborted, the map grown (doubling, up to the hard
 * limit) and fn run again from the start, so fn must not have side effects
 * outside the transaction.  Returns 0, or STORE_FULL once the hard limit
 * is reached, or STORE_NOTFOUND or STORE_ERR for LMDB's other errors, or
 * what else fn returned when it failed; nothing is committed unless
 * everything succeeded.
 *
 * The reserve: ordinary writes (store_write, store_write_need) are refused
 * with STORE_FULL, before fn runs, unless the store has room for 'need'
 * bytes more than the reserve (store.reserve).  Deleting in LMDB takes free
 * pages too (copy-on-write), so the reserve is what lets the writes that
 * free room or stop things always run: the sweeper, outcomes of writes
 * already running (their room was kept when they started), an operator's
 * deny, the kill switch, recovery at start.  Those use
 * store_write_reserve, which only the hard limit stops.
 */
int		 store_write(struct store *,
		    int (*fn)(struct store_txn *, void *), void *arg);
int		 store_write_need(struct store *, uint64_t need,
		    int (*fn)(struct store_txn *, void *), void *arg);
int		 store_write_reserve(struct store *,
		    int (*fn)(struct store_txn *, void *), void *arg);
void		 store_set_reserve(struct store *, uint64_t bytes);
uint64_t	 store_reserve(const struct store *);
/*
 * 1 when the next write can take 'need' bytes more than the reserve, in
 * values of chunk bytes, counting only pages it can really reuse; else 0.
 */
int		 store_has_room(struct store *, uint64_t chunk, uint64_t need);
/*
 * A read-only transaction; fn's return value is passed through (LMDB's
 * errors as STORE_NOTFOUND, STORE_FULL or STORE_ERR).
 */
int		 store_read(struct store *,
		    int (*fn)(struct store_txn *, void *), void *arg);
uint64_t	 store_map_size(struct store *);
/*
 * The store clock, in ms: never goes back, across restarts too (see
 * store.c).  Retention and expiry are measured on it and on the wall clock.
 */
uint64_t	 store_clock_ms(const struct store *);
/*
 * Bytes the next write transactions can still take within the hard limit
 * (store.max_map_size): the pages never used, plus the freed pages LMDB can
 * reuse, counted only in whole runs of consecutive pages that each hold a
 * value of chunk bytes (a large value needs consecutive pages).  An
 * underestimate where in doubt; 0 when the store cannot be read.
 */
uint64_t	 store_room(struct store *, uint64_t chunk);

/* The kill switch: 1 when writes were disabled at run time. */
int		 store_get_writes_off(struct store *, int *off);
int		 store_set_writes_off(struct store *, int off);
/*
 * A counter in DB_META (0 when absent).  store_put_u64 may use the
 * reserve: it keeps the audit sequence, a few bytes once per block of
 * records, and the audit log must not stop because one tenant filled the
 * store.
 */
int		 store_get_u64(struct store *, const char *key, uint64_t *);
int		 store_put_u64(struct store *, const char *key, uint64_t);
/* The kill switch as stored, inside a transaction (1 when unreadable). */
int		 store_writes_off_txn(struct store_txn *, struct store *,
		    int *off);

/*
 * Inside a transaction function: 0, or STORE_NOTFOUND, STORE_FULL (the
 * transaction must fail, store_write grows the map and runs it again) or
 * STORE_ERR.  What stx_get and the cursors give points into the map: valid
 * until the transaction ends or writes.
 */
int		 stx_get(struct store_txn *, enum store_db,
		    const struct store_val *key, struct store_val *val);
int		 stx_put(struct store_txn *, enum store_db,
		    const struct store_val *key, const struct store_val *val);
int		 stx_del(struct store_txn *, enum store_db,
		    const struct store_val *key);
int		 stx_cursor_open(struct store_txn *, enum store_db,
		    struct store_cursor **);
void		 stx_cursor_close(struct store_cursor *);
int		 stx_cursor_first(struct store_cursor *,
		    struct store_val *key, struct store_val *val);
int		 stx_cursor_next(struct store_cursor *,
		    struct store_val *key, struct store_val *val);
/* The first record at or after key (key is overwritten with its key). */
int		 stx_cursor_seek(struct store_cursor *,
		    struct store_val *key, struct store_val *val);
/* Delete the record the cursor is at. */
int		 stx_cursor_del(struct store_cursor *);

#endif
