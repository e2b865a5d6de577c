/*
 * MSG_CALL: gatewayd asks us to run a tool for a principal.  We trust
 * none of its decisions: the principal is mapped again from the uid and
 * gid, the policy gate is asked again with our own kill switch, and the
 * args hash is computed again from the args themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/toolrun.h"
#include "proto/proto.h"

/* A call in flight: what the answer and the audit record need. */
struct call {
	uint64_t	 id;
	uid_t		 uid;
	char		*tenant;
	char		*env;
	char		*run_id;
	char		*step_id;
	char		*tool;
	char		 args_hash[ARGS_HASH_LEN + 1];
	char		*idem_key;	/* writes only */
};

static void
call_free(struct call *c)
{
	free(c->tenant);
	free(c->env);
	free(c->run_id);
	free(c->step_id);
	free(c->tool);
	free(c->idem_key);
	free(c);
}

static void
call_audit(const struct call *c, const char *decision, const char *reason,
    const char *note)
{
	struct audit_rec	ar = {
		.event = "call",
		.tenant = c->tenant,
		.env = c->env,
		.uid = (long long)c->uid,
		.run_id = c->run_id,
		.step_id = c->step_id,
		.tool = c->tool,
		.args_hash = c->args_hash[0] ? c->args_hash : NULL,
		.idempotency_key = c->idem_key,
		.decision = decision,
		.reason = reason,
		.note = note,
	};

	audit_write(&ar, c->idem_key != NULL);
}

/*
 * Answer with a refusal or an error: status "denied" or "stopped" carry
 * stop_reason, "error" carries error; both carry a message.
 */
static void
call_refuse(struct call *c, const char *status, const char *reason,
    const char *message)
{
	struct msgbuf	mb;
	int		is_error = strcmp(status, ST_ERROR) == 0;

	call_audit(c, status, reason, message);
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_CALL_ANS, c->id, 1);
	pk_str(&mb.pk, "response");
	msgpack_pack_map(&mb.pk, 3);
	pk_kv_str(&mb.pk, "status", status);
	pk_kv_str(&mb.pk, is_error ? "error" : "stop_reason", reason);
	pk_kv_str(&mb.pk, "message", message);
	ex_send(&mb);
	msgbuf_free(&mb);
}

static void
call_ok(struct call *c, const char *result, size_t resultlen, int replayed)
{
	struct msgbuf	mb;

	call_audit(c, ST_OK, NULL, replayed ? "replayed" : NULL);
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_CALL_ANS, c->id, 1);
	pk_str(&mb.pk, "response");
	msgpack_pack_map(&mb.pk, c->idem_key != NULL ? 5 : 3);
	pk_kv_str(&mb.pk, "status", ST_OK);
	pk_str(&mb.pk, "result");
	/* The result is already msgpack: append its bytes as they are. */
	msgpack_sbuffer_write(&mb.sbuf, result, resultlen);
	pk_kv_str(&mb.pk, "args_hash", c->args_hash);
	if (c->idem_key != NULL) {
		pk_kv_str(&mb.pk, "idempotency_key", c->idem_key);
		pk_kv_bool(&mb.pk, "replayed", replayed);
	}
	ex_send(&mb);
	msgbuf_free(&mb);
}

static void
call_done(const struct toolrun_result *r, void *arg)
{
	struct call	*c = arg;

	switch (r->status) {
	case TR_OK:
		call_ok(c, r->result, r->resultlen, 0);
		break;
	case TR_FAILED:
		call_refuse(c, ST_ERROR, E_TOOL_FAILED, r->message);
		break;
	case TR_TIMEOUT:
		call_refuse(c, ST_ERROR, E_TOOL_TIMEOUT, r->message);
		break;
	case TR_BAD_OUTPUT:
		call_refuse(c, ST_STOPPED, R_INVALID_OUTPUT, r->message);
		break;
	}
	log_debug("call %s/%s %s: status %d in %llu ms", c->tenant, c->run_id,
	    c->tool, (int)r->status, (unsigned long long)r->duration_ms);
	call_free(c);
	ex_tool_done();
}

