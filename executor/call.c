/*
 * MSG_CALL: gatewayd asks us to run a tool for a principal.  We trust
 * none of its decisions: the principal is mapped again from the uid and
 * gid, the policy gate is asked again with our own kill switch, and the
 * args hash and idempotency key are computed again from the args.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/xmalloc.h"
#include "executor/admit.h"
#include "executor/budget.h"
#include "executor/call.h"
#include "executor/executor.h"
#include "executor/peers.h"
#include "executor/response.h"
#include "executor/toolrun.h"
#include "proto/proto.h"

/* Reads whose tool runs: a hang-up of their agent cancels them. */
static struct callq	reads = TAILQ_HEAD_INITIALIZER(reads);

void
call_free(struct call *c)
{
	free(c->tenant);
	free(c->env);
	free(c->run_id);
	free(c->step_id);
	free(c->tool);
	free(c->idem_key);
	free(c->approver);
	free(c->approval_id);
	canon_buf_free(&c->json);
	free(c);
}

void
call_run_tool(struct call *c, const struct tool *tool,
    void (*done)(const struct toolrun_result *, void *), void *arg)
{
	struct toolrun_req	req;

	memset(&req, 0, sizeof(req));
	req.tool = tool;
	/*
	 * As root, a tool without a user runs as tool_user, never as root.
	 * Unprivileged (development mode) no other user can be switched to:
	 * tools run as the executor's own user.
	 */
	req.default_user = geteuid() == 0 ? ex->conf->tool_user : NULL;
	req.tenant = c->tenant;
	req.env = c->env;
	req.run_id = c->run_id;
	req.step_id = c->step_id;
	req.args_hash = c->args_hash;
	req.idempotency_key = c->idem_key;
	req.input = c->json.data;
	req.inputlen = c->json.len;
	req.credentials_dir = ex->conf->credentials_dir;
	req.max_output = ex->conf->max_output;
	toolrun_start(&req, done, arg);
}

/* A read's answer goes straight back: nothing is recorded but the audit. */
static void
read_done(const struct toolrun_result *r, void *arg)
{
	struct call	*c = arg;
	struct response	 resp = { .status = ST_OK, .args_hash = c->args_hash };

	TAILQ_REMOVE(&reads, c, entry);
	switch (r->status) {
	case TR_OK:
		/* No record, no result: the read changed nothing. */
		resp.result = r->result;
		resp.resultlen = r->resultlen;
		answer(c, &resp, 0);
		break;
	case TR_FAILED:
		answer_refuse(c, ST_ERROR, E_TOOL_FAILED, r->message);
		break;
	case TR_TIMEOUT:
		answer_refuse(c, ST_ERROR, E_TOOL_TIMEOUT, r->message);
		break;
	case TR_BAD_OUTPUT:
		answer_refuse(c, ST_STOPPED, R_INVALID_OUTPUT, r->message);
		break;
	case TR_CANCELLED:
		/*
		 * Recorded as error/unavailable, like a request refused
		 * because its agent had hung up; the answer only frees
		 * gatewayd's slot for it, which drops it.
		 */
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "the agent has hung up: the read was cancelled");
		break;
	}
	admit_done(c->tenant);
	call_free(c);
	ex_tool_done();
}

static void
read_start(struct call *c, const struct tool *tool)
{
	TAILQ_INSERT_TAIL(&reads, c, entry);
	call_run_tool(c, tool, read_done, c);
}

size_t
call_conn_gone(uint64_t conn)
{
	struct call	*c;
	size_t		 n = 0;

	/* The callbacks come later, from the loop: the list stays as is. */
	TAILQ_FOREACH(c, &reads, entry) {
		if (c->conn != conn || c->cancelled)
			continue;
		c->cancelled = 1;
		n += toolrun_cancel(c);
	}
	return n;
}

/*
 * Who asks is the peer of the connection gatewayd passed us on the peer
 * channel, as SO_PEERCRED says, mapped by our own config.  What gatewayd
 * claims (uid, gid, tenant, env) must agree; a mismatch means gatewayd is
 * lying or runs with another config: refuse, loudly.
 */
void
request_claim(const struct proto_msg *m, struct claim *cl)
{
	switch (m->type) {
	case MSG_CALL:
		*cl = (struct claim){ m->call.conn, m->call.uid, m->call.gid,
		    m->call.tenant, m->call.env };
		break;
	case MSG_RESUME:
		*cl = (struct claim){ m->resume.conn, m->resume.uid,
		    m->resume.gid, m->resume.tenant, m->resume.env };
		break;
	case MSG_WAIT:
		*cl = (struct claim){ m->wait.conn, m->wait.uid, m->wait.gid,
		    m->wait.tenant, m->wait.env };
		break;
	default:
		fatalx("request_claim: %s names no caller",
		    msg_type_str(m->type));
	}
}

