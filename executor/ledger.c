/*
 * The write ledger in LMDB.  See ledger.h for the states.  What settles
 * is indexed for the sweeper (sweep.c) in the same transaction; the index
 * is written here, so sweep.c calls the ledger and not the other way.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/record.h"
#include "executor/store.h"
#include "executor/ledger.h"

#define LEDGER_VERSION		1
#define MAX_KEY			LEDGER_KEY_MAX	/* LMDB's default key size limit */

static const char *state_names[] = {
	[L_NONE] = "none",
	[L_RUNNING] = "running",
	[L_DONE] = "done",
	[L_FAILED] = "failed",
	[L_IN_DOUBT] = "in_doubt",
};

const char *
ledger_state_str(enum ledger_state s)
{
	if ((size_t)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[s];
}

static int
check_done(const void *rec)
{
	const struct ledger_rec	*r = rec;

	/* A done record without its response cannot be replayed. */
	return r->state == L_DONE && r->response == NULL ? -1 : 0;
}

_Static_assert(sizeof(enum ledger_state) == sizeof(int),
    "record.c stores an enum as an int");

#define STR(k, m, fl)	{ k, RF_STR, fl, offsetof(struct ledger_rec, m), \
			  0, 0, NULL, 0, 0, 0 }
#define UINT(k, m)	{ k, RF_UINT, 0, offsetof(struct ledger_rec, m), \
			  0, 0, NULL, 0, 0, 0 }
/* In the order they are packed: the stored bytes stay the same. */
static const struct rec_field ledger_fields[] = {
	{ "v", RF_VERSION, RF_REQUIRED, 0, 0, 0, NULL, 0, 0, 0 },
	{ "state", RF_ENUM, RF_REQUIRED, offsetof(struct ledger_rec, state),
	  0, 0, state_names, sizeof(state_names) / sizeof(state_names[0]),
	  L_RUNNING, L_IN_DOUBT },
	UINT("uid", uid),
	UINT("started_ms", started_ms),
	UINT("finished_ms", finished_ms),
	UINT("duration_ms", duration_ms),
	UINT("finished_clock", finished_clock),
	STR("tenant", tenant, 0),
	STR("env", env, 0),
	STR("tool", tool, 0),
	STR("run_id", run_id, 0),
	STR("step_id", step_id, 0),
	STR("args_hash", args_hash, 0),
	STR("note", note, 0),
	{ "response", RF_BIN, 0, offsetof(struct ledger_rec, response),
	  offsetof(struct ledger_rec, responselen), 0, NULL, 0, 0, 0 },
	/* Forensics (forensics.c): after the fields above, which stay. */
	{ "args", RF_BIN, 0, offsetof(struct ledger_rec, args),
	  offsetof(struct ledger_rec, argslen), 0, NULL, 0, 0, 0 },
	{ "asks", RF_UINT, RF_OMIT_ZERO, offsetof(struct ledger_rec, asks),
	  0, 0, NULL, 0, 0, 0 },
	STR("approver", approver, 0),
	STR("compensates", compensates, 0),
};
#undef STR
#undef UINT

static const struct rec_schema ledger_schema = {
	"ledger", LEDGER_VERSION, ledger_fields,
	sizeof(ledger_fields) / sizeof(ledger_fields[0]),
	sizeof(struct ledger_rec), check_done
};

void
ledger_rec_free(struct ledger_rec *r)
{
	rec_free(&ledger_schema, r);
}

char *
ledger_encode(const struct ledger_rec *r, size_t *len)
{
	return rec_encode(&ledger_schema, r, len);
}

int
ledger_decode(const char *buf, size_t len, struct ledger_rec *r)
{
	return rec_decode(&ledger_schema, buf, len, r);
}

/* An expiry entry: at 'clock' on the store clock and 'wall' on the wall's. */
int
ledger_expiry_add(struct store_txn *txn, uint64_t clock, uint64_t wall,
    char kind, const char *key, size_t keylen)
{
	char			buf[9 + MAX_KEY], wb[8];
	struct store_val	k, v = { sizeof(wb), wb };

	if (keylen > MAX_KEY - 9)
		return STORE_BADSIZE;
	be64_put(buf, clock);
	buf[8] = kind;
	memcpy(buf + 9, key, keylen);
	k.data = buf;
	k.size = 9 + keylen;
	be64_put(wb, wall);
	return stx_put(txn, DB_EXPIRY, &k, &v);
}

int
ledger_get(struct store_txn *txn, const char *key,
    struct ledger_rec *out)
{
	struct store_val	k = { strlen(key), (void *)key }, v;
	int			rc;

