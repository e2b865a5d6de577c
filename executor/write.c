/*
 * The write path.  Every write goes through the ledger:
 *
 *   1. its idempotency key is looked up: a done key is replayed, a key in
 *      doubt is refused, a key running now gets another waiter;
 *   2. otherwise, in one write transaction, the kill switch and the key are
 *      looked at again (another process may share the store, and the
 *      switch may have been thrown since), the run's write count and the
 *      approval that let it run are updated, and the intent is committed;
 *      only then does the tool start;
 *   3. its outcome is committed, and only then are the callers answered.
 *
 * Commits are grouped: intents and outcomes that arrive in the same turn
 * of the event loop share one transaction (one fsync), and no tool starts
 * before the commit holding its intent returned.
 *
 * With the store shared on PostgreSQL (pgstore.h) the steps are the same,
 * but the ledger is the database's and its commit is asynchronous: the
 * batch's local part (runs, approvals, in LMDB) is committed as above
 * without the ledger, then one statement commits its outcomes and intents
 * in the database (commit_shared), and the batch is answered when that
 * returns (shared_done) by the same code as with LMDB.  The database may
 * answer an intent "wait": an executor on another host runs that key now;
 * the write waits for the NOTIFY of its outcome and asks again, then
 * replays it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <msgpack.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/admit.h"
#include "executor/apquota.h"
#include "executor/apstore.h"
#include "executor/metrics.h"
#include "executor/backend.h"
#include "executor/executor.h"
#include "executor/forensics.h"
#include "executor/jobs.h"
#include "executor/killswitch.h"
#include "executor/ledger.h"
#include "executor/pgstore.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/store.h"
#include "executor/sweep.h"
#include "executor/write.h"

#define SWEEP_BATCH	1000
#define WAIT_RECHECK_S	5	/* shared: waits ask again (write_shared_up) */
#define WAIT_GONE_MSG	"the executor is shutting down: the write, running" \
			" on another host, was not waited for"

/*
 * What the intent transaction decided for a write.  The first three answer
 * every caller alike; the per-caller ones refuse the first caller and let
 * the next identical one be checked in its place.
 */
enum verdict {
	V_RUN = 0,		/* the intent is recorded: start the tool */
	V_REPLAY,		/* done meanwhile (another process): replay */
	V_IN_DOUBT,		/* running elsewhere, or in doubt */
	V_WRITES_OFF,		/* the kill switch is recorded as thrown */
	V_DUPLICATE,		/* per caller: the run wrote this key already */
	V_BUDGET,		/* per caller: the run has used its writes */
	V_USED,			/* per caller: the approval was used up */
	V_UNLOGGED,		/* recorded, but its audit record was not synced */
	V_WAIT,			/* shared: running on another host; wait */
	V_UNRECORDED,		/* shared: the database did not record it */
};

/* One write per idempotency key in flight, however many callers. */
struct wop {
	TAILQ_ENTRY(wop)	 entry;		/* all ops */
	TAILQ_ENTRY(wop)	 qentry;	/* the commit queue */
	char			*key;
	char			*tenant;	/* holds a tool slot (admit.h) */
	const struct tool	*tool;
	struct call		*first;		/* the call that runs it */
	struct callq		 waiters;	/* identical calls waiting */
	enum { W_INTENT, W_RUNNING, W_OUTCOME } phase;
	int			 queued;
	int			 inflight;	/* shared: in a batch sent */
	int			 waiting;	/* shared: V_WAIT, until told */
	/* The backend sent nothing (unavailable, tool_changed). */
	int			 unsent;
	enum verdict		 verdict;	/* of the intent transaction */
	struct ledger_rec	 rec;		/* intent, then outcome */
	struct ledger_rec	 found;		/* V_REPLAY, V_IN_DOUBT: the record */
	struct response		 out;		/* the outcome, for its callers */
	char			*out_msg;	/* what out points to */
	char			*out_result;
};

TAILQ_HEAD(wopq, wop);

static struct wopq	 ops = TAILQ_HEAD_INITIALIZER(ops);
static struct wopq	 commitq = TAILQ_HEAD_INITIALIZER(commitq);
static struct event	*flush_ev;
/*
 * Shared store: a batch is in the database.  What comes meanwhile waits
 * in commitq and goes as the next batch when it returns (shared_done):
 * one transaction in flight, as many writes in each as came.
 */
static int		 shared_inflight;
static struct event	*sweep_ev;
static size_t		 nops;

static struct wop *
wop_find(const char *key)
{
	struct wop	*w;

	TAILQ_FOREACH(w, &ops, entry)
		if (strcmp(w->key, key) == 0)
			return w;
	return NULL;
}

static void
wop_free(struct wop *w)
{
	TAILQ_REMOVE(&ops, w, entry);
	admit_done(w->tenant);
	free(w->tenant);
	free(w->key);
	ledger_rec_free(&w->rec);
	ledger_rec_free(&w->found);
	free(w->out_msg);
	free(w->out_result);
	free(w);
	nops--;
	job_end();
}

static void
wop_enqueue(struct wop *w)
{
	if (!w->queued) {
		TAILQ_INSERT_TAIL(&commitq, w, qentry);
		w->queued = 1;
	}
	event_active(flush_ev, EV_TIMEOUT, 0);
}

static void
fill_intent(struct wop *w)
{
	struct call	*c = w->first;

	ledger_rec_free(&w->rec);
	w->rec.state = L_RUNNING;
	w->rec.tenant = xstrdup(c->tenant);
	w->rec.env = xstrdup(c->env);
	w->rec.tool = xstrdup(c->tool);
	w->rec.run_id = xstrdup(c->run_id);
	w->rec.step_id = c->step_id ? xstrdup(c->step_id) : NULL;
	w->rec.args_hash = xstrdup(c->args_hash);
	w->rec.uid = c->uid;
	w->rec.started_ms = now_ms();
	if (c->approver != NULL)
		xasprintf(&w->rec.note, "approved by %s", c->approver);
	forensics_intent(&w->rec, w->tool, c);
}

/*
 * The outcome's response: packed once for the ledger (the bytes a replay
 * answers later), kept as a value for the callers waiting now.  Its
 * strings are the wop's own: the tool's result lives no longer than its
 * callback, and the first caller is freed before the others are answered.
 */
