/*
 * The shared store's operations on PostgreSQL (pgstore.h), over pg.c.
 *
 * Every batch of the write path is one statement, tg_batch() (see
 * pgschema.c): one transaction, one round trip, whatever its size, so
 * the intents of one loop turn share a commit as they do with LMDB.  Its
 * arrays go as text parameters (array literals); the records as bytea in
 * hex.
 *
 * The kill switch is the row tg_meta.writes_off and the channel tg_kill:
 * each executor LISTENs, so a switch thrown on one host reaches every
 * other as soon as the transaction commits, far within the second the
 * contract allows.  A write's intent reads the row in its own transaction
 * (FOR SHARE), so no intent commits after a switch that committed first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/prom.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/apstore.h"
#include "executor/checkpoint.h"
#include "executor/killswitch.h"
#include "executor/ledger.h"
#include "executor/pg.h"
#include "executor/pgstore.h"

#define TICK_S		2	/* the in-doubt count is refreshed */
#define SWEEP_TICKS	5	/* a sweep every this many ticks */
#define SWEEP_BATCH	1000

static struct event	*sweep_ev;
static int		 ks_unsent = -1;	/* a switch not yet in the database */
static char		*ks_unsent_who;
static uint64_t		 in_doubt;	/* as counted at the last tick */

int
pgstore_on(void)
{
	return ex->conf->store_backend == STORE_PG;
}

int
pgstore_up(void)
{
	return pg_up();
}

/* A growing string. */
struct sbuf {
	char	*s;
	size_t	 len, cap;
};

static void
sb_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xreallocarray(b->s, b->cap, 1);
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *p)
{
	sb_add(b, p, strlen(p));
}

/* One element of an array literal: quoted, " and \ escaped; NULL bare. */
static void
sb_elem(struct sbuf *b, const char *p)
{
	if (b->len > 1)
		sb_add(b, ",", 1);
	if (p == NULL) {
		sb_str(b, "NULL");
		return;
	}
	sb_add(b, "\"", 1);
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			sb_add(b, "\\", 1);
		sb_add(b, p, 1);
	}
	sb_add(b, "\"", 1);
}

/* bytea in hex: \x0a0b... */
static char *
hex_bytea(const char *p, size_t n)
{
	static const char	 hx[] = "0123456789abcdef";
	char			*s;
	size_t			 i;

	s = xmalloc(n * 2 + 3);
	s[0] = '\\';
	s[1] = 'x';
	for (i = 0; i < n; i++) {
		s[2 + i * 2] = hx[(unsigned char)p[i] >> 4];
		s[3 + i * 2] = hx[(unsigned char)p[i] & 15];
	}
	s[2 + n * 2] = '\0';
	return s;
}

enum { A_KEY, A_STATE, A_REC, A_NOTE, A_APPROVAL };

static char *
array_of(const struct pg_item *it, size_t n, int what)
{
	struct sbuf	 b = { NULL, 0, 0 };
	char		*h;
	size_t		 i;

	sb_add(&b, "{", 1);
	for (i = 0; i < n; i++) {
		switch (what) {
		case A_KEY:
			sb_elem(&b, it[i].key);
			break;
		case A_STATE:
			sb_elem(&b, it[i].state);
			break;
		case A_NOTE:
			sb_elem(&b, it[i].note);
			break;
		case A_APPROVAL:
			sb_elem(&b, it[i].approval_id);
			break;
		case A_REC:
			h = hex_bytea(it[i].rec, it[i].reclen);
			sb_elem(&b, h);
			free(h);
			break;
		}
	}
	sb_add(&b, "}", 1);
	return b.s;
}

struct batch {
	struct pg_item	*in;
	size_t		 nin;
	void		(*fn)(int, void *);
	void		*arg;
};

static int
verdict_of(const char *s, enum pg_verdict *v)
{
	static const struct {
		const char	*name;
		enum pg_verdict	 v;
	} tab[] = {
		{ "run", PV_RUN }, { "replay", PV_REPLAY },
		{ "in_doubt", PV_IN_DOUBT }, { "wait", PV_WAIT },
		{ "off", PV_OFF }, { "retry", PV_RETRY }, { "used", PV_USED },
	};
	size_t	i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(s, tab[i].name) == 0) {
			*v = tab[i].v;
			return 0;
		}
	return -1;
}

