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
 *
 * On the shared store (PostgreSQL) the operator's commands ask the
 * database: that side is apshared.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <msgpack.h>
#include <sodium.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/policy.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/apquota.h"
#include "executor/apstore.h"
#include "executor/backend.h"
#include "executor/breaker.h"
#include "executor/checkpoint.h"
#include "executor/executor.h"
#include "executor/jobs.h"
#include "executor/pgstore.h"
#include "executor/read.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/store.h"
#include "executor/write.h"
#include "executor/approval.h"
#include "executor/apshared.h"

#define WAIT_MAX_MS		300000	/* one wait at most five minutes */

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

/*
 * The state now: a pending approval past its expiry is expired (the
 * store's approval_effective_state).
 */
static enum approval_state
effective_state(const struct approval *a)
{
	return approval_effective_state(a);
}

int
approval_audit(const char *event, const struct approval *a,
    const char *decision, const char *who, const char *note)
{
	const struct tool	*t = policy_tool(ex->conf, a->tool);
	struct audit_rec	ar = {
		.event = event,
		.tenant = a->tenant,
		.env = a->env,
		.uid = (long long)a->uid,
		.run_id = a->run_id,
		.step_id = a->step_id,
		.tool = a->tool,
		.args_hash = a->args_hash,
		.mode = "write",
		.backend = t != NULL ? backend_name(t) : NULL,
		.decision = decision,
		.approval_id = a->id,
		.approver = who,
		.note = note,
		.traceparent = a->traceparent,
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
	else if (rc == STORE_FULL)
		snprintf(msg, sizeof(msg), "the store is full"
		    " (store.max_map_size): the approval was not recorded");
	else
		snprintf(msg, sizeof(msg), "the approval cannot be recorded:"
		    " %s", store_strerror(rc));
	log_warnx("approval for %s/%s %s refused: %s", c->tenant, c->run_id,
	    c->tool, msg);
	answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
}

/*
 * Record c's approval as approval 'id' (a->id): audited, then stored.  0,
 * or -1 when it was refused (c answered).
 */
static int
approval_make(struct call *c, const msgpack_object *args, struct approval *a)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	unsigned char		 h[crypto_hash_sha256_BYTES];
	int			 rc;

	a->state = A_PENDING;
	a->tenant = xstrdup(c->tenant);
	a->env = xstrdup(c->env);
	a->run_id = xstrdup(c->run_id);
	a->step_id = c->step_id ? xstrdup(c->step_id) : NULL;
	a->traceparent = c->traceparent ? xstrdup(c->traceparent) : NULL;
	a->tool = xstrdup(c->tool);
	a->args_hash = xstrdup(c->args_hash);
	crypto_hash_sha256(h, (unsigned char *)c->json.data, c->json.len);
	sodium_bin2hex(a->args_sha256, sizeof(a->args_sha256), h, sizeof(h));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *args);
	a->argslen = sb.size;
	a->args = msgpack_sbuffer_release(&sb);
	a->uid = c->uid;
	a->created_ms = now_ms();
	a->expires_at = (uint64_t)time(NULL) + ex->conf->approvals_ttl_s;

	/*
	 * Recorded before it is stored: a request the log cannot name is
	 * not made (one that cannot be stored is refused on the record).
	 */
	if (approval_audit("approval", a, "requested", NULL, NULL) == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
		return -1;
	}
	if ((rc = approval_put(a, 1)) != 0) {
		request_refused(c, rc);
		return -1;
	}
	return 0;
}

/* A compensation's approval on its way to the database. */
struct id_req {
	void	(*stored)(int, void *);
	void	*arg;
};

static void
id_stored(int ok, void *arg)
{
	struct id_req	*r = arg;

	job_end();
	r->stored(ok, r->arg);
	free(r);
}