static void
wop_outcome(struct wop *w, const char *status, const char *reason,
    const struct tool_outcome *r)
{
	memset(&w->out, 0, sizeof(w->out));
	w->out.status = status;
	w->out.reason = reason;
	if (reason != NULL) {
		w->out_msg = xstrdup(r->message);
		w->out.message = w->out_msg;
		w->out.retryable = r->retryable;
		w->out.retry_after_ms = r->retry_after_ms;
	} else {
		w->out_result = xmalloc(r->resultlen);
		memcpy(w->out_result, r->result, r->resultlen);
		w->out.result = w->out_result;
		w->out.resultlen = r->resultlen;
		w->out.args_hash = w->rec.args_hash;
		w->out.idempotency_key = w->key;
	}
	w->rec.response = response_pack(&w->out, &w->rec.responselen);
}

static void
write_done(const struct tool_outcome *r, void *arg)
{
	struct wop	*w = arg;
	char		 msg[640];

	w->rec.finished_ms = now_ms();
	w->rec.finished_clock = store_clock_ms(ex->store);
	w->rec.duration_ms = r->duration_ms;
	switch (r->status) {
	case TR_OK:
		w->rec.state = L_DONE;
		wop_outcome(w, ST_OK, NULL, r);
		break;
	case TR_BAD_OUTPUT:
		/* It ran and said it succeeded: replay the same stop. */
		w->rec.state = L_DONE;
		wop_outcome(w, ST_STOPPED, R_INVALID_OUTPUT, r);
		break;
	case TR_FAILED:
		/*
		 * A tool that exits non-zero says it changed nothing, so
		 * the key may run again; one killed by a signal we did not
		 * send may have done anything.
		 */
		wop_outcome(w, ST_ERROR, E_TOOL_FAILED, r);
		if (r->may_have_acted) {
			w->rec.state = L_IN_DOUBT;
			free(w->rec.note);
			w->rec.note = xstrdup(r->message);
		} else
			w->rec.state = L_FAILED;
		break;
	case TR_TIMEOUT:
		w->rec.state = L_IN_DOUBT;
		snprintf(msg, sizeof(msg), "%s: killed before it finished",
		    r->message);
		free(w->rec.note);
		w->rec.note = xstrdup(msg);
		wop_outcome(w, ST_ERROR, E_TOOL_TIMEOUT, r);
		break;
	case TR_UNAVAILABLE:
		/* Nothing was sent: the key may run again. */
		w->unsent = 1;
		w->rec.state = L_FAILED;
		wop_outcome(w, ST_ERROR, E_UNAVAILABLE, r);
		break;
	case TR_CHANGED:
		/* Refused before anything was sent, like unavailable. */
		w->unsent = 1;
		w->rec.state = L_FAILED;
		wop_outcome(w, ST_DENIED, R_TOOL_CHANGED, r);
		break;
	case TR_CIRCUIT:
		w->unsent = 1;
		w->rec.state = L_FAILED;
		wop_outcome(w, ST_DENIED, R_CIRCUIT_OPEN, r);
		break;
	case TR_CANCELLED:
		/* Never asked of a write; were it, killed midway is in doubt. */
		w->rec.state = L_IN_DOUBT;
		free(w->rec.note);
		w->rec.note = xstrdup("cancelled before it finished");
		wop_outcome(w, ST_ERROR, E_TOOL_FAILED, r);
		break;
	}
	metrics_tool_run(w->tool, r);
	/* A write that sent nothing is no write: it shows as its stop. */
	if (!w->unsent)
		metrics_write(w->tool, w->rec.state == L_DONE ? WO_OK :
		    w->rec.state == L_IN_DOUBT ? WO_IN_DOUBT : WO_FAILED);
	w->phase = W_OUTCOME;
	wop_enqueue(w);
}

/*
 * Answer everyone waiting on w, then forget it: with its own outcome
 * (the first caller's is not a replay), or with the response the ledger
 * holds (a replay for all).
 */
static void
wop_answer(struct wop *w, const struct response *r, const char *stored,
    size_t storedlen)
{
	struct call	*c;

	if (r != NULL)
		answer(w->first, r, 0);
	else {
		answer_stored(w->first, stored, storedlen, 1);
		metrics_write(w->tool, WO_REPLAYED);
	}
	call_free(w->first);
	while ((c = TAILQ_FIRST(&w->waiters)) != NULL) {
		TAILQ_REMOVE(&w->waiters, c, entry);
		metrics_write(w->tool, WO_REPLAYED);
		if (r != NULL)
			answer(c, r, 1);
		else
			answer_stored(c, stored, storedlen, 1);
		call_free(c);
	}
	wop_free(w);
}

/* Refuse everyone waiting on w alike, then forget it. */
static void
wop_refuse_all(struct wop *w, const char *status, const char *reason,
    const char *msg)
{
	struct call	*c;

	answer_refuse(w->first, status, reason, msg);
	call_free(w->first);
	while ((c = TAILQ_FIRST(&w->waiters)) != NULL) {
		TAILQ_REMOVE(&w->waiters, c, entry);
		answer_refuse(c, status, reason, msg);
		call_free(c);
	}
	wop_free(w);
}

static void
in_doubt_message(char *buf, size_t len, const char *key, const char *note)
{
	snprintf(buf, len, "write %s is in doubt (%s): it is not run again"
	    " until an operator settles it with 'gatewayctl resolve %s"
	    " done|failed'", key, note ? note : "its outcome was never"
	    " recorded", key);
}

/*
 * The intent transaction refused w's first caller.  An identical call
 * from another run may still go: it takes the first place and is checked
 * in turn.
 */
static void
wop_refused(struct wop *w, enum verdict why)
{
	struct call	*c = w->first;

	if (why == V_DUPLICATE)
		answer_refuse(c, ST_STOPPED, R_DUPLICATE_WRITE,
		    "this write already ran in this run");
	else if (why == V_BUDGET)
		answer_refuse(c, ST_STOPPED, R_BUDGET_EXCEEDED,
		    "the run has used its writes (budgets.max_writes_per_run)");
	else
		answer_refuse(c, ST_DENIED, R_APPROVAL_EXPIRED, "this approval"
		    " was used: its write ran and its result is no longer kept");
	call_free(c);
	if ((w->first = TAILQ_FIRST(&w->waiters)) == NULL) {
		wop_free(w);
		return;
	}
	TAILQ_REMOVE(&w->waiters, w->first, entry);
	fill_intent(w);
	wop_enqueue(w);
}

/*
 * w's first caller hung up before its intent was recorded: like a request
 * that arrives after the hang-up, it is refused and nothing runs (a retry
 * runs it).  An identical call of another connection takes its place.
 */