static void
batch_done(const PGresult *res, void *arg)
{
	struct batch	*b = arg;
	struct pg_item	*it;
	unsigned char	*u;
	size_t		 len;
	long		 n;
	int		 i, ok = pg_ok(res);

	if (res != NULL && !ok)
		log_warnx("store: PostgreSQL: the ledger batch failed: %s",
		    PQresultErrorMessage(res));
	if (ok && (size_t)PQntuples(res) != b->nin) {
		log_warnx("store: PostgreSQL: %d verdicts for %zu intents",
		    PQntuples(res), b->nin);
		ok = 0;
	}
	for (i = 0; ok && i < PQntuples(res); i++) {
		n = strtol(PQgetvalue(res, i, 0), NULL, 10);
		if (n < 1 || (size_t)n > b->nin ||
		    verdict_of(PQgetvalue(res, i, 1), &b->in[n - 1].verdict)) {
			ok = 0;
			break;
		}
		it = &b->in[n - 1];
		if (!PQgetisnull(res, i, 2)) {
			u = PQunescapeBytea((const unsigned char *)
			    PQgetvalue(res, i, 2), &len);
			if (u == NULL)
				fatalx("PQunescapeBytea: out of memory");
			it->prior = xmalloc(len + 1);
			memcpy(it->prior, u, len);
			it->priorlen = len;
			PQfreemem(u);
		}
		if (!PQgetisnull(res, i, 3))
			it->why = xstrdup(PQgetvalue(res, i, 3));
	}
	b->fn(ok, b->arg);
	free(b);
}

int
pgstore_batch(struct pg_item *out, size_t nout, struct pg_item *in,
    size_t nin, void (*fn)(int, void *), void *arg)
{
	static const char	*sql = "SELECT n, verdict, prior, why FROM "
	    "tg_batch($1, $2, $3::bytea[], $4, $5, $6::bytea[], $7, $8, $9)";
	struct batch		*b;
	char			*v[9];
	int			 i, rc;

	if (!pg_up())
		return -1;
	b = xcalloc(1, sizeof(*b));
	b->in = in;
	b->nin = nin;
	b->fn = fn;
	b->arg = arg;
	v[0] = array_of(out, nout, A_KEY);
	v[1] = array_of(out, nout, A_STATE);
	v[2] = array_of(out, nout, A_REC);
	v[3] = array_of(out, nout, A_NOTE);
	v[4] = array_of(in, nin, A_KEY);
	v[5] = array_of(in, nin, A_REC);
	v[6] = array_of(in, nin, A_APPROVAL);
	v[7] = ex->conf->store_host_id;
	v[8] = (char *)pg_instance();
	rc = pg_query(sql, 9, (const char *const *)v, NULL, NULL, batch_done,
	    b);
	for (i = 0; i < 7; i++)
		free(v[i]);
	if (rc == -1)
		free(b);
	return rc;
}

/* gatewayctl ledger and resolve. */

/* A record as stored, in the state and with the note of its row. */
static void
row_rec(const PGresult *res, int i, int col_state, int col_rec,
    int col_note, struct ledger_rec *r)
{
	unsigned char	*u;
	size_t		 len;
	const char	*st = PQgetvalue(res, i, col_state);

	memset(r, 0, sizeof(*r));
	u = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i,
	    col_rec), &len);
	if (u == NULL)
		fatalx("PQunescapeBytea: out of memory");
	if (ledger_decode((const char *)u, len, r) == -1)
		memset(r, 0, sizeof(*r));
	PQfreemem(u);
	r->state = strcmp(st, "done") == 0 ? L_DONE : strcmp(st, "failed") ==
	    0 ? L_FAILED : strcmp(st, "running") == 0 ? L_RUNNING : L_IN_DOUBT;
	if (!PQgetisnull(res, i, col_note)) {
		free(r->note);
		r->note = xstrdup(PQgetvalue(res, i, col_note));
	}
}

struct page {
	size_t	 limit;
	void	(*fn)(int, size_t, char **, struct ledger_rec *, int, void *);
	void	*arg;
};