const struct principal *
peer_principal(const struct claim *cl, uid_t *uidp)
{
	const struct principal	*p;
	uint64_t		 conn = cl->conn;
	uid_t			 uid;
	gid_t			 gid;

	switch (peers_lookup(conn, &uid, &gid)) {
	case -1:
		fatalx("gatewayd named connection %llu, which it never passed",
		    (unsigned long long)conn);
	case -2:
		/* Refused, no identity: executor.c answers those first. */
		*uidp = (uid_t)-1;
		return NULL;
	}
	*uidp = uid;
	if (cl->uid != uid || cl->gid != gid) {
		log_warnx("gatewayd claims connection %llu is uid %llu gid"
		    " %llu; its peer is uid %u gid %u: refused",
		    (unsigned long long)conn, (unsigned long long)cl->uid,
		    (unsigned long long)cl->gid, (unsigned)uid, (unsigned)gid);
		return NULL;
	}
	if ((p = policy_principal(ex->conf, uid, gid)) == NULL)
		return NULL;
	if (strcmp(cl->tenant, p->tenant) != 0 ||
	    strcmp(cl->env, p->env) != 0) {
		log_warnx("gatewayd claims uid %u is another tenant than our"
		    " config's %s/%s: refused", (unsigned)uid, p->tenant,
		    p->env);
		return NULL;
	}
	return p;
}

struct call *
call_new(const struct proto_msg *m, uint32_t ans_type)
{
	const struct principal	*p;
	struct claim		 cl;
	struct call		*c;

	request_claim(m, &cl);
	c = xcalloc(1, sizeof(*c));
	c->ans_type = ans_type;
	c->id = m->id;
	c->conn = cl.conn;
	if ((p = peer_principal(&cl, &c->uid)) == NULL) {
		/* For the record: who gatewayd said it was. */
		c->tenant = xstrdup(cl.tenant);
		c->env = xstrdup(cl.env);
		answer_refuse(c, ST_DENIED, R_UNKNOWN_PRINCIPAL,
		    "the caller has no principal");
		call_free(c);
		return NULL;
	}
	c->tenant = xstrdup(p->tenant);
	c->env = xstrdup(p->env);
	return c;
}

/*
 * Everything a tool run needs checked, for a call (from MSG_CALL) or a
 * resumed approval: policy, args, catalog.  Takes ownership of c.
 */
void
call_dispatch(struct call *c, const msgpack_object *args, int approved)
{
	const struct tool	*tool;
	const char		*reason;
	char			 msg[512], err[256];
	enum gate		 g;

	/*
	 * The audit log fails closed: while it cannot be written nothing
	 * runs.  The refusal's own record is the next try: once it lands,
	 * the log is up and the calls after it are served.
	 */
	if (!audit_up()) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
		goto out;
	}
	g = policy_gate(ex->conf, c->tool, ex_writes_on(), &reason);
	if (g == GATE_DENY) {
		policy_message(ex->conf, c->tool, reason, ex_writes_on(), msg,
		    sizeof(msg));
		answer_refuse(c, ST_DENIED, reason, msg);
		goto out;
	}
	if (args_hash(args, c->args_hash, &c->json, err, sizeof(err)) == -1) {
		c->args_hash[0] = '\0';
		answer_refuse(c, ST_ERROR, E_BAD_REQUEST, err);
		goto out;
	}
	if ((tool = policy_tool(ex->conf, c->tool)) == NULL) {
		snprintf(msg, sizeof(msg), "tool %s has no catalog entry",
		    c->tool);
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		goto out;
	}
	/*
	 * A read takes a tool slot before it is counted: one refused for
	 * want of a slot costs nothing.  A write takes its slot in
	 * write_start(), after its replays, before its intent.
	 */
	if (g == GATE_READ && admit_tool(c->tenant, msg, sizeof(msg)) == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		goto out;
	}
	if (budget_check(c, g == GATE_WRITE) == -1)
		goto out;
	if (g == GATE_READ) {
		read_start(c, tool);
		return;
	}
	xasprintf(&c->idem_key, "%s:%s:%s", c->tenant, c->tool, c->args_hash);
	if (!approved && policy_needs_approval(ex->conf, c->tool)) {
		approval_request(c, args);
		return;
	}
	write_start(c, tool);
	return;
out:
	call_free(c);
}

void
call_handle(const struct proto_msg *m)
{
	struct call	*c;

	if ((c = call_new(m, MSG_CALL_ANS)) == NULL)
		return;
	c->run_id = xstrdup(m->call.run_id);
	c->tool = xstrdup(m->call.tool);
	if (m->call.step_id != NULL)
		c->step_id = xstrdup(m->call.step_id);
	call_dispatch(c, m->call.args, 0);
}