void
approval_request_id(struct call *c, const msgpack_object *args,
    const char *id, void (*stored)(int ok, void *), void *arg)
{
	struct approval	 a;
	struct id_req	*r;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	if (approval_make(c, args, &a) == -1)
		goto out;
	log_info("approval %s requested: %s/%s %s %s (compensates %s)",
	    a.id, a.tenant, a.run_id, a.tool, a.args_hash,
	    c->compensates ? c->compensates : "-");
	/* Shared: pending once every host can see it, as request_shared. */
	if (!pgstore_on()) {
		stored(1, arg);
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	r->stored = stored;
	r->arg = arg;
	job_begin();
	if (pgstore_approval_insert(&a, id_stored, r) == -1)
		id_stored(0, r);
out:
	approval_free(&a);
	call_free(c);
}

/* needs_approval, with the checkpoint. */
static void
request_answer(struct call *c, const struct approval *a, const char *token)
{
	answer_plain(c->ans_type, c->id, &(struct response){
	    .status = ST_NEEDS_APPROVAL, .reason = R_APPROVAL_REQUIRED,
	    .approval_id = a->id, .checkpoint = token,
	    .args_hash = a->args_hash, .has_expires_at = 1,
	    .expires_at = a->expires_at,
	    .message = "this write needs an operator's approval: resume with"
	    " the checkpoint once approved" });
}

/* A request on its way to the shared store. */
struct shared_req {
	struct call	*c;
	char		 id[APPROVAL_ID_LEN + 1];
	char		*args_hash;
	uint64_t	 expires_at;
	char		*token;
};

#define SHARED_DOWN_MSG	"the shared store (PostgreSQL) cannot record the" \
			" approval: it was not requested"

static void
request_stored(int ok, void *arg)
{
	struct shared_req	*sr = arg;
	struct approval		 a;

	if (ok) {
		memset(&a, 0, sizeof(a));
		memcpy(a.id, sr->id, sizeof(a.id));
		a.args_hash = sr->args_hash;
		a.expires_at = sr->expires_at;
		request_answer(sr->c, &a, sr->token);
	} else
		answer_refuse(sr->c, ST_ERROR, E_UNAVAILABLE,
		    SHARED_DOWN_MSG);
	call_free(sr->c);
	free(sr->args_hash);
	free(sr->token);
	free(sr);
	job_end();
}

/*
 * Shared: the record goes to the database too, and the agent is answered
 * once it is there, so that an operator on any host sees it.  Stored here
 * already, it is the local copy the resume reads (this host's quota
 * counts it); should the database refuse it, it is never answered and
 * expires unused.  Owns c.
 */
static void
request_shared(struct call *c, const struct approval *a, const char *token)
{
	struct shared_req	*sr;

	sr = xcalloc(1, sizeof(*sr));
	sr->c = c;
	memcpy(sr->id, a->id, sizeof(sr->id));
	sr->args_hash = xstrdup(a->args_hash);
	sr->expires_at = a->expires_at;
	sr->token = xstrdup(token);
	job_begin();
	if (pgstore_approval_insert(a, request_stored, sr) == -1)
		request_stored(0, sr);
}

/* Request: called from call_handle for a covered write.  Owns c. */
void
approval_request(struct call *c, const msgpack_object *args)
{
	struct approval		 a;
	struct checkpoint	 cp;
	unsigned char		 rnd[APPROVAL_ID_LEN / 2];
	char			*token;

	memset(&a, 0, sizeof(a));
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(a.id, sizeof(a.id), rnd, sizeof(rnd));
	if (approval_make(c, args, &a) == -1)
		goto out;
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
	/* Shared: answered once every host can see it (request_shared). */
	if (pgstore_on()) {
		request_shared(c, &a, token);
		free(token);
		approval_free(&a);
		return;
	}
	request_answer(c, &a, token);
	free(token);
out:
	approval_free(&a);
	call_free(c);
}

/* An approved write, checked again, goes down its path.  Owns c. */
static void
resume_run(struct call *c, const msgpack_object *args)
{
	const struct tool	*tool;
	uint64_t		 retry;
	char			 msg[256];

	switch (call_check(c, args, 1, &tool)) {
	case ROUTE_NONE:
		break;
	case ROUTE_READ:
		/* The policy made it a read since. */
		read_start(c, tool);
		break;
	case ROUTE_WRITE:
		/*
		 * Refused here, an approval is not spent: the write path
		 * would record the attempt (breaker.h).
		 */
		if (breaker_peek(c->tenant, tool, &retry) == -1) {
			snprintf(msg, sizeof(msg), "the tool's circuit breaker"
			    " is open after repeated failures: resume again in"
			    " %llu ms", (unsigned long long)retry);
			answer_refuse_retry(c, ST_DENIED, R_CIRCUIT_OPEN, msg,
			    retry);
			call_free(c);
			break;
		}
		write_start(c, tool);
		break;
	case ROUTE_APPROVAL:
		fatalx("resume_run: an approved write needs approval");
	}
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
		answer_plain(MSG_RESUME_ANS, c->id, &(struct response){
		    .status = ST_PENDING, .approval_id = a->id,
		    .message = "no operator has decided yet" });
		call_free(c);
		break;
	case A_DENIED:
		snprintf(msg, sizeof(msg), "an operator denied this write%s%s",
		    a->note ? ": " : "", a->note ? a->note : "");
		answer_refuse(c, ST_DENIED, R_APPROVAL_DENIED, msg);
		call_free(c);
		break;
	case A_EXPIRED:
		answer_refuse(c, ST_DENIED, R_APPROVAL_EXPIRED,
		    "no operator decided before the approval expired");
		call_free(c);
		break;
	case A_APPROVED:
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, a->args, a->argslen, &off) !=
		    MSGPACK_UNPACK_SUCCESS) {
			msgpack_unpacked_destroy(&u);
			answer_refuse(c, ST_ERROR, E_INTERNAL,
			    "the approval's args do not decode");
			call_free(c);
			break;
		}
		c->approver = a->approver ? xstrdup(a->approver) : NULL;
		/* The current policy decides again: it may have changed. */
		resume_run(c, &u.data);
		msgpack_unpacked_destroy(&u);
		break;
	}
}