	memset(out, 0, sizeof(*out));
	rc = stx_get(txn, DB_LEDGER, &k, &v);
	if (rc == STORE_NOTFOUND) {
		out->state = L_NONE;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (ledger_decode(v.data, v.size, out) == -1) {
		/* Fail closed: what we cannot read, we cannot re-run. */
		log_warnx("ledger: record %s does not decode: in doubt", key);
		memset(out, 0, sizeof(*out));
		out->state = L_IN_DOUBT;
		out->note = xstrdup("the ledger record is damaged");
	}
	return 0;
}

int
ledger_put(struct store_txn *txn, const char *key,
    const struct ledger_rec *r)
{
	struct store_val	 k = { strlen(key), (void *)key }, v;
	char			*buf;
	int			 rc;

	if (k.size > MAX_KEY)
		return STORE_BADSIZE;
	buf = ledger_encode(r, &v.size);
	v.data = buf;
	rc = stx_put(txn, DB_LEDGER, &k, &v);
	free(buf);
	if (rc == 0 && (r->state == L_DONE || r->state == L_FAILED))
		rc = ledger_expiry_add(txn, r->finished_clock, r->finished_ms,
		    EXPIRY_LEDGER, key, k.size);
	return rc;
}

/* A run record's key, tenant \0 run_id, in buf; -1 when too long. */
static int
run_key(char *buf, size_t len, const char *tenant, const char *run_id,
    struct store_val *k)
{
	size_t	tl = strlen(tenant), rl = strlen(run_id);

