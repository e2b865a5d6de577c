/*
 * The sweeper and its index (DB_EXPIRY): settled ledger records, run
 * records and approvals are removed once their retention has passed on
 * both the store clock and the wall clock.  See sweep.c.
 */
#ifndef TG_SWEEP_H
#define TG_SWEEP_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

/* The index's entries are written by ledger_expiry_add (ledger.h). */

/*
 * An approval record is swept writes.retention_s after it expires: by
 * then it is expired, or decided long ago.
 */
int		 ledger_expire_approval(struct store_txn *, struct store *,
		    const char *id, uint64_t expires_ms);

/*
 * Remove settled records (done, failed), run records and approvals whose
 * time is 'retention' ms or more behind both clock_now (the store clock)
 * and wall_now (the wall clock), at most 'batch' in one transaction.
 * *removed gets the number removed; fewer than batch means it caught up.
 */
int		 ledger_sweep(struct store *, uint64_t clock_now,
		    uint64_t wall_now, uint64_t retention, size_t batch,
		    size_t *removed);

#endif