struct refresh {
	struct call	*c;
	char		 id[APPROVAL_ID_LEN + 1];
};

/* The shared record of a resume's approval, pending here.  Owns c. */
static void
resume_refreshed(int rc, struct approval *a, const char *host, void *arg)
{
	struct refresh	*rf = arg;
	struct call	*c = rf->c;
	struct approval	 local;
	int		 found;

	(void)host;
	job_end();
	if (rc == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, "the shared store"
		    " (PostgreSQL) cannot be reached: the approval cannot be"
		    " read");
		call_free(c);
		free(rf);
		return;
	}
	if (rc == 1 && a != NULL)
		(void)approval_bring_copy(a, 1);
	/* This host's copy, now as decided: what the resume goes by. */
	found = approval_get(rf->id, &local);
	free(rf);
	if (found != 1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "the approvals cannot be read");
		call_free(c);
		return;
	}
	resume_decided(c, &local);
	approval_free(&local);
}

/*
 * A resume whose checkpoint verified and whose record was looked up
 * (found: 1, 0, -1).  Owns c; a is freed here.
 */
static void
resume_found(struct call *c, int found, struct approval *a,
    const struct checkpoint *cp)
{
	if (found == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "the approvals cannot be read");
		call_free(c);
		return;
	}
	if (found == 0 || !matches(a, cp)) {
		answer_refuse(c, ST_DENIED, R_BAD_SIGNATURE,
		    "the checkpoint does not match an approval");
		approval_free(a);
		call_free(c);
		return;
	}
	/* The resume carries none: the write goes on the asking call's. */
	if (c->traceparent == NULL && a->traceparent != NULL)
		c->traceparent = xstrdup(a->traceparent);
	/*
	 * Shared: pending here may be decided on another host, its news
	 * not here yet: the database says (resume_refreshed).
	 */
	if (pgstore_on() && a->state == A_PENDING &&
	    effective_state(a) == A_PENDING) {
		struct refresh	*rf = xcalloc(1, sizeof(*rf));

		rf->c = c;
		memcpy(rf->id, a->id, sizeof(rf->id));
		job_begin();
		if (pgstore_approval_get(a->id, resume_refreshed, rf) == -1)
			resume_refreshed(-1, NULL, NULL, rf);
		approval_free(a);
		return;
	}
	resume_decided(c, a);
	approval_free(a);
}