/*
 * The principal gatewayd names must be the one our own config maps the
 * peer's uid and gid to.  A mismatch means gatewayd is lying or runs with
 * another config: refuse, loudly.
 */
static const struct principal *
call_principal(struct call *c, const msgpack_object *body)
{
	const struct principal	*p;
	gid_t			 gid;

	c->uid = (uid_t)mp_get(body, "uid")->via.u64;
	gid = (gid_t)mp_get(body, "gid")->via.u64;
	p = config_principal(ex->conf, c->uid, gid);
	if (p == NULL || strcmp(p->tenant, c->tenant) != 0 ||
	    strcmp(p->env, c->env) != 0) {
		log_warnx("gatewayd claims uid %u gid %u is %s/%s; our config"
		    " says %s/%s: refused", (unsigned)c->uid, (unsigned)gid,
		    c->tenant, c->env, p ? p->tenant : "nobody",
		    p ? p->env : "-");
		return NULL;
	}
	return p;
}

void
call_handle(const struct proto_msg *m)
{
	struct toolrun_req	 req;
	struct canon_buf	 json = { NULL, 0, 0 };
	const struct tool	*tool;
	const char		*reason;
	char			 msg[512], err[256];
	struct call		*c;
	enum gate		 g;

	c = xcalloc(1, sizeof(*c));
	c->id = m->id;
	c->tenant = mp_strdup(mp_get(m->body, "tenant"));
	c->env = mp_strdup(mp_get(m->body, "env"));
	c->run_id = mp_strdup(mp_get(m->body, "run_id"));
	c->tool = mp_strdup(mp_get(m->body, "tool"));
	if (mp_get(m->body, "step_id") != NULL)
		c->step_id = mp_strdup(mp_get(m->body, "step_id"));

	if (call_principal(c, m->body) == NULL) {
		call_refuse(c, ST_DENIED, R_UNKNOWN_PRINCIPAL,
		    "the caller has no principal");
		call_free(c);
		return;
	}
	g = policy_gate(ex->conf, c->tool, ex_writes_on(), &reason);
	if (g == GATE_DENY) {
		policy_message(ex->conf, c->tool, reason, ex_writes_on(), msg,
		    sizeof(msg));
		call_refuse(c, ST_DENIED, reason, msg);
		call_free(c);
		return;
	}
	if (args_hash(mp_get(m->body, "args"), c->args_hash, &json, err,
	    sizeof(err)) == -1) {
		c->args_hash[0] = '\0';
		call_refuse(c, ST_ERROR, E_BAD_REQUEST, err);
		call_free(c);
		return;
	}
	if (g == GATE_WRITE && config_needs_approval(ex->conf, c->tool)) {
		/* Approvals come with the approval issue: until then, no. */
		call_refuse(c, ST_DENIED, R_APPROVAL_REQUIRED,
		    "this write needs an operator's approval");
		goto out;
	}
	if ((tool = config_tool(ex->conf, c->tool)) == NULL) {
		snprintf(msg, sizeof(msg), "tool %s has no catalog entry",
		    c->tool);
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		goto out;
	}
	if (g == GATE_WRITE)
		xasprintf(&c->idem_key, "%s:%s:%s", c->tenant, c->tool,
		    c->args_hash);

	memset(&req, 0, sizeof(req));
	req.tool = tool;
	req.tenant = c->tenant;
	req.env = c->env;
	req.run_id = c->run_id;
	req.step_id = c->step_id;
	req.args_hash = c->args_hash;
	req.idempotency_key = c->idem_key;
	req.input = json.data;
	req.inputlen = json.len;
	req.credentials_dir = ex->conf->credentials_dir;
	req.max_output = ex->conf->max_output;
	toolrun_start(&req, call_done, c);
	canon_buf_free(&json);
	return;
out:
	canon_buf_free(&json);
	call_free(c);
}
