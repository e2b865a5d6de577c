/*
 * The executor's LMDB store (executor/store.c): the kill switch state and
 * its default, all-or-nothing write transactions, and a map that grows up
 * to its hard limit and then reports STORE_FULL without losing what was
 * committed before.
 */
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor/apquota.h"
#include "executor/store.h"
#include "tests/unit/test.h"

#define MIB		(1024ULL * 1024)
#define BIGVAL		(64 * 1024)

static char	tmpdir[1024];
static char	dbdir[1100];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
fresh_dir(void)
{
	const char	*dir;

	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX", dir);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/* store_open() makes the last directory itself. */
	snprintf(dbdir, sizeof(dbdir), "%s/db", tmpdir);
	return 0;
}

static void
clean_dir(void)
{
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

static struct store *
open_store(uint64_t map_size, uint64_t max_map_size)
{
	struct store	*st;
	char		 err[1024];

	if ((st = store_open(dbdir, map_size, max_map_size, err,
	    sizeof(err))) == NULL)
		fprintf(stderr, "store_open: %s\n", err);
	return st;
}

/* A put of one key/value in DB_META, then a chosen return value. */
struct put_arg {
	struct store	*st;
	const char	*keys[4];
	size_t		 nkeys;
	size_t		 vlen;
	unsigned char	 fill;
	int		 fail;		/* returned after the puts, when set */
	int		 calls;
};

static int
put_fn(struct store_txn *txn, void *arg)
{
	struct put_arg		*pa = arg;
	struct store_val	 k, v;
	char			*buf;
	size_t			 i;
	int			 rc;

	pa->calls++;
	if ((buf = malloc(pa->vlen > 0 ? pa->vlen : 1)) == NULL)
		return ENOMEM;
	memset(buf, pa->fill, pa->vlen);
	for (i = 0; i < pa->nkeys; i++) {
		k.data = (void *)pa->keys[i];
		k.size = strlen(pa->keys[i]);
		v.size = pa->vlen;
		v.data = buf;
		rc = stx_put(txn, DB_META, &k, &v);
		if (rc != 0) {
			free(buf);
			return rc;
		}
	}
	free(buf);
	return pa->fail;
}

/* Read one key: its length and whether every byte is 'fill'. */
struct get_arg {
	struct store	*st;
	const char	*key;
	size_t		 len;
	unsigned char	 fill;
	int		 intact;
};

static int
get_fn(struct store_txn *txn, void *arg)
{
	struct get_arg		*ga = arg;
	struct store_val	 k = { strlen(ga->key), (void *)ga->key }, v;
	const unsigned char	*p;
	size_t			 i;
	int			 rc;

	if ((rc = stx_get(txn, DB_META, &k, &v)) != 0)
		return rc;
	ga->len = v.size;
	ga->intact = 1;
	p = v.data;
	for (i = 0; i < v.size; i++)
		if (p[i] != ga->fill)
			ga->intact = 0;
	return 0;
}

/* 0 and the value's length, or the store's error (STORE_NOTFOUND). */
static int
get_key(struct store *st, const char *key, unsigned char fill, size_t *len)
{
	struct get_arg	ga = { st, key, 0, fill, 0 };
	int		rc;

	if ((rc = store_read(st, get_fn, &ga)) != 0)
		return rc;
	*len = ga.len;
	return ga.intact ? 0 : -1;
}

static int
return_7(struct store_txn *txn, void *arg)
{
	(void)txn;
	(void)arg;
	return 7;
}

static void
test_kill_switch(void)
{
	struct store	*st;
	int		 off = -1;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 4 * MIB);
	ASSERT(st != NULL);
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 0);
	ASSERT_EQ_INT(store_set_writes_off(st, 1), 0);
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 1);
	ASSERT_EQ_INT(store_set_writes_off(st, 0), 0);
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 0);
	/* Any non-zero value means off. */
	ASSERT_EQ_INT(store_set_writes_off(st, 5), 0);
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 1);
	store_close(st);

	/* It survives a close and a reopen. */
	st = open_store(MIB, 4 * MIB);
	ASSERT(st != NULL);
	off = -1;
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 1);
	ASSERT_EQ_INT(store_set_writes_off(st, 0), 0);
	store_close(st);
	st = open_store(MIB, 4 * MIB);
	ASSERT(st != NULL);
	off = -1;
	ASSERT_EQ_INT(store_get_writes_off(st, &off), 0);
	ASSERT_EQ_INT(off, 0);
	store_close(st);
	store_close(NULL);
	clean_dir();
}