static void
wop_first_gone(struct wop *w)
{
	struct call	*c = w->first;

	answer_refuse(c, ST_ERROR, E_UNAVAILABLE,
	    "the agent has hung up: the write was not started");
	call_free(c);
	if ((w->first = TAILQ_FIRST(&w->waiters)) != NULL) {
		TAILQ_REMOVE(&w->waiters, w->first, entry);
		w->waiting = 0;
		fill_intent(w);
		wop_enqueue(w);
		return;
	}
	if (w->queued) {
		TAILQ_REMOVE(&commitq, w, qentry);
		w->queued = 0;
	}
	wop_free(w);
}

size_t
write_conn_gone(uint64_t conn)
{
	struct wop	*w, *wnext;
	struct call	*c, *cnext;
	size_t		 n = 0;

	for (w = TAILQ_FIRST(&ops); w != NULL; w = wnext) {
		wnext = TAILQ_NEXT(w, entry);
		/* Joined to an identical write: no one waits for it now. */
		for (c = TAILQ_FIRST(&w->waiters); c != NULL; c = cnext) {
			cnext = TAILQ_NEXT(c, entry);
			if (c->conn != conn)
				continue;
			TAILQ_REMOVE(&w->waiters, c, entry);
			answer_refuse(c, ST_ERROR, E_UNAVAILABLE, "the agent has"
			    " hung up: it no longer waits for the write");
			call_free(c);
			n++;
		}
		/*
		 * Not admitted yet: refused.  Once its intent is recorded
		 * (W_RUNNING, W_OUTCOME) a write runs on and is recorded.
		 */
		if (w->phase == W_INTENT && !w->inflight &&
		    w->first->conn == conn) {
			wop_first_gone(w);
			n++;
		}
	}
	return n;
}

/* The callers w answers, for forensics (forensics.c says why only they). */
static uint64_t
wop_callers(const struct wop *w)
{
	const struct call	*c;
	uint64_t		 n = 1;

	TAILQ_FOREACH(c, &w->waiters, entry)
		n++;
	return n;
}

#define B_OUTCOMES	0x1
#define B_INTENTS	0x2

struct batch {
	struct wopq	*q;
	int		 what;		/* this transaction: B_OUTCOMES, B_INTENTS */
};

/*
 * The intent of w, inside the intent transaction: everything that decides
 * whether the write may start is read again here, in the transaction that
 * records the intent, so no other process sharing the store and no kill
 * switch thrown since the first look can slip between check and intent.
 */
