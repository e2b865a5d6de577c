/*
 * The answer module (response.h): a response packed for the ledger or
 * for the wire, and the audit record every answer to a call gets.  The
 * way out to gatewayd is gwout.c's.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/proto.h"
#include "executor/backend.h"
#include "executor/budget.h"
#include "executor/executor.h"
#include "executor/request.h"
#include "executor/response.h"

#define WITHHELD_RESULT	"the audit log cannot be written: the result is withheld"
#define WITHHELD_REPLAY	"the audit log cannot be written: the replay is withheld"

/* r's fields into the map m, in their one order. */
static void
response_fields(struct mpmap *m, const struct response *r)
{
	mpmap_str(m, "status", r->status);
	if (r->reason != NULL)
		mpmap_str(m, strcmp(r->status, ST_ERROR) == 0 ? "error" :
		    "stop_reason", r->reason);
	mpmap_str_opt(m, "state", r->state);
	mpmap_str_opt(m, "approval_id", r->approval_id);
	mpmap_str_opt(m, "checkpoint", r->checkpoint);
	if (r->result != NULL) {
		/* The result is msgpack already: append its bytes. */
		(void)mpmap_key(m, "result");
		msgpack_sbuffer_write(m->sb, r->result, r->resultlen);
	}
	mpmap_str_opt(m, "args_hash", r->args_hash);
	if (r->has_expires_at)
		mpmap_uint(m, "expires_at", r->expires_at);
	mpmap_str_opt(m, "idempotency_key", r->idempotency_key);
	mpmap_str_opt(m, "message", r->message);
	if (r->retryable)
		mpmap_bool(m, "retryable", 1);
	/* A tool's Retry-After, or when a bucket or the breaker lets it. */
	if (r->retry_after_ms > 0)
		mpmap_uint(m, "retry_after_ms", r->retry_after_ms);
}

char *
response_pack(const struct response *r, size_t *len)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	struct mpmap	m;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mpmap_begin_sb(&m, &sb, &pk);
	response_fields(&m, r);
	mpmap_end(&m);
	*len = sb.size;
	return msgpack_sbuffer_release(&sb);
}

/*
 * What a call came to, for its record: "ok" or "failed" once its tool ran
 * (for it, for the identical write it joined, or earlier for the result
 * it replays); "not_run" when nothing ran.  A write's tool that was never
 * reached (unavailable, changed, its breaker open) did not run.
 */
static const char *
outcome(const struct call *c, const char *status, const char *reason,
    int ran)
{
	if (!ran)
		return c->ran ? "failed" : "not_run";
	if (strcmp(status, ST_OK) == 0)
		return "ok";
	if (reason != NULL && (strcmp(reason, E_UNAVAILABLE) == 0 ||
	    strcmp(reason, R_TOOL_CHANGED) == 0 ||
	    strcmp(reason, R_CIRCUIT_OPEN) == 0))
		return "not_run";
	return "failed";
}

/*
 * Records of writes that ran, or were refused, reach the disk (grouped per
 * loop turn); reads and replays, which change nothing, are not synced.
 * replayed is -1 for an answer that says nothing of it (a refusal); ran
 * says a tool's result is the answer (and c->ran that a read's tool ran
 * and was stopped).  Returns -1 when the record is not in the log.
 */
static int
call_audit(const struct call *c, const char *decision, const char *reason,
    const char *note, int sync, int replayed, int ran)
{
	struct audit_rec	ar = {
		.event = "call",
		.tenant = c->tenant,
		.env = c->env,
		.uid = (long long)c->uid,
		.run_id = c->run_id,
		.step_id = c->step_id,
		.traceparent = c->traceparent,
		.tool = c->tool,
		.mode = c->mode,
		.backend = c->backend,
		.args_hash = c->args_hash[0] ? c->args_hash : NULL,
		.idempotency_key = c->idem_key,
		.decision = decision,
		.reason = reason,
		.approval_id = c->approval_id,
		.approver = c->approver,
		.outcome = outcome(c, decision, reason, ran),
		.has_duration = 1,
		.duration_ms = mono_ms() - c->start_ms,
		.note = note,
		.compensates = c->compensates,
	};

	if (c->idem_key != NULL)
		ar.replayed = replayed == 1 ? 2 : 1;
	audit_args(&ar, &c->json);
	return audit_write(&ar, sync);
}