static void
page_done(const PGresult *res, void *arg)
{
	struct page		*pg = arg;
	struct ledger_rec	*recs = NULL;
	char			**keys = NULL;
	size_t			 n = 0, i;
	int			 ok = pg_ok(res), more = 0;

	if (ok) {
		n = (size_t)PQntuples(res);
		if (n > pg->limit) {
			n = pg->limit;
			more = 1;
		}
		keys = xcalloc(n + 1, sizeof(*keys));
		recs = xcalloc(n + 1, sizeof(*recs));
		for (i = 0; i < n; i++) {
			keys[i] = xstrdup(PQgetvalue(res, (int)i, 0));
			row_rec(res, (int)i, 1, 2, 3, &recs[i]);
			/* Running, its executor gone: in doubt. */
			recs[i].state = L_IN_DOUBT;
		}
	}
	pg->fn(ok, n, keys, recs, more, pg->arg);
	for (i = 0; i < n; i++) {
		free(keys[i]);
		ledger_rec_free(&recs[i]);
	}
	free(keys);
	free(recs);
	free(pg);
}

int
pgstore_ledger_page(const char *after, size_t limit,
    void (*fn)(int, size_t, char **, struct ledger_rec *, int, void *),
    void *arg)
{
	struct page	*pg;
	char		 lim[32];
	const char	*v[2] = { after != NULL ? after : "", lim };

	pg = xcalloc(1, sizeof(*pg));
	pg->limit = limit;
	pg->fn = fn;
	pg->arg = arg;
	snprintf(lim, sizeof(lim), "%zu", limit + 1);
	if (pg_query("SELECT key, state, rec, note FROM tg_ledger WHERE"
	    " key > $1 AND (state = 'in_doubt' OR (state = 'running' AND"
	    " NOT tg_alive(instance))) ORDER BY key LIMIT $2", 2, v, NULL,
	    NULL, page_done, pg) == -1) {
		free(pg);
		return -1;
	}
	return 0;
}

struct records {
	size_t	 n;
	void	(*fn)(int, struct ledger_rec *, void *);
	void	*arg;
};

static void
records_done(const PGresult *res, void *arg)
{
	struct records		*rs = arg;
	struct ledger_rec	*recs;
	long			 o;
	int			 i, ok = pg_ok(res);

	recs = xcalloc(rs->n + 1, sizeof(*recs));
	for (i = 0; ok && i < PQntuples(res); i++) {
		o = strtol(PQgetvalue(res, i, 0), NULL, 10);
		if (o < 1 || (size_t)o > rs->n)
			continue;
		ledger_rec_free(&recs[o - 1]);
		row_rec(res, i, 1, 2, 3, &recs[o - 1]);
		/* Running, its executor gone: in doubt. */
		if (strcmp(PQgetvalue(res, i, 4), "t") == 0)
			recs[o - 1].state = L_IN_DOUBT;
	}
	rs->fn(ok, recs, rs->arg);
	for (i = 0; (size_t)i < rs->n; i++)
		ledger_rec_free(&recs[i]);
	free(recs);
	free(rs);
}

int
pgstore_records(char *const *keys, size_t n,
    void (*fn)(int, struct ledger_rec *, void *), void *arg)
{
	struct sbuf	 b = { NULL, 0, 0 };
	struct records	*rs;
	const char	*v[1];
	size_t		 i;
	int		 rc;

	sb_add(&b, "{", 1);
	for (i = 0; i < n; i++)
		sb_elem(&b, keys[i]);
	sb_add(&b, "}", 1);
	rs = xcalloc(1, sizeof(*rs));
	rs->n = n;
	rs->fn = fn;
	rs->arg = arg;
	v[0] = b.s;
	/* Each row with its place in keys: one round trip, any order. */
	rc = pg_query("SELECT u.o, l.state, l.rec, l.note, l.state ="
	    " 'running' AND NOT tg_alive(l.instance) FROM unnest($1::text[])"
	    " WITH ORDINALITY AS u(k, o) JOIN tg_ledger l ON l.key = u.k", 1,
	    v, NULL, NULL, records_done, rs);
	free(b.s);
	if (rc == -1)
		free(rs);
	return rc;
}

struct resolve {
	char	*key;
	int	(*settle)(struct ledger_rec *, void *);
	void	*sarg;
	void	(*fn)(const char *, void *);
	void	*arg;
};

