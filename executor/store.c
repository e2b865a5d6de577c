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
	uint64_t	 clock_base;	/* the store clock when opened */
	uint64_t	 mono_base;	/* mono_ms() when opened */
};

static const char *db_names[DB_COUNT] = {
	[DB_META] = "meta",
	[DB_LEDGER] = "ledger",
	[DB_APPROVALS] = "approvals",
	[DB_RUNS] = "runs",
	[DB_EXPIRY] = "expiry",
};

#define KEY_WRITES_OFF	"writes_off"
#define KEY_CLOCK	"clock_ms"

static void
be64_put(unsigned char *b, uint64_t v)
{
	int	i;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t
be64_get(const unsigned char *b)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

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

static int
clock_load(MDB_txn *txn, struct store *st)
{
	MDB_val	k = { strlen(KEY_CLOCK), KEY_CLOCK }, v;
	int	rc;

	rc = mdb_get(txn, st->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		st->clock_base = now_ms();
		rc = 0;
	} else if (rc == 0 && v.mv_size == 8)
		st->clock_base = be64_get(v.mv_data);
	else if (rc == 0)
		return MDB_CORRUPTED;
	st->mono_base = mono_ms();
	return rc;
}

static int
clock_save(MDB_txn *txn, struct store *st)
{
	unsigned char	b[8];
	MDB_val		k = { strlen(KEY_CLOCK), KEY_CLOCK }, v = { 8, b };

	be64_put(b, store_clock_ms(st));
	return mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
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

MDB_dbi
store_dbi(struct store *st, enum store_db db)
{
	return st->dbi[db];
}

uint64_t
store_map_size(struct store *st)
{
	return st->map_size;
}

uint64_t
store_used(struct store *st)
{
	MDB_envinfo	info;
	MDB_stat	ms;

	if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &ms) != 0)
		return UINT64_MAX;
	return ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
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

int
store_write(struct store *st, int (*fn)(MDB_txn *, void *), void *arg)
{
	MDB_txn	*txn;
	int	 rc;

	for (;;) {
		if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
			if (rc == MDB_MAP_RESIZED) {
				mdb_env_set_mapsize(st->env, 0);
				continue;
			}
			return rc;
		}
		rc = fn(txn, arg);
		/* Whatever this commit stores, the clock is at least there. */
		if (rc == 0)
			rc = clock_save(txn, st);
		if (rc == 0)
			rc = mdb_txn_commit(txn);	/* frees txn */
		else
			mdb_txn_abort(txn);
		if (rc != MDB_MAP_FULL)
			return rc;
		if (store_grow(st) != 0)
			return MDB_MAP_FULL;
	}
}

int
store_read(struct store *st, int (*fn)(MDB_txn *, void *), void *arg)
{
	MDB_txn	*txn;
	int	 rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = fn(txn, arg);
	mdb_txn_abort(txn);
	return rc;
}

struct flag_arg {
	struct store	*st;
	int		 val;
};

static int
get_writes_off(MDB_txn *txn, void *arg)
{
	struct flag_arg	*fa = arg;
	MDB_val		 k = { strlen(KEY_WRITES_OFF), KEY_WRITES_OFF }, v;
	int		 rc;

	rc = mdb_get(txn, fa->st->dbi[DB_META], &k, &v);
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
put_writes_off(MDB_txn *txn, void *arg)
{
	struct flag_arg	*fa = arg;
	MDB_val		 k = { strlen(KEY_WRITES_OFF), KEY_WRITES_OFF };
	MDB_val		 v = { 1, fa->val ? "1" : "0" };

	return mdb_put(txn, fa->st->dbi[DB_META], &k, &v, 0);
}

struct u64_arg {
	struct store	*st;
	const char	*key;
	uint64_t	 val;
};

static int
get_u64_txn(MDB_txn *txn, void *arg)
{
	struct u64_arg	*ua = arg;
	MDB_val		 k = { strlen(ua->key), (void *)ua->key }, v;
	int		 rc;

	ua->val = 0;
	if ((rc = mdb_get(txn, ua->st->dbi[DB_META], &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && v.mv_size != 8)
		return MDB_CORRUPTED;
	if (rc == 0)
		ua->val = be64_get(v.mv_data);
	return rc;
}

static int
put_u64_txn(MDB_txn *txn, void *arg)
{
	struct u64_arg	*ua = arg;
	unsigned char	 b[8];
	MDB_val		 k = { strlen(ua->key), (void *)ua->key }, v = { 8, b };

	be64_put(b, ua->val);
	return mdb_put(txn, ua->st->dbi[DB_META], &k, &v, 0);
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

	return store_write(st, put_u64_txn, &ua);
}

int
store_writes_off_txn(MDB_txn *txn, struct store *st, int *off)
{
	struct flag_arg	fa = { st, 0 };
	int		rc;

	*off = 1;
	if ((rc = get_writes_off(txn, &fa)) == 0)
		*off = fa.val;
	return rc;
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

	return store_write(st, put_writes_off, &fa);
}
