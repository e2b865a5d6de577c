/*
 * gatewayctl forensics RUN_ID: every write of the run, from the run record
 * (the keys it wrote, in order) and each key's ledger record.  See
 * forensics.h for what the ledger keeps for it.
 *
 * How often a write was asked: the ledger record counts the callers its
 * run answered (the first, and every identical call that joined it while
 * it ran).  Repeats refused afterwards (duplicate_write) and replays are
 * not counted here: counting them would turn each into a write
 * transaction, a disk sync that a looping agent could multiply at will;
 * the audit log has a record of every one of them (run_id, tool,
 * args_hash), which is where gatewayctl audit show counts them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/config.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/apstore.h"
#include "executor/control.h"
#include "executor/executor.h"
#include "executor/request.h"
#include "executor/forensics.h"
#include "executor/pgstore.h"
#include "executor/store.h"

#define ENTITY_VALUE_MAX	512	/* bytes of one entity value shown */

void
forensics_intent(struct ledger_rec *r, const struct tool *t,
    const struct call *c)
{
	r->asks = 1;
	if (c->approver != NULL)
		r->approver = xstrdup(c->approver);
	if (c->compensates != NULL)
		r->compensates = xstrdup(c->compensates);
	/*
	 * Only what forensics or a compensation will read, and bounded:
	 * args past the limit are not kept, and their compensation is
	 * refused for want of them (compensate.c), never guessed.
	 */
	if ((t->nentity > 0 || t->compensate != NULL) &&
	    c->json.len > 0 && c->json.len <= FORENSICS_ARGS_MAX) {
		r->args = xmalloc(c->json.len);
		memcpy(r->args, c->json.data, c->json.len);
		r->argslen = c->json.len;
	}
}