/*
 * An answer to gatewayd; a resume's carries the run it belongs to, which
 * only the checkpoint says.  The response map goes in as "response".
 */
static void
answer_begin(struct msgbuf *mb, struct mpmap *body, const struct call *c)
{
	msgbuf_init(mb);
	msgbuf_begin_msg(mb, c->ans_type, c->id, body);
	if (c->ans_type == MSG_RESUME_ANS)
		mpmap_str_opt(body, "run_id", c->run_id);
}

/*
 * The refusal that goes instead of c's answer should its record, still
 * queued, not reach the log (gwout.c).
 */
static void
withheld_begin(struct msgbuf *alt, const struct call *c, const char *message)
{
	struct mpmap	body, resp;
	struct response	r = { .status = ST_ERROR, .reason = E_UNAVAILABLE,
	    .message = message };

	answer_begin(alt, &body, c);
	mpmap_begin_in(&resp, &body, "response");
	response_fields(&resp, &r);
	mpmap_end(&resp);
	mpmap_end(&body);
}

/*
 * The response is packed: close the body and send.  withheld: an answer
 * that may not go without its record, and the refusal's message if the
 * record is lost.
 */
static void
answer_end(struct msgbuf *mb, struct mpmap *body, const struct call *c,
    const char *withheld)
{
	struct msgbuf	alt;

	mpmap_end(body);
	if (withheld != NULL && audit_queued()) {
		withheld_begin(&alt, c, withheld);
		gw_send_guarded(mb, &alt);
		msgbuf_free(&alt);
	} else
		gw_send(mb);
	msgbuf_free(mb);
}

/* r on the wire; "replayed" is there when replayed is 0 or 1. */
static void
answer_send(struct call *c, const struct response *r, int replayed,
    const char *withheld)
{
	struct msgbuf	mb;
	struct mpmap	body, resp;
	char		*p;
	size_t		 len;

	if (c->sink != NULL) {
		p = response_pack(r, &len);
		c->sink(c, p, len, replayed == 1);
		free(p);
		return;
	}
	answer_begin(&mb, &body, c);
	mpmap_begin_in(&resp, &body, "response");
	response_fields(&resp, r);
	if (replayed != -1)
		mpmap_bool(&resp, "replayed", replayed);
	mpmap_end(&resp);
	answer_end(&mb, &body, c, withheld);
}

void
answer_refuse(struct call *c, const char *status, const char *reason,
    const char *message)
{
	answer_refuse_retry(c, status, reason, message, 0);
}

void
answer_refuse_retry(struct call *c, const char *status, const char *reason,
    const char *message, uint64_t retry_after_ms)
{
	struct response	r = { .status = status, .reason = reason,
	    .message = message, .retry_after_ms = retry_after_ms };

	call_audit(c, status, reason, message, c->idem_key != NULL, -1, 0);
	/* A run we answer "stopped" is stopped for us too. */
	if (strcmp(status, ST_STOPPED) == 0 && c->run_id != NULL &&
	    c->tenant != NULL)
		budget_stop(c->tenant, c->run_id, reason, message);
	answer_send(c, &r, -1, NULL);
}

void
answer_failed(struct call *c, const struct tool_outcome *o)
{
	struct response	r = { .status = ST_ERROR, .reason = E_TOOL_FAILED,
	    .message = o->message, .retryable = o->retryable,
	    .retry_after_ms = o->retry_after_ms };

	call_audit(c, r.status, r.reason, r.message, c->idem_key != NULL, 0,
	    1);
	answer_send(c, &r, -1, NULL);
}

/* The record answer(c, r, replayed) writes. */
static int
answer_audit(struct call *c, const struct response *r, int replayed)
{
	if (c->audited)
		return c->audit_rc;
	return call_audit(c, r->status, r->reason, NULL,
	    c->idem_key != NULL && !replayed, replayed, 1);
}

