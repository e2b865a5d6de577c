/*
 * Per-tenant quotas on pending approvals.  See apquota.h for the records.
 * One tenant's approvals, each up to limits.max_frame of args, would
 * otherwise fill the store for everyone.
 */
#include <string.h>

#include "common/util.h"
#include "executor/store.h"
#include "executor/apquota.h"

#define PFX_COUNT	'c'
#define PFX_ENTRY	'e'
#define KEY_MAX		511	/* LMDB's default key size limit */

/* 'c' TENANT in buf; -1 when too long. */
static int
count_key(char *buf, size_t len, const char *tenant, struct store_val *k)
{
	size_t	tl = strlen(tenant);

	if (1 + tl > len)
		return -1;
	buf[0] = PFX_COUNT;
	memcpy(buf + 1, tenant, tl);
	k->data = buf;
	k->size = 1 + tl;
	return 0;
}

/* 'e' be64 expires_at ID in buf; -1 when too long. */
static int
entry_key(char *buf, size_t len, const char *id, uint64_t expires_at,
    struct store_val *k)
{
	size_t	il = strlen(id);

	if (9 + il > len)
		return -1;
	buf[0] = PFX_ENTRY;
	be64_put(buf + 1, expires_at);
	memcpy(buf + 9, id, il);
	k->data = buf;
	k->size = 9 + il;
	return 0;
}

static int
count_get(struct store_txn *txn, const struct store_val *k, uint64_t *n,
    uint64_t *bytes)
{
	struct store_val	v;
	int			rc;

	*n = *bytes = 0;
	rc = stx_get(txn, DB_PENDING, k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.size != 16)
		return STORE_CORRUPT;
	*n = be64_get(v.data);
	*bytes = be64_get((char *)v.data + 8);
	return 0;
}