static int
intent_txn(struct store_txn *txn, struct wop *w)
{
	struct call	*c = w->first;
	int		 rc, off;

	w->verdict = V_RUN;
	ledger_rec_free(&w->found);
	if ((rc = store_writes_off_txn(txn, ex->store, &off)) != 0)
		return rc;
	if (off || !ks_writes_on()) {
		w->verdict = V_WRITES_OFF;
		return 0;
	}
	/*
	 * Shared: the key and the kill switch are the database's, looked at
	 * in the transaction that records the intent there (commit_shared).
	 */
	if (!pgstore_on() &&
	    (rc = ledger_get(txn, w->key, &w->found)) != 0)
		return rc;
	if (w->found.state == L_DONE) {
		w->verdict = V_REPLAY;
		return 0;
	}
	if (w->found.state == L_RUNNING || w->found.state == L_IN_DOUBT) {
		w->verdict = V_IN_DOUBT;
		return 0;
	}
	if (c->approval_id != NULL && pgstore_on()) {
		/*
		 * Shared: approved, checked here; used, asked of the database
		 * in the transaction of the intent (tg_intents), as the key's
		 * record and the approval's use are there, for every host.
		 */
		rc = approval_check_txn(txn, c->approval_id, L_DONE);
		if (rc == APPROVAL_USED) {
			w->verdict = V_USED;
			return 0;
		}
		if (rc != 0)
			return rc;
	} else if (c->approval_id != NULL) {
		rc = approval_check_txn(txn, c->approval_id, w->found.state);
		if (rc == APPROVAL_USED) {
			w->verdict = V_USED;
			return 0;
		}
		if (rc != 0)
			return rc;
	}
	rc = ledger_run_add(txn, c->tenant, c->run_id, w->key,
	    ex->conf->max_writes_per_run, c->approval_id != NULL,
	    store_clock_ms(ex->store), w->rec.started_ms);
	if (rc == LEDGER_DUPLICATE || rc == LEDGER_BUDGET) {
		w->verdict = rc == LEDGER_DUPLICATE ? V_DUPLICATE : V_BUDGET;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (c->approval_id != NULL &&
	    (rc = approval_start_txn(txn, c->approval_id)) != 0)
		return rc;
	return pgstore_on() ? 0 : ledger_put(txn, w->key, &w->rec);
}

static int
batch_txn(struct store_txn *txn, void *arg)
{
	struct batch	*b = arg;
	struct wop	*w;
	int		 rc;

	TAILQ_FOREACH(w, b->q, qentry) {
		if (!(b->what & (w->phase == W_OUTCOME ? B_OUTCOMES :
		    B_INTENTS)))
			continue;
		if (w->phase == W_OUTCOME) {
			w->rec.asks = wop_callers(w);
			rc = pgstore_on() ? 0 : ledger_put(txn, w->key,
			    &w->rec);
			/*
			 * Never sent: the run may ask again, as if it had
			 * not asked.  A resumed write keeps its place: its
			 * approval is spent either way.
			 */
			if (rc == 0 && w->unsent && w->first->approval_id ==
			    NULL)
				rc = ledger_run_del(txn, w->first->tenant,
				    w->first->run_id, w->key);
		} else
			rc = intent_txn(txn, w);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* After the intent transaction committed: act on what it decided. */
static void
intent_done(struct wop *w)
{
	char	msg[768];

	switch (w->verdict) {
	case V_RUN:
		/* The intent is durable: now, and only now, run it. */
		w->phase = W_RUNNING;
		backend_start(w->first, w->tool, write_done, w);
		break;
	case V_REPLAY:
		wop_answer(w, NULL, w->found.response, w->found.responselen);
		break;
	case V_IN_DOUBT:
		in_doubt_message(msg, sizeof(msg), w->key, w->found.note);
		wop_refuse_all(w, ST_ERROR, E_TOOL_FAILED, msg);
		break;
	case V_WRITES_OFF:
		wop_refuse_all(w, ST_DENIED, R_WRITES_DISABLED, "writes are"
		    " disabled (kill switch): the write was not started");
		break;
	case V_DUPLICATE:
	case V_BUDGET:
	case V_USED:
		wop_refused(w, w->verdict);
		break;
	case V_UNLOGGED:
		wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
		break;
	case V_WAIT:
		/* Asked again when its outcome is told (shared_settled). */
		if (ex->shutting_down)
			wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, WAIT_GONE_MSG);
		else
			w->waiting = 1;
		break;
	case V_UNRECORDED:
		wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, "the shared store"
		    " (PostgreSQL) cannot record the write: it was not"
		    " started");
		break;
	}
}

/* The audit record of w's intent (audit_intents). */
static int
intent_record(const struct wop *w)
{
	const struct call	*c = w->first;
	struct audit_rec	 ar = {
		.event = "intent",
		.tenant = c->tenant,
		.env = c->env,
		.uid = (long long)c->uid,
		.run_id = c->run_id,
		.step_id = c->step_id,
		.traceparent = c->traceparent,
		.tool = c->tool,
		.mode = c->mode,
		.backend = c->backend,
		.args_hash = c->args_hash,
		.idempotency_key = w->key,
		.decision = "admitted",
		.approval_id = c->approval_id,
		.approver = c->approver,
		.compensates = c->compensates,
	};

	return audit_write(&ar, 1);
}

/*
 * The intents' audit records are written before anything goes to the
 * ledger, so that when one cannot be written nothing at all is recorded
 * for it (a ledger intent without its tool would read as in doubt): it is
 * refused and taken out of q.  They reach the disk beside the ledger
 * commit (flush_cb), and no tool starts before both are there: no tool
 * runs that the log does not name.  Returns how many are left.
 */
static int
audit_intents(struct wopq *q)
{
	struct wop	*w, *next;
	int		 n = 0, failed = 0;

	for (w = TAILQ_FIRST(q); w != NULL; w = next) {
		next = TAILQ_NEXT(w, qentry);
		if (w->phase != W_INTENT)
			continue;
		if (!failed && intent_record(w) == 0) {
			n++;
			continue;
		}
		failed = 1;
		TAILQ_REMOVE(q, w, qentry);
		wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
	}
	return n;
}

/*
 * The append that held q's records failed: none of them is in the log.
 * Its intents are refused as audit_intents refuses one (nothing recorded,
 * nothing run); its outcomes go on, their answers' records marked as not
 * written (answer: a waiter's replay is then refused, not given without
 * its record).  Returns 0: no intents left.
 */
static int
batch_unlogged(struct wopq *q)
{
	struct wop	*w, *next;
	struct call	*c;

	for (w = TAILQ_FIRST(q); w != NULL; w = next) {
		next = TAILQ_NEXT(w, qentry);
		if (w->phase != W_INTENT) {
			w->first->audit_rc = -1;
			TAILQ_FOREACH(c, &w->waiters, entry)
				c->audit_rc = -1;
			continue;
		}
		TAILQ_REMOVE(q, w, qentry);
		wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
	}
	return 0;
}

/*
 * The answers to the outcomes of q are audited ahead: their records are
 * the same whether or not the outcome commit succeeds (an outcome that
 * cannot be recorded is answered all the same), so they go to the disk
 * beside it instead of after it.
 */
static void
preaudit_outcomes(struct wopq *q)
{
	struct wop	*w;
	struct call	*c;

	TAILQ_FOREACH(w, q, qentry) {
		if (w->phase != W_OUTCOME)
			continue;
		answer_preaudit(w->first, &w->out, 0);
		TAILQ_FOREACH(c, &w->waiters, entry)
			answer_preaudit(c, &w->out, 1);
	}
}

/*
 * Commit what q holds: outcomes may use the reserve (their room was kept
 * when their writes started, ledger_has_room), intents may not.  When
 * both are there and intents have room, one transaction takes both: one
 * wait for the disk instead of two.  Should it fail, the outcomes go
 * alone, so that an intent's trouble never costs an outcome.
 */
static void
commit_batch(struct wopq *q, int nout, int nin, int *rc_out, int *rc_in)
{
	struct batch	 b = { q, 0 };

	*rc_out = *rc_in = 0;
	if (nout > 0 && nin > 0 && (store_reserve(ex->store) == 0 ||
	    store_has_room(ex->store, 0, 0))) {
		b.what = B_OUTCOMES | B_INTENTS;
		if ((*rc_in = store_write_reserve(ex->store, batch_txn,
		    &b)) == 0)
			return;
		nin = 0;
	}
	if (nout > 0) {
		b.what = B_OUTCOMES;
		*rc_out = store_write_reserve(ex->store, batch_txn, &b);
	}
	if (nin > 0) {
		b.what = B_INTENTS;
		*rc_in = store_write(ex->store, batch_txn, &b);
	}
}

static int
unlogged_txn(struct store_txn *txn, void *arg)
{
	struct wopq	*q = arg;
	struct wop	*w;
	int		 rc;

	TAILQ_FOREACH(w, q, qentry)
		if (w->phase == W_INTENT && w->verdict == V_RUN &&
		    (rc = ledger_put(txn, w->key, &w->rec)) != 0)
			return rc;
	return 0;
}

/*
 * Intents recorded in the ledger whose audit records may not be on disk:
 * none of them runs.  Their ledger records say so, in doubt, for an
 * operator to resolve (the record is already there, and a write of the
 * key would not know it never ran); if even that cannot be stored they
 * stay running, which reads as in doubt all the same.
 */
static void
intents_unlogged(struct wopq *q)
{
	struct wop	*w;

	TAILQ_FOREACH(w, q, qentry) {
		if (w->phase != W_INTENT || w->verdict != V_RUN)
			continue;
		w->rec.state = L_IN_DOUBT;
		free(w->rec.note);
		w->rec.note = xstrdup("not started: its audit record could "
		    "not be synced");
	}
	if (store_write_reserve(ex->store, unlogged_txn, q) != 0)
		log_warnx("ledger: intents whose audit records were not "
		    "synced could not be marked: they read as in doubt");
	TAILQ_FOREACH(w, q, qentry)
		if (w->phase == W_INTENT && w->verdict == V_RUN)
			w->verdict = V_UNLOGGED;
}

/*
 * The batch q was committed (rc_out, rc_in: how its outcomes and its
 * intents fared): answer the outcomes' callers, act on the intents.
 */
static void
batch_answer(struct wopq *q, int rc_out, int rc_in)
{
	struct wop	*w;
	char		 msg[256];

	while ((w = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, w, qentry);
		w->inflight = 0;
		if (w->phase == W_OUTCOME) {
			if (rc_out != 0)
				log_warnx("ledger: the outcome of %s could not"
				    " be recorded: it will read as in doubt",
				    w->key);
			wop_answer(w, &w->out, NULL, 0);
		} else if (rc_in != 0) {
			/* Nothing of this batch was recorded: nothing runs. */
			snprintf(msg, sizeof(msg), "the write ledger cannot"
			    " record the write: %s", rc_in == STORE_FULL ?
			    "it is full (store.max_map_size)" :
			    store_strerror(rc_in));
			log_warnx("ledger: %s: %s", w->key, msg);
			wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE, msg);
		} else
			intent_done(w);
	}
}