static void
resolve_free(struct resolve *rv)
{
	free(rv->key);
	free(rv);
}

static void
resolve_written(const PGresult *res, void *arg)
{
	struct resolve	*rv = arg;

	if (!pg_ok(res))
		rv->fn(res == NULL ? "the shared store: the connection was lost"
		    : PQresultErrorMessage(res), rv->arg);
	else if (strcmp(PQcmdTuples((PGresult *)res), "1") != 0)
		rv->fn("the record changed meanwhile: look again", rv->arg);
	else
		rv->fn(NULL, rv->arg);
	resolve_free(rv);
}

static void
resolve_read(const PGresult *res, void *arg)
{
	struct resolve		*rv = arg;
	struct ledger_rec	 r;
	char			 err[600], *rec, *hex;
	const char		*v[5];
	size_t			 len;
	int			 alive;

	if (!pg_ok(res)) {
		rv->fn(res == NULL ? "the shared store: the connection was lost"
		    : PQresultErrorMessage(res), rv->arg);
		resolve_free(rv);
		return;
	}
	if (PQntuples(res) != 1) {
		snprintf(err, sizeof(err), "%s is not in doubt (it is none)",
		    rv->key);
		rv->fn(err, rv->arg);
		resolve_free(rv);
		return;
	}
	row_rec(res, 0, 0, 1, 2, &r);
	alive = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (r.state == L_RUNNING && alive) {
		snprintf(err, sizeof(err), "%s is running now on %s", rv->key,
		    PQgetvalue(res, 0, 4));
		goto refuse;
	}
	if (r.state != L_IN_DOUBT && r.state != L_RUNNING) {
		snprintf(err, sizeof(err), "%s is not in doubt (it is %s)",
		    rv->key, ledger_state_str(r.state));
		goto refuse;
	}
	if (rv->settle(&r, rv->sarg) == -1) {
		snprintf(err, sizeof(err), "%s cannot be settled", rv->key);
		goto refuse;
	}
	rec = ledger_encode(&r, &len);
	hex = hex_bytea(rec, len);
	free(rec);
	v[0] = rv->key;
	v[1] = ledger_state_str(r.state);
	v[2] = hex;
	v[3] = r.note;
	v[4] = PQgetvalue(res, 0, 5);
	/* Only the record read: a write that settled it meanwhile wins. */
	if (pg_query("UPDATE tg_ledger SET state = $2, rec = $3::bytea,"
	    " note = $4, finished = now() WHERE key = $1 AND state IN"
	    " ('in_doubt', 'running') AND instance = $5 AND NOT"
	    " (state = 'running' AND tg_alive(instance))", 5, v, NULL, NULL,
	    resolve_written, rv) == -1) {
		free(hex);
		ledger_rec_free(&r);
		rv->fn("the shared store cannot be reached", rv->arg);
		resolve_free(rv);
		return;
	}
	free(hex);
	ledger_rec_free(&r);
	return;
refuse:
	ledger_rec_free(&r);
	rv->fn(err, rv->arg);
	resolve_free(rv);
}

int
pgstore_resolve(const char *key, int (*settle)(struct ledger_rec *, void *),
    void *sarg, void (*fn)(const char *, void *), void *arg)
{
	struct resolve	*rv;
	const char	*v[1] = { key };

	rv = xcalloc(1, sizeof(*rv));
	rv->key = xstrdup(key);
	rv->settle = settle;
	rv->sarg = sarg;
	rv->fn = fn;
	rv->arg = arg;
	if (pg_query("SELECT state, rec, note, tg_alive(instance), host_id,"
	    " instance FROM tg_ledger WHERE key = $1", 1, v, NULL, NULL,
	    resolve_read, rv) == -1) {
		resolve_free(rv);
		return -1;
	}
	return 0;
}

/* Checkpoint keys: ours published, the other hosts' read. */

static void
published(const PGresult *res, void *arg)
{
	(void)arg;
	if (res != NULL && !pg_ok(res))
		log_warnx("store: PostgreSQL: the checkpoint keys cannot be"
		    " published: %s", PQresultErrorMessage(res));
}

