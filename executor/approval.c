/*
 * Approvals and continuation.
 *
 *   call (covered write) -> record committed, checkpoint signed, the agent
 *                           gets needs_approval; nothing runs
 *   gatewayctl approve   -> the record says approved, by whom
 *   resume (checkpoint)  -> signature, principal and record checked, the
 *                           current policy asked again, then the write goes
 *                           through the ledger, so it runs exactly once
 *
 * Pending approvals expire at expires_at (approvals.ttl_s after the
 * request); a decided approval does not expire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <lmdb.h>
#include <msgpack.h>
#include <sodium.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/approval.h"
#include "executor/apquota.h"
#include "executor/call.h"
#include "executor/checkpoint.h"
#include "executor/executor.h"
#include "executor/ledger.h"
#include "executor/store.h"
#include "proto/proto.h"

#define APPROVAL_VERSION	1
#define WAIT_MAX_MS		300000	/* one wait at most five minutes */

static const char *state_names[] = {
	[A_PENDING] = "pending",
	[A_APPROVED] = "approved",
	[A_DENIED] = "denied",
	[A_EXPIRED] = "expired",
};

/* A wait op parked until a decision, its timeout or the expiry. */
struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	uint64_t		 id;
	uint64_t		 conn;		/* the agent connection asking */
	char			 approval_id[APPROVAL_ID_LEN + 1];
	struct event		*timer;
};

static TAILQ_HEAD(, waiter)	waiters = TAILQ_HEAD_INITIALIZER(waiters);
static size_t			nwaiters;

const char *
approval_state_str(enum approval_state s)
{
	if (s < A_PENDING || s > A_EXPIRED)
		return "unknown";
	return state_names[s];
}

void
approval_free(struct approval *a)
{
	free(a->tenant);
	free(a->env);
	free(a->run_id);
	free(a->step_id);
	free(a->tool);
	free(a->args_hash);
	free(a->args);
	free(a->approver);
	free(a->note);
	memset(a, 0, sizeof(*a));
}

static enum approval_state
effective_state(const struct approval *a)
{
	if (a->state == A_PENDING && (uint64_t)time(NULL) >= a->expires_at)
		return A_EXPIRED;
	return a->state;
}

char *
approval_encode(const struct approval *a, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	uint32_t	n = 15 + (a->step_id != NULL) + (a->approver != NULL) +
			    (a->note != NULL);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	pk_kv_uint(&pk, "v", APPROVAL_VERSION);
	pk_kv_str(&pk, "id", a->id);
	pk_kv_str(&pk, "state", approval_state_str(a->state));
	pk_kv_str(&pk, "tenant", a->tenant);
	pk_kv_str(&pk, "env", a->env);
	pk_kv_str(&pk, "run_id", a->run_id);
	if (a->step_id != NULL)
		pk_kv_str(&pk, "step_id", a->step_id);
	pk_kv_str(&pk, "tool", a->tool);
	pk_kv_str(&pk, "args_hash", a->args_hash);
	pk_kv_str(&pk, "args_sha256", a->args_sha256);
	pk_str(&pk, "args");
	msgpack_pack_bin(&pk, a->argslen);
	msgpack_pack_bin_body(&pk, a->args, a->argslen);
	pk_kv_uint(&pk, "uid", a->uid);
	pk_kv_uint(&pk, "created_ms", a->created_ms);
	pk_kv_uint(&pk, "expires_at", a->expires_at);
	pk_kv_uint(&pk, "decided_ms", a->decided_ms);
	pk_kv_uint(&pk, "started_ms", a->started_ms);
	if (a->approver != NULL)
		pk_kv_str(&pk, "approver", a->approver);
	if (a->note != NULL)
		pk_kv_str(&pk, "note", a->note);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

static int
take(const msgpack_object *o, char **out)
{
	if (*out != NULL || (*out = mp_strdup(o)) == NULL)
		return -1;
	return 0;
}

static int
take_uint(const msgpack_object *o, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*out = o->via.u64;
	return 0;
}

static int
take_fixed(const msgpack_object *o, char *out, size_t n)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != n ||
	    memchr(o->via.str.ptr, '\0', n) != NULL)
		return -1;
	memcpy(out, o->via.str.ptr, n);
	out[n] = '\0';
	return 0;
}

