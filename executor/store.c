#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/store.h"

struct store {
	MDB_env		*env;
	MDB_dbi		 dbi[DB_COUNT];
	uint64_t	 map_size;
	uint64_t	 max_map_size;
	uint64_t	 reserve;	/* bytes ordinary writes leave free */
	uint64_t	 clock_base;	/* the store clock when opened */
	uint64_t	 mono_base;	/* mono_ms() when opened */
};

struct store_txn {
	MDB_txn		*txn;
	struct store	*st;
};

struct store_cursor {
	MDB_cursor	*cur;
};

static const char *db_names[DB_COUNT] = {
	[DB_META] = "meta",
	[DB_LEDGER] = "ledger",
	[DB_APPROVALS] = "approvals",
	[DB_RUNS] = "runs",
	[DB_EXPIRY] = "expiry",
	[DB_PENDING] = "pending",
	[DB_PINS] = "pins",
};

/* LMDB's pgno_t and txnid_t: both size_t (MDB_IDL is an array of them). */
typedef size_t lmdb_id_t;

#define KEY_WRITES_OFF	"writes_off"
#define KEY_CLOCK	"clock_ms"

/*
 * The store clock: milliseconds that never go back, whatever the wall
 * clock does.  It starts at the wall clock the first time a store is
 * opened, advances with CLOCK_MONOTONIC while the executor runs, and every
 * write transaction records it, so after a restart it goes on from at
 * least every value already stored.  Time the executor is down does not
 * count: retention measured on it only grows.
 */
uint64_t
store_clock_ms(const struct store *st)
{
	return st->clock_base + (mono_ms() - st->mono_base);
}

/* A uint64 in DB_META, inside a transaction: MDB_NOTFOUND when absent. */
static int
meta_get_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t *val)
{
	MDB_val	k = { strlen(key), (void *)key }, v;
	int	rc;

	if ((rc = mdb_get(txn, st->dbi[DB_META], &k, &v)) != 0)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*val = be64_get(v.mv_data);
	return 0;
}

static int
meta_put_u64(MDB_txn *txn, struct store *st, const char *key, uint64_t val)
{
	unsigned char	b[8];
	MDB_val		k = { strlen(key), (void *)key }, v = { 8, b };

	be64_put(b, val);
	return mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
}

static int
clock_load(MDB_txn *txn, struct store *st)
{
	int	rc;

	rc = meta_get_u64(txn, st, KEY_CLOCK, &st->clock_base);
	if (rc == MDB_NOTFOUND) {
		st->clock_base = now_ms();
		rc = 0;
	}
	st->mono_base = mono_ms();
	return rc;
}

static int
clock_save(MDB_txn *txn, struct store *st)
{
	return meta_put_u64(txn, st, KEY_CLOCK, store_clock_ms(st));
}

struct store *
store_open(const char *dir, uint64_t map_size, uint64_t max_map_size,
    char *err, size_t errlen)
{
	struct store	*st;
	MDB_txn		*txn;
	MDB_envinfo	 info;
	int		 rc, dead = 0, i;

	if (mkdir_p(dir, 0700) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->max_map_size = max_map_size;
	if ((rc = mdb_env_create(&st->env)) != 0)
		goto fail;
	mdb_env_set_maxdbs(st->env, DB_COUNT);
	if ((rc = mdb_env_set_mapsize(st->env, map_size)) != 0)
		goto fail;
	/* MDB_NOTLS: transactions are not tied to threads (we have one). */
	if ((rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600)) != 0)
		goto fail;
	/* Clear reader slots left by a process that died holding them. */
	if ((rc = mdb_reader_check(st->env, &dead)) != 0)
		goto fail;
	if (dead > 0)
		log_warnx("store: cleared %d stale reader slots", dead);
	/* An existing environment may be larger than map_size already. */
	mdb_env_info(st->env, &info);
	st->map_size = info.me_mapsize;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (i = 0; i < DB_COUNT; i++) {
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE,
		    &st->dbi[i])) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = clock_load(txn, st)) != 0 || (rc = clock_save(txn, st)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return st;
fail:
	snprintf(err, errlen, "%s: lmdb: %s", dir, mdb_strerror(rc));
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st);
}