/* A resume on the shared store waiting for the database. */
struct resume_wait {
	struct call		*c;
	char			*tok;		/* verify again with peers' keys */
	struct checkpoint	 cp;		/* or: verified, record asked */
};

/*
 * Shared: the record of a checkpoint another host issued, from the
 * database; copied here, the resume goes as if it were ours.
 */
static void
resume_fetched(int rc, struct approval *a, const char *host, void *arg)
{
	struct resume_wait	*rw = arg;
	struct approval		 local;
	int			 found = 0, prc;

	(void)host;
	job_end();
	memset(&local, 0, sizeof(local));
	if (rc == -1)
		found = -1;
	else if (rc == 1 && a != NULL && matches(a, &rw->cp)) {
		if ((prc = approval_put_copy(a)) != 0) {
			log_warnx("approval %s: the copy of host %s's record"
			    " cannot be stored: %s", a->id, host,
			    store_strerror(prc));
			found = -1;
		} else
			found = approval_get(a->id, &local);
	}
	resume_found(rw->c, found, &local, &rw->cp);
	checkpoint_free(&rw->cp);
	free(rw);
}

/* The checkpoint verified: its principal, its expiry, its record.  Owns c. */
static void
resume_verified(struct call *c, struct checkpoint *cp)
{
	struct resume_wait	*rw;
	struct approval		 a;
	int			 found;

	c->run_id = xstrdup(cp->run_id);
	c->tool = xstrdup(cp->tool);
	c->step_id = cp->step_id ? xstrdup(cp->step_id) : NULL;
	/* Ours, signed: its records name it whatever the answer. */
	c->approval_id = xstrdup(cp->approval_id);
	if (strcmp(cp->tenant, c->tenant) != 0 ||
	    strcmp(cp->env, c->env) != 0) {
		log_warnx("resume: %s/%s presented a checkpoint of %s/%s",
		    c->tenant, c->env, cp->tenant, cp->env);
		answer_refuse(c, ST_DENIED, R_BAD_SIGNATURE,
		    "the checkpoint belongs to another principal");
		goto out;
	}
	/*
	 * A checkpoint is good until writes.retention_s after its expiry:
	 * the approval record is kept exactly that long (on both clocks), so
	 * one that verifies always finds its record, or is told it expired.
	 */
	if ((uint64_t)time(NULL) >= cp->expires_at + ex->conf->retention_s) {
		answer_refuse(c, ST_DENIED, R_APPROVAL_EXPIRED,
		    "the checkpoint has expired");
		goto out;
	}
	found = approval_get(cp->approval_id, &a);
	/* Shared: issued on another host, its record is the database's. */
	if (found == 0 && pgstore_on()) {
		rw = xcalloc(1, sizeof(*rw));
		rw->c = c;
		rw->cp = *cp;
		memset(cp, 0, sizeof(*cp));
		job_begin();
		if (pgstore_approval_get(rw->cp.approval_id, resume_fetched,
		    rw) == -1)
			resume_fetched(-1, NULL, NULL, rw);
		return;
	}
	resume_found(c, found, &a, cp);
	checkpoint_free(cp);
	return;
out:
	checkpoint_free(cp);
	call_free(c);
}

/* Shared: the other hosts' keys are read; the checkpoint verified again. */
static void
resume_keys(int ok, void *arg)
{
	struct resume_wait	*rw = arg;
	struct checkpoint	 cp;
	char			 err[256];

	job_end();
	if (checkpoint_verify(rw->tok, strlen(rw->tok), &cp, err,
	    sizeof(err)) == -1) {
		rw->c->tool = xstrdup("-");
		if (!ok)
			answer_refuse(rw->c, ST_ERROR, E_UNAVAILABLE, "the"
			    " shared store (PostgreSQL) cannot be reached: the"
			    " checkpoint cannot be verified");
		else
			answer_refuse(rw->c, ST_DENIED, R_BAD_SIGNATURE, err);
		call_free(rw->c);
	} else
		resume_verified(rw->c, &cp);
	free(rw->tok);
	free(rw);
}