static int
decode_field(const msgpack_object_kv *kv, struct approval *a, uint64_t *v)
{
	const msgpack_object	*k = &kv->key, *o = &kv->val;
	size_t			 i;

	if (mp_streq(k, "v"))
		return take_uint(o, v);
	if (mp_streq(k, "id"))
		return take_fixed(o, a->id, APPROVAL_ID_LEN);
	if (mp_streq(k, "state")) {
		for (i = A_PENDING; i <= A_DENIED; i++) {
			if (mp_streq(o, state_names[i])) {
				a->state = (enum approval_state)i;
				return 0;
			}
		}
		return -1;
	}
	if (mp_streq(k, "tenant"))
		return take(o, &a->tenant);
	if (mp_streq(k, "env"))
		return take(o, &a->env);
	if (mp_streq(k, "run_id"))
		return take(o, &a->run_id);
	if (mp_streq(k, "step_id"))
		return take(o, &a->step_id);
	if (mp_streq(k, "tool"))
		return take(o, &a->tool);
	if (mp_streq(k, "args_hash"))
		return take(o, &a->args_hash);
	if (mp_streq(k, "args_sha256"))
		return take_fixed(o, a->args_sha256, 64);
	if (mp_streq(k, "args")) {
		if (o->type != MSGPACK_OBJECT_BIN || a->args != NULL)
			return -1;
		/* A denied approval's are empty: malloc(0) may be NULL. */
		a->args = xmalloc(o->via.bin.size + 1);
		memcpy(a->args, o->via.bin.ptr, o->via.bin.size);
		a->argslen = o->via.bin.size;
		return 0;
	}
	if (mp_streq(k, "uid"))
		return take_uint(o, &a->uid);
	if (mp_streq(k, "created_ms"))
		return take_uint(o, &a->created_ms);
	if (mp_streq(k, "expires_at"))
		return take_uint(o, &a->expires_at);
	if (mp_streq(k, "decided_ms"))
		return take_uint(o, &a->decided_ms);
	if (mp_streq(k, "started_ms"))
		return take_uint(o, &a->started_ms);
	if (mp_streq(k, "approver"))
		return take(o, &a->approver);
	if (mp_streq(k, "note"))
		return take(o, &a->note);
	return -1;
}

int
approval_decode(const char *buf, size_t len, struct approval *a)
{
	msgpack_unpacked	u;
	const char		*why;
	uint64_t		v = 0;
	uint32_t		i;
	int			rc = -1;

	memset(a, 0, sizeof(*a));
	if (frame_unpack_map(buf, len, &u, &why) == -1)
		return -1;
	if (mp_dup_keys(&u.data))
		goto out;
	for (i = 0; i < u.data.via.map.size; i++)
		if (decode_field(&u.data.via.map.ptr[i], a, &v) == -1)
			goto out;
	if (v != APPROVAL_VERSION || a->id[0] == '\0' || a->state == 0 ||
	    a->tenant == NULL || a->env == NULL || a->run_id == NULL ||
	    a->tool == NULL || a->args_hash == NULL || a->args == NULL ||
	    a->args_sha256[0] == '\0')
		goto out;
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	if (rc == -1)
		approval_free(a);
	return rc;
}

/* Storage. */

struct rec_arg {
	const char	*id;
	struct approval	*a;
	int		 found;
	int		 created;	/* a new record: index its expiry */
	int		 decided;	/* pending no more: off the quota */
};

