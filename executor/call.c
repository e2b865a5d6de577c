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

/*
 * Records of writes that ran, or were refused, reach the disk (grouped per
 * loop turn); reads and replays, which change nothing, are not synced.
 * Returns -1 when the record is not in the log.
 */
static int
call_audit(const struct call *c, const char *decision, const char *reason,
    const char *note, int sync)
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
		.approver = c->approver,
		.note = note,
	};

	return audit_write(&ar, sync);
}

/*
 * An answer to gatewayd; a resume's carries the run it belongs to, which
 * only the checkpoint says.
 */
static void
answer_begin(struct msgbuf *mb, const struct call *c)
{
	int	with_run = c->ans_type == MSG_RESUME_ANS && c->run_id != NULL;

	msgbuf_init(mb);
	msgbuf_begin_msg(mb, c->ans_type, c->id, 1 + with_run);
	if (with_run)
		pk_kv_str(&mb->pk, "run_id", c->run_id);
	pk_str(&mb->pk, "response");
}

void
call_refuse(struct call *c, const char *status, const char *reason,
    const char *message)
{
	struct msgbuf	mb;
	int		is_error = strcmp(status, ST_ERROR) == 0;

	call_audit(c, status, reason, message, c->idem_key != NULL);
	/* A run we answer "stopped" is stopped for us too. */
	if (strcmp(status, ST_STOPPED) == 0 && c->run_id != NULL &&
	    c->tenant != NULL)
		budget_stop(c->tenant, c->run_id, reason, message);
	answer_begin(&mb, c);
	msgpack_pack_map(&mb.pk, 3);
	pk_kv_str(&mb.pk, "status", status);
	pk_kv_str(&mb.pk, is_error ? "error" : "stop_reason", reason);
	pk_kv_str(&mb.pk, "message", message);
	ex_send(&mb);
	msgbuf_free(&mb);
}

/*
 * The answer to a request on a connection whose socket we could not keep
 * (peers.c): no identity is known, so nothing is checked or recorded.
 */
void
call_unavailable(uint64_t id, uint32_t ans_type, const char *message)
{
	struct msgbuf	mb;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, ans_type, id, 1);
	pk_str(&mb.pk, "response");
	msgpack_pack_map(&mb.pk, 3);
	pk_kv_str(&mb.pk, "status", ST_ERROR);
	pk_kv_str(&mb.pk, "error", E_UNAVAILABLE);
	pk_kv_str(&mb.pk, "message", message);
	ex_send(&mb);
	msgbuf_free(&mb);
}

void
call_respond(struct call *c, const char *resp, size_t resplen, int replayed)
{
	/*
	 * What a store written before the result limit applied to msgpack
	 * may hold must not make a frame gatewayd refuses (and so end the
	 * pair on every replay): such a response is answered as the stop a
	 * too large result is now.
	 */
	if (resplen > ex->conf->max_output + 65536) {
		call_refuse(c, ST_STOPPED, R_INVALID_OUTPUT, "the stored result"
		    " is larger than limits.max_output allows to send");
		return;
	}
	msgpack_unpacked	 u;
	const msgpack_object	*st, *reason;
	struct msgbuf		 mb;
	size_t			 off = 0;
	uint32_t		 i, n;
	char			*status = NULL, *why = NULL;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, resp, resplen, &off) !=
	    MSGPACK_UNPACK_SUCCESS || u.data.type != MSGPACK_OBJECT_MAP)
		fatalx("call_respond: not a response map");
	st = mp_get(&u.data, "status");
	if ((reason = mp_get(&u.data, "stop_reason")) == NULL)
		reason = mp_get(&u.data, "error");
	status = mp_strdup(st);
	why = mp_strdup(reason);
	/*
	 * An answer that changes nothing (a replay) is not given without
	 * its record.  A write's own outcome is: it ran, its intent record
	 * is in the log and its outcome in the ledger, which replays it.
	 */
	if (call_audit(c, status, why, replayed ? "replayed" : NULL,
	    c->idem_key != NULL && !replayed) == -1 && replayed) {
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, "the audit log cannot"
		    " be written: the replay is withheld");
		goto out;
	}
	n = u.data.via.map.size;
	answer_begin(&mb, c);
	msgpack_pack_map(&mb.pk, n + (c->idem_key != NULL));
	for (i = 0; i < n; i++) {
		msgpack_pack_object(&mb.pk, u.data.via.map.ptr[i].key);
		msgpack_pack_object(&mb.pk, u.data.via.map.ptr[i].val);
	}
	if (c->idem_key != NULL)
		pk_kv_bool(&mb.pk, "replayed", replayed);
	ex_send(&mb);
	msgbuf_free(&mb);