uint64_t
store_map_size(struct store *st)
{
	return st->map_size;
}

/*
 * Count, in the sorted page numbers pg[0..n), the pages that runs of at
 * least chunk consecutive pages can give to values of chunk pages: a run
 * of len pages holds len / chunk of them.  Pages left over are not counted
 * (they could still hold small pages: an underestimate, so fail closed).
 */
static uint64_t
run_pages(const lmdb_id_t *pg, size_t n, uint64_t chunk)
{
	uint64_t	total = 0, len = 0;
	size_t		i;

	for (i = 0; i < n; i++) {
		if (i > 0 && pg[i] == pg[i - 1] + 1)
			len++;
		else {
			total += len / chunk * chunk;
			len = 1;
		}
	}
	return total + len / chunk * chunk;
}

static int
pgno_cmp(const void *a, const void *b)
{
	lmdb_id_t	x = *(const lmdb_id_t *)a, y = *(const lmdb_id_t *)b;

	return x < y ? -1 : x > y;
}

struct free_arg {
	uint64_t	 chunk;		/* pages one large value needs */
	lmdb_id_t	 skip;		/* a txnid whose pages are left out, or 0 */
	uint64_t	 pages;		/* out: reusable pages, in runs */
};

/*
 * The pages on LMDB's freelist (FREE_DBI, dbi 0: txnid -> a count-prefixed
 * array of page numbers).  A record of transaction t is reusable once no
 * reader needs a snapshot older than t.  The executor is the only process
 * in the environment and ends each read transaction before the next write
 * begins, so that is every record for a write transaction after the next
 * one: the next one cannot reuse what the last commit freed (the other
 * meta page still points there), but a write's next transaction is its
 * intent, which takes a few small pages and is refused safely on
 * MDB_MAP_FULL; its outcome commits later, when all of them are reusable.
 * Records are merged and sorted so that runs spanning records count, as
 * LMDB merges them when it reclaims.  LMDB gives up looking for a run after
 * 60 records per page wanted: a freelist of thousands of records may hold a
 * run LMDB does not find, and the outcome then takes pages at the end of
 * the map; ledger_has_room() keeps twice the room per outcome as slack,
 * but a freelist that fragmented is not accounted for exactly.
 */
static int
free_txn(struct store_txn *stx, void *arg)
{
	struct free_arg	*fa = arg;
	MDB_cursor	*cur;
	MDB_cursor_op	 op = MDB_FIRST;
	MDB_val		 k, v;
	lmdb_id_t	*pg = NULL, id, cnt, i;
	size_t		 n = 0, cap = 0;
	int		 rc;

	fa->pages = 0;
	if ((rc = mdb_cursor_open(stx->txn, 0, &cur)) != 0)
		return rc;
	for (; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
		if (k.mv_size != sizeof(id) || v.mv_size < sizeof(cnt) ||
		    v.mv_size % sizeof(cnt) != 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&id, k.mv_data, sizeof(id));
		memcpy(&cnt, v.mv_data, sizeof(cnt));
		if (cnt > v.mv_size / sizeof(cnt) - 1) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (id == fa->skip)
			continue;
		if (n + cnt > cap) {
			cap = (n + cnt) * 2;
			pg = xreallocarray(pg, cap, sizeof(*pg));
		}
		for (i = 1; i <= cnt; i++)
			memcpy(&pg[n++], (char *)v.mv_data + i * sizeof(cnt),
			    sizeof(cnt));
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		rc = 0;
		if (n > 0)
			qsort(pg, n, sizeof(*pg), pgno_cmp);
		fa->pages = run_pages(pg, n, fa->chunk);
	}
	free(pg);
	return rc;
}

/*
 * Room in bytes for values of chunk bytes; with 'settled', leaving out the
 * pages the last commit freed, which the next write transaction cannot
 * reuse yet (see free_txn).  When the pages never used already hold
 * 'enough', the freelist is not read (it may be long).
 */