static int
get_txn(MDB_txn *txn, void *arg)
{
	struct rec_arg	*ra = arg;
	MDB_val		 k = { strlen(ra->id), (void *)ra->id }, v;
	int		 rc;

	ra->found = 0;
	rc = mdb_get(txn, store_dbi(ex->store, DB_APPROVALS), &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (approval_decode(v.mv_data, v.mv_size, ra->a) == -1) {
		log_warnx("approval %s: the record does not decode", ra->id);
		return 0;	/* treated as absent: nothing runs */
	}
	ra->found = 1;
	return 0;
}

/* 1 found, 0 absent, -1 store error. */
static int
approval_get(const char *id, struct approval *a)
{
	struct rec_arg	ra;

	memset(a, 0, sizeof(*a));
	ra.id = id;
	ra.a = a;
	ra.found = 0;
	ra.created = 0;
	ra.decided = 0;
	if (strlen(id) != APPROVAL_ID_LEN)
		return 0;
	if (store_read(ex->store, get_txn, &ra) != 0)
		return -1;
	return ra.found;
}

static int
put_txn(MDB_txn *txn, void *arg)
{
	struct rec_arg	*ra = arg;
	MDB_val		 k = { strlen(ra->a->id), ra->a->id }, v;
	char		*buf;
	int		 rc;

	/* Counted against the quota in the transaction that stores it. */
	if (ra->created && (rc = apquota_add(txn, ex->store, ra->a->tenant,
	    ra->a->id, ra->a->expires_at, ra->a->argslen,
	    ex->conf->max_pending_per_tenant,
	    ex->conf->max_pending_bytes_per_tenant)) != 0)
		return rc;
	if (ra->decided && (rc = apquota_drop(txn, ex->store, ra->a->id,
	    ra->a->expires_at)) != 0)
		return rc;
	buf = approval_encode(ra->a, &v.mv_size);
	v.mv_data = buf;
	rc = mdb_put(txn, store_dbi(ex->store, DB_APPROVALS), &k, &v, 0);
	free(buf);
	if (rc == 0 && ra->created)
		rc = ledger_expire_approval(txn, ex->store, ra->a->id,
		    ra->a->expires_at * 1000);
	return rc;
}

/*
 * A new record, or a decision.  A request is an ordinary write that must
 * leave the store's reserve free; a denial may use the reserve (it drops
 * the args, so it frees more than it takes), an approval may not (it keeps
 * them).
 */
static int
approval_put(struct approval *a, int created)
{
	struct rec_arg	ra = { a->id, a, 0, created, !created };

	if (!created && a->state == A_DENIED)
		return store_write_reserve(ex->store, put_txn, &ra);
	return store_write_need(ex->store, a->argslen + 4096, put_txn, &ra);
}

/* The record of 'id' inside a transaction: 1 found, 0 absent, or an error. */
static int
approval_get_txn(MDB_txn *txn, const char *id, struct approval *a)
{
	struct rec_arg	ra;
	int		rc;

	memset(a, 0, sizeof(*a));
	ra.id = id;
	ra.a = a;
	ra.found = 0;
	ra.created = 0;
	ra.decided = 0;
	if ((rc = get_txn(txn, &ra)) != 0)
		return rc;
	return ra.found;
}

int
approval_check_txn(MDB_txn *txn, const char *id, int st)
{
	struct approval	a;
	int		rc;

	memset(&a, 0, sizeof(a));
	if ((rc = approval_get_txn(txn, id, &a)) < 0 || rc > 1)
		return rc;
	/* Gone, or not approved (cannot be: fail closed all the same). */
	if (rc == 0 || a.state != A_APPROVED)
		rc = APPROVAL_USED;
	/* Used, and its write's record swept: never a second run. */
	else if (a.started_ms != 0 && st == L_NONE)
		rc = APPROVAL_USED;
	else
		rc = 0;
	approval_free(&a);
	return rc;
}

int
approval_start_txn(MDB_txn *txn, const char *id)
{
	struct approval	a;
	struct rec_arg	ra = { id, &a, 0, 0, 0 };
	int		rc;

	memset(&a, 0, sizeof(a));
	if ((rc = approval_get_txn(txn, id, &a)) != 1)
		return rc == 0 ? MDB_NOTFOUND : rc;
	rc = 0;
	if (a.started_ms == 0) {
		a.started_ms = now_ms();
		rc = put_txn(txn, &ra);
	}
	approval_free(&a);
	return rc;
}

/* Answers. */

static void
send_response(uint32_t type, uint64_t id, const char *status,
    const char *k1, const char *v1, const char *k2, const char *v2)
{
	struct msgbuf	mb;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, type, id, 1);
	pk_str(&mb.pk, "response");
	msgpack_pack_map(&mb.pk, 1 + (k1 != NULL) + (k2 != NULL));
	pk_kv_str(&mb.pk, "status", status);
	if (k1 != NULL)
		pk_kv_str(&mb.pk, k1, v1);
	if (k2 != NULL)
		pk_kv_str(&mb.pk, k2, v2);
	ex_send(&mb);
	msgbuf_free(&mb);
}

static int
audit_approval(const char *event, const struct approval *a,
    const char *decision, const char *who, const char *note)
{
	struct audit_rec	ar = {
		.event = event,
		.tenant = a->tenant,
		.env = a->env,
		.uid = (long long)a->uid,
		.run_id = a->run_id,
		.step_id = a->step_id,
		.tool = a->tool,
		.args_hash = a->args_hash,
		.decision = decision,
		.reason = a->id,
		.approver = who,
		.note = note,
	};

	return audit_write(&ar, 1);
}