/* The shared store: one batch sent to the database (commit_shared). */
struct shared_batch {
	struct wopq	 q;
	struct pg_item	*out, *in;
	struct wop	**inw;		/* the wop of each intent */
	size_t		 nout, nin;
	int		 rc_in;		/* the local part of the intents */
	int		 sync_begun;	/* its audit records on the sync thread */
};

static int
undo_txn(struct store_txn *txn, void *arg)
{
	struct shared_batch	*sb = arg;
	struct wop		*w;
	size_t			 i;
	int			 rc;

	for (i = 0; i < sb->nin; i++) {
		w = sb->inw[i];
		if (w->verdict != V_RUN && w->first->approval_id == NULL &&
		    (rc = ledger_run_del(txn, w->first->tenant,
		    w->first->run_id, w->key)) != 0)
			return rc;
	}
	return 0;
}

/*
 * The database said not to run some intents the local transaction had
 * counted in their runs: they are taken out again, as if never asked.
 * When all run (the common case) there is nothing to commit.
 */
static void
undo_runs(struct shared_batch *sb)
{
	size_t	i;
	int	rc;

	for (i = 0; i < sb->nin; i++)
		if (sb->inw[i]->verdict != V_RUN &&
		    sb->inw[i]->first->approval_id == NULL)
			break;
	if (i == sb->nin)
		return;
	if ((rc = store_write_reserve(ex->store, undo_txn, sb)) != 0)
		log_warnx("ledger: writes not run could not be taken out of"
		    " their runs: %s", store_strerror(rc));
}

static void
shared_free(struct shared_batch *sb)
{
	size_t	i;

	for (i = 0; i < sb->nout; i++)
		free((char *)sb->out[i].rec);
	for (i = 0; i < sb->nin; i++) {
		free((char *)sb->in[i].rec);
		free(sb->in[i].prior);
		free(sb->in[i].why);
	}
	free(sb->out);
	free(sb->in);
	free(sb->inw);
	free(sb);
}

/* An intent's verdict from the database, as the LMDB path says it. */
static void
shared_verdict(struct wop *w, struct pg_item *it)
{
	ledger_rec_free(&w->found);
	switch (it->verdict) {
	case PV_RUN:
		w->verdict = V_RUN;
		break;
	case PV_OFF:
		w->verdict = V_WRITES_OFF;
		break;
	case PV_WAIT:
		w->verdict = V_WAIT;
		break;
	case PV_USED:
		w->verdict = V_USED;
		break;
	case PV_RETRY:
		log_warnx("ledger: %s: the shared store did not record the"
		    " intent: %s", w->key, it->why ? it->why : "?");
		w->verdict = V_UNRECORDED;
		break;
	case PV_REPLAY:
		/* A record that does not decode is in doubt, never absent. */
		if (it->prior != NULL && ledger_decode(it->prior,
		    it->priorlen, &w->found) == 0 &&
		    w->found.state == L_DONE && w->found.response != NULL) {
			w->verdict = V_REPLAY;
			break;
		}
		ledger_rec_free(&w->found);
		/* FALLTHROUGH */
	case PV_IN_DOUBT:
		w->verdict = V_IN_DOUBT;
		w->found.note = it->why != NULL ? xstrdup(it->why) : NULL;
		break;
	}
}

static void
shared_done(int ok, void *arg)
{
	struct shared_batch	*sb = arg;
	size_t			 i;

	for (i = 0; i < sb->nin; i++) {
		if (ok)
			shared_verdict(sb->inw[i], &sb->in[i]);
		else
			sb->inw[i]->verdict = V_UNRECORDED;
	}
	if (sb->nin > 0)
		undo_runs(sb);
	/* Outcomes only: their answers' records are on disk first. */
	if (sb->sync_begun)
		(void)audit_sync_end();
	batch_answer(&sb->q, ok ? 0 : STORE_ERR, sb->rc_in);
	shared_free(sb);
	shared_inflight = 0;
	if (!TAILQ_EMPTY(&commitq))
		event_active(flush_ev, EV_TIMEOUT, 0);
}

static int
unsent_txn(struct store_txn *txn, void *arg)
{
	struct wopq	*q = arg;
	struct wop	*w;
	int		 rc;

	TAILQ_FOREACH(w, q, qentry)
		if (w->phase == W_INTENT && w->verdict == V_UNLOGGED &&
		    w->first->approval_id == NULL &&
		    (rc = ledger_run_del(txn, w->first->tenant,
		    w->first->run_id, w->key)) != 0)
			return rc;
	return 0;
}

/*
 * The intents of q whose audit records may not be on disk: none is sent
 * to the database (none runs, none is recorded there).  Those the local
 * commit counted in their runs (rc_local 0, verdict V_RUN) are taken out
 * again; a failed local commit (rc_local not 0) counted none, and its
 * intents are refused for it (batch_answer).  Returns 0: no intents left
 * to send.
 */
static int
shared_unlogged(struct wopq *q, int rc_local)
{
	struct wop	*w;
	int		 rc;

	TAILQ_FOREACH(w, q, qentry)
		if (w->phase == W_INTENT && w->verdict == V_RUN)
			w->verdict = V_UNLOGGED;
	if (rc_local == 0 &&
	    (rc = store_write_reserve(ex->store, unsent_txn, q)) != 0)
		log_warnx("ledger: writes not run could not be taken out of"
		    " their runs: %s", store_strerror(rc));
	return 0;
}

/*
 * An outcome of q with something of its own in the local store: a write
 * never sent, taken out of its run.  Else, with no intents, the batch
 * has nothing to commit locally (the ledger is the database's).
 */