static uint64_t
room(struct store *st, uint64_t chunk, int settled, uint64_t enough)
{
	MDB_envinfo	info;
	MDB_stat	ms;
	struct free_arg	fa;
	uint64_t	limit, high;

	if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &ms) != 0)
		return 0;
	limit = st->max_map_size / ms.ms_psize;
	high = (uint64_t)info.me_last_pgno + 1;
	fa.chunk = (chunk + ms.ms_psize - 1) / ms.ms_psize + 1;
	fa.skip = settled ? info.me_last_txnid : 0;
	if (high < limit && (limit - high) * ms.ms_psize >= enough)
		return (limit - high) * ms.ms_psize;
	/* A freelist we cannot read gives no room: fail closed. */
	if (store_read(st, free_txn, &fa) != 0)
		fa.pages = 0;
	return ((high < limit ? limit - high : 0) + fa.pages) * ms.ms_psize;
}

uint64_t
store_room(struct store *st, uint64_t chunk)
{
	return room(st, chunk, 0, UINT64_MAX);
}

void
store_set_reserve(struct store *st, uint64_t bytes)
{
	st->reserve = bytes;
}

uint64_t
store_reserve(const struct store *st)
{
	return st->reserve;
}

static int
noop_txn(struct store_txn *txn, void *arg)
{
	(void)txn;
	(void)arg;
	return 0;
}

/*
 * Room for 'need' more bytes (in values of chunk bytes) above the reserve,
 * counting only pages the next transaction can really reuse.  When the
 * pages the last commit freed would make the difference, one empty commit
 * (the clock only, a few pages, allowed into the reserve) makes them
 * reusable: a store whose records were all swept in one transaction takes
 * writes again without waiting for another commit.
 */
int
store_has_room(struct store *st, uint64_t chunk, uint64_t need)
{
	uint64_t	want = st->reserve + need;

	if (room(st, chunk, 1, want) >= want)
		return 1;
	if (room(st, chunk, 0, want) < want ||
	    store_write_reserve(st, noop_txn, NULL) != 0)
		return 0;
	return room(st, chunk, 1, want) >= want;
}

/* Double the map within the hard limit; 0 if it grew. */
static int
store_grow(struct store *st)
{
	uint64_t	next;
	int		rc;

	if (st->map_size >= st->max_map_size)
		return MDB_MAP_FULL;
	next = st->map_size * 2;
	if (next > st->max_map_size)
		next = st->max_map_size;
	/* Legal with no transaction open in this process. */
	if ((rc = mdb_env_set_mapsize(st->env, next)) != 0) {
		log_warnx("store: cannot grow the map to %llu: %s",
		    (unsigned long long)next, mdb_strerror(rc));
		return rc;
	}
	log_info("store: map grown from %llu to %llu bytes",
	    (unsigned long long)st->map_size, (unsigned long long)next);
	st->map_size = next;
	return 0;
}

/*
 * LMDB's error codes stop here: what leaves the store is STORE_NOTFOUND,
 * STORE_FULL or STORE_ERR, or, untouched, 0, an errno, or a code of a
 * transaction function's own (LEDGER_BUDGET...).  The LMDB error behind
 * the last STORE_ERR is kept for store_strerror (the executor has one
 * thread), so messages say what they said before.
 */
static int	last_mdb_err;

static int
store_rc(int rc)
{
	if (rc == MDB_NOTFOUND)
		return STORE_NOTFOUND;
	if (rc == MDB_MAP_FULL)
		return STORE_FULL;
	if (rc == STORE_BADSIZE)
		rc = MDB_BAD_VALSIZE;
	else if (rc == STORE_CORRUPT)
		rc = MDB_CORRUPTED;
	if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE) {
		last_mdb_err = rc;
		return STORE_ERR;
	}
	return rc;
}