void
approval_resume(const struct proto_msg *m)
{
	const char		*tok = m->resume.checkpoint;
	struct resume_wait	*rw;
	struct checkpoint	 cp;
	struct call		*c;
	char			 err[256];

	if ((c = call_new(m, MSG_RESUME_ANS)) == NULL)
		return;
	if (checkpoint_verify(tok, strlen(tok), &cp, err,
	    sizeof(err)) == -1) {
		/* Shared: maybe another host's key, published since. */
		if (pgstore_on() && strcmp(err, CHECKPOINT_UNKNOWN_KEY) == 0) {
			rw = xcalloc(1, sizeof(*rw));
			rw->c = c;
			rw->tok = xstrdup(tok);
			job_begin();
			if (pgstore_peer_keys(resume_keys, rw) == -1)
				resume_keys(0, rw);
			return;
		}
		c->tool = xstrdup("-");
		answer_refuse(c, ST_DENIED, R_BAD_SIGNATURE, err);
		call_free(c);
		return;
	}
	resume_verified(c, &cp);
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
	answer_plain(MSG_WAIT_ANS, w->id, &(struct response){ .status = ST_OK,
	    .state = state, .approval_id = w->approval_id });
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

/*
 * A wait whose record was looked up (found: 1, 0, -1): parked, or
 * answered now.  a is freed here.
 */
static void
wait_found(const char *id, uint64_t msgid, uint64_t conn,
    const struct principal *p, int found, struct approval *a,
    uint64_t timeout_ms)
{
	struct waiter		*w;
	struct timeval		 tv;
	uint64_t		 ms, left;

	/* Another principal's approval is answered as if it did not exist. */
	if (p == NULL || found != 1 || strcmp(a->tenant, p->tenant) != 0 ||
	    strcmp(a->env, p->env) != 0) {
		answer_plain(MSG_WAIT_ANS, msgid, &(struct response){
		    .status = ST_ERROR, .reason = E_BAD_REQUEST,
		    .message = "no such approval" });
		goto out;
	}
	if (effective_state(a) != A_PENDING) {
		answer_plain(MSG_WAIT_ANS, msgid, &(struct response){
		    .status = ST_OK,
		    .state = approval_state_str(effective_state(a)),
		    .approval_id = id });
		goto out;
	}
	ms = timeout_ms;
	if (ms > WAIT_MAX_MS)
		ms = WAIT_MAX_MS;
	/* Wake at the expiry at the latest, to say so. */
	left = (a->expires_at - (uint64_t)time(NULL)) * 1000;
	if (left < ms)
		ms = left;
	w = xcalloc(1, sizeof(*w));
	w->id = msgid;
	w->conn = conn;
	memcpy(w->approval_id, a->id, sizeof(w->approval_id));
	w->timer = evtimer_new(ex->base, waiter_timeout, w);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(w->timer, &tv);
	TAILQ_INSERT_TAIL(&waiters, w, entry);
	nwaiters++;
out:
	approval_free(a);
}

/* A wait on the shared store for a record this host has no copy of. */
struct wait_fetch {
	char			 id[APPROVAL_ID_LEN + 1];
	uint64_t		 msgid, conn, timeout_ms;
	const struct principal	*p;
};

static void
wait_fetched(int rc, struct approval *a, const char *host, void *arg)
{
	struct wait_fetch	*wf = arg;
	struct approval		 local;
	int			 found = 0;

	(void)host;
	job_end();
	memset(&local, 0, sizeof(local));
	/* Only the principal's own is copied here. */
	if (rc == 1 && a != NULL && wf->p != NULL &&
	    strcmp(a->tenant, wf->p->tenant) == 0 &&
	    strcmp(a->env, wf->p->env) == 0 && approval_put_copy(a) == 0)
		found = approval_get(wf->id, &local);
	wait_found(wf->id, wf->msgid, wf->conn, wf->p, found, &local,
	    wf->timeout_ms);
	free(wf);
}

void
approval_wait(const struct proto_msg *m)
{
	const char		*id = m->wait.approval_id;
	const struct principal	*p;
	struct wait_fetch	*wf;
	struct claim		 cl;
	struct approval		 a;
	uid_t			 uid;
	int			 found;

	request_claim(m, &cl);
	p = peer_principal(&cl, &uid);
	found = approval_get(id, &a);
	/* Shared: requested on another host; its record is the database's. */
	if (found == 0 && p != NULL && pgstore_on() &&
	    strlen(id) == APPROVAL_ID_LEN) {
		wf = xcalloc(1, sizeof(*wf));
		memcpy(wf->id, id, APPROVAL_ID_LEN);
		wf->msgid = m->id;
		wf->conn = m->wait.conn;
		wf->timeout_ms = m->wait.timeout_ms;
		wf->p = p;
		job_begin();
		if (pgstore_approval_get(id, wait_fetched, wf) == -1)
			wait_fetched(-1, NULL, NULL, wf);
		approval_free(&a);
		return;
	}
	wait_found(id, m->id, m->wait.conn, p, found, &a,
	    m->wait.timeout_ms);
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
		answer_plain(MSG_WAIT_ANS, w->id, &(struct response){
		    .status = ST_ERROR, .reason = E_UNAVAILABLE,
		    .message = "the agent has hung up" });
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

/* The fields every item has. */
static void
pack_head(struct mpmap *m, const struct approval *a)
{
	mpmap_str(m, "approval_id", a->id);
	mpmap_str(m, "tenant", a->tenant);
	mpmap_str(m, "env", a->env);
	mpmap_str(m, "tool", a->tool);
	mpmap_str(m, "args_hash", a->args_hash);
	mpmap_str(m, "run_id", a->run_id);
	mpmap_str_or_nil(m, "step_id", a->step_id);
	mpmap_uint(m, "uid", a->uid);
	mpmap_uint(m, "created_ms", a->created_ms);
	mpmap_uint(m, "expires_at", a->expires_at);
}

/*
 * An item of a list: its args cut short (the first APPROVAL_ARGS_PREVIEW
 * bytes of the canonical JSON), so a page of them stays small whatever
 * the args; "approval ID" shows them in full.
 */
void
approval_pack_item(struct msgbuf *mb, const struct approval *a)
{
	struct canon_buf	json = { NULL, 0, 0 };
	struct mpmap		m;
	size_t			cut;

	mpmap_begin(&m, mb);
	pack_head(&m, a);
	if (args_json(a, &json) == 0) {
		cut = utf8_cut(json.data, json.len, APPROVAL_ARGS_PREVIEW);
		pk_strn(mpmap_key(&m, "args"), json.data, cut);
		mpmap_uint(&m, "args_bytes", json.len);
		mpmap_bool(&m, "truncated", cut < json.len);
	} else {
		mpmap_nil(&m, "args");
		mpmap_uint(&m, "args_bytes", 0);
		mpmap_bool(&m, "truncated", 0);
	}
	mpmap_end(&m);
	canon_buf_free(&json);
}

int
approvals_pack_page(struct msgbuf *mb, const char *after, size_t limit)
{
	char		(*ids)[APPROVAL_ID_LEN + 1];
	struct approval	 a;
	struct mpmap	 m;
	size_t		 i, n;
	int		 more;

	ids = xreallocarray(NULL, limit, sizeof(*ids));
	if (approvals_page(after, limit, ids, &n, &more) != 0) {
		free(ids);
		return -1;
	}
	mpmap_begin(&m, mb);
	mpmap_bool(&m, "ok", 1);
	msgpack_pack_array(mpmap_key(&m, "items"), n);
	/* Single-threaded: every id of the page is still there. */
	for (i = 0; i < n; i++) {
		if (approval_get(ids[i], &a) == 1)
			approval_pack_item(mb, &a);
		else
			msgpack_pack_nil(&mb->pk);
		approval_free(&a);
	}
	if (more)
		mpmap_str(&m, "next", ids[n - 1]);
	mpmap_end(&m);
	free(ids);
	return 0;
}

int
approval_pack_one(struct msgbuf *mb, const char *id)
{
	struct approval		a;
	int			found;

	if ((found = approval_get(id, &a)) != 1)
		return found;
	approval_pack_full(mb, &a);
	approval_free(&a);
	return 1;
}

/* {ok, the fields, args in full} */
void
approval_pack_full(struct msgbuf *mb, const struct approval *ap)
{
	struct approval		a = *ap;
	struct mpmap		m;
	struct canon_buf	json = { NULL, 0, 0 };
	msgpack_unpacked	u;
	size_t			off = 0;

	mpmap_begin(&m, mb);
	mpmap_bool(&m, "ok", 1);
	pack_head(&m, &a);
	mpmap_str(&m, "state", approval_state_str(effective_state(&a)));
	mpmap_uint(&m, "decided_ms", a.decided_ms);
	mpmap_str_or_nil(&m, "approver", a.approver);
	mpmap_str_or_nil(&m, "note", a.note);
	/*
	 * The args in full, as the msgpack map they were stored as (no
	 * larger than the agent's frame, limits.max_frame), not as JSON,
	 * which can be six times larger: gatewayctl prints the canonical
	 * JSON.  A denied approval keeps none: nil.
	 */
	(void)mpmap_key(&m, "args");
	msgpack_unpacked_init(&u);
	if (args_json(&a, &json) == 0 &&
	    msgpack_unpack_next(&u, a.args, a.argslen, &off) ==
	    MSGPACK_UNPACK_SUCCESS)
		msgpack_pack_object(&mb->pk, u.data);
	else
		msgpack_pack_nil(&mb->pk);
	msgpack_unpacked_destroy(&u);
	mpmap_uint(&m, "args_bytes", json.len);
	mpmap_bool(&m, "truncated", 0);
	mpmap_end(&m);
	canon_buf_free(&json);
}

/* a, pending, becomes decided by who. */
void
approval_decide_rec(struct approval *a, int approve, const char *who,
    const char *note)
{
	a->state = approve ? A_APPROVED : A_DENIED;
	a->decided_ms = now_ms();
	/*
	 * A denied write never runs: its args are not kept, so a denial
	 * frees their room and fits in the store's reserve.
	 */
	if (!approve) {
		free(a->args);
		a->args = xstrdup("");	/* not NULL: it is copied */
		a->argslen = 0;
	}
	free(a->approver);
	free(a->note);
	a->approver = xstrdup(who);
	a->note = note ? xstrdup(note) : NULL;
}

/* A decision stored: audited, logged, told to its waits. */
void
approval_told(const struct approval *a, const char *who, const char *note)
{
	int	approve = a->state == A_APPROVED;

	(void)approval_audit("decision", a, approve ? "approved" : "denied",
	    who, note);
	log_info("approval %s %s by %s", a->id, approve ? "approved" :
	    "denied", who);
	wake_waiters(a->id, approval_state_str(a->state));
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
	approval_decide_rec(&a, approve, who, note);
	if ((rc = approval_put(&a, 0)) != 0) {
		snprintf(err, errlen, "the decision cannot be stored: %s",
		    store_strerror(rc));
		approval_free(&a);
		return -1;
	}
	approval_told(&a, who, note);
	approval_free(&a);
	return 0;
}

/*
 * This host's copy of a decided approval: stored (off this host's
 * quota), audited and told to the waits here, unless it is decided here
 * already.  Returns 1 when it was pending here.
 */
int
approval_decision_local(const struct approval *d)
{
	struct approval	a;
	int		rc;

	if (approval_get(d->id, &a) != 1)
		return 0;
	if (a.state != A_PENDING) {
		approval_free(&a);
		return 0;
	}
	approval_free(&a);
	if ((rc = approval_put((struct approval *)d, 0)) != 0) {
		log_warnx("approval %s: the shared decision cannot be stored"
		    " here: %s", d->id, store_strerror(rc));
		return 0;
	}
	approval_told(d, d->approver ? d->approver : "?", d->note);
	return 1;
}

int
approval_bring_copy(struct approval *a, int have_local)
{
	if (!have_local)
		return approval_put_copy(a);
	if (a->state != A_PENDING)
		(void)approval_decision_local(a);
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