/*
 * An approval that could not be recorded: nothing was stored, nothing
 * runs.  Past a tenant's quota, or with the store full, the call is
 * error/unavailable: the gate cannot take the request now, and may once
 * approvals are decided or expire (see PROTOCOL.md).
 */
static void
request_refused(struct call *c, int rc)
{
	char	msg[512];

	if (rc == APQUOTA_COUNT)
		snprintf(msg, sizeof(msg), "tenant %s has %llu approvals"
		    " pending, its quota (approvals.max_pending_per_tenant):"
		    " the approval was not recorded", c->tenant,
		    (unsigned long long)ex->conf->max_pending_per_tenant);
	else if (rc == APQUOTA_BYTES)
		snprintf(msg, sizeof(msg), "tenant %s's pending approvals"
		    " would hold more than %llu bytes of args, its quota"
		    " (approvals.max_pending_bytes_per_tenant): the approval"
		    " was not recorded", c->tenant,
		    (unsigned long long)ex->conf->max_pending_bytes_per_tenant);
	else if (rc == MDB_MAP_FULL)
		snprintf(msg, sizeof(msg), "the store is full"
		    " (store.max_map_size): the approval was not recorded");
	else
		snprintf(msg, sizeof(msg), "the approval cannot be recorded:"
		    " %s", mdb_strerror(rc));
	log_warnx("approval for %s/%s %s refused: %s", c->tenant, c->run_id,
	    c->tool, msg);
	call_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
}

/* Request: called from call_dispatch for a covered write.  Owns c. */
void
approval_request(struct call *c, const msgpack_object *args)
{
	struct approval		 a;
	struct checkpoint	 cp;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	struct msgbuf		 mb;
	unsigned char		 rnd[APPROVAL_ID_LEN / 2];
	unsigned char		 h[crypto_hash_sha256_BYTES];
	char			*token, exp[32];
	int			 rc;

	memset(&a, 0, sizeof(a));
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(a.id, sizeof(a.id), rnd, sizeof(rnd));
	a.state = A_PENDING;
	a.tenant = xstrdup(c->tenant);
	a.env = xstrdup(c->env);
	a.run_id = xstrdup(c->run_id);
	a.step_id = c->step_id ? xstrdup(c->step_id) : NULL;
	a.tool = xstrdup(c->tool);
	a.args_hash = xstrdup(c->args_hash);
	crypto_hash_sha256(h, (unsigned char *)c->json.data, c->json.len);
	sodium_bin2hex(a.args_sha256, sizeof(a.args_sha256), h, sizeof(h));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *args);
	a.argslen = sb.size;
	a.args = msgpack_sbuffer_release(&sb);
	a.uid = c->uid;
	a.created_ms = now_ms();
	a.expires_at = (uint64_t)time(NULL) + ex->conf->approvals_ttl_s;

	/*
	 * Recorded before it is stored: a request the log cannot name is
	 * not made (one that cannot be stored is refused on the record).
	 */
	if (audit_approval("approval", &a, "requested", NULL, NULL) == -1) {
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
		goto out;
	}
	if ((rc = approval_put(&a, 1)) != 0) {
		request_refused(c, rc);
		goto out;
	}
	memset(&cp, 0, sizeof(cp));
	memcpy(cp.approval_id, a.id, sizeof(cp.approval_id));
	cp.tenant = a.tenant;
	cp.env = a.env;
	cp.run_id = a.run_id;
	cp.step_id = a.step_id;
	cp.tool = a.tool;
	memcpy(cp.args_sha256, a.args_sha256, sizeof(cp.args_sha256));
	cp.expires_at = a.expires_at;
	token = checkpoint_sign(&cp);
	log_info("approval %s requested: %s/%s %s %s", a.id, a.tenant,
	    a.run_id, a.tool, a.args_hash);

	snprintf(exp, sizeof(exp), "%llu", (unsigned long long)a.expires_at);
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, c->ans_type, c->id, 1);
	pk_str(&mb.pk, "response");
	msgpack_pack_map(&mb.pk, 7);
	pk_kv_str(&mb.pk, "status", ST_NEEDS_APPROVAL);
	pk_kv_str(&mb.pk, "stop_reason", R_APPROVAL_REQUIRED);
	pk_kv_str(&mb.pk, "approval_id", a.id);
	pk_kv_str(&mb.pk, "checkpoint", token);
	pk_kv_str(&mb.pk, "args_hash", a.args_hash);
	pk_kv_uint(&mb.pk, "expires_at", a.expires_at);
	pk_kv_str(&mb.pk, "message", "this write needs an operator's"
	    " approval: resume with the checkpoint once approved");
	ex_send(&mb);
	msgbuf_free(&mb);
	free(token);