char *
forensics_args(const struct ledger_rec *r, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	char		err[128];

	if (r->args == NULL)
		return NULL;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* A map's first byte is a fixmap (0x8N), map 16 or map 32. */
	if (json_to_msgpack(r->args, r->argslen, &pk, err,
	    sizeof(err)) == -1 || sb.size == 0 ||
	    (((unsigned char)sb.data[0] & 0xf0) != 0x80 &&
	    (unsigned char)sb.data[0] != 0xde &&
	    (unsigned char)sb.data[0] != 0xdf)) {
		/* Not a map: not the args the record should hold. */
		msgpack_sbuffer_destroy(&sb);
		return NULL;
	}
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

void
forensics_free(struct run_writes *rw)
{
	size_t	i;

	for (i = 0; i < rw->n; i++) {
		free(rw->v[i].tenant);
		free(rw->v[i].key);
		free(rw->v[i].comp_key);
		ledger_rec_free(&rw->v[i].rec);
		ledger_rec_free(&rw->v[i].comp);
	}
	free(rw->v);
	memset(rw, 0, sizeof(*rw));
}

struct load_arg {
	const char		*tenant;	/* NULL: every tenant */
	const char		*run_id;
	struct run_writes	*rw;
	const char		*cur;		/* the tenant being read */
	size_t			 cap;
};

static void
load_key(const char *key, void *arg)
{
	struct load_arg		*la = arg;
	struct run_writes	*rw = la->rw;
	struct run_write	*w;

	if (rw->n == FORENSICS_WRITES_MAX) {
		rw->truncated = 1;
		return;
	}
	if (rw->n == la->cap) {
		la->cap = la->cap ? la->cap * 2 : 16;
		rw->v = xreallocarray(rw->v, la->cap, sizeof(*rw->v));
	}
	w = &rw->v[rw->n++];
	memset(w, 0, sizeof(*w));
	w->tenant = xstrdup(la->cur);
	w->key = xstrdup(key);
	xasprintf(&w->comp_key, "%s%s", key, COMPENSATE_SUFFIX);
}

/* Was tenant read already (several principals share one)? */
static int
tenant_seen(const struct config *conf, size_t i)
{
	size_t	j;

	for (j = 0; j < i; j++)
		if (strcmp(conf->principals[j].tenant,
		    conf->principals[i].tenant) == 0)
			return 1;
	return 0;
}

static int
load_txn(struct store_txn *txn, void *arg)
{
	struct load_arg		*la = arg;
	const struct config	*conf = ex->conf;
	struct run_write	*w;
	size_t			 i, n, from;
	int			 rc;

	for (i = 0; i < (la->tenant ? 1 : conf->nprincipals); i++) {
		if (la->tenant == NULL && tenant_seen(conf, i))
			continue;
		la->cur = la->tenant ? la->tenant : conf->principals[i].tenant;
		from = la->rw->n;
		if ((rc = ledger_run_keys(txn, la->cur, la->run_id, load_key,
		    la, &n)) != 0)
			return rc;
		/* Shared: the records are the database's (forensics_shared). */
		for (; !pgstore_on() && from < la->rw->n; from++) {
			w = &la->rw->v[from];
			if ((rc = ledger_get(txn, w->key, &w->rec)) != 0 ||
			    (rc = ledger_get(txn, w->comp_key, &w->comp)) != 0)
				return rc;
		}
	}
	return 0;
}

/*
 * The run's keys from its run record, this host's, and with LMDB each
 * key's ledger record; on the shared store the records are read from the
 * database afterwards (forensics_shared).
 */
static int
load_run(const char *tenant, const char *run_id, struct run_writes *rw,
    char *err, size_t errlen)
{
	struct load_arg	la;
	int		rc;

	memset(rw, 0, sizeof(*rw));
	la = (struct load_arg){ tenant, run_id, rw, NULL, 0 };
	if ((rc = store_read(ex->store, load_txn, &la)) != 0) {
		snprintf(err, errlen, "the ledger cannot be read: %s",
		    rc == STORE_BADSIZE ? "the run's record is damaged" :
		    store_strerror(rc));
		forensics_free(rw);
		return -1;
	}
	return 0;
}

int
forensics_load(const char *tenant, const char *run_id,
    struct run_writes *rw, char *err, size_t errlen)
{
	return load_run(tenant, run_id, rw, err, errlen);
}

/* entity: {NAME: value, ...}, a value too large shown by its size. */
static void
pack_entity(struct mpmap *m, const struct tool *t, const struct run_write *w)
{
	msgpack_unpacked	 u;
	const msgpack_object	*v;
	struct canon_buf	 json = { NULL, 0, 0 };
	struct mpmap		 e;
	char			*args, err[64], big[64];
	size_t			 len, off = 0, i;

	if (t == NULL || t->nentity == 0)
		return;
	if ((args = forensics_args(&w->rec, &len)) == NULL) {
		mpmap_nil(m, "entity");
		return;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, args, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		mpmap_nil(m, "entity");
		goto out;
	}
	mpmap_begin_in(&e, m, "entity");
	for (i = 0; i < t->nentity; i++) {
		if ((v = mp_get(&u.data, t->entity[i])) == NULL) {
			mpmap_nil(&e, t->entity[i]);
			continue;
		}
		json.len = 0;
		if (canon_json(v, 0, &json, err, sizeof(err)) == 0 &&
		    json.len <= ENTITY_VALUE_MAX)
			mpmap_obj(&e, t->entity[i], v);
		else {
			snprintf(big, sizeof(big), "(%zu bytes)", json.len);
			mpmap_str(&e, t->entity[i], big);
		}
	}
	mpmap_end(&e);
	canon_buf_free(&json);
out:
	msgpack_unpacked_destroy(&u);
	free(args);
}

static void
pack_write(struct msgbuf *mb, const struct run_write *w)
{
	const struct ledger_rec	*r = &w->rec;
	const struct tool	*t;
	struct mpmap		 m, c;

	t = r->tool != NULL ? policy_tool(ex->conf, r->tool) : NULL;
	mpmap_begin(&m, mb);
	mpmap_str(&m, "tenant", w->tenant);
	mpmap_str_or_nil(&m, "tool", r->tool);
	mpmap_str(&m, "state", ledger_state_str(r->state));
	/* Running with no executor behind it, or in doubt: nobody knows. */
	mpmap_bool(&m, "in_doubt", r->state == L_IN_DOUBT);
	mpmap_uint(&m, "asks", r->asks);
	mpmap_str_or_nil(&m, "args_hash", r->args_hash);
	mpmap_str(&m, "idempotency_key", w->key);
	pack_entity(&m, t, w);
	mpmap_bool(&m, "args_kept", r->args != NULL);
	mpmap_str_or_nil(&m, "approver", r->approver);
	mpmap_str_or_nil(&m, "run_id", r->run_id);
	mpmap_str_or_nil(&m, "step_id", r->step_id);
	mpmap_uint(&m, "uid", r->uid);
	mpmap_uint(&m, "started_ms", r->started_ms);
	mpmap_uint(&m, "finished_ms", r->finished_ms);
	mpmap_str_or_nil(&m, "note", r->note);
	mpmap_str_opt(&m, "compensates", r->compensates);
	if (w->comp.state != L_NONE) {
		mpmap_begin_in(&c, &m, "compensation");
		mpmap_str(&c, "idempotency_key", w->comp_key);
		mpmap_str_or_nil(&c, "tool", w->comp.tool);
		mpmap_str(&c, "state", ledger_state_str(w->comp.state));
		mpmap_str_or_nil(&c, "approver", w->comp.approver);
		mpmap_end(&c);
	}
	mpmap_end(&m);
}

/* A string field of a request, 1..max bytes; NULL when absent. */
static int
req_str(struct ctl_conn *cc, const msgpack_object *req, const char *key,
    size_t max, int required, char **out)
{
	const msgpack_object	*o = mp_get(req, key);

	*out = NULL;
	if (o == NULL && !required)
		return 0;
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size == 0 || o->via.str.size > max ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
		ctl_error(cc, "%s must be a string of 1..%zu bytes", key, max);
		return -1;
	}
	*out = mp_strdup(o);
	return 0;
}