const char *
store_strerror(int rc)
{
	switch (rc) {
	case STORE_NOTFOUND:
		return mdb_strerror(MDB_NOTFOUND);
	case STORE_FULL:
		return mdb_strerror(MDB_MAP_FULL);
	case STORE_ERR:
		return mdb_strerror(last_mdb_err);
	case STORE_BADSIZE:
		return mdb_strerror(MDB_BAD_VALSIZE);
	case STORE_CORRUPT:
		return mdb_strerror(MDB_CORRUPTED);
	}
	/* An errno, or a code of our own (as mdb_strerror said it). */
	return mdb_strerror(rc);
}

static int
write_txn(struct store *st, int (*fn)(struct store_txn *, void *), void *arg)
{
	struct store_txn	 stx = { NULL, st };
	MDB_txn			*txn;
	int			 rc;

	for (;;) {
		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
			if (rc == MDB_MAP_RESIZED) {
				mdb_env_set_mapsize(st->env, 0);
				continue;
			}
			return rc;
		}
		stx.txn = txn;
		rc = fn(&stx, arg);
		/* Whatever this commit stores, the clock is at least there. */
		if (rc == 0)
			rc = clock_save(txn, st);
		if (rc == 0)
			rc = mdb_txn_commit(txn);	/* frees txn */
		else
			mdb_txn_abort(txn);
		/* Full in fn (stx_put...) or at the commit: grow, run again. */
		if (rc != MDB_MAP_FULL && rc != STORE_FULL)
			return rc;
		if (store_grow(st) != 0)
			return MDB_MAP_FULL;
	}
}

int
store_write_reserve(struct store *st, int (*fn)(struct store_txn *, void *),
    void *arg)
{
	return store_rc(write_txn(st, fn, arg));
}

int
store_write_need(struct store *st, uint64_t need,
    int (*fn)(struct store_txn *, void *), void *arg)
{
	/* Refused as the map's hard limit is: nothing of it is stored. */
	if (st->reserve > 0 && !store_has_room(st, need, need))
		return STORE_FULL;
	return store_write_reserve(st, fn, arg);
}

int
store_write(struct store *st, int (*fn)(struct store_txn *, void *), void *arg)
{
	return store_write_need(st, 0, fn, arg);
}

int
store_read(struct store *st, int (*fn)(struct store_txn *, void *), void *arg)
{
	struct store_txn	 stx = { NULL, st };
	MDB_txn			*txn;
	int			 rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_rc(rc);
	stx.txn = txn;
	rc = fn(&stx, arg);
	mdb_txn_abort(txn);
	return store_rc(rc);
}

struct flag_arg {
	struct store	*st;
	int		 val;
};