int
pgstore_publish_keys(void)
{
	const char	*v[2];
	char		*keys;
	int		 rc;

	v[0] = ex->conf->store_host_id;
	v[1] = keys = checkpoint_public_keys();
	rc = pg_query("UPDATE tg_hosts SET pubkey = $2 WHERE host_id = $1",
	    2, v, NULL, NULL, published, NULL);
	free(keys);
	return rc;
}

struct peerq {
	void	(*fn)(int, void *);
	void	*arg;
};

static void
peers_read(const PGresult *res, void *arg)
{
	struct peerq	*pq = arg;
	size_t		 n = 0;
	int		 ok = pg_ok(res) && PQntuples(res) == 1;

	if (ok)
		n = checkpoint_peer_keys(PQgetvalue(res, 0, 0));
	log_debug("store: %zu checkpoint keys of other hosts", n);
	pq->fn(ok, pq->arg);
	free(pq);
}

int
pgstore_peer_keys(void (*fn)(int, void *), void *arg)
{
	struct peerq	*pq = xcalloc(1, sizeof(*pq));
	const char	*v[1] = { ex->conf->store_host_id };

	pq->fn = fn;
	pq->arg = arg;
	if (pg_query("SELECT coalesce(string_agg(pubkey, ''), '') FROM"
	    " tg_hosts WHERE host_id <> $1 AND pubkey IS NOT NULL", 1, v, NULL,
	    NULL, peers_read, pq) == -1) {
		free(pq);
		return -1;
	}
	return 0;
}

/* Approvals. */

struct apq {
	size_t	 limit;
	void	(*ins)(int, void *);
	void	(*get)(int, struct approval *, const char *, void *);
	void	(*dec)(int, void *);
	void	(*page)(int, size_t, struct approval *, int, void *);
	void	*arg;
};

static struct apq *
apq_new(void *arg)
{
	struct apq	*q = xcalloc(1, sizeof(*q));

	q->arg = arg;
	return q;
}

/* The record in column col of row i: 0, or -1 when it does not decode. */
static int
row_approval(const PGresult *res, int i, int col, struct approval *a)
{
	unsigned char	*u;
	size_t		 len;
	int		 rc;

	memset(a, 0, sizeof(*a));
	u = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, col),
	    &len);
	if (u == NULL)
		fatalx("PQunescapeBytea: out of memory");
	rc = approval_decode((const char *)u, len, a);
	PQfreemem(u);
	return rc;
}

static const char *
ap_state_name(const struct approval *a)
{
	return a->state == A_APPROVED ? "approved" : a->state == A_DENIED ?
	    "denied" : "pending";
}

static void
ap_inserted(const PGresult *res, void *arg)
{
	struct apq	*q = arg;

	if (res != NULL && !pg_ok(res))
		log_warnx("store: PostgreSQL: approval: %s",
		    PQresultErrorMessage(res));
	q->ins(pg_ok(res), q->arg);
	free(q);
}

int
pgstore_approval_insert(const struct approval *a, void (*fn)(int, void *),
    void *arg)
{
	struct apq	*q = apq_new(arg);
	char		*rec, *hex, exp[32];
	const char	*v[5];
	size_t		 len;
	int		 rc;

	q->ins = fn;
	rec = approval_encode(a, &len);
	hex = hex_bytea(rec, len);
	free(rec);
	snprintf(exp, sizeof(exp), "%llu", (unsigned long long)a->expires_at);
	v[0] = a->id;
	v[1] = ap_state_name(a);
	v[2] = hex;
	v[3] = ex->conf->store_host_id;
	v[4] = exp;
	rc = pg_query("INSERT INTO tg_approvals (id, state, rec, host_id,"
	    " expires_at) VALUES ($1, $2, $3::bytea, $4, $5)", 5, v, NULL,
	    NULL, ap_inserted, q);
	free(hex);
	if (rc == -1)
		free(q);
	return rc;
}

static void
ap_got(const PGresult *res, void *arg)
{
	struct apq	*q = arg;
	struct approval	 a;

	if (!pg_ok(res))
		q->get(-1, NULL, NULL, q->arg);
	else if (PQntuples(res) != 1)
		q->get(0, NULL, NULL, q->arg);
	else if (row_approval(res, 0, 0, &a) == -1) {
		/* A record that does not decode: nothing runs of it. */
		log_warnx("store: PostgreSQL: approval %s does not decode",
		    PQgetvalue(res, 0, 2));
		q->get(0, NULL, NULL, q->arg);
	} else {
		q->get(1, &a, PQgetvalue(res, 0, 1), q->arg);
		approval_free(&a);
	}
	free(q);
}