out:
	approval_free(&a);
	call_free(c);
}

/* The record must say what the checkpoint says, field by field. */
static int
matches(const struct approval *a, const struct checkpoint *cp)
{
	return strcmp(a->tenant, cp->tenant) == 0 &&
	    strcmp(a->env, cp->env) == 0 &&
	    strcmp(a->run_id, cp->run_id) == 0 &&
	    strcmp(a->tool, cp->tool) == 0 &&
	    strcmp(a->args_sha256, cp->args_sha256) == 0 &&
	    a->expires_at == cp->expires_at &&
	    ((a->step_id == NULL && cp->step_id == NULL) ||
	    (a->step_id != NULL && cp->step_id != NULL &&
	    strcmp(a->step_id, cp->step_id) == 0));
}

/*
 * A resume whose checkpoint matched record a: answered by the record's
 * state, or, approved, run through the write path.  Owns c.
 */
static void
resume_decided(struct call *c, const struct approval *a)
{
	msgpack_unpacked	 u;
	char			 msg[512];
	size_t			 off = 0;

	switch (effective_state(a)) {
	case A_PENDING:
		send_response(MSG_RESUME_ANS, c->id, ST_PENDING, "approval_id",
		    a->id, "message", "no operator has decided yet");
		call_free(c);
		break;
	case A_DENIED:
		snprintf(msg, sizeof(msg), "an operator denied this write%s%s",
		    a->note ? ": " : "", a->note ? a->note : "");
		call_refuse(c, ST_DENIED, R_APPROVAL_DENIED, msg);
		call_free(c);
		break;
	case A_EXPIRED:
		call_refuse(c, ST_DENIED, R_APPROVAL_EXPIRED,
		    "no operator decided before the approval expired");
		call_free(c);
		break;
	case A_APPROVED:
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, a->args, a->argslen, &off) !=
		    MSGPACK_UNPACK_SUCCESS) {
			msgpack_unpacked_destroy(&u);
			call_refuse(c, ST_ERROR, E_INTERNAL,
			    "the approval's args do not decode");
			call_free(c);
			break;
		}
		c->approver = a->approver ? xstrdup(a->approver) : NULL;
		c->approval_id = xstrdup(a->id);
		/* The current policy decides again: it may have changed. */
		call_dispatch(c, &u.data, 1);
		msgpack_unpacked_destroy(&u);
		break;
	}
}

void
approval_resume(const struct proto_msg *m)
{
	const msgpack_object	*tok = mp_get(m->body, "checkpoint");
	struct checkpoint	 cp;
	struct approval		 a;
	struct call		*c;
	char			 err[256];
	int			 found;

	if ((c = call_new(m, MSG_RESUME_ANS)) == NULL)
		return;
	if (checkpoint_verify(tok->via.str.ptr, tok->via.str.size, &cp, err,
	    sizeof(err)) == -1) {
		c->tool = xstrdup("-");
		call_refuse(c, ST_DENIED, R_BAD_SIGNATURE, err);
		call_free(c);
		return;
	}
	c->run_id = xstrdup(cp.run_id);
	c->tool = xstrdup(cp.tool);
	c->step_id = cp.step_id ? xstrdup(cp.step_id) : NULL;
	if (strcmp(cp.tenant, c->tenant) != 0 || strcmp(cp.env, c->env) != 0) {
		log_warnx("resume: %s/%s presented a checkpoint of %s/%s",
		    c->tenant, c->env, cp.tenant, cp.env);
		call_refuse(c, ST_DENIED, R_BAD_SIGNATURE,
		    "the checkpoint belongs to another principal");
		goto out;
	}
	/*
	 * A checkpoint is good until writes.retention_s after its expiry:
	 * the approval record is kept exactly that long (on both clocks), so
	 * one that verifies always finds its record, or is told it expired.
	 */
	if ((uint64_t)time(NULL) >= cp.expires_at + ex->conf->retention_s) {
		call_refuse(c, ST_DENIED, R_APPROVAL_EXPIRED,
		    "the checkpoint has expired");
		goto out;
	}
	found = approval_get(cp.approval_id, &a);
	if (found == -1) {
		call_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "the approvals cannot be read");
		goto out;
	}
	if (found == 0 || !matches(&a, &cp)) {
		call_refuse(c, ST_DENIED, R_BAD_SIGNATURE,
		    "the checkpoint does not match an approval");
		approval_free(&a);
		goto out;
	}
	resume_decided(c, &a);
	approval_free(&a);
	checkpoint_free(&cp);
	return;