static void
test_open_mode(void)
{
	struct store	*st;
	struct stat	 sb;
	char		 path[1200];

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 4 * MIB);
	ASSERT(st != NULL);
	store_close(st);
	ASSERT_EQ_INT(stat(dbdir, &sb), 0);
	ASSERT_EQ_INT((sb.st_mode & 0777), 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", dbdir);
	ASSERT_EQ_INT(stat(path, &sb), 0);
	ASSERT_EQ_INT((sb.st_mode & 0077), 0);
	clean_dir();
}

static void
test_open_fails(void)
{
	struct store	*st;
	char		 err[256];
	FILE		*f;

	ASSERT_EQ_INT(fresh_dir(), 0);
	/* A file where the directory should be. */
	ASSERT((f = fopen(dbdir, "w")) != NULL);
	fclose(f);
	err[0] = '\0';
	st = store_open(dbdir, MIB, 4 * MIB, err, sizeof(err));
	ASSERT(st == NULL);
	ASSERT(err[0] != '\0');
	clean_dir();
}

static void
test_failed_write(void)
{
	struct store	*st;
	struct put_arg	 pa;
	size_t		 len;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 4 * MIB);
	ASSERT(st != NULL);

	memset(&pa, 0, sizeof(pa));
	pa.st = st;
	pa.keys[0] = "a";
	pa.keys[1] = "b";
	pa.nkeys = 2;
	pa.vlen = 10;
	pa.fill = 'x';
	pa.fail = 42;
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), 42);
	ASSERT_EQ_INT(pa.calls, 1);
	ASSERT_EQ_INT(get_key(st, "a", 'x', &len), STORE_NOTFOUND);
	ASSERT_EQ_INT(get_key(st, "b", 'x', &len), STORE_NOTFOUND);

	/* The same succeeding commits both. */
	pa.fail = 0;
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), 0);
	ASSERT_EQ_INT(get_key(st, "a", 'x', &len), 0);
	ASSERT_EQ_INT(len, 10);
	ASSERT_EQ_INT(get_key(st, "b", 'x', &len), 0);
	ASSERT_EQ_INT(len, 10);

	/* A failed overwrite leaves the old values. */
	pa.fill = 'y';
	pa.vlen = 20;
	pa.fail = -1;
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), -1);
	ASSERT_EQ_INT(get_key(st, "a", 'x', &len), 0);
	ASSERT_EQ_INT(len, 10);
	ASSERT_EQ_INT(get_key(st, "b", 'x', &len), 0);
	ASSERT_EQ_INT(len, 10);

	/* store_read passes fn's value through. */
	ASSERT_EQ_INT(store_read(st, return_7, NULL), 7);
	ASSERT_EQ_INT(store_write(st, return_7, NULL), 7);
	store_close(st);
	clean_dir();
}

/*
 * A 1 MiB map growing to at most 2 MiB: writes of 64 KiB values succeed
 * until the map is at its limit and full, then STORE_FULL.
 */