int
pgstore_approval_get(const char *id,
    void (*fn)(int, struct approval *, const char *, void *), void *arg)
{
	struct apq	*q = apq_new(arg);
	const char	*v[1] = { id };

	q->get = fn;
	if (pg_query("SELECT rec, host_id, id FROM tg_approvals WHERE"
	    " id = $1", 1, v, NULL, NULL, ap_got, q) == -1) {
		free(q);
		return -1;
	}
	return 0;
}

static void
ap_decided(const PGresult *res, void *arg)
{
	struct apq	*q = arg;

	if (!pg_ok(res) || PQntuples(res) != 1)
		q->dec(-1, q->arg);
	else
		q->dec(strcmp(PQgetvalue(res, 0, 0), "t") == 0, q->arg);
	free(q);
}

int
pgstore_approval_decide(const struct approval *a, void (*fn)(int, void *),
    void *arg)
{
	struct apq	*q = apq_new(arg);
	char		*rec, *hex;
	const char	*v[3];
	size_t		 len;
	int		 rc;

	q->dec = fn;
	rec = approval_encode(a, &len);
	hex = hex_bytea(rec, len);
	free(rec);
	v[0] = a->id;
	v[1] = ap_state_name(a);
	v[2] = hex;
	rc = pg_query("SELECT tg_decide($1, $2, $3::bytea)", 3, v, NULL,
	    NULL, ap_decided, q);
	free(hex);
	if (rc == -1)
		free(q);
	return rc;
}

static void
ap_paged(const PGresult *res, void *arg)
{
	struct apq	*q = arg;
	struct approval	*as = NULL;
	size_t		 n = 0, i, got = 0;
	int		 more = 0, ok = pg_ok(res);

	if (ok) {
		n = (size_t)PQntuples(res);
		if (n > q->limit) {
			n = q->limit;
			more = 1;
		}
		as = xcalloc(n + 1, sizeof(*as));
		for (i = 0; i < n; i++)
			if (row_approval(res, (int)i, 0, &as[got]) == 0)
				got++;
	}
	q->page(ok, got, as, more, q->arg);
	for (i = 0; i < got; i++)
		approval_free(&as[i]);
	free(as);
	free(q);
}

int
pgstore_approvals_page(const char *after, size_t limit,
    void (*fn)(int, size_t, struct approval *, int, void *), void *arg)
{
	struct apq	*q = apq_new(arg);
	char		 lim[32];
	const char	*v[2] = { after != NULL ? after : "", lim };

	q->page = fn;
	q->limit = limit;
	snprintf(lim, sizeof(lim), "%zu", limit + 1);
	if (pg_query("SELECT rec FROM tg_approvals WHERE state = 'pending'"
	    " AND expires_at > extract(epoch FROM now())::bigint AND id > $1"
	    " ORDER BY id LIMIT $2", 2, v, NULL, NULL, ap_paged, q) == -1) {
		free(q);
		return -1;
	}
	return 0;
}

/* The kill switch. */

static void
ks_sent(const PGresult *res, void *arg)
{
	int	off = arg != NULL;

	if (pg_ok(res))
		return;
	log_warnx("store: the kill switch could not be stored in PostgreSQL:"
	    " %s", res != NULL ? PQresultErrorMessage(res) :
	    "the connection was lost");
	if (off) {
		/* Sent again when the connection is back. */
		ks_unsent = 1;
		return;
	}
	/* Enabling did not reach the others: not here either. */
	ks_apply_shared(1, "the database (enabling failed)");
}

static int
ks_send(int off, const char *who, int setup)
{
	static const char	*sql = "SELECT tg_set_writes_off($1, $2)";
	const char		*v[2] = { off ? "true" : "false", who };

	if (setup)
		return pg_query_setup(sql, 2, v, NULL, NULL, ks_sent,
		    off ? (void *)1 : NULL);
	return pg_query(sql, 2, v, NULL, NULL, ks_sent,
	    off ? (void *)1 : NULL);
}