static int
count_put(struct store_txn *txn, struct store_val *k, uint64_t n,
    uint64_t bytes)
{
	char			b[16];
	struct store_val	v = { sizeof(b), b };
	int			rc;

	if (n == 0) {
		rc = stx_del(txn, DB_PENDING, k);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	be64_put(b, n);
	be64_put(b + 8, bytes);
	return stx_put(txn, DB_PENDING, k, &v);
}

int
apquota_add(struct store_txn *txn, const char *tenant, const char *id,
    uint64_t expires_at, uint64_t bytes, uint64_t max_count,
    uint64_t max_bytes)
{
	char			ck[KEY_MAX], ek[KEY_MAX], val[KEY_MAX];
	struct store_val	k, e, v;
	size_t			tl = strlen(tenant);
	uint64_t		n, b;
	int			rc;

	if (count_key(ck, sizeof(ck), tenant, &k) == -1 ||
	    entry_key(ek, sizeof(ek), id, expires_at, &e) == -1 ||
	    8 + tl > sizeof(val))
		return STORE_BADSIZE;
	if ((rc = count_get(txn, &k, &n, &b)) != 0)
		return rc;
	if (n + 1 > max_count)
		return APQUOTA_COUNT;
	if (bytes > max_bytes || b > max_bytes - bytes)
		return APQUOTA_BYTES;
	if ((rc = count_put(txn, &k, n + 1, b + bytes)) != 0)
		return rc;
	be64_put(val, bytes);
	memcpy(val + 8, tenant, tl);
	v.data = val;
	v.size = 8 + tl;
	return stx_put(txn, DB_PENDING, &e, &v);
}

/* Remove the entry at k (value v) and take it off its tenant's count. */
static int
entry_drop(struct store_txn *txn, struct store_val *k,
    const struct store_val *v)
{
	char			ck[KEY_MAX], tenant[KEY_MAX];
	struct store_val	c;
	uint64_t		bytes, n, b;
	int			rc;

	if (v->size < 8 || v->size - 8 >= sizeof(tenant))
		return STORE_CORRUPT;
	bytes = be64_get(v->data);
	memcpy(tenant, (char *)v->data + 8, v->size - 8);
	tenant[v->size - 8] = '\0';
	if ((rc = stx_del(txn, DB_PENDING, k)) != 0)
		return rc;
	if (count_key(ck, sizeof(ck), tenant, &c) == -1)
		return STORE_CORRUPT;
	if ((rc = count_get(txn, &c, &n, &b)) != 0)
		return rc;
	/* Never below zero, whatever the records say. */
	return count_put(txn, &c, n > 0 ? n - 1 : 0,
	    b > bytes ? b - bytes : 0);
}

int
apquota_drop(struct store_txn *txn, const char *id, uint64_t expires_at)
{
	char			ek[KEY_MAX], val[KEY_MAX];
	struct store_val	k, v;
	int			rc;

	if (entry_key(ek, sizeof(ek), id, expires_at, &k) == -1)
		return 0;
	rc = stx_get(txn, DB_PENDING, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;	/* expired and swept, or of an older store */
	if (rc != 0)
		return rc;
	/* v points into the map: copy it before the delete moves pages. */
	if (v.size > sizeof(val))
		return STORE_CORRUPT;
	memcpy(val, v.data, v.size);
	v.data = val;
	return entry_drop(txn, &k, &v);
}

struct get_arg {
	struct store	*st;
	const char	*tenant;
	uint64_t	 n, bytes;
};

static int
get_txn(struct store_txn *txn, void *arg)
{
	struct get_arg		*ga = arg;
	char			 ck[KEY_MAX];
	struct store_val	 k;

	if (count_key(ck, sizeof(ck), ga->tenant, &k) == -1)
		return STORE_BADSIZE;
	return count_get(txn, &k, &ga->n, &ga->bytes);
}

int
apquota_get(struct store *st, const char *tenant, uint64_t *n,
    uint64_t *bytes)
{
	struct get_arg	ga = { st, tenant, 0, 0 };
	int		rc;

	rc = store_read(st, get_txn, &ga);
	*n = ga.n;
	*bytes = ga.bytes;
	return rc;
}

struct sweep_arg {
	struct store	*st;
	uint64_t	 now_s;
	size_t		 batch;
	size_t		 removed;
};

/* The first entry: 1 when it is due, 0 when not or none, or an error. */
static int
first_due(struct store_cursor *cur, uint64_t now_s, struct store_val *k,
    struct store_val *v)
{
	static char	pfx[1] = { PFX_ENTRY };
	int		rc;

	k->data = pfx;
	k->size = 1;
	rc = stx_cursor_seek(cur, k, v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (k->size < 9 || *(char *)k->data != PFX_ENTRY)
		return 0;
	return be64_get((char *)k->data + 1) <= now_s;
}

static int
sweep_txn(struct store_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	char			 kb[KEY_MAX], vb[KEY_MAX];
	int			 rc = 0;

	sa->removed = 0;
	while (sa->removed < sa->batch) {
		if ((rc = stx_cursor_open(txn, DB_PENDING, &cur)) != 0)
			return rc;
		rc = first_due(cur, sa->now_s, &k, &v);
		stx_cursor_close(cur);
		if (rc != 1)
			return rc;
		if (k.size > sizeof(kb) || v.size > sizeof(vb))
			return STORE_CORRUPT;
		/* Copies: the pages move under the deletes. */
		memcpy(kb, k.data, k.size);
		memcpy(vb, v.data, v.size);
		k.data = kb;
		v.data = vb;
		if ((rc = entry_drop(txn, &k, &v)) != 0)
			return rc;
		sa->removed++;
	}
	return 0;
}

static int
due_txn(struct store_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	int			 rc;

	if ((rc = stx_cursor_open(txn, DB_PENDING, &cur)))
		return rc;
	rc = first_due(cur, sa->now_s, &k, &v);
	stx_cursor_close(cur);
	return rc;
}

int
apquota_sweep(struct store *st, uint64_t now_s, size_t batch,
    size_t *removed)
{
	struct sweep_arg	sa = { st, now_s, batch, 0 };
	int			rc;

	/* Nothing due: no write transaction. */
	*removed = 0;
	if ((rc = store_read(st, due_txn, &sa)) != 1)
		return rc;
	rc = store_write_reserve(st, sweep_txn, &sa);
	*removed = rc == 0 ? sa.removed : 0;
	return rc;
}