out:
	msgpack_unpacked_destroy(&u);
	free(status);
	free(why);
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
	struct msgbuf	 mb;

	TAILQ_REMOVE(&reads, c, entry);
	switch (r->status) {
	case TR_OK:
		/* No record, no result: the read changed nothing. */
		if (call_audit(c, ST_OK, NULL, NULL, 0) == -1) {
			call_refuse(c, ST_ERROR, E_UNAVAILABLE, "the audit"
			    " log cannot be written: the result is withheld");
			break;
		}
		msgbuf_init(&mb);
		msgbuf_begin_msg(&mb, c->ans_type, c->id, 1);
		pk_str(&mb.pk, "response");
		msgpack_pack_map(&mb.pk, 3);
		pk_kv_str(&mb.pk, "status", ST_OK);
		pk_str(&mb.pk, "result");
		/* The result is msgpack already: append its bytes. */
		msgpack_sbuffer_write(&mb.sbuf, r->result, r->resultlen);
		pk_kv_str(&mb.pk, "args_hash", c->args_hash);
		ex_send(&mb);
		msgbuf_free(&mb);
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
	case TR_CANCELLED:
		/*
		 * Recorded as error/unavailable, like a request refused
		 * because its agent had hung up; the answer only frees
		 * gatewayd's slot for it, which drops it.
		 */
		call_refuse(c, ST_ERROR, E_UNAVAILABLE,
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
const struct principal *
peer_principal(const msgpack_object *body, uid_t *uidp)
{
	const struct principal	*p;
	uint64_t		 conn = mp_get(body, "conn")->via.u64;
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
	if (mp_get(body, "uid")->via.u64 != uid ||
	    mp_get(body, "gid")->via.u64 != gid) {
		log_warnx("gatewayd claims connection %llu is uid %llu gid"
		    " %llu; its peer is uid %u gid %u: refused",
		    (unsigned long long)conn,
		    (unsigned long long)mp_get(body, "uid")->via.u64,
		    (unsigned long long)mp_get(body, "gid")->via.u64,
		    (unsigned)uid, (unsigned)gid);
		return NULL;
	}
	if ((p = policy_principal(ex->conf, uid, gid)) == NULL)
		return NULL;
	if (!mp_streq(mp_get(body, "tenant"), p->tenant) ||
	    !mp_streq(mp_get(body, "env"), p->env)) {
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
	struct call	*c;

	const struct principal	*p;

	c = xcalloc(1, sizeof(*c));
	c->ans_type = ans_type;
	c->id = m->id;
	c->conn = mp_get(m->body, "conn")->via.u64;
	if ((p = peer_principal(m->body, &c->uid)) == NULL) {
		/* For the record: who gatewayd said it was. */
		c->tenant = mp_strdup(mp_get(m->body, "tenant"));
		c->env = mp_strdup(mp_get(m->body, "env"));
		call_refuse(c, ST_DENIED, R_UNKNOWN_PRINCIPAL,
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
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, AUDIT_DOWN_MSG);
		goto out;
	}
	g = policy_gate(ex->conf, c->tool, ex_writes_on(), &reason);
	if (g == GATE_DENY) {
		policy_message(ex->conf, c->tool, reason, ex_writes_on(), msg,
		    sizeof(msg));
		call_refuse(c, ST_DENIED, reason, msg);
		goto out;
	}
	if (args_hash(args, c->args_hash, &c->json, err, sizeof(err)) == -1) {
		c->args_hash[0] = '\0';
		call_refuse(c, ST_ERROR, E_BAD_REQUEST, err);
		goto out;
	}
	if ((tool = policy_tool(ex->conf, c->tool)) == NULL) {
		snprintf(msg, sizeof(msg), "tool %s has no catalog entry",
		    c->tool);
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
		goto out;
	}
	/*
	 * A read takes a tool slot before it is counted: one refused for
	 * want of a slot costs nothing.  A write takes its slot in
	 * write_start(), after its replays, before its intent.
	 */
	if (g == GATE_READ && admit_tool(c->tenant, msg, sizeof(msg)) == -1) {
		call_refuse(c, ST_ERROR, E_UNAVAILABLE, msg);
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
	c->run_id = mp_strdup(mp_get(m->body, "run_id"));
	c->tool = mp_strdup(mp_get(m->body, "tool"));
	if (mp_get(m->body, "step_id") != NULL)
		c->step_id = mp_strdup(mp_get(m->body, "step_id"));
	call_dispatch(c, mp_get(m->body, "args"), 0);
}
