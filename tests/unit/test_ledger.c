/*
 * The write ledger (executor/ledger.c): the record codec (round trips of
 * every state, and a strict decoder: every cut, unknown and duplicate
 * keys, wrong types, bad versions), records in LMDB, recovery of writes
 * that were running, the per-run write record, and the sweeper.
 */
#include <sys/stat.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "executor/ledger.h"
#include "executor/store.h"
#include "executor/sweep.h"
#include "proto/proto.h"
#include "tests/unit/test.h"

#define MIB		(1024ULL * 1024)

static char		 tmpdir[1024];
static struct store	*st;

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void	store_down(void);

/* A fresh store in a fresh temporary directory. */
static int
store_up(void)
{
	const char	*dir;
	char		 path[1100], err[1024];

	if (st != NULL)
		store_down();	/* left by a test that failed */
	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_ledger.XXXXXX", dir);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/db", tmpdir);
	if ((st = store_open(path, 4 * MIB, 16 * MIB, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	return 0;
}

/* The same environment again, as after a restart. */
static int
store_reopen(void)
{
	char	path[1100], err[1024];

	snprintf(path, sizeof(path), "%s/db", tmpdir);
	st = store_open(path, 4 * MIB, 16 * MIB, err, sizeof(err));
	return st == NULL ? -1 : 0;
}

static void
store_down(void)
{
	store_close(st);
	st = NULL;
	if (tmpdir[0] != '\0')
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

/* Records */

static char	response[] = "\x81\xa6status\xa2ok";

/* A record in 'state' with every optional field, or with none. */
static void
rec_fill(struct ledger_rec *r, enum ledger_state state, int full)
{
	memset(r, 0, sizeof(*r));
	r->state = state;
	r->uid = 1000;
	r->started_ms = 1700000000000ULL;
	r->finished_ms = state == L_RUNNING ? 0 : 1700000000123ULL;
	r->duration_ms = state == L_RUNNING ? 0 : 123;
	if (full) {
		r->tenant = strdup("acme");
		r->env = strdup("prod");
		r->tool = strdup("ticket.close");
		r->run_id = strdup("run-1");
		r->step_id = strdup("step-7");
		r->args_hash = strdup("0123456789abcdef01234567");
		r->note = strdup("a note");
	}
	if (state == L_DONE || full) {
		r->response = malloc(sizeof(response) - 1);
		memcpy(r->response, response, sizeof(response) - 1);
		r->responselen = sizeof(response) - 1;
	}
}

static int
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
rec_same(const struct ledger_rec *a, const struct ledger_rec *b)
{
	return a->state == b->state && str_same(a->tenant, b->tenant) &&
	    str_same(a->env, b->env) && str_same(a->tool, b->tool) &&
	    str_same(a->run_id, b->run_id) &&
	    str_same(a->step_id, b->step_id) &&
	    str_same(a->args_hash, b->args_hash) &&
	    str_same(a->note, b->note) && a->uid == b->uid &&
	    a->started_ms == b->started_ms &&
	    a->finished_ms == b->finished_ms &&
	    a->finished_clock == b->finished_clock &&
	    a->duration_ms == b->duration_ms &&
	    a->responselen == b->responselen &&
	    (a->response == NULL) == (b->response == NULL) &&
	    (a->response == NULL ||
	    memcmp(a->response, b->response, a->responselen) == 0);
}

static void
test_state_names(void)
{
	ASSERT_EQ_STR(ledger_state_str(L_NONE), "none");
	ASSERT_EQ_STR(ledger_state_str(L_RUNNING), "running");
	ASSERT_EQ_STR(ledger_state_str(L_DONE), "done");
	ASSERT_EQ_STR(ledger_state_str(L_FAILED), "failed");
	ASSERT_EQ_STR(ledger_state_str(L_IN_DOUBT), "in_doubt");
	ASSERT_EQ_STR(ledger_state_str((enum ledger_state)99), "unknown");
}

static void
test_roundtrip(void)
{
	static const enum ledger_state states[] = {
		L_RUNNING, L_DONE, L_FAILED, L_IN_DOUBT,
	};
	struct ledger_rec	 r, out;
	char			*buf;
	size_t			 len, i;
	int			 full, ok;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		for (full = 0; full <= 1; full++) {
			rec_fill(&r, states[i], full);
			buf = ledger_encode(&r, &len);
			ok = ledger_decode(buf, len, &out) == 0 &&
			    rec_same(&r, &out);
			if (!ok)
				fprintf(stderr, "%s, full %d\n",
				    ledger_state_str(states[i]), full);
			ledger_rec_free(&out);
			ledger_rec_free(&r);
			free(buf);
			ASSERT(ok);
		}
	}
	/* Extreme numbers and an empty response survive too. */
	rec_fill(&r, L_DONE, 0);
	r.uid = UINT64_MAX;
	r.started_ms = UINT64_MAX - 1;
	r.finished_ms = UINT64_MAX;
	r.finished_clock = UINT64_MAX - 1;
	r.duration_ms = 0;
	r.responselen = 0;
	buf = ledger_encode(&r, &len);
	ok = ledger_decode(buf, len, &out) == 0 && rec_same(&r, &out);
	ledger_rec_free(&out);
	ledger_rec_free(&r);
	free(buf);
	ASSERT(ok);
}

static void
test_decode_cuts(void)
{
	struct ledger_rec	 r, out;
	char			*buf;
	size_t			 len, cut;

	rec_fill(&r, L_DONE, 1);
	buf = ledger_encode(&r, &len);
	ledger_rec_free(&r);
	for (cut = 0; cut < len; cut++) {
		if (ledger_decode(buf, cut, &out) != -1) {
			fprintf(stderr, "cut at %zu of %zu\n", cut, len);
			ledger_rec_free(&out);
			free(buf);
			ASSERT(0);
		}
		/* A refused decode leaves nothing behind. */
		if (out.tenant != NULL || out.response != NULL) {
			free(buf);
			ASSERT(0);
		}
	}
	free(buf);
}

/*
 * Hand-built records: the fields of a valid done record, each of which a
 * case can drop, give twice or give a different value.
 */
enum kind {
	K_UINT, K_STR, K_BIN, K_NEG, K_NIL, K_BOOL, K_MAP, K_FLOAT, K_STRNUL,
	K_ARRAY, K_COUNT
};

struct hfield {
	const char	*key;
	enum kind	 kind;
	uint64_t	 u;
	const char	*s;
};

static const struct hfield hfields[] = {
	{ "v", K_UINT, 1, NULL },
	{ "state", K_STR, 0, "done" },
	{ "uid", K_UINT, 1000, NULL },
	{ "started_ms", K_UINT, 5, NULL },
	{ "finished_ms", K_UINT, 6, NULL },
	{ "duration_ms", K_UINT, 1, NULL },
	{ "tenant", K_STR, 0, "acme" },
	{ "env", K_STR, 0, "prod" },
	{ "tool", K_STR, 0, "t.w" },
	{ "run_id", K_STR, 0, "r1" },
	{ "step_id", K_STR, 0, "s1" },
	{ "args_hash", K_STR, 0, "abc" },
	{ "note", K_STR, 0, "n" },
	{ "response", K_BIN, 0, "\x80" },
};
#define NHFIELDS	(sizeof(hfields) / sizeof(hfields[0]))

struct hcase {
	int		 drop;		/* index or -1 */
	int		 twice;		/* index or -1 */
	int		 change;	/* index or -1 */
	enum kind	 kind;		/* ... to this kind */
	uint64_t	 u;		/* ... with this value */
	const char	*s;
	int		 unknown;	/* add an unknown key */
};

static void
pack_kind(msgpack_packer *pk, enum kind kind, uint64_t u, const char *s)
{
	switch (kind) {
	case K_UINT:
		msgpack_pack_uint64(pk, u);
		break;
	case K_STR:
		pk_str(pk, s != NULL ? s : "str");
		break;
	case K_BIN:
		msgpack_pack_bin_with_body(pk, s != NULL ? s : "\x80",
		    s != NULL ? strlen(s) : 1);
		break;
	case K_NEG:
		msgpack_pack_int64(pk, -1);
		break;
	case K_NIL:
		msgpack_pack_nil(pk);
		break;
	case K_BOOL:
		msgpack_pack_true(pk);
		break;
	case K_MAP:
		msgpack_pack_map(pk, 0);
		break;
	case K_FLOAT:
		msgpack_pack_double(pk, 1.0);
		break;
	case K_STRNUL:
		pk_strn(pk, "do\0ne", 5);
		break;
	case K_ARRAY:
		msgpack_pack_array(pk, 0);
		break;
	case K_COUNT:
		break;
	}
}

static int
decode_case(const struct hcase *c)
{
	msgpack_sbuffer		sb;
	msgpack_packer		pk;
	struct ledger_rec	out;
	size_t			i, n = 0;
	int			rc;

	for (i = 0; i < NHFIELDS; i++)
		if ((int)i != c->drop)
			n += (int)i == c->twice ? 2 : 1;
	n += c->unknown;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (uint32_t)n);
	for (i = 0; i < NHFIELDS; i++) {
		if ((int)i == c->drop)
			continue;
		pk_str(&pk, hfields[i].key);
		if ((int)i == c->change)
			pack_kind(&pk, c->kind, c->u, c->s);
		else
			pack_kind(&pk, hfields[i].kind, hfields[i].u,
			    hfields[i].s);
		if ((int)i == c->twice) {
			pk_str(&pk, hfields[i].key);
			pack_kind(&pk, hfields[i].kind, hfields[i].u,
			    hfields[i].s);
		}
	}
	if (c->unknown)
		pk_kv_uint(&pk, "surplus", 1);
	rc = ledger_decode(sb.data, sb.size, &out);
	if (rc == 0)
		ledger_rec_free(&out);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static const struct hcase base_case = { -1, -1, -1, K_UINT, 0, NULL, 0 };

static int
field_index(const char *key)
{
	size_t	i;

	for (i = 0; i < NHFIELDS; i++)
		if (strcmp(hfields[i].key, key) == 0)
			return (int)i;
	return -1;
}

static void
test_decode_hand_built(void)
{
	struct hcase	c = base_case;

	/* The base decodes: the cases below fail for their own reason. */
	ASSERT_EQ_INT(decode_case(&c), 0);
	c.unknown = 1;
	ASSERT_EQ_INT(decode_case(&c), -1);
}

static void
test_decode_wrong_types(void)
{
	struct hcase	 c;
	size_t		 i;
	int		 k;

	for (i = 0; i < NHFIELDS; i++) {
		for (k = 0; k < K_COUNT; k++) {
			if (k == (int)hfields[i].kind)
				continue;
			c = base_case;
			c.change = (int)i;
			c.kind = (enum kind)k;
			c.u = 1;
			if (decode_case(&c) != -1)
				fprintf(stderr, "%s as kind %d accepted\n",
				    hfields[i].key, k);
			ASSERT_EQ_INT(decode_case(&c), -1);
		}
		/* A string with a NUL in a string field. */
		if (hfields[i].kind == K_STR) {
			c = base_case;
			c.change = (int)i;
			c.kind = K_STRNUL;
			ASSERT_EQ_INT(decode_case(&c), -1);
		}
	}
}

static void
test_decode_bad_values(void)
{
	static const char *const bad_states[] = {
		"none", "DONE", "Done", "done ", "", "unknown", "in-doubt",
		"runnin", "runningx",
	};
	struct hcase	 c;
	size_t		 i;

	/* Versions other than 1. */
	c = base_case;
	c.change = field_index("v");
	c.kind = K_UINT;
	c.u = 0;
	ASSERT_EQ_INT(decode_case(&c), -1);
	c.u = 2;
	ASSERT_EQ_INT(decode_case(&c), -1);
	c.u = (1ULL << 32) + 1;
	ASSERT_EQ_INT(decode_case(&c), -1);
	c.u = 1;
	ASSERT_EQ_INT(decode_case(&c), 0);
	/* States that are not states. */
	for (i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		c = base_case;
		c.change = field_index("state");
		c.kind = K_STR;
		c.s = bad_states[i];
		if (decode_case(&c) != -1)
			fprintf(stderr, "state '%s' accepted\n",
			    bad_states[i]);
		ASSERT_EQ_INT(decode_case(&c), -1);
	}
}

static void
test_decode_missing(void)
{
	struct hcase	c;

	/* Without v, without state: refused. */
	c = base_case;
	c.drop = field_index("v");
	ASSERT_EQ_INT(decode_case(&c), -1);
	c.drop = field_index("state");
	ASSERT_EQ_INT(decode_case(&c), -1);
	/* A done record without its response cannot be replayed. */
	c.drop = field_index("response");
	ASSERT_EQ_INT(decode_case(&c), -1);
	/* ... but a failed one needs none. */
	c.change = field_index("state");
	c.kind = K_STR;
	c.s = "failed";
	ASSERT_EQ_INT(decode_case(&c), 0);
	/* The string fields are optional. */
	c = base_case;
	c.drop = field_index("step_id");
	ASSERT_EQ_INT(decode_case(&c), 0);
	c.drop = field_index("note");
	ASSERT_EQ_INT(decode_case(&c), 0);
}

static void
test_decode_duplicates(void)
{
	struct hcase	 c;
	size_t		 i;
	int		 bad = 0;

	for (i = 0; i < NHFIELDS; i++) {
		c = base_case;
		c.twice = (int)i;
		if (decode_case(&c) != -1) {
			fprintf(stderr, "%s twice accepted\n", hfields[i].key);
			bad++;
		}
	}
	ASSERT_EQ_INT(bad, 0);
}

static void
test_decode_not_a_map(void)
{
	struct ledger_rec	 r, out;
	char			*buf, *longer;
	size_t			 len;

	ASSERT_EQ_INT(ledger_decode("\x90", 1, &out), -1);
	ASSERT_EQ_INT(ledger_decode("\x01", 1, &out), -1);
	ASSERT(ledger_decode("\x80", 1, &out) == -1);	/* empty map */
	ASSERT_EQ_INT(ledger_decode("", 0, &out), -1);
	rec_fill(&r, L_FAILED, 1);
	buf = ledger_encode(&r, &len);
	ledger_rec_free(&r);
	longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = (char)0xc0;
	free(buf);
	ASSERT_EQ_INT(ledger_decode(longer, len, &out), 0);
	ledger_rec_free(&out);
	ASSERT_EQ_INT(ledger_decode(longer, len + 1, &out), -1);
	free(longer);
}

/* In the store */

struct put_arg {
	const char		*key;
	const struct ledger_rec	*rec;
};

static int
put_fn(struct store_txn *txn, void *arg)
{
	struct put_arg	*pa = arg;

	return ledger_put(txn, pa->key, pa->rec);
}

static int
put(const char *key, const struct ledger_rec *r)
{
	struct put_arg	pa = { key, r };

	return store_write(st, put_fn, &pa);
}

struct get_arg {
	const char		*key;
	struct ledger_rec	*rec;
};

static int
get_fn(struct store_txn *txn, void *arg)
{
	struct get_arg	*ga = arg;

	return ledger_get(txn, ga->key, ga->rec);
}

static int
get(const char *key, struct ledger_rec *r)
{
	struct get_arg	ga;

	/* ledger_get fills *r; cppcheck cannot tell, so name the fields. */
	ga.key = key;
	ga.rec = r;
	return store_read(st, get_fn, &ga);
}

/* A record in 'state' finished (or started, when running) at 't'. */
static int
put_at(const char *key, enum ledger_state state, uint64_t t)
{
	struct ledger_rec	r;
	int			rc;

	rec_fill(&r, state, 0);
	r.started_ms = t;
	r.finished_ms = state == L_RUNNING ? 0 : t;
	r.finished_clock = r.finished_ms;
	rc = put(key, &r);
	ledger_rec_free(&r);
	return rc;
}

static enum ledger_state
state_of(const char *key)
{
	struct ledger_rec	r;
	enum ledger_state	s;

	if (get(key, &r) != 0)
		return (enum ledger_state)-1;
	s = r.state;
	ledger_rec_free(&r);
	return s;
}

struct raw_arg {
	enum store_db	 db;
	const char	*key;
	size_t		 keylen;
	const char	*val;
	size_t		 vallen;
};

static int
raw_put_fn(struct store_txn *txn, void *arg)
{
	struct raw_arg		*ra = arg;
	struct store_val	 k = { ra->keylen, (void *)ra->key };
	struct store_val	 v = { ra->vallen, (void *)ra->val };

	return stx_put(txn, ra->db, &k, &v);
}

static int
raw_get_fn(struct store_txn *txn, void *arg)
{
	struct raw_arg		*ra = arg;
	struct store_val	 k = { ra->keylen, (void *)ra->key }, v;

	return stx_get(txn, ra->db, &k, &v);
}

struct entries_arg {
	enum store_db	 db;
	size_t		 n;
};

static int
entries_fn(struct store_txn *txn, void *arg)
{
	struct entries_arg	*ea = arg;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	int			 rc;

	if ((rc = stx_cursor_open(txn, ea->db, &cur)) != 0)
		return rc;
	for (rc = stx_cursor_first(cur, &k, &v); rc == 0;
	    rc = stx_cursor_next(cur, &k, &v))
		ea->n++;
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

/* The number of entries in one database. */
static size_t
entries(enum store_db db)
{
	struct entries_arg	ea = { db, 0 };

	if (store_read(st, entries_fn, &ea) != 0)
		return (size_t)-1;
	return ea.n;
}

static void
test_put_get(void)
{
	struct ledger_rec	 r, out;
	struct raw_arg		 ra;
	char			 longkey[600];
	int			 ok;

	ASSERT_EQ_INT(store_up(), 0);
	rec_fill(&r, L_DONE, 1);
	ASSERT_EQ_INT(put("acme:ticket.close:h1", &r), 0);
	ASSERT_EQ_INT(get("acme:ticket.close:h1", &out), 0);
	ok = rec_same(&r, &out);
	ledger_rec_free(&out);
	ASSERT(ok);
	/* Overwritten in place. */
	free(r.note);
	r.note = strdup("second");
	ASSERT_EQ_INT(put("acme:ticket.close:h1", &r), 0);
	ASSERT_EQ_INT(get("acme:ticket.close:h1", &out), 0);
	ok = rec_same(&r, &out);
	ledger_rec_free(&out);
	ASSERT(ok);
	/* A key nobody wrote: no record, not an error. */
	ASSERT_EQ_INT(get("acme:ticket.close:h2", &out), 0);
	ASSERT_EQ_INT(out.state, L_NONE);
	ASSERT(out.tenant == NULL);
	ledger_rec_free(&out);
	/* A key longer than LMDB takes. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	ASSERT(put(longkey, &r) != 0);
	ledger_rec_free(&r);

	/* A damaged record reads as in doubt, never as absent. */
	ra.db = DB_LEDGER;
	ra.key = "acme:broken:h";
	ra.keylen = strlen(ra.key);
	ra.val = "\x81\xa1v\x02";
	ra.vallen = 4;
	ASSERT_EQ_INT(store_write(st, raw_put_fn, &ra), 0);
	ASSERT_EQ_INT(get("acme:broken:h", &out), 0);
	ASSERT_EQ_INT(out.state, L_IN_DOUBT);
	ASSERT(out.note != NULL);
	ledger_rec_free(&out);
	ASSERT_EQ_INT(ledger_count(st, L_IN_DOUBT), 1);
	ASSERT_EQ_INT(ledger_count(st, L_DONE), 1);
	store_down();
}

static void
test_recover(void)
{
	struct ledger_rec	 r, before, out;
	size_t			 n = 99;
	int			 ok;

	ASSERT_EQ_INT(store_up(), 0);
	/* Nothing to recover in an empty ledger. */
	ASSERT_EQ_INT(ledger_recover(st, &n), 0);
	ASSERT_EQ_INT(n, 0);

	ASSERT_EQ_INT(put_at("k1", L_RUNNING, 100), 0);
	ASSERT_EQ_INT(put_at("k2", L_RUNNING, 200), 0);
	rec_fill(&before, L_DONE, 1);
	ASSERT_EQ_INT(put("k3", &before), 0);
	ASSERT_EQ_INT(put_at("k4", L_FAILED, 300), 0);
	ASSERT_EQ_INT(put_at("k5", L_IN_DOUBT, 400), 0);
	rec_fill(&r, L_RUNNING, 1);
	ASSERT_EQ_INT(put("k6", &r), 0);

	ASSERT_EQ_INT(ledger_recover(st, &n), 0);
	ASSERT_EQ_INT(n, 3);
	ASSERT_EQ_INT(state_of("k1"), L_IN_DOUBT);
	ASSERT_EQ_INT(state_of("k2"), L_IN_DOUBT);
	ASSERT_EQ_INT(state_of("k3"), L_DONE);
	ASSERT_EQ_INT(state_of("k4"), L_FAILED);
	ASSERT_EQ_INT(state_of("k5"), L_IN_DOUBT);
	ASSERT_EQ_INT(state_of("k6"), L_IN_DOUBT);
	/* The done record is untouched, response and all. */
	ASSERT_EQ_INT(get("k3", &out), 0);
	ok = rec_same(&before, &out);
	ledger_rec_free(&out);
	ledger_rec_free(&before);
	ASSERT(ok);
	/* The recovered one keeps its fields and says why. */
	ASSERT_EQ_INT(get("k6", &out), 0);
	ok = out.note != NULL && strcmp(out.note, r.note) != 0 &&
	    str_same(out.tenant, r.tenant) && str_same(out.tool, r.tool) &&
	    str_same(out.args_hash, r.args_hash) &&
	    out.started_ms == r.started_ms;
	ledger_rec_free(&out);
	ledger_rec_free(&r);
	ASSERT(ok);

	ASSERT_EQ_INT(ledger_count(st, L_RUNNING), 0);
	ASSERT_EQ_INT(ledger_count(st, L_IN_DOUBT), 4);
	ASSERT_EQ_INT(ledger_count(st, L_DONE), 1);
	ASSERT_EQ_INT(ledger_count(st, L_FAILED), 1);
	/* A second recovery finds nothing more. */
	ASSERT_EQ_INT(ledger_recover(st, &n), 0);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(ledger_count(st, L_IN_DOUBT), 4);
	store_down();
}

/* Many running records: the walk that rewrites them sees each once. */
static void
test_recover_many(void)
{
	char	key[32];
	size_t	n;
	int	i;

	ASSERT_EQ_INT(store_up(), 0);
	for (i = 0; i < 150; i++) {
		snprintf(key, sizeof(key), "key-%04d", i);
		ASSERT(put_at(key, i % 5 == 0 ? L_DONE : L_RUNNING,
		    (uint64_t)i + 1) == 0);
	}
	ASSERT_EQ_INT(ledger_recover(st, &n), 0);
	ASSERT_EQ_INT(n, 120);
	ASSERT_EQ_INT(ledger_count(st, L_IN_DOUBT), 120);
	ASSERT_EQ_INT(ledger_count(st, L_DONE), 30);
	ASSERT_EQ_INT(ledger_count(st, L_RUNNING), 0);
	store_down();
}

/* ledger_run_add inside its own transaction. */
struct run_arg {
	const char	*tenant;
	const char	*run_id;
	const char	*key;
	uint64_t	 max;
	uint64_t	 now;
};

static int
run_fn(struct store_txn *txn, void *arg)
{
	struct run_arg	*ra = arg;

	return ledger_run_add(txn, ra->tenant, ra->run_id, ra->key,
	    ra->max, 0, ra->now, ra->now);
}

static int
run_add(const char *tenant, const char *run_id, const char *key,
    uint64_t max, uint64_t now)
{
	struct run_arg	ra = { tenant, run_id, key, max, now };

	return store_write(st, run_fn, &ra);
}

static void
test_run_add(void)
{
	char	key[32];
	int	i;

	ASSERT_EQ_INT(store_up(), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kA", 3, 100), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kA", 3, 101), LEDGER_DUPLICATE);
	ASSERT_EQ_INT(run_add("acme", "r1", "kB", 3, 102), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kA", 3, 103), LEDGER_DUPLICATE);
	ASSERT_EQ_INT(run_add("acme", "r1", "kC", 3, 104), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kD", 3, 105), LEDGER_BUDGET);
	/* A duplicate is a duplicate even when the budget is spent. */
	ASSERT_EQ_INT(run_add("acme", "r1", "kB", 3, 106), LEDGER_DUPLICATE);
	/* A refused add counted nothing: still three. */
	ASSERT_EQ_INT(run_add("acme", "r1", "kD", 4, 107), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kE", 4, 108), LEDGER_BUDGET);

	/* Other tenants and other runs start afresh. */
	ASSERT_EQ_INT(run_add("other", "r1", "kA", 3, 110), 0);
	ASSERT_EQ_INT(run_add("acme", "r2", "kA", 3, 111), 0);
	ASSERT_EQ_INT(run_add("other", "r1", "kA", 3, 112), LEDGER_DUPLICATE);
	/* The separator keeps "ab"/"c" apart from "a"/"bc". */
	ASSERT_EQ_INT(run_add("ab", "c", "kX", 1, 113), 0);
	ASSERT_EQ_INT(run_add("a", "bc", "kX", 1, 114), 0);
	ASSERT_EQ_INT(run_add("ab", "c", "kY", 1, 115), LEDGER_BUDGET);
	ASSERT_EQ_INT(run_add("a", "bc", "kY", 1, 116), LEDGER_BUDGET);

	/* max_writes 0: no cap. */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ_INT(run_add("acme", "unlimited", key, 0, 200), 0);
	}
	ASSERT(run_add("acme", "unlimited", "k50", 0, 200) ==
	    LEDGER_DUPLICATE);

	/* A key that is a prefix of another is not a duplicate. */
	ASSERT_EQ_INT(run_add("acme", "r3", "key", 0, 300), 0);
	ASSERT_EQ_INT(run_add("acme", "r3", "key2", 0, 300), 0);
	ASSERT_EQ_INT(run_add("acme", "r3", "ke", 0, 300), 0);
	store_down();
}

/* A damaged run record refuses further writes in that run. */
static void
test_run_add_damaged(void)
{
	struct raw_arg	ra;

	ASSERT_EQ_INT(store_up(), 0);
	ra.db = DB_RUNS;
	ra.key = "acme\0r1";
	ra.keylen = 7;
	ra.val = "\x92\x01\x01";	/* [1, 1]: keys not a list */
	ra.vallen = 3;
	ASSERT_EQ_INT(store_write(st, raw_put_fn, &ra), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kA", 0, 100), LEDGER_BUDGET);
	ra.val = "\xc1";
	ra.vallen = 1;
	ASSERT_EQ_INT(store_write(st, raw_put_fn, &ra), 0);
	ASSERT_EQ_INT(run_add("acme", "r1", "kA", 0, 100), LEDGER_BUDGET);
	ASSERT_EQ_INT(run_add("acme", "r2", "kA", 0, 100), 0);
	store_down();
}

static int
run_record_exists(const char *tenant, const char *run_id)
{
	struct raw_arg	ra;
	char		key[128];
	size_t		tl = strlen(tenant), rl = strlen(run_id);

	memcpy(key, tenant, tl + 1);
	memcpy(key + tl + 1, run_id, rl);
	ra.db = DB_RUNS;
	ra.key = key;
	ra.keylen = tl + 1 + rl;
	return store_read(st, raw_get_fn, &ra) == 0;
}

static void
test_sweep(void)
{
	size_t	removed = 99;

	ASSERT_EQ_INT(store_up(), 0);
	/* Nothing to sweep. */
	ASSERT_EQ_INT(ledger_sweep(st, 1000, 1000, 0, 100, &removed), 0);
	ASSERT_EQ_INT(removed, 0);

	ASSERT_EQ_INT(put_at("old-done", L_DONE, 100), 0);
	ASSERT_EQ_INT(put_at("old-failed", L_FAILED, 200), 0);
	ASSERT_EQ_INT(put_at("edge-done", L_DONE, 499), 0);
	ASSERT_EQ_INT(put_at("new-done", L_DONE, 501), 0);
	ASSERT_EQ_INT(put_at("new-failed", L_FAILED, 900), 0);
	ASSERT_EQ_INT(put_at("in-doubt", L_IN_DOUBT, 100), 0);
	ASSERT_EQ_INT(put_at("running", L_RUNNING, 100), 0);
	/* Done long ago, running again since. */
	ASSERT_EQ_INT(put_at("rerun-running", L_DONE, 100), 0);
	ASSERT_EQ_INT(put_at("rerun-running", L_RUNNING, 600), 0);
	/* Done long ago, done again recently. */
	ASSERT_EQ_INT(put_at("rerun-done", L_DONE, 100), 0);
	ASSERT_EQ_INT(put_at("rerun-done", L_DONE, 800), 0);
	/* Done long ago, since then in doubt. */
	ASSERT_EQ_INT(put_at("now-in-doubt", L_DONE, 150), 0);
	ASSERT_EQ_INT(put_at("now-in-doubt", L_IN_DOUBT, 150), 0);
	/* Run records: one old, one new. */
	ASSERT_EQ_INT(run_add("acme", "old-run", "k", 0, 100), 0);
	ASSERT_EQ_INT(run_add("acme", "old-run", "k2", 0, 700), 0);
	ASSERT_EQ_INT(run_add("acme", "new-run", "k", 0, 600), 0);

	ASSERT_EQ_INT(ledger_sweep(st, 500, 500, 0, 100, &removed), 0);
	/*
	 * Index entries at or before 500: old-done, old-failed, edge-done,
	 * rerun-running (100), rerun-done (100), now-in-doubt, old-run.
	 */
	ASSERT_EQ_INT(removed, 7);
	ASSERT_EQ_INT(state_of("old-done"), L_NONE);
	ASSERT_EQ_INT(state_of("old-failed"), L_NONE);
	ASSERT_EQ_INT(state_of("edge-done"), L_NONE);
	ASSERT_EQ_INT(state_of("new-done"), L_DONE);
	ASSERT_EQ_INT(state_of("new-failed"), L_FAILED);
	ASSERT_EQ_INT(state_of("in-doubt"), L_IN_DOUBT);
	ASSERT_EQ_INT(state_of("running"), L_RUNNING);
	ASSERT_EQ_INT(state_of("rerun-running"), L_RUNNING);
	ASSERT_EQ_INT(state_of("rerun-done"), L_DONE);
	ASSERT_EQ_INT(state_of("now-in-doubt"), L_IN_DOUBT);
	ASSERT(!run_record_exists("acme", "old-run"));
	ASSERT(run_record_exists("acme", "new-run"));
	/* The old run's keys may run again. */
	ASSERT_EQ_INT(run_add("acme", "old-run", "k", 0, 1000), 0);

	/* Caught up: a second sweep at the same cutoff finds nothing. */
	ASSERT_EQ_INT(ledger_sweep(st, 500, 500, 0, 100, &removed), 0);
	ASSERT_EQ_INT(removed, 0);
	/* Later everything settled goes, but not what is unsettled. */
	ASSERT_EQ_INT(ledger_sweep(st, 10000, 10000, 0, 100, &removed), 0);
	ASSERT_EQ_INT(state_of("new-done"), L_NONE);
	ASSERT_EQ_INT(state_of("new-failed"), L_NONE);
	ASSERT_EQ_INT(state_of("rerun-done"), L_NONE);
	ASSERT_EQ_INT(state_of("rerun-running"), L_RUNNING);
	ASSERT_EQ_INT(state_of("in-doubt"), L_IN_DOUBT);
	ASSERT_EQ_INT(state_of("now-in-doubt"), L_IN_DOUBT);
	ASSERT(!run_record_exists("acme", "new-run"));
	ASSERT_EQ_INT(entries(DB_EXPIRY), 0);
	store_down();
}

/* A record finished at 'clock' on the store clock and 'wall' on the wall's. */
static int
put_at2(const char *key, uint64_t clock, uint64_t wall)
{
	struct ledger_rec	r;
	int			rc;

	rec_fill(&r, L_DONE, 0);
	r.started_ms = wall;
	r.finished_ms = wall;
	r.finished_clock = clock;
	rc = put(key, &r);
	ledger_rec_free(&r);
	return rc;
}

/*
 * Retention holds on both clocks: a wall clock stepped forward does not
 * make an entry due early, nor does one stepped back past the store clock;
 * an entry held back by the wall clock does not hold back later ones.
 */
static void
test_sweep_two_clocks(void)
{
	size_t	removed = 99;

	ASSERT_EQ_INT(store_up(), 0);
	ASSERT(put_at2("wall-ahead", 1000, 9000) == 0);	/* wall stepped back since */
	ASSERT_EQ_INT(put_at2("both-old", 1100, 1100), 0);
	ASSERT(put_at2("clock-new", 5000, 1000) == 0);	/* wall stepped forward */
	/* Retention 1000: at clock 3000, wall 3000. */
	ASSERT_EQ_INT(ledger_sweep(st, 3000, 3000, 1000, 100, &removed), 0);
	ASSERT_EQ_INT(removed, 1);
	ASSERT_EQ_INT(state_of("wall-ahead"), L_DONE);
	ASSERT_EQ_INT(state_of("both-old"), L_NONE);
	ASSERT_EQ_INT(state_of("clock-new"), L_DONE);
	/* The wall clock jumps two hours ahead: the store clock says no. */
	ASSERT_EQ_INT(ledger_sweep(st, 3000, 3000 + 7200000, 1000, 100, &removed), 0);
	ASSERT_EQ_INT(removed, 1);
	ASSERT_EQ_INT(state_of("wall-ahead"), L_NONE);
	ASSERT_EQ_INT(state_of("clock-new"), L_DONE);
	ASSERT_EQ_INT(ledger_sweep(st, 6000, 6000, 1000, 100, &removed), 0);
	ASSERT_EQ_INT(removed, 1);
	ASSERT_EQ_INT(state_of("clock-new"), L_NONE);
	ASSERT_EQ_INT(entries(DB_EXPIRY), 0);
	store_down();
}

/* The store clock goes on from where it was, and never back. */
static void
test_store_clock(void)
{
	uint64_t	a, b;

	ASSERT_EQ_INT(store_up(), 0);
	a = store_clock_ms(st);
	ASSERT_EQ_INT(put_at("k", L_DONE, 1), 0);
	store_close(st);
	st = NULL;
	ASSERT_EQ_INT(store_reopen(), 0);
	b = store_clock_ms(st);
	ASSERT(b >= a);
	store_down();
}

static void
test_sweep_batches(void)
{
	char	key[32];
	size_t	removed;
	int	i;

	ASSERT_EQ_INT(store_up(), 0);
	for (i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "expired-%02d", i);
		ASSERT(put_at(key, i % 2 ? L_DONE : L_FAILED,
		    1000 + (uint64_t)i) == 0);
	}
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "fresh-%02d", i);
		ASSERT_EQ_INT(put_at(key, L_DONE, 5000 + (uint64_t)i), 0);
	}
	ASSERT_EQ_INT(ledger_count(st, L_DONE) + ledger_count(st, L_FAILED), 30);
	ASSERT_EQ_INT(ledger_sweep(st, 2000, 2000, 0, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 10);
	ASSERT_EQ_INT(entries(DB_LEDGER), 20);
	ASSERT_EQ_INT(ledger_sweep(st, 2000, 2000, 0, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 10);
	ASSERT_EQ_INT(ledger_sweep(st, 2000, 2000, 0, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 5);
	ASSERT_EQ_INT(ledger_sweep(st, 2000, 2000, 0, 10, &removed), 0);
	ASSERT_EQ_INT(removed, 0);
	ASSERT_EQ_INT(entries(DB_LEDGER), 5);
	ASSERT_EQ_INT(ledger_count(st, L_DONE), 5);
	/* Oldest first: the ones left are the fresh ones. */
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "fresh-%02d", i);
		ASSERT_EQ_INT(state_of(key), L_DONE);
	}
	store_down();
}

/* ledger_each: every record of a state, once, with its key. */
struct seen {
	char	keys[16][32];
	int	n;
	int	bad;
};

static void
each_cb(const char *key, const struct ledger_rec *r, void *arg)
{
	struct seen	*s = arg;

	if (s->n < 16)
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->n++;
	if (r->state != L_FAILED)
		s->bad++;
}

static void
test_each(void)
{
	struct seen	s;

	ASSERT_EQ_INT(store_up(), 0);
	memset(&s, 0, sizeof(s));
	ASSERT_EQ_INT(ledger_each(st, L_FAILED, each_cb, &s), 0);
	ASSERT_EQ_INT(s.n, 0);
	ASSERT_EQ_INT(ledger_count(st, L_FAILED), 0);

	ASSERT_EQ_INT(put_at("b-failed", L_FAILED, 10), 0);
	ASSERT_EQ_INT(put_at("a-failed", L_FAILED, 10), 0);
	ASSERT_EQ_INT(put_at("c-done", L_DONE, 10), 0);
	ASSERT_EQ_INT(put_at("d-running", L_RUNNING, 10), 0);
	ASSERT_EQ_INT(ledger_each(st, L_FAILED, each_cb, &s), 0);
	ASSERT_EQ_INT(s.n, 2);
	ASSERT_EQ_INT(s.bad, 0);
	/* In key order. */
	ASSERT_EQ_STR(s.keys[0], "a-failed");
	ASSERT_EQ_STR(s.keys[1], "b-failed");
	ASSERT_EQ_INT(ledger_count(st, L_FAILED), 2);
	ASSERT_EQ_INT(ledger_count(st, L_DONE), 1);
	ASSERT_EQ_INT(ledger_count(st, L_RUNNING), 1);
	ASSERT_EQ_INT(ledger_count(st, L_IN_DOUBT), 0);
	ASSERT_EQ_INT(ledger_count(st, L_NONE), 0);
	/* A NULL callback only counts. */
	ASSERT_EQ_INT(ledger_each(st, L_DONE, NULL, NULL), 0);
	store_down();
}

int
main(void)
{
	RUN(test_state_names);
	RUN(test_roundtrip);
	RUN(test_decode_cuts);
	RUN(test_decode_hand_built);
	RUN(test_decode_wrong_types);
	RUN(test_decode_bad_values);
	RUN(test_decode_missing);
	RUN(test_decode_duplicates);
	RUN(test_decode_not_a_map);
	RUN(test_put_get);
	RUN(test_recover);
	RUN(test_recover_many);
	RUN(test_run_add);
	RUN(test_run_add_damaged);
	RUN(test_sweep);
	RUN(test_sweep_batches);
	RUN(test_sweep_two_clocks);
	RUN(test_store_clock);
	RUN(test_each);
	if (st != NULL)
		store_down();
	return tests_failed != 0;
}