int
pgstore_set_writes_off(int off, const char *who)
{
	if (ks_send(off, who, 0) == 0) {
		ks_unsent = -1;
		return 0;
	}
	if (off) {
		ks_unsent = 1;
		free(ks_unsent_who);
		ks_unsent_who = xstrdup(who);
	}
	return -1;
}

/* Audit heads: ours kept, never backwards; read at each connection. */

static void
head_kept(const PGresult *res, void *arg)
{
	(void)arg;
	if (res != NULL && !pg_ok(res))
		log_warnx("store: PostgreSQL: the audit head cannot be kept:"
		    " %s", PQresultErrorMessage(res));
}

int
pgstore_audit_head_put(uint64_t seq, const char *json)
{
	const char	*v[3];
	char		 num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
	v[0] = ex->conf->store_host_id;
	v[1] = num;
	v[2] = json;
	return pg_query_setup("INSERT INTO tg_audit_heads (host_id, seq, head)"
	    " VALUES ($1, $2, $3) ON CONFLICT (host_id) DO UPDATE SET"
	    " seq = excluded.seq, head = excluded.head, updated = now()"
	    " WHERE tg_audit_heads.seq < excluded.seq", 3, v, NULL, NULL,
	    head_kept, NULL);
}

static void
head_read(const PGresult *res, void *arg)
{
	(void)arg;
	if (!pg_ok(res))
		return;		/* lost, or failed: read at the next one */
	if (PQntuples(res) == 0)
		audit_shared_head(NULL, 0);
	else
		audit_shared_head(PQgetvalue(res, 0, 0),
		    (size_t)PQgetlength(res, 0, 0));
}

/* What the database holds, at each connection. */
static void
ks_read(const PGresult *res, void *arg)
{
	(void)arg;
	if (!pg_ok(res) || PQntuples(res) != 1)
		return;		/* lost, or no row: the setup fails later */
	ks_apply_shared(strcmp(PQgetvalue(res, 0, 0), "0") != 0,
	    "the shared store");
}

/* Setup at each connection: the switch, this host, orphans, ready. */

static void
setup_last(const PGresult *res, void *arg)
{
	(void)arg;
	if (res == NULL)
		return;
	if (!pg_ok(res))
		log_warnx("store: PostgreSQL setup: %s",
		    PQresultErrorMessage(res));
	pg_ready();
	write_shared_up();
}

static void
pg_came_up(void)
{
	const char	*v[3];
	const char	**running;
	struct pg_item	*it;
	char		*arr, *keys;
	size_t		 n, i;

	if (ks_unsent == 1) {
		(void)ks_send(1, ks_unsent_who ? ks_unsent_who :
		    ex->conf->store_host_id, 1);
		ks_unsent = -1;
	}
	(void)pg_query_setup("SELECT value FROM tg_meta WHERE name ="
	    " 'writes_off'", 0, NULL, NULL, NULL, ks_read, NULL);
	v[0] = ex->conf->store_host_id;
	(void)pg_query_setup("SELECT head FROM tg_audit_heads WHERE host_id ="
	    " $1", 1, v, NULL, NULL, head_read, NULL);
	v[1] = pg_instance();
	v[2] = keys = checkpoint_public_keys();
	(void)pg_query_setup("INSERT INTO tg_hosts (host_id, instance, pubkey)"
	    " VALUES ($1, $2, $3) ON CONFLICT (host_id) DO UPDATE SET"
	    " instance = $2, pubkey = $3, seen = now()", 3, v, NULL, NULL,
	    NULL, NULL);
	free(keys);
	/*
	 * Running records that will get no outcome: this executor's that no
	 * write of it runs now (their outcome was lost with the last
	 * connection), and those of executors that are gone.
	 */
	n = write_running_keys(&running);
	it = xcalloc(n + 1, sizeof(*it));
	for (i = 0; i < n; i++)
		it[i].key = running[i];
	arr = array_of(it, n, A_KEY);
	v[0] = pg_instance();
	v[1] = arr;
	(void)pg_query_setup("UPDATE tg_ledger SET state = 'in_doubt', note ="
	    " 'its executor on ' || host_id || ' lost its outcome' WHERE"
	    " state = 'running' AND ((instance = $1 AND NOT (key = ANY($2)))"
	    " OR (instance <> $1 AND NOT tg_alive(instance)))", 2, v, NULL,
	    NULL, setup_last, NULL);
	free(arr);
	free(it);
	free(running);
}