int
ctl_run_args(struct ctl_conn *cc, const msgpack_object *req, char **run_id,
    char **tenant)
{
	*tenant = NULL;
	if (req_str(cc, req, "run_id", LEDGER_KEY_MAX, 1, run_id) == -1)
		return -1;
	if (req_str(cc, req, "tenant", LEDGER_KEY_MAX, 0, tenant) == -1) {
		free(*run_id);
		*run_id = NULL;
		return -1;
	}
	return 0;
}

/* Oldest first: the order the run asked them in. */
static int
by_created(const void *a, const void *b)
{
	const struct approval	*x = a, *y = b;

	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void
pack_approval(struct msgbuf *mb, const struct approval *a)
{
	struct mpmap	m;

	mpmap_begin(&m, mb);
	mpmap_str(&m, "approval_id", a->id);
	mpmap_str(&m, "tenant", a->tenant);
	mpmap_str(&m, "tool", a->tool);
	mpmap_str(&m, "args_hash", a->args_hash);
	mpmap_str_or_nil(&m, "step_id", a->step_id);
	mpmap_str(&m, "state",
	    approval_state_str(approval_effective_state(a)));
	mpmap_str_or_nil(&m, "approver", a->approver);
	mpmap_str_or_nil(&m, "note", a->note);
	mpmap_uint(&m, "created_ms", a->created_ms);
	mpmap_uint(&m, "decided_ms", a->decided_ms);
	mpmap_uint(&m, "expires_at", a->expires_at);
	mpmap_bool(&m, "started", a->started_ms != 0);
	mpmap_end(&m);
}

/*
 * The answer: the run's writes, whichever store their records came from,
 * and the approvals the run asked for, whatever became of them (this
 * host's copies: the run asked here); an error when those cannot be read.
 */
static void
forensics_answer(struct ctl_conn *cc, const char *tenant, const char *run_id,
    const struct run_writes *rw)
{
	struct approval		*as;
	struct msgbuf		 mb;
	struct mpmap		 m;
	size_t			 i, nas, in_doubt = 0;
	int			 more, rc;

	if ((rc = approvals_of_run(tenant, run_id, FORENSICS_WRITES_MAX, &as,
	    &nas, &more)) != 0) {
		ctl_error(cc, "the approvals cannot be read: %s",
		    store_strerror(rc));
		return;
	}
	if (nas > 1)
		qsort(as, nas, sizeof(*as), by_created);
	for (i = 0; i < rw->n; i++)
		if (rw->v[i].rec.state == L_IN_DOUBT)
			in_doubt++;
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "run_id", run_id);
	mpmap_uint(&m, "count", rw->n);
	mpmap_uint(&m, "in_doubt", in_doubt);
	if (rw->truncated)
		mpmap_bool(&m, "truncated", 1);
	msgpack_pack_array(mpmap_key(&m, "writes"), rw->n);
	for (i = 0; i < rw->n; i++)
		pack_write(&mb, &rw->v[i]);
	if (more)
		mpmap_bool(&m, "approvals_truncated", 1);
	msgpack_pack_array(mpmap_key(&m, "approvals"), nas);
	for (i = 0; i < nas; i++) {
		pack_approval(&mb, &as[i]);
		approval_free(&as[i]);
	}
	free(as);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

/* A run's records asked of the database: its writes, keys, whom to tell. */
struct shared_fx {
	struct run_writes	 rw;
	char			**keys;		/* each write's, then its comp's */
	forensics_fn		 fn;
	void			*arg;
};

static void
shared_fx_free(struct shared_fx *fx)
{
	forensics_free(&fx->rw);
	free(fx->keys);
	free(fx);
}

static void
shared_records(int ok, struct ledger_rec *recs, void *arg)
{
	struct shared_fx	*fx = arg;
	size_t			 i, n = fx->rw.n;

	if (!ok) {
		fx->fn(NULL, "the shared ledger (PostgreSQL) cannot be read",
		    fx->arg);
		shared_fx_free(fx);
		return;
	}
	/* Taken over: recs are freed by the caller, now empty. */
	for (i = 0; i < n; i++) {
		fx->rw.v[i].rec = recs[i];
		fx->rw.v[i].comp = recs[n + i];
		memset(&recs[i], 0, sizeof(recs[i]));
		memset(&recs[n + i], 0, sizeof(recs[n + i]));
	}
	fx->fn(&fx->rw, NULL, fx->arg);
	shared_fx_free(fx);
}

int
forensics_load_shared(const char *tenant, const char *run_id,
    forensics_fn fn, void *arg, char *err, size_t errlen)
{
	struct shared_fx	*fx;
	size_t			 i, n;

	fx = xcalloc(1, sizeof(*fx));
	if (load_run(tenant, run_id, &fx->rw, err, errlen) == -1) {
		shared_fx_free(fx);
		return -1;
	}
	n = fx->rw.n;
	fx->fn = fn;
	fx->arg = arg;
	fx->keys = xcalloc(2 * n + 1, sizeof(*fx->keys));
	for (i = 0; i < n; i++) {
		fx->keys[i] = fx->rw.v[i].key;
		fx->keys[n + i] = fx->rw.v[i].comp_key;
	}
	if (pgstore_records(fx->keys, 2 * n, shared_records, fx) == -1) {
		snprintf(err, errlen, "the shared ledger (PostgreSQL) cannot"
		    " be reached");
		shared_fx_free(fx);
		return -1;
	}
	return 0;
}

/* A forensics waiting for the database: its operator, tenant and run. */
struct fx_wait {
	uint64_t	 cc_id;
	char		*tenant;	/* NULL: every tenant */
	char		*run_id;
};

static void
shared_answer(struct run_writes *rw, const char *err, void *arg)
{
	struct fx_wait	*fw = arg;
	struct ctl_conn	*cc = ctl_by_id(fw->cc_id);

	/* cc NULL: the operator hung up meanwhile, nobody to answer. */
	if (cc != NULL && rw == NULL)
		ctl_error(cc, "%s", err);
	else if (cc != NULL)
		forensics_answer(cc, fw->tenant, fw->run_id, rw);
	free(fw->tenant);
	free(fw->run_id);
	free(fw);
}

/*
 * The shared store: the run's keys from this host's run record (runs are
 * per host), their records from the database in one query, answered when
 * it returns.
 */
static void
forensics_shared(struct ctl_conn *cc, const char *tenant, const char *run_id)
{
	struct fx_wait	*fw;
	char		 err[256];

	fw = xcalloc(1, sizeof(*fw));
	fw->cc_id = ctl_id(cc);
	fw->tenant = tenant != NULL ? xstrdup(tenant) : NULL;
	fw->run_id = xstrdup(run_id);
	if (forensics_load_shared(tenant, run_id, shared_answer, fw, err,
	    sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
		free(fw->tenant);
		free(fw->run_id);
		free(fw);
	}
}

void
ctl_forensics(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct run_writes	 rw;
	char			*run_id, *tenant, err[256];

	(void)op;
	if (ctl_run_args(cc, req, &run_id, &tenant) == -1)
		return;
	if (pgstore_on())
		forensics_shared(cc, tenant, run_id);
	else if (load_run(tenant, run_id, &rw, err, sizeof(err)) == -1)
		ctl_error(cc, "%s", err);
	else {
		forensics_answer(cc, tenant, run_id, &rw);
		forensics_free(&rw);
	}
	free(run_id);
	free(tenant);
}