void
answer_preaudit(struct call *c, const struct response *r, int replayed)
{
	c->audit_rc = answer_audit(c, r, replayed);
	c->audited = 1;
}

void
answer(struct call *c, const struct response *r, int replayed)
{
	/*
	 * An answer that changes nothing (a read's result, a replay) is
	 * not given without its record.  A write's own outcome is: it ran,
	 * its intent record is in the log and its outcome in the ledger,
	 * which replays it.
	 */
	const char	*withheld = NULL;
	int		 rc;

	rc = answer_audit(c, r, replayed);
	if (replayed || c->idem_key == NULL)
		withheld = c->idem_key == NULL ? WITHHELD_RESULT :
		    WITHHELD_REPLAY;
	/* A sink takes the answer now: the record goes first, now too. */
	if (rc == 0 && withheld != NULL && c->sink != NULL && !audit_up())
		rc = -1;
	if (rc == -1 && withheld != NULL) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, withheld);
		return;
	}
	answer_send(c, r, c->idem_key != NULL ? replayed : -1, withheld);
}

void
answer_stored(struct call *c, const char *resp, size_t resplen, int replayed)
{
	int			 rc;
	msgpack_unpacked	 u;
	const msgpack_object	*st, *reason;
	struct msgbuf		 mb;
	struct mpmap		 body, out;
	size_t			 off = 0;
	uint32_t		 i, n;
	char			*status = NULL, *why = NULL;

	/*
	 * What a store written before the result limit applied to msgpack
	 * may hold must not make a frame gatewayd refuses (and so end the
	 * pair on every replay): such a response is answered as the stop a
	 * too large result is now.
	 */
	if (resplen > ex->conf->max_output + 65536) {
		answer_refuse(c, ST_STOPPED, R_INVALID_OUTPUT, "the stored"
		    " result is larger than limits.max_output allows to send");
		return;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, resp, resplen, &off) !=
	    MSGPACK_UNPACK_SUCCESS || u.data.type != MSGPACK_OBJECT_MAP)
		fatalx("answer_stored: not a response map");
	st = mp_get(&u.data, "status");
	if ((reason = mp_get(&u.data, "stop_reason")) == NULL)
		reason = mp_get(&u.data, "error");
	status = mp_strdup(st);
	why = mp_strdup(reason);
	rc = call_audit(c, status, why, NULL, c->idem_key != NULL &&
	    !replayed, replayed, 1);
	if (rc == 0 && replayed && c->sink != NULL && !audit_up())
		rc = -1;
	if (rc == -1 && replayed) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, WITHHELD_REPLAY);
		goto out;
	}
	if (c->sink != NULL) {
		c->sink(c, resp, resplen, replayed);
		goto out;
	}
	n = u.data.via.map.size;
	answer_begin(&mb, &body, c);
	mpmap_begin_in(&out, &body, "response");
	for (i = 0; i < n; i++) {
		/* The stored response's keys are strings (ledger.c). */
		msgpack_pack_object(mpmap_key_obj(&out,
		    &u.data.via.map.ptr[i].key), u.data.via.map.ptr[i].val);
	}
	if (c->idem_key != NULL)
		mpmap_bool(&out, "replayed", replayed);
	mpmap_end(&out);
	answer_end(&mb, &body, c, replayed ? WITHHELD_REPLAY : NULL);
out:
	msgpack_unpacked_destroy(&u);
	free(status);
	free(why);
}

/*
 * The answer to a request on a connection whose socket we could not keep
 * (peers.c): no identity is known, so nothing is checked or recorded.
 */
void
answer_unavailable(uint64_t id, uint32_t ans_type, const char *message)
{
	struct response	r = { .status = ST_ERROR, .reason = E_UNAVAILABLE,
	    .message = message };

	answer_plain(ans_type, id, &r);
}

void
answer_plain(uint32_t ans_type, uint64_t id, const struct response *r)
{
	struct msgbuf	mb;
	struct mpmap	body, resp;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, ans_type, id, &body);
	mpmap_begin_in(&resp, &body, "response");
	response_fields(&resp, r);
	mpmap_end(&resp);
	answer_end(&mb, &body, NULL, NULL);
}
