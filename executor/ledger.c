/*
 * The write ledger in LMDB.  See ledger.h for the states.
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

#include <lmdb.h>
#include <msgpack.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/ledger.h"
#include "executor/store.h"
#include "proto/proto.h"

#define LEDGER_VERSION		1
#define KIND_LEDGER		'l'
#define KIND_RUN		'r'
#define KIND_APPROVAL		'a'
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

void
ledger_rec_free(struct ledger_rec *r)
{
	free(r->tenant);
	free(r->env);
	free(r->tool);
	free(r->run_id);
	free(r->step_id);
	free(r->args_hash);
	free(r->response);
	free(r->note);
	memset(r, 0, sizeof(*r));
}

static void
pk_opt_str(msgpack_packer *pk, const char *key, const char *val, int *n)
{
	if (val == NULL)
		return;
	if (pk != NULL)
		pk_kv_str(pk, key, val);
	(*n)++;
}

static int
ledger_pack(msgpack_packer *pk, const struct ledger_rec *r)
{
	int	n = 0;

	n += 7;		/* v, state, uid, started_ms, finished_ms, duration_ms,
			   finished_clock */
	pk_opt_str(NULL, "tenant", r->tenant, &n);
	pk_opt_str(NULL, "env", r->env, &n);
	pk_opt_str(NULL, "tool", r->tool, &n);
	pk_opt_str(NULL, "run_id", r->run_id, &n);
	pk_opt_str(NULL, "step_id", r->step_id, &n);
	pk_opt_str(NULL, "args_hash", r->args_hash, &n);
	pk_opt_str(NULL, "note", r->note, &n);
	if (r->response != NULL)
		n++;
	msgpack_pack_map(pk, n);
	pk_kv_uint(pk, "v", LEDGER_VERSION);
	pk_kv_str(pk, "state", ledger_state_str(r->state));
	pk_kv_uint(pk, "uid", r->uid);
	pk_kv_uint(pk, "started_ms", r->started_ms);
	pk_kv_uint(pk, "finished_ms", r->finished_ms);
	pk_kv_uint(pk, "duration_ms", r->duration_ms);
	pk_kv_uint(pk, "finished_clock", r->finished_clock);
	n = 0;
	pk_opt_str(pk, "tenant", r->tenant, &n);
	pk_opt_str(pk, "env", r->env, &n);
	pk_opt_str(pk, "tool", r->tool, &n);
	pk_opt_str(pk, "run_id", r->run_id, &n);
	pk_opt_str(pk, "step_id", r->step_id, &n);
	pk_opt_str(pk, "args_hash", r->args_hash, &n);
	pk_opt_str(pk, "note", r->note, &n);
	if (r->response != NULL) {
		pk_str(pk, "response");
		msgpack_pack_bin(pk, r->responselen);
		msgpack_pack_bin_body(pk, r->response, r->responselen);
	}
	return 0;
}