static void
pg_went_down(void)
{
	/* Writes are refused from now on (write.c asks pgstore_up()). */
}

static void
pg_notified(const char *channel, const char *payload)
{
	if (strcmp(channel, "tg_ledger") == 0)
		write_shared_settled(payload);
	else if (strcmp(channel, "tg_approval") == 0)
		approval_shared_decided(payload);
	else if (strcmp(channel, "tg_kill") == 0 && payload[0] != '\0')
		ks_apply_shared(payload[0] == '1', payload[1] == ' ' ?
		    payload + 2 : "another host");
}

static void
swept(const PGresult *res, void *arg)
{
	(void)arg;
	if (res != NULL && !pg_ok(res))
		log_warnx("store: PostgreSQL sweep: %s",
		    PQresultErrorMessage(res));
	else if (res != NULL && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_debug("store: swept %s expired ledger records",
		    PQgetvalue(res, 0, 0));
}

static void
counted(const PGresult *res, void *arg)
{
	(void)arg;
	if (pg_ok(res) && PQntuples(res) == 1)
		in_doubt = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
}

uint64_t
pgstore_in_doubt(void)
{
	return in_doubt;
}

/* Every tick: the writes in doubt counted; every few, a sweep. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	static unsigned	 ticks;
	struct timeval	 tv = { TICK_S, 0 };
	char		 ret[32], lim[32];
	const char	*v[2] = { ret, lim };

	(void)fd;
	(void)what;
	(void)arg;
	(void)pg_query("SELECT count(*) FROM tg_ledger WHERE state ="
	    " 'in_doubt'", 0, NULL, NULL, NULL, counted, NULL);
	if (++ticks % SWEEP_TICKS == 0) {
		snprintf(ret, sizeof(ret), "%llu",
		    (unsigned long long)ex->conf->retention_s);
		snprintf(lim, sizeof(lim), "%d", SWEEP_BATCH);
		(void)pg_query("SELECT tg_sweep($1, $2)", 2, v, NULL, NULL,
		    swept, NULL);
	}
	evtimer_add(sweep_ev, &tv);
}

void
pgstore_init(void)
{
	struct timeval	tv = { TICK_S, 0 };

	/*
	 * Off here at start (this host's store) may be a switch thrown while
	 * the database was out of reach, before a restart: it is sent at the
	 * first connection, as one thrown now would be.  Fail closed: should
	 * the fleet have been enabled meanwhile, it is off again, and an
	 * operator enables it.
	 */
	if (ex->writes_off) {
		ks_unsent = 1;
		xasprintf(&ks_unsent_who, "host %s, off at its start",
		    ex->conf->store_host_id);
	}
	pg_listen("tg_ledger");
	pg_listen("tg_kill");
	pg_listen("tg_approval");
	pg_init(ex->base, ex->conf, pg_came_up, pg_went_down, pg_notified);
	if ((sweep_ev = evtimer_new(ex->base, sweep_cb, NULL)) == NULL)
		fatalx("pgstore_init: evtimer_new");
	evtimer_add(sweep_ev, &tv);
	log_info("store: shared on PostgreSQL as host %s (executor %s)",
	    ex->conf->store_host_id, pg_instance());
}

void
pgstore_shutdown(void)
{
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	sweep_ev = NULL;
	pg_shutdown();
	free(ks_unsent_who);
	ks_unsent_who = NULL;
}

void
pgstore_status(struct mpmap *m)
{
	char	buf[384];

	mpmap_str(m, "store_backend", "postgresql");
	mpmap_str(m, "store_host_id", ex->conf->store_host_id);
	mpmap_str(m, "store", pg_state(buf, sizeof(buf)));
}

void
pgstore_metrics(void *fpv)
{
	FILE	*fp = fpv;

	prom_head(fp, "toolgate_store_up", "gauge",
	    "1 while the shared store (PostgreSQL) takes writes (executor).");
	prom_sample(fp, "toolgate_store_up", "", pg_up());
	prom_head(fp, "toolgate_store_connection_losses_total", "counter",
	    "Connections to the shared store lost since start (executor).");
	prom_sample(fp, "toolgate_store_connection_losses_total", "",
	    pg_losses());
}