out:
	checkpoint_free(&cp);
	call_free(c);
}

/* Waiting for a decision. */

static void
waiter_free(struct waiter *w)
{
	TAILQ_REMOVE(&waiters, w, entry);
	nwaiters--;
	event_free(w->timer);
	free(w);
}

static void
waiter_answer(struct waiter *w, const char *state)
{
	send_response(MSG_WAIT_ANS, w->id, ST_OK, "state", state,
	    "approval_id", w->approval_id);
	waiter_free(w);
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct waiter	*w = arg;
	struct approval	 a;
	int		 found;

	(void)fd;
	(void)what;
	found = approval_get(w->approval_id, &a);
	waiter_answer(w, found == 1 ?
	    approval_state_str(effective_state(&a)) : "expired");
	approval_free(&a);
}

void
approval_wait(const struct proto_msg *m)
{
	const msgpack_object	*aid = mp_get(m->body, "approval_id");
	const struct principal	*p;
	struct approval		 a;
	struct waiter		*w;
	struct timeval		 tv;
	uint64_t		 ms, left;
	char			*id = mp_strdup(aid);
	uid_t			 uid;
	int			 found;

	p = peer_principal(m->body, &uid);
	found = approval_get(id, &a);
	/* Another principal's approval is answered as if it did not exist. */
	if (p == NULL || found != 1 || strcmp(a.tenant, p->tenant) != 0 ||
	    strcmp(a.env, p->env) != 0) {
		send_response(MSG_WAIT_ANS, m->id, ST_ERROR, "error",
		    E_BAD_REQUEST, "message", "no such approval");
		goto out;
	}
	if (effective_state(&a) != A_PENDING) {
		send_response(MSG_WAIT_ANS, m->id, ST_OK, "state",
		    approval_state_str(effective_state(&a)), "approval_id", id);
		goto out;
	}
	ms = mp_get(m->body, "timeout_ms")->via.u64;
	if (ms > WAIT_MAX_MS)
		ms = WAIT_MAX_MS;
	/* Wake at the expiry at the latest, to say so. */
	left = (a.expires_at - (uint64_t)time(NULL)) * 1000;
	if (left < ms)
		ms = left;
	w = xcalloc(1, sizeof(*w));
	w->id = m->id;
	w->conn = mp_get(m->body, "conn")->via.u64;
	memcpy(w->approval_id, a.id, sizeof(w->approval_id));
	w->timer = evtimer_new(ex->base, waiter_timeout, w);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(w->timer, &tv);
	TAILQ_INSERT_TAIL(&waiters, w, entry);
	nwaiters++;
out:
	approval_free(&a);
	free(id);
}

size_t
approval_conn_gone(uint64_t conn)
{
	struct waiter	*w, *next;
	size_t		 n = 0;

	for (w = TAILQ_FIRST(&waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->conn != conn)
			continue;
		/* No one reads it: it only frees gatewayd's slot for it. */
		send_response(MSG_WAIT_ANS, w->id, ST_ERROR, "error",
		    E_UNAVAILABLE, "message", "the agent has hung up");
		waiter_free(w);
		n++;
	}
	return n;
}

size_t
approvals_waiting(void)
{
	return nwaiters;
}

static void
wake_waiters(const char *id, const char *state)
{
	struct waiter	*w, *next;

	for (w = TAILQ_FIRST(&waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (strcmp(w->approval_id, id) == 0)
			waiter_answer(w, state);
	}
}

/* The control socket's side. */

/*
 * The canonical JSON of a's args: 0, or -1 when they do not decode (a
 * denied approval keeps none).
 */
static int
args_json(const struct approval *a, struct canon_buf *json)
{
	msgpack_unpacked	u;
	char			err[64];
	size_t			off = 0;
	int			rc = -1;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, a->args, a->argslen, &off) ==
	    MSGPACK_UNPACK_SUCCESS &&
	    canon_json(&u.data, 1, json, err, sizeof(err)) == 0)
		rc = 0;
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* At most max bytes of s, not cutting a UTF-8 sequence in two. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* The fields every item has: 10 of them. */
static void
pack_head(msgpack_packer *pk, const struct approval *a)
{
	pk_kv_str(pk, "approval_id", a->id);
	pk_kv_str(pk, "tenant", a->tenant);
	pk_kv_str(pk, "env", a->env);
	pk_kv_str(pk, "tool", a->tool);
	pk_kv_str(pk, "args_hash", a->args_hash);
	pk_kv_str(pk, "run_id", a->run_id);
	if (a->step_id != NULL)
		pk_kv_str(pk, "step_id", a->step_id);
	else
		pk_kv_nil(pk, "step_id");
	pk_kv_uint(pk, "uid", a->uid);
	pk_kv_uint(pk, "created_ms", a->created_ms);
	pk_kv_uint(pk, "expires_at", a->expires_at);
}