static int
outcomes_local(struct wopq *q)
{
	struct wop	*w;

	TAILQ_FOREACH(w, q, qentry)
		if (w->phase == W_OUTCOME && w->unsent &&
		    w->first->approval_id == NULL)
			return 1;
	return 0;
}

/*
 * The shared store's commit of q: the local part first (runs, approvals;
 * commit_batch without the ledger), then the ledger's in the database.
 * The audit records of the intents are synced before anything is sent:
 * an intent the log may not hold is never recorded anywhere.  A batch of
 * outcomes alone has its records synced on the sync thread while the
 * database commits, and is answered once both are done (shared_done).
 */
static void
commit_shared(struct wopq *q, int nout, int nin)
{
	struct shared_batch	*sb;
	struct wop		*w;
	int			 rc_out = 0, rc_in = 0, outcomes_only = nin == 0;

	/*
	 * No sync of ours is begun here: the last batch's ended in
	 * shared_done before flush_cb could send this one.
	 */
	if (nin > 0) {
		/* Synced beside the local commit; both before the database. */
		audit_sync_begin();
		commit_batch(q, nout, nin, &rc_out, &rc_in);
		if (audit_sync_end() == -1)
			nin = shared_unlogged(q, rc_in);
	} else if (outcomes_local(q))
		commit_batch(q, nout, 0, &rc_out, &rc_in);
	sb = xcalloc(1, sizeof(*sb));
	TAILQ_INIT(&sb->q);
	TAILQ_CONCAT(&sb->q, q, qentry);
	sb->rc_in = rc_in;
	sb->out = xcalloc((size_t)nout + 1, sizeof(*sb->out));
	sb->in = xcalloc((size_t)nin + 1, sizeof(*sb->in));
	sb->inw = xcalloc((size_t)nin + 1, sizeof(*sb->inw));
	TAILQ_FOREACH(w, &sb->q, qentry) {
		w->inflight = 1;
		if (w->phase == W_OUTCOME) {
			w->rec.asks = wop_callers(w);
			sb->out[sb->nout].key = w->key;
			sb->out[sb->nout].state = ledger_state_str(w->rec.state);
			sb->out[sb->nout].note = w->rec.state == L_IN_DOUBT ?
			    w->rec.note : NULL;
			sb->out[sb->nout].rec = ledger_encode(&w->rec,
			    &sb->out[sb->nout].reclen);
			sb->nout++;
		} else if (rc_in == 0 && w->verdict == V_RUN &&
		    sb->nin < (size_t)nin) {
			sb->in[sb->nin].key = w->key;
			sb->in[sb->nin].approval_id = w->first->approval_id;
			sb->in[sb->nin].rec = ledger_encode(&w->rec,
			    &sb->in[sb->nin].reclen);
			sb->inw[sb->nin++] = w;
		}
	}
	if (sb->nout == 0 && sb->nin == 0) {
		batch_answer(&sb->q, 0, rc_in);
		shared_free(sb);
		return;
	}
	if (outcomes_only) {
		audit_sync_begin();
		sb->sync_begun = 1;
	}
	shared_inflight = 1;
	if (pgstore_batch(sb->out, sb->nout, sb->in, sb->nin, shared_done,
	    sb) == -1)
		shared_done(0, sb);
}

/* The database says key's outcome was committed: its waits ask again. */
void
write_shared_settled(const char *key)
{
	struct wop	*w;

	if ((w = wop_find(key)) != NULL && w->waiting) {
		w->waiting = 0;
		fill_intent(w);
		wop_enqueue(w);
	}
}

/*
 * Every wait asks again: when the connection is back (a NOTIFY may have
 * been missed), and every WAIT_RECHECK_S, as an executor that died while
 * running the key sends none (its record then reads as in doubt).
 */
void
write_shared_up(void)
{
	struct wop	*w;

	TAILQ_FOREACH(w, &ops, entry)
		if (w->waiting) {
			w->waiting = 0;
			fill_intent(w);
			wop_enqueue(w);
		}
}

/*
 * Shutting down: writes waiting for another host's outcome end now (they
 * recorded nothing; a retry, on any host, replays the outcome).
 */
void
write_drop_waits(void)
{
	struct wop	*w, *next;

	for (w = TAILQ_FIRST(&ops); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->waiting)
			wop_refuse_all(w, ST_ERROR, E_UNAVAILABLE,
			    WAIT_GONE_MSG);
	}
}

size_t
write_running_keys(const char ***keys)
{
	struct wop	*w;
	size_t		 n = 0;

	*keys = xcalloc(nops + 1, sizeof(**keys));
	TAILQ_FOREACH(w, &ops, entry)
		if (w->phase != W_INTENT && n < nops)
			(*keys)[n++] = w->key;
	return n;
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wopq	 q = TAILQ_HEAD_INITIALIZER(q);
	struct wop	*w;
	int		 rc_out = 0, rc_in = 0, nout = 0, nin = 0, synced;

	(void)fd;
	(void)what;
	(void)arg;
	/* The next batch of the shared store forms until this one is back. */
	if (shared_inflight)
		return;
	TAILQ_CONCAT(&q, &commitq, qentry);
	TAILQ_FOREACH(w, &q, qentry) {
		w->queued = 0;
		if (w->phase == W_OUTCOME)
			nout++;
		else
			nin++;
	}

	/*
	 * The audit records first, in one append, then one sync of them on
	 * the sync thread while this one commits the ledger: the two waits
	 * for the disk overlap.
	 */
	audit_hold();
	if (nout > 0)
		preaudit_outcomes(&q);
	if (nin > 0)
		nin = audit_intents(&q);
	if (audit_release() == -1)
		nin = batch_unlogged(&q);
	if (pgstore_on()) {
		commit_shared(&q, nout, nin);
		return;
	}
	if ((synced = nout > 0 || nin > 0))
		audit_sync_begin();
	commit_batch(&q, nout, nin, &rc_out, &rc_in);
	if (synced && audit_sync_end() == -1 && nin > 0 && rc_in == 0)
		intents_unlogged(&q);
	batch_answer(&q, rc_out, rc_in);
}

struct get_arg {
	struct call		*c;
	struct ledger_rec	*rec;
	int			 in_run;	/* the run wrote this key already */
};