	/* Room is kept for the expiry index's 9-byte prefix. */
	if (tl + 1 + rl > len - 9)
		return -1;
	memcpy(buf, tenant, tl + 1);
	memcpy(buf + tl + 1, run_id, rl);
	k->data = buf;
	k->size = tl + 1 + rl;
	return 0;
}

/*
 * Run records: tenant \0 run_id -> msgpack [first_ms, [key, ...]].  The
 * number of keys is the run's write count, bounded by max_writes_per_run.
 */
int
ledger_run_add(struct store_txn *txn, const char *tenant,
    const char *run_id, const char *key, uint64_t max_writes, int again,
    uint64_t clock, uint64_t now)
{
	msgpack_unpacked	 u;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	const msgpack_object	*keys = NULL;
	char			 rk[MAX_KEY];
	uint64_t		 first = now;
	struct store_val	 k, v;
	size_t			 off = 0;
	uint32_t		 i, n = 0;
	int			 rc;

	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return STORE_BADSIZE;
	msgpack_unpacked_init(&u);
	rc = stx_get(txn, DB_RUNS, &k, &v);
	if (rc != 0 && rc != STORE_NOTFOUND)
		goto out;
	if (rc == 0) {
		if (msgpack_unpack_next(&u, v.data, v.size, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
		    u.data.type != MSGPACK_OBJECT_ARRAY ||
		    u.data.via.array.size != 2 ||
		    u.data.via.array.ptr[0].type !=
		    MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    u.data.via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY) {
			/* Damaged: refuse further writes in this run. */
			rc = LEDGER_BUDGET;
			goto out;
		}
		first = u.data.via.array.ptr[0].via.u64;
		keys = &u.data.via.array.ptr[1];
		n = keys->via.array.size;
		for (i = 0; i < n; i++) {
			if (mp_streq(&keys->via.array.ptr[i], key)) {
				/* Counted once already: no second place. */
				rc = again ? 0 : LEDGER_DUPLICATE;
				goto out;
			}
		}
	}
	if (max_writes != 0 && n >= max_writes) {
		rc = LEDGER_BUDGET;
		goto out;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint64(&pk, first);
	msgpack_pack_array(&pk, n + 1);
	for (i = 0; i < n; i++)
		msgpack_pack_object(&pk, keys->via.array.ptr[i]);
	pk_str(&pk, key);
	v.data = sb.data;
	v.size = sb.size;
	rc = stx_put(txn, DB_RUNS, &k, &v);
	msgpack_sbuffer_destroy(&sb);
	/* Swept retention_s after the run's first write, like its keys. */
	if (rc == 0 && n == 0)
		rc = ledger_expiry_add(txn, clock, first, EXPIRY_RUN, rk,
		    k.size);
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

/*
 * The keys of a run record [first_ms, [key, ...]] unpacked in u, or NULL
 * when the record is damaged.
 */
static const msgpack_object *
run_keys(msgpack_unpacked *u, const struct store_val *v)
{
	size_t	 off = 0;

	if (msgpack_unpack_next(u, v->data, v->size, &off) !=
	    MSGPACK_UNPACK_SUCCESS || u->data.type != MSGPACK_OBJECT_ARRAY ||
	    u->data.via.array.size != 2 ||
	    u->data.via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    u->data.via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY)
		return NULL;
	return &u->data.via.array.ptr[1];
}

int
ledger_run_del(struct store_txn *txn, const char *tenant,
    const char *run_id, const char *key)
{
	msgpack_unpacked	 u;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	const msgpack_object	*keys;
	char			 rk[MAX_KEY];
	struct store_val	 k, v;
	uint32_t		 i, n, left = 0;
	int			 rc;

	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return STORE_BADSIZE;
	if ((rc = stx_get(txn, DB_RUNS, &k, &v)) != 0)
		return rc == STORE_NOTFOUND ? 0 : rc;
	msgpack_unpacked_init(&u);
	/* Damaged: left as it is, which refuses further writes in the run. */
	if ((keys = run_keys(&u, &v)) == NULL) {
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	n = keys->via.array.size;
	for (i = 0; i < n; i++)
		if (!mp_streq(&keys->via.array.ptr[i], key))
			left++;
	if (left == n) {
		msgpack_unpacked_destroy(&u);
		return 0;
	}
	/* The run record stays, empty or not: its expiry entry is kept. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_object(&pk, u.data.via.array.ptr[0]);
	msgpack_pack_array(&pk, left);
	for (i = 0; i < n; i++)
		if (!mp_streq(&keys->via.array.ptr[i], key))
			msgpack_pack_object(&pk, keys->via.array.ptr[i]);
	v.data = sb.data;
	v.size = sb.size;
	rc = stx_put(txn, DB_RUNS, &k, &v);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&u);
	return rc;
}

int
ledger_run_has(struct store_txn *txn, const char *tenant,
    const char *run_id, const char *key)
{
	msgpack_unpacked	 u;
	const msgpack_object	*keys;
	char			 rk[MAX_KEY];
	struct store_val	 k, v;
	uint32_t		 i;
	int			 rc;

	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return STORE_BADSIZE;
	if ((rc = stx_get(txn, DB_RUNS, &k, &v)) != 0)
		return rc == STORE_NOTFOUND ? 0 : rc;
	msgpack_unpacked_init(&u);
	rc = 1;		/* a damaged record: treat the key as written */
	if ((keys = run_keys(&u, &v)) != NULL) {
		rc = 0;
		for (i = 0; i < keys->via.array.size; i++)
			if (mp_streq(&keys->via.array.ptr[i], key))
				rc = 1;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

int
ledger_run_keys(struct store_txn *txn, const char *tenant,
    const char *run_id, void (*fn)(const char *, void *), void *arg,
    size_t *n)
{
	msgpack_unpacked	 u;
	const msgpack_object	*keys;
	char			 rk[MAX_KEY], key[MAX_KEY + 1];
	struct store_val	 k, v;
	uint32_t		 i;
	int			 rc;

	*n = 0;
	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return 0;	/* too long to have been written */
	if ((rc = stx_get(txn, DB_RUNS, &k, &v)) != 0)
		return rc == STORE_NOTFOUND ? 0 : rc;
	msgpack_unpacked_init(&u);
	rc = STORE_BADSIZE;
	if ((keys = run_keys(&u, &v)) != NULL) {
		rc = 0;
		for (i = 0; i < keys->via.array.size; i++) {
			if (keys->via.array.ptr[i].type != MSGPACK_OBJECT_STR ||
			    keys->via.array.ptr[i].via.str.size > MAX_KEY)
				continue;
			memcpy(key, keys->via.array.ptr[i].via.str.ptr,
			    keys->via.array.ptr[i].via.str.size);
			key[keys->via.array.ptr[i].via.str.size] = '\0';
			fn(key, arg);
			(*n)++;
		}
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

struct recover_arg {
	struct store	*st;
	size_t		 n;
};

static int
recover_txn(struct store_txn *txn, void *arg)
{
	struct recover_arg	*ra = arg;
	struct ledger_rec	 r;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	ra->n = 0;
	if ((rc = stx_cursor_open(txn, DB_LEDGER, &cur)))
		return rc;
	for (rc = stx_cursor_first(cur, &k, &v); rc == 0;
	    rc = stx_cursor_next(cur, &k, &v)) {
		if (ledger_decode(v.data, v.size, &r) == -1)
			continue;	/* read as in doubt by ledger_get */
		if (r.state == L_RUNNING && k.size <= MAX_KEY) {
			memcpy(key, k.data, k.size);
			key[k.size] = '\0';
			r.state = L_IN_DOUBT;
			free(r.note);
			r.note = xstrdup("the executor stopped while the write"
			    " ran: its outcome is unknown");
			/* Writing at the cursor's key keeps the walk valid. */
			if ((rc = ledger_put(txn, key, &r)) != 0) {
				ledger_rec_free(&r);
				break;
			}
			log_warnx("ledger: write %s is in doubt", key);
			ra->n++;
		}
		ledger_rec_free(&r);
	}
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

int
ledger_recover(struct store *st, size_t *n)
{
	struct recover_arg	ra = { st, 0 };
	int			rc;

	/* At start, before anything else: it may use the reserve. */
	rc = store_write_reserve(st, recover_txn, &ra);
	*n = ra.n;
	return rc;
}

struct each_arg {
	struct store		*st;
	enum ledger_state	 state;
	void			(*fn)(const char *, const struct ledger_rec *,
				    void *);
	void			*arg;
	size_t			 n;
};

static int
each_txn(struct store_txn *txn, void *arg)
{
	struct each_arg		*ea = arg;
	struct ledger_rec	 r;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	if ((rc = stx_cursor_open(txn, DB_LEDGER, &cur)))
		return rc;
	for (rc = stx_cursor_first(cur, &k, &v); rc == 0;
	    rc = stx_cursor_next(cur, &k, &v)) {
		if (k.size > MAX_KEY)
			continue;
		memcpy(key, k.data, k.size);
		key[k.size] = '\0';
		if (ledger_get(txn, key, &r) != 0)
			continue;
		if (r.state == ea->state) {
			ea->n++;
			if (ea->fn != NULL)
				ea->fn(key, &r, ea->arg);
		}
		ledger_rec_free(&r);
	}
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

int
ledger_each(struct store *st, enum ledger_state state,
    void (*fn)(const char *, const struct ledger_rec *, void *), void *arg)
{
	struct each_arg	ea = { st, state, fn, arg, 0 };

	return store_read(st, each_txn, &ea);
}

struct page_arg {
	struct store		*st;
	enum ledger_state	 state;
	const char		*after;
	size_t			 limit;
	size_t			 n;
	int			 more;
	char			*last;		/* MAX_KEY + 1 bytes */
	void			(*fn)(const char *, const struct ledger_rec *,
				    void *);
	void			*arg;
};

/* One page of the records in a state, in key order, after 'after'. */
static int
page_txn(struct store_txn *txn, void *arg)
{
	struct page_arg		*pa = arg;
	struct ledger_rec	 r;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	pa->n = 0;
	pa->more = 0;
	if ((rc = stx_cursor_open(txn, DB_LEDGER, &cur)))
		return rc;
	if (pa->after != NULL) {
		k.data = (void *)pa->after;
		k.size = strlen(pa->after);
	}
	for (rc = pa->after != NULL ? stx_cursor_seek(cur, &k, &v) :
	    stx_cursor_first(cur, &k, &v); rc == 0;
	    rc = stx_cursor_next(cur, &k, &v)) {
		if (k.size > MAX_KEY)
			continue;
		memcpy(key, k.data, k.size);
		key[k.size] = '\0';
		if ((pa->after != NULL && strcmp(key, pa->after) == 0) ||
		    ledger_get(txn, key, &r) != 0)
			continue;
		if (r.state == pa->state) {
			if (pa->n == pa->limit) {
				pa->more = 1;
				ledger_rec_free(&r);
				break;
			}
			pa->n++;
			memcpy(pa->last, key, k.size + 1);
			if (pa->fn != NULL)
				pa->fn(key, &r, pa->arg);
		}
		ledger_rec_free(&r);
	}
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

int
ledger_page(struct store *st, enum ledger_state state, const char *after,
    size_t limit, void (*fn)(const char *, const struct ledger_rec *,
    void *), void *arg, size_t *n, char last[LEDGER_KEY_MAX + 1], int *more)
{
	struct page_arg	pa = { st, state, after, limit, 0, 0, last, fn, arg };
	int		rc;

	last[0] = '\0';
	rc = store_read(st, page_txn, &pa);
	*n = pa.n;
	*more = pa.more;
	return rc;
}

size_t
ledger_count(struct store *st, enum ledger_state state)
{
	struct each_arg	ea = { st, state, NULL, NULL, 0 };

	if (store_read(st, each_txn, &ea) != 0)
		return 0;
	return ea.n;
}