/*
 * An item of a list: its args cut short (the first APPROVAL_ARGS_PREVIEW
 * bytes of the canonical JSON), so a page of them stays small whatever
 * the args; "approval ID" shows them in full.
 */
static void
pack_item(msgpack_packer *pk, const struct approval *a)
{
	struct canon_buf	json = { NULL, 0, 0 };
	size_t			cut;

	msgpack_pack_map(pk, 13);
	pack_head(pk, a);
	if (args_json(a, &json) == 0) {
		cut = utf8_cut(json.data, json.len, APPROVAL_ARGS_PREVIEW);
		pk_str(pk, "args");
		msgpack_pack_str(pk, cut);
		msgpack_pack_str_body(pk, json.data, cut);
		pk_kv_uint(pk, "args_bytes", json.len);
		pk_kv_bool(pk, "truncated", cut < json.len);
	} else {
		pk_kv_nil(pk, "args");
		pk_kv_uint(pk, "args_bytes", 0);
		pk_kv_bool(pk, "truncated", 0);
	}
	canon_buf_free(&json);
}

struct page_arg {
	const char	*after;		/* NULL: from the first */
	size_t		 limit;
	char		(*ids)[APPROVAL_ID_LEN + 1];
	size_t		 n;
	int		 more;		/* another one follows the page */
};

/*
 * The ids of one page of pending approvals, in id order, after 'after',
 * and whether more follow.  The args are not converted here: only the
 * page's items are, when packed.
 */
