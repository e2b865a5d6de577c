/*
 * The sweeper: what the ledger, the run records and the approvals leave
 * behind goes once its retention has passed.
 *
 * DB_EXPIRY indexes what the sweeper may remove and when: its keys are an
 * 8-byte big-endian time on the store clock (which never goes back), one
 * byte for the kind ('l' a ledger key, 'r' a run record, 'a' an approval)
 * and the key itself, so a cursor walks them oldest first; the value is
 * the same moment on the wall clock, 8 bytes big-endian.  An entry goes
 * once retention has passed on both clocks, so no step of the wall clock,
 * forward or back, shortens retention.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/ledger.h"
#include "executor/store.h"
#include "executor/sweep.h"

#define MAX_KEY			LEDGER_KEY_MAX	/* LMDB's default key size limit */

/*
 * An approval goes retention after it expires: its expiry on the wall
 * clock, and the same distance ahead on the store clock.
 */
int
ledger_expire_approval(struct store_txn *txn, struct store *st, const char *id,
    uint64_t expires_ms)
{
	uint64_t	wall = now_ms(), clock = store_clock_ms(st);

	if (expires_ms > wall)
		clock += expires_ms - wall;
	return ledger_expiry_add(txn, clock, expires_ms, EXPIRY_APPROVAL, id,
	    strlen(id));
}

struct sweep_arg {
	struct store	*st;
	uint64_t	 clock_now;
	uint64_t	 wall_now;
	uint64_t	 retention;
	size_t		 batch;
	size_t		 removed;
};

/* Remove one indexed item if it is still settled and old enough. */
static int
sweep_one(struct store_txn *txn, uint64_t t, char kind,
    const char *key, size_t keylen)
{
	struct ledger_rec	r;
	struct store_val	k = { keylen, (void *)key };
	char			buf[MAX_KEY + 1];
	int			rc;

	if (kind == EXPIRY_APPROVAL) {
		rc = stx_del(txn, DB_APPROVALS, &k);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	if (kind == EXPIRY_RUN) {
		rc = stx_del(txn, DB_RUNS, &k);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	if (kind != EXPIRY_LEDGER || keylen > MAX_KEY)
		return 0;
	memcpy(buf, key, keylen);
	buf[keylen] = '\0';
	if ((rc = ledger_get(txn, buf, &r)) != 0)
		return rc;
	/* A key run again since, or now in doubt, is not this entry's. */
	if ((r.state == L_DONE || r.state == L_FAILED) &&
	    r.finished_clock <= t) {
		rc = stx_del(txn, DB_LEDGER, &k);
		if (rc == STORE_NOTFOUND)
			rc = 0;
	}
	ledger_rec_free(&r);
	return rc;
}

/*
 * Entries are in store clock order: the first one not due on it ends the
 * walk.  One due on the store clock but not on the wall clock (the wall
 * clock was stepped back) is passed over and kept; at most a few batches
 * of those are looked at per transaction.
 */
static int
sweep_txn(struct store_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	const unsigned char	*p;
	uint64_t		 t, wall;
	size_t			 seen = 0;
	int			 rc, first = 1;

	sa->removed = 0;
	if ((rc = stx_cursor_open(txn, DB_EXPIRY, &cur)))
		return rc;
	while (sa->removed < sa->batch && seen++ < 4 * sa->batch &&
	    (rc = first ? stx_cursor_first(cur, &k, &v) :
	    stx_cursor_next(cur, &k, &v)) == 0) {
		/* After a delete the cursor stands on the next entry already. */
		first = 0;
		p = k.data;
		if (k.size < 9)
			goto drop;
		t = be64_get(p);
		if (t > sa->clock_now || sa->clock_now - t < sa->retention)
			break;
		/* Entries of old stores have no wall time: the key's. */
		wall = v.size == 8 ? be64_get(v.data) : t;
		if (wall > sa->wall_now || sa->wall_now - wall < sa->retention)
			continue;
		if ((rc = sweep_one(txn, t, (char)p[8],
		    (const char *)p + 9, k.size - 9)) != 0)
			break;
drop:
		if ((rc = stx_cursor_del(cur)) != 0)
			break;
		sa->removed++;
	}
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

/* Is the oldest entry due on the store clock?  1 yes, 0 no, or an error. */
static int
due_txn(struct store_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	uint64_t		 t;
	int			 rc;

	if ((rc = stx_cursor_open(txn, DB_EXPIRY, &cur)))
		return rc;
	rc = stx_cursor_first(cur, &k, &v);
	stx_cursor_close(cur);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (k.size < 9)
		return 1;
	t = be64_get(k.data);
	return t <= sa->clock_now && sa->clock_now - t >= sa->retention;
}

int
ledger_sweep(struct store *st, uint64_t clock_now, uint64_t wall_now,
    uint64_t retention, size_t batch, size_t *removed)
{
	struct sweep_arg	sa = { st, clock_now, wall_now, retention, batch,
				    0 };
	int			rc;

	/* Nothing due: no write transaction (and no fsync) every second. */
	*removed = 0;
	if ((rc = store_read(st, due_txn, &sa)) != 1)
		return rc;
	/* The sweeper frees room: it may use the reserve (store.h). */
	rc = store_write_reserve(st, sweep_txn, &sa);
	*removed = rc == 0 ? sa.removed : 0;
	return rc;
}