static int
get_txn(struct store_txn *txn, void *arg)
{
	struct get_arg	*ga = arg;
	int		 rc;

	/* Shared: the database's intent answers (commit_shared). */
	if (pgstore_on())
		memset(ga->rec, 0, sizeof(*ga->rec));
	else if ((rc = ledger_get(txn, ga->c->idem_key, ga->rec)) != 0)
		return rc;
	rc = ledger_run_has(txn, ga->c->tenant, ga->c->run_id,
	    ga->c->idem_key);
	if (rc < 0 || rc > 1)
		return rc;
	ga->in_run = rc;
	return 0;
}

/* Is a call of c's run already waiting on (or running) w? */
static int
wop_has_run(struct wop *w, const struct call *c)
{
	struct call	*o;

	if (strcmp(w->first->tenant, c->tenant) == 0 &&
	    strcmp(w->first->run_id, c->run_id) == 0)
		return 1;
	TAILQ_FOREACH(o, &w->waiters, entry)
		if (strcmp(o->tenant, c->tenant) == 0 &&
		    strcmp(o->run_id, c->run_id) == 0)
			return 1;
	return 0;
}

/*
 * Room the ledger must keep for outcomes: a running write's outcome holds
 * a result of up to max_output bytes, and an outcome that cannot be stored
 * would turn a write that ran into one in doubt.  So intents are refused
 * while the map, at its hard limit, could not take every outcome due.
 * Room is what is really free (store_room: never used, or freed by swept
 * records and reusable), not the high-water mark: a ledger that was full
 * once takes writes again when its records expire.  It is counted above
 * the store's reserve, which is kept for the sweeper and operators.
 */
static int
ledger_has_room(size_t more)
{
	uint64_t	one = ex->conf->max_output + 65536, need;

	need = (uint64_t)(nops + more) * one * 2;
	return store_has_room(ex->store, one, need);
}

/*
 * What the ledger says of c's key before anything is recorded: done is
 * replayed, in doubt refused, and a key this run wrote already stopped.
 * Returns 1 when c was so answered (and freed), 0 when it goes on.
 */
static int
write_known(struct call *c)
{
	struct ledger_rec	 rec;
	struct get_arg		 ga = { c, &rec, 0 };
	char			 msg[768];
	int			 rc;

	if ((rc = store_read(ex->store, get_txn, &ga)) != 0) {
		snprintf(msg, sizeof(msg), "the write ledger cannot be read:"
		    " %s", store_strerror(rc));
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		call_free(c);
		return 1;
	}
	if (ga.in_run && c->approval_id == NULL) {
		answer_refuse(c, ST_STOPPED, R_DUPLICATE_WRITE,
		    "this write already ran in this run");
		rc = 1;
	} else if (rec.state == L_DONE) {
		answer_stored(c, rec.response, rec.responselen, 1);
		metrics_write_name(c->tool, WO_REPLAYED);
		rc = 1;
	} else if (rec.state == L_RUNNING || rec.state == L_IN_DOUBT) {
		/* L_RUNNING: an earlier executor's, so in doubt. */
		in_doubt_message(msg, sizeof(msg), c->idem_key, rec.note);
		answer_refuse(c, ST_ERROR, E_TOOL_FAILED, msg);
		rc = 1;
	}
	ledger_rec_free(&rec);
	if (rc == 1)
		call_free(c);
	return rc;
}

/* A new op for c's key, its intent queued for the next commit. */
static void
wop_new(struct call *c, const struct tool *tool)
{
	struct wop	*w;

	w = xcalloc(1, sizeof(*w));
	w->key = xstrdup(c->idem_key);
	w->tenant = xstrdup(c->tenant);
	w->tool = tool;
	w->first = c;
	TAILQ_INIT(&w->waiters);
	w->phase = W_INTENT;
	fill_intent(w);
	TAILQ_INSERT_TAIL(&ops, w, entry);
	nops++;
	job_begin();
	wop_enqueue(w);
}

void
write_start(struct call *c, const struct tool *tool)
{
	struct wop	*w;
	char		 msg[768];

	/*
	 * The same write twice in one run is stopped here too, whatever
	 * gatewayd decided: running now, or written before.  Resuming one
	 * checkpoint again is not a second write: it replays.
	 */
	if ((w = wop_find(c->idem_key)) != NULL) {
		if (c->approval_id == NULL && wop_has_run(w, c)) {
			answer_refuse(c, ST_STOPPED, R_DUPLICATE_WRITE,
			    "this write already ran in this run");
			call_free(c);
			return;
		}
		TAILQ_INSERT_TAIL(&w->waiters, c, entry);
		return;
	}
	/* Shared store out of reach: fail closed, nothing recorded. */
	if (pgstore_on() && !pgstore_up()) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, "the shared store"
		    " (PostgreSQL) cannot be reached: the write was not run");
		call_free(c);
		return;
	}
	if (write_known(c))
		return;
	if (!ledger_has_room(1)) {
		log_warnx("ledger: %s refused: no room left for its outcome"
		    " (store.max_map_size)", c->idem_key);
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, "the write ledger is"
		    " full (store.max_map_size): the write was not run");
		call_free(c);
		return;
	}
	/*
	 * Its tool slot before its intent: refused now, nothing is
	 * recorded, and the same write runs normally when retried.
	 */
	if (admit_tool(c->tenant, msg, sizeof(msg)) == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		call_free(c);
		return;
	}
	wop_new(c, tool);
}

/*
 * One pass of the sweeper: pending approvals past their expiry stop
 * counting against their tenant's quota, then expired records go.  Both
 * may use the store's reserve; when even that is not enough (STORE_FULL:
 * deleting takes pages too), the batch is halved and tried again, down to
 * one entry, so a full store is never left unswept.  *full: a batch was
 * full, so more is due.
 */