/* Empty DB_META, where test_map_full puts its values. */
static int
del_all_fn(struct store_txn *txn, void *arg)
{
	struct store_cursor	*cur;
	struct store_val	 k, v;
	int			 rc;

	(void)arg;
	if ((rc = stx_cursor_open(txn, DB_META, &cur)) != 0)
		return rc;
	while ((rc = stx_cursor_first(cur, &k, &v)) == 0)
		if ((rc = stx_cursor_del(cur)) != 0)
			break;
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

static void
test_map_full(void)
{
	struct store	*st;
	struct put_arg	 pa;
	char		 keys[200][32], key2[200][32];
	size_t		 len;
	uint64_t	 before_full = 0, room;
	int		 i, j, rc = 0, n;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 2 * MIB);
	ASSERT(st != NULL);
	ASSERT_EQ_INT(store_map_size(st), MIB);

	for (n = 0; n < 200; n++) {
		snprintf(keys[n], sizeof(keys[n]), "big-%03d-a", n);
		snprintf(key2[n], sizeof(key2[n]), "big-%03d-b", n);
		memset(&pa, 0, sizeof(pa));
		pa.st = st;
		pa.keys[0] = keys[n];
		pa.keys[1] = key2[n];
		pa.nkeys = 2;
		pa.vlen = BIGVAL;
		pa.fill = (unsigned char)n;
		before_full = store_map_size(st);
		if ((rc = store_write(st, put_fn, &pa)) != 0)
			break;
		ASSERT(store_map_size(st) >= before_full);
		ASSERT(store_map_size(st) <= 2 * MIB);
	}
	ASSERT_EQ_INT(rc, STORE_FULL);
	/* Some went in: 1 MiB holds several pairs of 64 KiB. */
	ASSERT(n > 4);
	/* It had grown to the hard limit before it gave up. */
	ASSERT_EQ_INT(before_full, 2 * MIB);
	ASSERT_EQ_INT(store_map_size(st), 2 * MIB);
	/* More than the first map could hold went in. */
	ASSERT((uint64_t)n * 2 * BIGVAL > MIB);
	/* Every earlier commit is intact, the failed one left nothing. */
	for (i = 0; i < n; i++) {
		ASSERT_EQ_INT(get_key(st, keys[i], (unsigned char)i, &len), 0);
		ASSERT_EQ_INT(len, BIGVAL);
		ASSERT_EQ_INT(get_key(st, key2[i], (unsigned char)i, &len), 0);
		ASSERT_EQ_INT(len, BIGVAL);
	}
	ASSERT_EQ_INT(get_key(st, keys[n], (unsigned char)n, &len), STORE_NOTFOUND);
	ASSERT_EQ_INT(get_key(st, key2[n], (unsigned char)n, &len), STORE_NOTFOUND);
	/* Full stays full: the next big write fails the same way. */
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), STORE_FULL);
	store_close(st);

	/* Reopened with the small map: all still there. */
	st = open_store(MIB, 2 * MIB);
	ASSERT(st != NULL);
	ASSERT(store_map_size(st) > MIB);
	ASSERT(store_map_size(st) <= 2 * MIB);
	for (i = 0; i < n; i++) {
		j = get_key(st, keys[i], (unsigned char)i, &len);
		ASSERT_EQ_INT(j, 0);
		ASSERT_EQ_INT(len, BIGVAL);
	}
	ASSERT_EQ_INT(get_key(st, keys[n], (unsigned char)n, &len), STORE_NOTFOUND);
	/* Full: no room for one more big value. */
	room = store_room(st, BIGVAL);
	ASSERT(room < 2 * BIGVAL);
	/* Deleting frees the room, reusable after the next commit too. */
	ASSERT_EQ_INT(store_write(st, del_all_fn, st), 0);
	ASSERT(store_room(st, BIGVAL) >= (uint64_t)n * BIGVAL);
	store_close(st);
	st = open_store(MIB, 2 * MIB);
	ASSERT(st != NULL);
	ASSERT(store_room(st, BIGVAL) >= (uint64_t)n * BIGVAL);
	/* and the big values fit again. */
	pa.st = st;
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), 0);
	store_close(st);
	clean_dir();
}

/* Without room to grow, the first write that does not fit fails at once. */
static void
test_map_no_growth(void)
{
	struct store	*st;
	struct put_arg	 pa;
	char		 key[16];
	size_t		 len;
	int		 n, rc = 0;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, MIB);
	ASSERT(st != NULL);
	for (n = 0; n < 100; n++) {
		snprintf(key, sizeof(key), "k%d", n);
		memset(&pa, 0, sizeof(pa));
		pa.st = st;
		pa.keys[0] = key;
		pa.nkeys = 1;
		pa.vlen = BIGVAL;
		pa.fill = 'q';
		if ((rc = store_write(st, put_fn, &pa)) != 0)
			break;
	}
	ASSERT_EQ_INT(rc, STORE_FULL);
	ASSERT(n > 0 && n < 16);
	ASSERT_EQ_INT(store_map_size(st), MIB);
	ASSERT(pa.calls == 1);		/* no retry without growth */
	ASSERT_EQ_INT(get_key(st, "k0", 'q', &len), 0);
	ASSERT_EQ_INT(len, BIGVAL);
	store_close(st);
	clean_dir();
}

/*
 * The reserve: ordinary writes stop short of it, refused before they run;
 * writes that may use it (the sweeper's, operators') still go through in
 * the store ordinary writes filled, and deleting there works.
 */
