/*
 * A call in flight and its re-checks, for the handlers of MSG_CALL
 * (call.c) and of a resumed approval (approval.c).
 *
 * gatewayd asks us to run a tool for a principal.  We trust
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
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/admit.h"
#include "executor/backend.h"
#include "executor/budget.h"
#include "executor/executor.h"
#include "executor/killswitch.h"
#include "executor/peers.h"
#include "executor/response.h"
#include "executor/request.h"

void
call_free(struct call *c)
{
	free(c->tenant);
	free(c->env);
	free(c->run_id);
	free(c->step_id);
	free(c->traceparent);
	free(c->tool);
	free(c->idem_key);
	free(c->approver);
	free(c->approval_id);
	free(c->compensates);
	canon_buf_free(&c->json);
	free(c);
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
	case MSG_TOOLS:
		*cl = (struct claim){ m->tools.conn, m->tools.uid,
		    m->tools.gid, m->tools.tenant, m->tools.env };
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
	c->start_ms = mono_ms();
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
 * resumed approval: policy, args, catalog, a read's tool slot, the run's
 * budget.  Where c goes next; ROUTE_NONE when it was refused (answered
 * and freed).  *toolp gets the catalog entry.
 */
enum route
call_check(struct call *c, const msgpack_object *args, int approved,
    const struct tool **toolp)
{
	const struct tool	*tool;
	const char		*reason;
	struct refusal		 why;
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
	g = policy_gate(ex->conf, c->tool, ks_writes_on(), &reason);
	if (g != GATE_DENY)
		c->mode = g == GATE_WRITE ? "write" : "read";
	if (g == GATE_DENY) {
		policy_message(ex->conf, c->tool, reason, ks_writes_on(), msg,
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
	c->backend = backend_name(tool);
	/*
	 * A read takes a tool slot before it is counted: one refused for
	 * want of a slot costs nothing.  A write takes its slot in
	 * write_start(), after its replays, before its intent.
	 */
	if (g == GATE_READ && admit_tool(c->tenant, msg, sizeof(msg)) == -1) {
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		goto out;
	}
	if (budget_check(c, g == GATE_WRITE, &why) == -1) {
		answer_refuse(c, why.status, why.reason, why.message);
		goto out;
	}
	*toolp = tool;
	if (g == GATE_READ)
		return ROUTE_READ;
	xasprintf(&c->idem_key, "%s:%s:%s", c->tenant, c->tool, c->args_hash);
	if (!approved && policy_needs_approval(ex->conf, c->tool))
		return ROUTE_APPROVAL;
	return ROUTE_WRITE;
out:
	call_free(c);
	return ROUTE_NONE;
}