static int
get_writes_off(struct store_txn *stx, void *arg)
{
	struct flag_arg	*fa = arg;
	MDB_val		 k = { strlen(KEY_WRITES_OFF), KEY_WRITES_OFF }, v;
	int		 rc;

	rc = mdb_get(stx->txn, fa->st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		fa->val = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	fa->val = v.mv_size == 1 && *(char *)v.mv_data == '1';
	return 0;
}

static int
put_writes_off(struct store_txn *stx, void *arg)
{
	struct flag_arg	*fa = arg;
	MDB_val		 k = { strlen(KEY_WRITES_OFF), KEY_WRITES_OFF };
	MDB_val		 v = { 1, fa->val ? "1" : "0" };

	return mdb_put(stx->txn, fa->st->dbi[DB_META], &k, &v, 0);
}

struct u64_arg {
	struct store	*st;
	const char	*key;
	uint64_t	 val;
};

static int
get_u64_txn(struct store_txn *stx, void *arg)
{
	struct u64_arg	*ua = arg;
	int		 rc;

	ua->val = 0;
	rc = meta_get_u64(stx->txn, ua->st, ua->key, &ua->val);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
put_u64_txn(struct store_txn *stx, void *arg)
{
	struct u64_arg	*ua = arg;

	return meta_put_u64(stx->txn, ua->st, ua->key, ua->val);
}

int
store_get_u64(struct store *st, const char *key, uint64_t *val)
{
	struct u64_arg	ua = { st, key, 0 };
	int		rc;

	rc = store_read(st, get_u64_txn, &ua);
	*val = ua.val;
	return rc;
}

int
store_put_u64(struct store *st, const char *key, uint64_t val)
{
	struct u64_arg	ua = { st, key, val };

	/* The audit sequence: a few bytes, once per block; see store.h. */
	return store_write_reserve(st, put_u64_txn, &ua);
}

int
store_writes_off_txn(struct store_txn *txn, struct store *st, int *off)
{
	struct flag_arg	fa = { st, 0 };
	int		rc;

	*off = 1;
	if ((rc = get_writes_off(txn, &fa)) == 0)
		*off = fa.val;
	return store_rc(rc);
}

int
store_get_writes_off(struct store *st, int *off)
{
	struct flag_arg	fa = { st, 0 };
	int		rc;

	/* Fail closed: state we cannot read means writes are off. */
	*off = 1;
	if ((rc = store_read(st, get_writes_off, &fa)) != 0)
		return rc;
	*off = fa.val;
	return 0;
}

int
store_set_writes_off(struct store *st, int off)
{
	struct flag_arg	fa = { st, off };

	/* An operator's action: it must fit when the store is full. */
	return store_write_reserve(st, put_writes_off, &fa);
}

/*
 * Inside a transaction.  LMDB's codes are translated at once, so the
 * transaction functions see only the store's; an LMDB error behind
 * STORE_ERR is kept for store_strerror as when it leaves store_write.
 */
static void
val_in(MDB_val *m, const struct store_val *v)
{
	m->mv_size = v->size;
	m->mv_data = v->data;
}

static void
val_out(struct store_val *v, const MDB_val *m)
{
	v->size = m->mv_size;
	v->data = m->mv_data;
}

int
stx_get(struct store_txn *stx, enum store_db db, const struct store_val *key,
    struct store_val *val)
{
	MDB_val	k, v;
	int	rc;

	val_in(&k, key);
	if ((rc = mdb_get(stx->txn, stx->st->dbi[db], &k, &v)) == 0)
		val_out(val, &v);
	return store_rc(rc);
}

int
stx_put(struct store_txn *stx, enum store_db db, const struct store_val *key,
    const struct store_val *val)
{
	MDB_val	k, v;

	val_in(&k, key);
	val_in(&v, val);
	return store_rc(mdb_put(stx->txn, stx->st->dbi[db], &k, &v, 0));
}

int
stx_del(struct store_txn *stx, enum store_db db, const struct store_val *key)
{
	MDB_val	k;

	val_in(&k, key);
	return store_rc(mdb_del(stx->txn, stx->st->dbi[db], &k, NULL));
}

int
stx_cursor_open(struct store_txn *stx, enum store_db db,
    struct store_cursor **out)
{
	struct store_cursor	*c;
	int			 rc;

	c = xcalloc(1, sizeof(*c));
	if ((rc = mdb_cursor_open(stx->txn, stx->st->dbi[db], &c->cur)) != 0) {
		free(c);
		return store_rc(rc);
	}
	*out = c;
	return 0;
}

void
stx_cursor_close(struct store_cursor *c)
{
	mdb_cursor_close(c->cur);
	free(c);
}

static int
cursor_get(struct store_cursor *c, struct store_val *key,
    struct store_val *val, MDB_cursor_op op)
{
	MDB_val	k, v;
	int	rc;

	if (op == MDB_SET_RANGE)
		val_in(&k, key);
	if ((rc = mdb_cursor_get(c->cur, &k, &v, op)) == 0) {
		val_out(key, &k);
		val_out(val, &v);
	}
	return store_rc(rc);
}

int
stx_cursor_first(struct store_cursor *c, struct store_val *key,
    struct store_val *val)
{
	return cursor_get(c, key, val, MDB_FIRST);
}

int
stx_cursor_next(struct store_cursor *c, struct store_val *key,
    struct store_val *val)
{
	return cursor_get(c, key, val, MDB_NEXT);
}

int
stx_cursor_seek(struct store_cursor *c, struct store_val *key,
    struct store_val *val)
{
	return cursor_get(c, key, val, MDB_SET_RANGE);
}

int
stx_cursor_del(struct store_cursor *c)
{
	return store_rc(mdb_cursor_del(c->cur, 0));
}