static void
test_reserve(void)
{
	struct store	*st;
	struct put_arg	 pa;
	char		 keys[100][16];
	int		 n, rc = 0, calls;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 2 * MIB);
	ASSERT(st != NULL);
	store_set_reserve(st, 256 * 1024);
	ASSERT_EQ_INT(store_reserve(st), 256 * 1024);
	for (n = 0; n < 100; n++) {
		snprintf(keys[n], sizeof(keys[n]), "r%02d", n);
		memset(&pa, 0, sizeof(pa));
		pa.st = st;
		pa.keys[0] = keys[n];
		pa.nkeys = 1;
		pa.vlen = BIGVAL;
		pa.fill = 'r';
		if ((rc = store_write_need(st, BIGVAL, put_fn, &pa)) != 0)
			break;
	}
	ASSERT_EQ_INT(rc, STORE_FULL);
	ASSERT(pa.calls == 0);		/* refused before fn ran */
	ASSERT(n > 4);
	/* The reserve is still there: writes allowed into it fit. */
	ASSERT(store_room(st, 0) >= 256 * 1024 - BIGVAL);
	calls = pa.calls;
	ASSERT_EQ_INT(store_write_reserve(st, put_fn, &pa), 0);
	ASSERT_EQ_INT(pa.calls, calls + 1);
	ASSERT_EQ_INT(store_write(st, put_fn, &pa), STORE_FULL);
	/* Deleting everything fits, and the room comes back for all. */
	ASSERT_EQ_INT(store_write_reserve(st, del_all_fn, st), 0);
	ASSERT_EQ_INT(store_has_room(st, BIGVAL, (uint64_t)n * BIGVAL), 1);
	pa.calls = 0;
	ASSERT_EQ_INT(store_write_need(st, BIGVAL, put_fn, &pa), 0);
	ASSERT_EQ_INT(pa.calls, 1);
	store_close(st);
	clean_dir();
}

struct quota_arg {
	struct store	*st;
	const char	*tenant;
	const char	*id;
	uint64_t	 expires, bytes;
	int		 drop;
};

static int
quota_fn(struct store_txn *txn, void *arg)
{
	struct quota_arg	*qa = arg;

	if (qa->drop)
		return apquota_drop(txn, qa->id, qa->expires);
	return apquota_add(txn, qa->tenant, qa->id, qa->expires,
	    qa->bytes, 3, 1000);
}

/* Quotas per tenant: count and bytes, released by decisions and expiry. */
static void
test_apquota(void)
{
	struct store		*st;
	struct quota_arg	 qa;
	uint64_t		 n, b;
	size_t			 removed;

	ASSERT_EQ_INT(fresh_dir(), 0);
	st = open_store(MIB, 2 * MIB);
	ASSERT(st != NULL);
	memset(&qa, 0, sizeof(qa));
	qa.st = st;
	qa.tenant = "acme";
	qa.bytes = 300;
	qa.id = "a1";
	qa.expires = 100;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	qa.id = "a2";
	qa.expires = 200;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	qa.id = "a3";
	qa.expires = 300;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	/* Past the count (3), then past the bytes (1000). */
	qa.id = "a4";
	qa.expires = 400;
	qa.bytes = 1;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), APQUOTA_COUNT);
	ASSERT_EQ_INT(apquota_get(st, "acme", &n, &b), 0);
	ASSERT_EQ_INT(n, 3);
	ASSERT_EQ_INT(b, 900);
	qa.tenant = "globex";
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	qa.tenant = "acme";
	/* A decision releases its place; dropping twice changes nothing. */
	qa.drop = 1;
	qa.id = "a2";
	qa.expires = 200;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	ASSERT_EQ_INT(apquota_get(st, "acme", &n, &b), 0);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(b, 600);
	qa.drop = 0;
	qa.id = "a5";
	qa.expires = 500;
	qa.bytes = 401;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), APQUOTA_BYTES);
	qa.bytes = 400;
	ASSERT_EQ_INT(store_write(st, quota_fn, &qa), 0);
	/* Expiry: those at or before now go, in batches. */
	ASSERT_EQ_INT(apquota_sweep(st, 99, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 0);
	ASSERT_EQ_INT(apquota_sweep(st, 400, 1, &removed), 0);
	ASSERT_EQ_INT(removed, 1);
	ASSERT_EQ_INT(apquota_sweep(st, 400, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 2);
	ASSERT_EQ_INT(apquota_get(st, "acme", &n, &b), 0);
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(b, 400);
	ASSERT_EQ_INT(apquota_get(st, "globex", &n, &b), 0);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(b, 0);
	store_close(st);
	/* Kept in the store: a restart finds the same counts. */
	st = open_store(MIB, 2 * MIB);
	ASSERT_EQ_INT(apquota_get(st, "acme", &n, &b), 0);
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(b, 400);
	ASSERT_EQ_INT(apquota_sweep(st, 1000, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 1);
	ASSERT_EQ_INT(apquota_get(st, "acme", &n, &b), 0);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(b, 0);
	store_close(st);
	clean_dir();
}

int
main(void)
{
	RUN(test_kill_switch);
	RUN(test_open_mode);
	RUN(test_open_fails);
	RUN(test_failed_write);
	RUN(test_map_full);
	RUN(test_map_no_growth);
	RUN(test_reserve);
	RUN(test_apquota);
	clean_dir();
	return tests_failed != 0;
}