static int
sweep_pass(size_t *full)
{
	static size_t	batch = SWEEP_BATCH;
	size_t		na, nl;
	int		rc;

	for (;;) {
		na = nl = 0;
		rc = apquota_sweep(ex->store, (uint64_t)time(NULL), batch, &na);
		if (rc == 0)
			rc = ledger_sweep(ex->store, store_clock_ms(ex->store),
			    now_ms(), ex->conf->retention_s * 1000, batch, &nl);
		if (rc != STORE_FULL || batch == 1)
			break;
		batch /= 2;
		log_warnx("ledger: sweep: the store is full: batches of %zu",
		    batch);
	}
	if (rc == 0 && (na > 0 || nl > 0))
		log_debug("ledger: swept %zu expired entries, %zu approvals"
		    " past their expiry", nl, na);
	*full = rc == 0 && (na == batch || nl == batch);
	/* Back towards full batches once they fit again. */
	if (rc == 0 && batch < SWEEP_BATCH)
		batch = batch * 2 > SWEEP_BATCH ? SWEEP_BATCH : batch * 2;
	return rc;
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	static unsigned	ticks;
	struct timeval	tv;
	size_t		full = 0;
	int		rc;

	(void)fd;
	(void)what;
	(void)arg;
	if ((rc = sweep_pass(&full)) != 0)
		log_warnx("ledger: sweep: %s", store_strerror(rc));
	if (pgstore_on() && pgstore_up() && ++ticks % WAIT_RECHECK_S == 0)
		write_shared_up();
	/* A full batch means more is due: go on soon, in a new transaction. */
	tv.tv_sec = full ? 0 : 1;
	tv.tv_usec = full ? 10000 : 0;
	evtimer_add(sweep_ev, &tv);
}

void
write_init(void)
{
	struct timeval	tv = { 1, 0 };
	size_t		n = 0;
	int		rc;

	if ((rc = ledger_recover(ex->store, &n)) != 0)
		fatalx("ledger: recovery: %s", store_strerror(rc));
	if (n > 0)
		log_warnx("ledger: %zu writes are in doubt: see 'gatewayctl"
		    " ledger'", n);
	flush_ev = event_new(ex->base, -1, 0, flush_cb, NULL);
	sweep_ev = evtimer_new(ex->base, sweep_cb, NULL);
	if (flush_ev == NULL || sweep_ev == NULL)
		fatalx("write_init: event_new");
	evtimer_add(sweep_ev, &tv);
}

struct resolve_arg {
	const char	*key;
	int		 done;
	const char	*who;
	int		 found;		/* the record's state before */
};

/* r, in doubt, settled as ra says: the same with LMDB and shared. */
static int
settle(struct ledger_rec *r, void *arg)
{
	struct resolve_arg	*ra = arg;

	free(r->note);
	xasprintf(&r->note, "resolved %s by %s", ra->done ? "done" : "failed",
	    ra->who);
	r->finished_ms = now_ms();
	r->finished_clock = store_clock_ms(ex->store);
	free(r->response);
	r->response = NULL;
	if (ra->done) {
		/* Replays answer ok, with no result: none was recorded. */
		struct response	 resp = { .status = ST_OK,
		    .result = "\xc0", .resultlen = 1,	/* nil */
		    .args_hash = r->args_hash ? r->args_hash : "",
		    .idempotency_key = ra->key, .message = r->note };

		r->response = response_pack(&resp, &r->responselen);
		r->state = L_DONE;
	} else
		r->state = L_FAILED;
	return 0;
}

static int
resolve_txn(struct store_txn *txn, void *arg)
{
	struct resolve_arg	*ra = arg;
	struct ledger_rec	 r;
	int			 rc;

	if ((rc = ledger_get(txn, ra->key, &r)) != 0)
		return rc;
	ra->found = r.state;
	if (r.state != L_IN_DOUBT && r.state != L_RUNNING) {
		ledger_rec_free(&r);
		return 0;
	}
	(void)settle(&r, ra);
	rc = ledger_put(txn, ra->key, &r);
	ledger_rec_free(&r);
	return rc;
}

/* The audit record of a resolve, once it is stored. */
static void
resolve_audit(const char *key, int done, const char *who)
{
	struct audit_rec	ar = { .event = "resolve", .uid = -1 };

	ar.idempotency_key = key;
	ar.decision = done ? "done" : "failed";
	ar.approver = who;
	(void)audit_write(&ar, 1);
	log_info("ledger: %s resolved %s by %s", key, ar.decision, who);
}

struct shared_resolve {
	struct resolve_arg	 ra;
	char			*key, *who;
	void			(*fn)(const char *, void *);
	void			*arg;
};

static void
shared_resolved(const char *err, void *arg)
{
	struct shared_resolve	*sr = arg;

	if (err == NULL)
		resolve_audit(sr->key, sr->ra.done, sr->who);
	sr->fn(err, sr->arg);
	free(sr->key);
	free(sr->who);
	free(sr);
}

/*
 * An operator may settle key now: it is not running here, and the audit
 * log can take the record of it.  Else 0, err saying why.
 */
static int
resolvable(const char *key, char *err, size_t errlen)
{
	if (wop_find(key) != NULL) {
		snprintf(err, errlen, "%s is running now", key);
		return 0;
	}
	if (!audit_up()) {
		snprintf(err, errlen, "the audit log cannot be written: %s is"
		    " not resolved", key);
		return 0;
	}
	return 1;
}

int
write_resolve_shared(const char *key, int done, const char *who,
    void (*fn)(const char *, void *), void *arg, char *err, size_t errlen)
{
	struct shared_resolve	*sr;

	if (!resolvable(key, err, errlen))
		return -1;
	sr = xcalloc(1, sizeof(*sr));
	sr->key = xstrdup(key);
	sr->who = xstrdup(who);
	sr->ra.key = sr->key;
	sr->ra.done = done;
	sr->ra.who = sr->who;
	sr->fn = fn;
	sr->arg = arg;
	if (pgstore_resolve(key, settle, &sr->ra, shared_resolved, sr) ==
	    -1) {
		free(sr->key);
		free(sr->who);
		free(sr);
		snprintf(err, errlen, "the shared store (PostgreSQL) cannot be"
		    " reached: %s is not resolved", key);
		return -1;
	}
	return 0;
}

int
write_resolve(const char *key, int done, const char *who, char *err,
    size_t errlen)
{
	struct resolve_arg	ra = { key, done, who, L_NONE };
	int			rc;

	if (!resolvable(key, err, errlen))
		return -1;
	/* An operator's action: it may use the reserve. */
	if ((rc = store_write_reserve(ex->store, resolve_txn, &ra)) != 0) {
		snprintf(err, errlen, "the ledger: %s", store_strerror(rc));
		return -1;
	}
	if (ra.found != L_IN_DOUBT && ra.found != L_RUNNING) {
		snprintf(err, errlen, "%s is not in doubt (it is %s)", key,
		    ledger_state_str(ra.found));
		return -1;
	}
	resolve_audit(key, done, who);
	return 0;
}

void
write_shutdown(void)
{
	if (flush_ev != NULL)
		event_free(flush_ev);
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	flush_ev = sweep_ev = NULL;
}