char *
ledger_encode(const struct ledger_rec *r, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ledger_pack(&pk, r);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

static int
dec_str(const msgpack_object *o, char **out)
{
	if (*out != NULL || (*out = mp_strdup(o)) == NULL)
		return -1;
	return 0;
}

static int
dec_uint(const msgpack_object *o, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

static int
dec_state(const msgpack_object *o, enum ledger_state *out)
{
	size_t	i;

	for (i = L_RUNNING; i < sizeof(state_names) / sizeof(state_names[0]);
	    i++) {
		if (mp_streq(o, state_names[i])) {
			*out = (enum ledger_state)i;
			return 0;
		}
	}
	return -1;
}

/* One field of a record; -1 for an unknown key or a wrong type. */
static int
dec_field(const msgpack_object_kv *kv, struct ledger_rec *r, uint64_t *v)
{
	const msgpack_object	*k = &kv->key, *o = &kv->val;

	if (mp_streq(k, "v"))
		return dec_uint(o, v);
	if (mp_streq(k, "state"))
		return dec_state(o, &r->state);
	if (mp_streq(k, "uid"))
		return dec_uint(o, &r->uid);
	if (mp_streq(k, "started_ms"))
		return dec_uint(o, &r->started_ms);
	if (mp_streq(k, "finished_ms"))
		return dec_uint(o, &r->finished_ms);
	if (mp_streq(k, "duration_ms"))
		return dec_uint(o, &r->duration_ms);
	if (mp_streq(k, "finished_clock"))
		return dec_uint(o, &r->finished_clock);
	if (mp_streq(k, "tenant"))
		return dec_str(o, &r->tenant);
	if (mp_streq(k, "env"))
		return dec_str(o, &r->env);
	if (mp_streq(k, "tool"))
		return dec_str(o, &r->tool);
	if (mp_streq(k, "run_id"))
		return dec_str(o, &r->run_id);
	if (mp_streq(k, "step_id"))
		return dec_str(o, &r->step_id);
	if (mp_streq(k, "args_hash"))
		return dec_str(o, &r->args_hash);
	if (mp_streq(k, "note"))
		return dec_str(o, &r->note);
	if (mp_streq(k, "response")) {
		if (o->type != MSGPACK_OBJECT_BIN || r->response != NULL)
			return -1;
		r->response = xmalloc(o->via.bin.size);
		memcpy(r->response, o->via.bin.ptr, o->via.bin.size);
		r->responselen = o->via.bin.size;
		return 0;
	}
	return -1;
}

int
ledger_decode(const char *buf, size_t len, struct ledger_rec *r)
{
	msgpack_unpacked	u;
	const char		*why;
	uint64_t		v = 0;
	uint32_t		i;
	int			rc = -1;

	memset(r, 0, sizeof(*r));
	if (frame_unpack_map(buf, len, &u, &why) == -1)
		return -1;
	/* Each key once: a second "state" must not override the first. */
	if (mp_dup_keys(&u.data))
		goto out;
	for (i = 0; i < u.data.via.map.size; i++)
		if (dec_field(&u.data.via.map.ptr[i], r, &v) == -1)
			goto out;
	if (v != LEDGER_VERSION || r->state == L_NONE)
		goto out;
	/* A done record without its response cannot be replayed. */
	if (r->state == L_DONE && r->response == NULL)
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	if (rc == -1)
		ledger_rec_free(r);
	return rc;
}

/* An expiry entry: at 'clock' on the store clock and 'wall' on the wall's. */
static int
expiry_add(MDB_txn *txn, struct store *st, uint64_t clock, uint64_t wall,
    char kind, const char *key, size_t keylen)
{
	char	buf[9 + MAX_KEY], wb[8];
	MDB_val	k, v = { sizeof(wb), wb };

	if (keylen > MAX_KEY - 9)
		return MDB_BAD_VALSIZE;
	be64_put(buf, clock);
	buf[8] = kind;
	memcpy(buf + 9, key, keylen);
	k.mv_data = buf;
	k.mv_size = 9 + keylen;
	be64_put(wb, wall);
	return mdb_put(txn, store_dbi(st, DB_EXPIRY), &k, &v, 0);
}

/*
 * An approval goes retention after it expires: its expiry on the wall
 * clock, and the same distance ahead on the store clock.
 */
int
ledger_expire_approval(MDB_txn *txn, struct store *st, const char *id,
    uint64_t expires_ms)
{
	uint64_t	wall = now_ms(), clock = store_clock_ms(st);

	if (expires_ms > wall)
		clock += expires_ms - wall;
	return expiry_add(txn, st, clock, expires_ms, KIND_APPROVAL, id,
	    strlen(id));
}

int
ledger_get(MDB_txn *txn, struct store *st, const char *key,
    struct ledger_rec *out)
{
	MDB_val	k = { strlen(key), (void *)key }, v;
	int	rc;

	memset(out, 0, sizeof(*out));
	rc = mdb_get(txn, store_dbi(st, DB_LEDGER), &k, &v);
	if (rc == MDB_NOTFOUND) {
		out->state = L_NONE;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (ledger_decode(v.mv_data, v.mv_size, out) == -1) {
		/* Fail closed: what we cannot read, we cannot re-run. */
		log_warnx("ledger: record %s does not decode: in doubt", key);
		memset(out, 0, sizeof(*out));
		out->state = L_IN_DOUBT;
		out->note = xstrdup("the ledger record is damaged");
	}
	return 0;
}

int
ledger_put(MDB_txn *txn, struct store *st, const char *key,
    const struct ledger_rec *r)
{
	MDB_val	k = { strlen(key), (void *)key }, v;
	char	*buf;
	int	 rc;

	if (k.mv_size > MAX_KEY)
		return MDB_BAD_VALSIZE;
	buf = ledger_encode(r, &v.mv_size);
	v.mv_data = buf;
	rc = mdb_put(txn, store_dbi(st, DB_LEDGER), &k, &v, 0);
	free(buf);
	if (rc == 0 && (r->state == L_DONE || r->state == L_FAILED))
		rc = expiry_add(txn, st, r->finished_clock, r->finished_ms,
		    KIND_LEDGER, key, k.mv_size);
	return rc;
}

/* A run record's key, tenant \0 run_id, in buf; -1 when too long. */
static int
run_key(char *buf, size_t len, const char *tenant, const char *run_id,
    MDB_val *k)
{
	size_t	tl = strlen(tenant), rl = strlen(run_id);

	/* Room is kept for the expiry index's 9-byte prefix. */
	if (tl + 1 + rl > len - 9)
		return -1;
	memcpy(buf, tenant, tl + 1);
	memcpy(buf + tl + 1, run_id, rl);
	k->mv_data = buf;
	k->mv_size = tl + 1 + rl;
	return 0;
}

/*
 * Run records: tenant \0 run_id -> msgpack [first_ms, [key, ...]].  The
 * number of keys is the run's write count, bounded by max_writes_per_run.
 */
int
ledger_run_add(MDB_txn *txn, struct store *st, const char *tenant,
    const char *run_id, const char *key, uint64_t max_writes, int again,
    uint64_t clock, uint64_t now)
{
	msgpack_unpacked	 u;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	const msgpack_object	*keys = NULL;
	char			 rk[MAX_KEY];
	uint64_t		 first = now;
	MDB_val			 k, v;
	size_t			 off = 0;
	uint32_t		 i, n = 0;
	int			 rc;

	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return MDB_BAD_VALSIZE;
	msgpack_unpacked_init(&u);
	rc = mdb_get(txn, store_dbi(st, DB_RUNS), &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	if (rc == 0) {
		if (msgpack_unpack_next(&u, v.mv_data, v.mv_size, &off) !=
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
	v.mv_data = sb.data;
	v.mv_size = sb.size;
	rc = mdb_put(txn, store_dbi(st, DB_RUNS), &k, &v, 0);
	msgpack_sbuffer_destroy(&sb);
	/* Swept retention_s after the run's first write, like its keys. */
	if (rc == 0 && n == 0)
		rc = expiry_add(txn, st, clock, first, KIND_RUN, rk,
		    k.mv_size);
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

int
ledger_run_has(MDB_txn *txn, struct store *st, const char *tenant,
    const char *run_id, const char *key)
{
	msgpack_unpacked	 u;
	const msgpack_object	*keys;
	char			 rk[MAX_KEY];
	MDB_val			 k, v;
	size_t			 off = 0;
	uint32_t		 i;
	int			 rc;

	if (run_key(rk, sizeof(rk), tenant, run_id, &k) == -1)
		return MDB_BAD_VALSIZE;
	if ((rc = mdb_get(txn, store_dbi(st, DB_RUNS), &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	msgpack_unpacked_init(&u);
	rc = 1;		/* a damaged record: treat the key as written */
	if (msgpack_unpack_next(&u, v.mv_data, v.mv_size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_ARRAY &&
	    u.data.via.array.size == 2 &&
	    u.data.via.array.ptr[1].type == MSGPACK_OBJECT_ARRAY) {
		keys = &u.data.via.array.ptr[1];
		rc = 0;
		for (i = 0; i < keys->via.array.size; i++)
			if (mp_streq(&keys->via.array.ptr[i], key))
				rc = 1;
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

struct recover_arg {
	struct store	*st;
	size_t		 n;
};

static int
recover_txn(MDB_txn *txn, void *arg)
{
	struct recover_arg	*ra = arg;
	struct ledger_rec	 r;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	ra->n = 0;
	if ((rc = mdb_cursor_open(txn, store_dbi(ra->st, DB_LEDGER), &cur)))
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (ledger_decode(v.mv_data, v.mv_size, &r) == -1)
			continue;	/* read as in doubt by ledger_get */
		if (r.state == L_RUNNING && k.mv_size <= MAX_KEY) {
			memcpy(key, k.mv_data, k.mv_size);
			key[k.mv_size] = '\0';
			r.state = L_IN_DOUBT;
			free(r.note);
			r.note = xstrdup("the executor stopped while the write"
			    " ran: its outcome is unknown");
			/* Writing at the cursor's key keeps the walk valid. */
			if ((rc = ledger_put(txn, ra->st, key, &r)) != 0) {
				ledger_rec_free(&r);
				break;
			}
			log_warnx("ledger: write %s is in doubt", key);
			ra->n++;
		}
		ledger_rec_free(&r);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
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
each_txn(MDB_txn *txn, void *arg)
{
	struct each_arg		*ea = arg;
	struct ledger_rec	 r;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	if ((rc = mdb_cursor_open(txn, store_dbi(ea->st, DB_LEDGER), &cur)))
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > MAX_KEY)
			continue;
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		if (ledger_get(txn, ea->st, key, &r) != 0)
			continue;
		if (r.state == ea->state) {
			ea->n++;
			if (ea->fn != NULL)
				ea->fn(key, &r, ea->arg);
		}
		ledger_rec_free(&r);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
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
page_txn(MDB_txn *txn, void *arg)
{
	struct page_arg		*pa = arg;
	struct ledger_rec	 r;
	MDB_cursor		*cur;
	MDB_cursor_op		 op = MDB_FIRST;
	MDB_val			 k, v;
	char			 key[MAX_KEY + 1];
	int			 rc;

	pa->n = 0;
	pa->more = 0;
	if ((rc = mdb_cursor_open(txn, store_dbi(pa->st, DB_LEDGER), &cur)))
		return rc;
	if (pa->after != NULL) {
		k.mv_data = (void *)pa->after;
		k.mv_size = strlen(pa->after);
		op = MDB_SET_RANGE;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > MAX_KEY)
			continue;
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		if ((pa->after != NULL && strcmp(key, pa->after) == 0) ||
		    ledger_get(txn, pa->st, key, &r) != 0)
			continue;
		if (r.state == pa->state) {
			if (pa->n == pa->limit) {
				pa->more = 1;
				ledger_rec_free(&r);
				break;
			}
			pa->n++;
			memcpy(pa->last, key, k.mv_size + 1);
			if (pa->fn != NULL)
				pa->fn(key, &r, pa->arg);
		}
		ledger_rec_free(&r);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
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
sweep_one(MDB_txn *txn, struct sweep_arg *sa, uint64_t t, char kind,
    const char *key, size_t keylen)
{
	struct ledger_rec	r;
	MDB_val			k = { keylen, (void *)key };
	char			buf[MAX_KEY + 1];
	int			rc;

	if (kind == KIND_APPROVAL) {
		rc = mdb_del(txn, store_dbi(sa->st, DB_APPROVALS), &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (kind == KIND_RUN) {
		rc = mdb_del(txn, store_dbi(sa->st, DB_RUNS), &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (kind != KIND_LEDGER || keylen > MAX_KEY)
		return 0;
	memcpy(buf, key, keylen);
	buf[keylen] = '\0';
	if ((rc = ledger_get(txn, sa->st, buf, &r)) != 0)
		return rc;
	/* A key run again since, or now in doubt, is not this entry's. */
	if ((r.state == L_DONE || r.state == L_FAILED) &&
	    r.finished_clock <= t) {
		rc = mdb_del(txn, store_dbi(sa->st, DB_LEDGER), &k, NULL);
		if (rc == MDB_NOTFOUND)
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
sweep_txn(MDB_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	MDB_cursor_op		 op = MDB_FIRST;
	const unsigned char	*p;
	uint64_t		 t, wall;
	size_t			 seen = 0;
	int			 rc;

	sa->removed = 0;
	if ((rc = mdb_cursor_open(txn, store_dbi(sa->st, DB_EXPIRY), &cur)))
		return rc;
	while (sa->removed < sa->batch && seen++ < 4 * sa->batch &&
	    (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		/* After a delete the cursor stands on the next entry already. */
		op = MDB_NEXT;
		p = k.mv_data;
		if (k.mv_size < 9)
			goto drop;
		t = be64_get(p);
		if (t > sa->clock_now || sa->clock_now - t < sa->retention)
			break;
		/* Entries of old stores have no wall time: the key's. */
		wall = v.mv_size == 8 ? be64_get(v.mv_data) : t;
		if (wall > sa->wall_now || sa->wall_now - wall < sa->retention)
			continue;
		if ((rc = sweep_one(txn, sa, t, (char)p[8],
		    (const char *)p + 9, k.mv_size - 9)) != 0)
			break;
drop:
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		sa->removed++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Is the oldest entry due on the store clock?  1 yes, 0 no, or an error. */
static int
due_txn(MDB_txn *txn, void *arg)
{
	struct sweep_arg	*sa = arg;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	uint64_t		 t;
	int			 rc;

	if ((rc = mdb_cursor_open(txn, store_dbi(sa->st, DB_EXPIRY), &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (k.mv_size < 9)
		return 1;
	t = be64_get(k.mv_data);
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