static int
page_txn(MDB_txn *txn, void *arg)
{
	struct page_arg	*pa = arg;
	struct approval	 a;
	MDB_cursor	*cur;
	MDB_cursor_op	 op = MDB_FIRST;
	MDB_val		 k, v;
	int		 rc;

	pa->n = 0;
	pa->more = 0;
	if ((rc = mdb_cursor_open(txn, store_dbi(ex->store, DB_APPROVALS),
	    &cur)) != 0)
		return rc;
	if (pa->after != NULL) {
		k.mv_data = (void *)pa->after;
		k.mv_size = strlen(pa->after);
		op = MDB_SET_RANGE;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (pa->after != NULL && k.mv_size == strlen(pa->after) &&
		    memcmp(k.mv_data, pa->after, k.mv_size) == 0)
			continue;
		if (approval_decode(v.mv_data, v.mv_size, &a) == -1)
			continue;
		if (effective_state(&a) == A_PENDING) {
			if (pa->n == pa->limit) {
				pa->more = 1;
				approval_free(&a);
				break;
			}
			memcpy(pa->ids[pa->n++], a.id, sizeof(a.id));
		}
		approval_free(&a);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
approvals_pack_page(msgpack_packer *pk, const char *after, size_t limit)
{
	struct page_arg	 pa = { after, limit, NULL, 0, 0 };
	struct approval	 a;
	size_t		 i;
	int		 rc;

	pa.ids = xreallocarray(NULL, limit, sizeof(*pa.ids));
	if ((rc = store_read(ex->store, page_txn, &pa)) != 0) {
		free(pa.ids);
		return -1;
	}
	msgpack_pack_map(pk, 2 + pa.more);
	pk_kv_bool(pk, "ok", 1);
	pk_str(pk, "items");
	msgpack_pack_array(pk, pa.n);
	/* Single-threaded: every id of the page is still there. */
	for (i = 0; i < pa.n; i++) {
		if (approval_get(pa.ids[i], &a) == 1)
			pack_item(pk, &a);
		else
			msgpack_pack_nil(pk);
		approval_free(&a);
	}
	if (pa.more)
		pk_kv_str(pk, "next", pa.ids[pa.n - 1]);
	free(pa.ids);
	return 0;
}

int
approval_pack_one(msgpack_packer *pk, const char *id)
{
	struct approval		a;
	struct canon_buf	json = { NULL, 0, 0 };
	msgpack_unpacked	u;
	size_t			off = 0;
	int			found;

	if ((found = approval_get(id, &a)) != 1)
		return found;
	msgpack_pack_map(pk, 18);
	pk_kv_bool(pk, "ok", 1);
	pack_head(pk, &a);
	pk_kv_str(pk, "state", approval_state_str(effective_state(&a)));
	pk_kv_uint(pk, "decided_ms", a.decided_ms);
	if (a.approver != NULL)
		pk_kv_str(pk, "approver", a.approver);
	else
		pk_kv_nil(pk, "approver");
	if (a.note != NULL)
		pk_kv_str(pk, "note", a.note);
	else
		pk_kv_nil(pk, "note");
	/*
	 * The args in full, as the msgpack map they were stored as (no
	 * larger than the agent's frame, limits.max_frame), not as JSON,
	 * which can be six times larger: gatewayctl prints the canonical
	 * JSON.  A denied approval keeps none: nil.
	 */
	pk_str(pk, "args");
	msgpack_unpacked_init(&u);
	if (args_json(&a, &json) == 0 &&
	    msgpack_unpack_next(&u, a.args, a.argslen, &off) ==
	    MSGPACK_UNPACK_SUCCESS)
		msgpack_pack_object(pk, u.data);
	else
		msgpack_pack_nil(pk);
	msgpack_unpacked_destroy(&u);
	pk_kv_uint(pk, "args_bytes", json.len);
	pk_kv_bool(pk, "truncated", 0);
	canon_buf_free(&json);
	approval_free(&a);
	return 1;
}

struct count_arg {
	size_t		 n;
};

static int
count_txn(MDB_txn *txn, void *arg)
{
	struct count_arg	*ca = arg;
	struct approval		 a;
	MDB_cursor		*cur;
	MDB_val			 k, v;
	int			 rc;

	ca->n = 0;
	if ((rc = mdb_cursor_open(txn, store_dbi(ex->store, DB_APPROVALS),
	    &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (approval_decode(v.mv_data, v.mv_size, &a) == -1)
			continue;
		if (effective_state(&a) == A_PENDING)
			ca->n++;
		approval_free(&a);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

size_t
approvals_pending(void)
{
	struct count_arg	ca = { 0 };

	if (store_read(ex->store, count_txn, &ca) != 0)
		return 0;
	return ca.n;
}

int
approval_decide(const char *id, int approve, const char *who,
    const char *note, char *err, size_t errlen)
{
	struct approval	a;
	int		found, rc;

	found = approval_get(id, &a);
	if (found != 1) {
		snprintf(err, errlen, found == 0 ? "no approval %s" :
		    "the approvals cannot be read", id);
		return -1;
	}
	if (effective_state(&a) != A_PENDING) {
		snprintf(err, errlen, "approval %s is %s already", id,
		    approval_state_str(effective_state(&a)));
		approval_free(&a);
		return -1;
	}
	/* A decision the audit log cannot take is not taken. */
	if (!audit_up()) {
		snprintf(err, errlen, "the audit log cannot be written: the"
		    " decision is not taken");
		approval_free(&a);
		return -1;
	}
	a.state = approve ? A_APPROVED : A_DENIED;
	a.decided_ms = now_ms();
	/*
	 * A denied write never runs: its args are not kept, so a denial
	 * frees their room and fits in the store's reserve.
	 */
	if (!approve) {
		free(a.args);
		a.args = xstrdup("");	/* not NULL: it is copied */
		a.argslen = 0;
	}
	a.approver = xstrdup(who);
	a.note = note ? xstrdup(note) : NULL;
	if ((rc = approval_put(&a, 0)) != 0) {
		snprintf(err, errlen, "the decision cannot be stored: %s",
		    mdb_strerror(rc));
		approval_free(&a);
		return -1;
	}
	(void)audit_approval("decision", &a, approve ? "approved" :
	    "denied", who, note);
	log_info("approval %s %s by %s", id, approve ? "approved" : "denied",
	    who);
	wake_waiters(id, approval_state_str(a.state));
	approval_free(&a);
	return 0;
}

void
approvals_init(void)
{
	checkpoint_keys_init(ex->conf->state_dir, ex->conf->credentials_dir,
	    ex->conf->approvals_ttl_s);
}

void
approvals_shutdown(void)
{
	struct waiter	*w;

	while ((w = TAILQ_FIRST(&waiters)) != NULL)
		waiter_free(w);
}
