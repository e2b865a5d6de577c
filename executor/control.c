/*
 * The control socket: operators talk to the executor here with gatewayctl.
 * Frames hold one msgpack map {op: NAME, ...}; answers are maps with "ok"
 * (bool), "error" (a sentence) when not ok, and the op's fields.  The
 * peer's uid and gid are checked against `operators` at accept, where a
 * non-operator gets one refusal and is closed before it can hold a slot,
 * and again on every command.  A connection without a complete request for
 * limits.control_idle_s is closed, so idle operators do not pile up either.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <msgpack.h>

#include "common/auditredact.h"
#include "common/canon.h"
#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/approval.h"
#include "executor/apstore.h"
#include "executor/backend.h"
#include "executor/control.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/killswitch.h"
#include "executor/pgstore.h"
#include "executor/ledger.h"
#include "executor/peers.h"
#include "executor/request.h"
#include "executor/store.h"
#include "executor/write.h"

#define CONTROL_MAX_FRAME	65536
#define CONTROL_MAX_PER_UID	8
#define PAGE_DEFAULT		50	/* items of a list answer by default */

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	struct bufferevent	*bev;
	struct event		*idle;	/* closes it without a request */
	uid_t			 uid;
	uint64_t		 id;	/* an answer that comes later finds it */
};

static TAILQ_HEAD(, ctl_conn)	ctl_conns = TAILQ_HEAD_INITIALIZER(ctl_conns);
static struct listener		*ctl_listener;
static size_t			 ctl_nconns;
static uint64_t			 ctl_next_id;

uint64_t
ctl_id(const struct ctl_conn *cc)
{
	return cc->id;
}

/*
 * The connection an answer that comes later (the shared store's) goes to:
 * NULL when the operator has hung up meanwhile.
 */
struct ctl_conn *
ctl_by_id(uint64_t id)
{
	struct ctl_conn	*cc;

	TAILQ_FOREACH(cc, &ctl_conns, entry)
		if (cc->id == id)
			return cc;
	return NULL;
}

static void	ctl_status(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_writes_disable(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_writes_enable(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);

static void	ctl_ledger(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_approvals(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_approval(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_approve(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_deny(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_keys_rotate(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_resolve(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);
static void	ctl_audit_hash(struct ctl_conn *, const msgpack_object *,
		    const struct operator *);

static const struct {
	const char	*op;
	ctl_fn		 fn;
} ctl_ops[] = {
	{ "ledger",		ctl_ledger },
	{ "approvals",		ctl_approvals },
	{ "approval",		ctl_approval },
	{ "approve",		ctl_approve },
	{ "audit_hash",		ctl_audit_hash },
	{ "deny",		ctl_deny },
	{ "forensics",		ctl_forensics },
	{ "compensate",		ctl_compensate },
	{ "keys_rotate",	ctl_keys_rotate },
	{ "resolve",		ctl_resolve },
	{ "status",		ctl_status },
	{ "tools",		ctl_tools },
	{ "tools_accept",	ctl_tools_accept },
	{ "mcp_tools",		ctl_mcp_tools },
	{ "writes_disable",	ctl_writes_disable },
	{ "writes_enable",	ctl_writes_enable },
};

static void
ctl_close(struct ctl_conn *cc)
{
	TAILQ_REMOVE(&ctl_conns, cc, entry);
	compensate_conn_gone(cc);
	event_free(cc->idle);
	bufferevent_free(cc->bev);
	free(cc);
	ctl_nconns--;
	fds_release(FDS_CONTROL);
}

void
ctl_send(struct ctl_conn *cc, struct msgbuf *mb)
{
	const char	*p;
	size_t		 len;

	p = msgbuf_finish(mb, &len);
	bufferevent_write(cc->bev, p, len);
	msgbuf_free(mb);
}

void
ctl_error(struct ctl_conn *cc, const char *fmt, ...)
{
	struct msgbuf	mb;
	struct mpmap	m;
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 0);
	mpmap_str(&m, "error", msg);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

static void
ctl_status(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf	mb;
	struct mpmap	m;
	char		audit[128];

	(void)req;
	(void)op;
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_bool(&m, "writes_enabled", ks_writes_on());
	mpmap_bool(&m, "writes_config", ex->conf->writes_enabled);
	mpmap_bool(&m, "kill_switch", ex->writes_off);
	mpmap_uint(&m, "pending_approvals", approvals_pending());
	/* Shared: every host's, as last counted in the database. */
	mpmap_uint(&m, "in_doubt", pgstore_on() ? pgstore_in_doubt() :
	    ledger_count(ex->store, L_IN_DOUBT));
	mpmap_uint(&m, "running_tools", backends_active());
	/* wait ops parked until a decision: none outlives its agent. */
	mpmap_uint(&m, "waits", approvals_waiting());
	mpmap_bool(&m, "gatewayd_connected", ex->gw != NULL);
	/* Agent connections gatewayd has passed us and not closed. */
	mpmap_uint(&m, "agent_connections", peers_count());
	/* Agents may approve their own writes: shown so it is not forgotten. */
	mpmap_bool(&m, "allow_self_approval",
	    ex->conf->allow_self_approval);
	/* While the audit log fails, calls are refused: say why. */
	mpmap_str(&m, "audit", audit_state(audit, sizeof(audit)));
	/* The chain as checked at start: broken is said, not enforced. */
	mpmap_str(&m, "audit_chain", audit_chain_state());
	/* The shared store: its connection, as writes depend on it. */
	if (pgstore_on())
		pgstore_status(&m);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

static void
ctl_ok_writes(struct ctl_conn *cc)
{
	struct msgbuf	mb;
	struct mpmap	m;

	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_bool(&m, "writes_enabled", ks_writes_on());
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

static void
ctl_writes_disable(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	(void)req;
	/* Disabling always holds in memory, even if the store fails. */
	if (ks_set_writes_off(1, op->who) == -1) {
		ctl_error(cc, "writes are disabled now, but the state could not"
		    " be stored: it will not survive a restart");
		return;
	}
	ctl_ok_writes(cc);
}

static void
ctl_writes_enable(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	(void)req;
	if (!ex->conf->writes_enabled) {
		ctl_error(cc, "writes.enabled is false in %s: the kill switch"
		    " cannot enable what the config disables",
		    ex->conf->file);
		return;
	}
	if (ks_set_writes_off(0, op->who) == -1) {
		ctl_error(cc, "the state could not be stored: writes stay"
		    " disabled");
		return;
	}
	ctl_ok_writes(cc);
}

static void
ledger_item(const char *key, const struct ledger_rec *r, void *arg)
{
	struct msgbuf	*mb = arg;
	struct mpmap	 m;

	mpmap_begin(&m, mb);
	mpmap_str(&m, "key", key);
	mpmap_str(&m, "state", ledger_state_str(r->state));
	mpmap_str_or_nil(&m, "tenant", r->tenant);
	mpmap_str_or_nil(&m, "env", r->env);
	mpmap_str_or_nil(&m, "tool", r->tool);
	mpmap_str_or_nil(&m, "run_id", r->run_id);
	mpmap_str_or_nil(&m, "step_id", r->step_id);
	mpmap_str_or_nil(&m, "args_hash", r->args_hash);
	mpmap_uint(&m, "uid", r->uid);
	mpmap_uint(&m, "started_ms", r->started_ms);
	mpmap_str_or_nil(&m, "note", r->note);
	mpmap_end(&m);
}

/*
 * A list's page: "limit" (1..APPROVALS_PAGE_MAX, default PAGE_DEFAULT) and
 * "after" (the "next" of the page before).  0, or -1 with the refusal
 * sent; *after is malloc'ed or NULL.
 */
static int
ctl_page(struct ctl_conn *cc, const msgpack_object *req, size_t *limit,
    char **after)
{
	const msgpack_object	*l = mp_get(req, "limit");
	const msgpack_object	*a = mp_get(req, "after");

	*limit = PAGE_DEFAULT;
	*after = NULL;
	if (l != NULL) {
		if (l->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    l->via.u64 < 1 || l->via.u64 > APPROVALS_PAGE_MAX) {
			ctl_error(cc, "the limit must be 1..%d",
			    APPROVALS_PAGE_MAX);
			return -1;
		}
		*limit = (size_t)l->via.u64;
	}
	if (a != NULL && (a->type != MSGPACK_OBJECT_STR ||
	    a->via.str.size == 0 || a->via.str.size > LEDGER_KEY_MAX ||
	    (*after = mp_strdup(a)) == NULL)) {
		ctl_error(cc, "the cursor (after) must be a string of 1..%d"
		    " bytes", LEDGER_KEY_MAX);
		return -1;
	}
	return 0;
}

/* The shared store's page of the writes in doubt has come. */
static void
ledger_page_shared(int ok, size_t n, char **keys, struct ledger_rec *recs,
    int more, void *arg)
{
	struct ctl_conn	*cc = ctl_by_id((uint64_t)(uintptr_t)arg);
	struct msgbuf	 mb;
	struct mpmap	 m;
	size_t		 i;

	if (cc == NULL)
		return;
	if (!ok) {
		ctl_error(cc, "the shared ledger (PostgreSQL) cannot be read");
		return;
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	msgpack_pack_array(mpmap_key(&m, "items"), n);
	for (i = 0; i < n; i++)
		ledger_item(keys[i], &recs[i], &mb);
	if (more && n > 0)
		mpmap_str(&m, "next", keys[n - 1]);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

/* The writes in doubt, in key order, one page of "items", then "next". */
static void
ctl_ledger(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf	 mb;
	struct mpmap	 m;
	char		*after, last[LEDGER_KEY_MAX + 1];
	size_t		 n, limit;
	int		 more, rc;

	(void)op;
	if (ctl_page(cc, req, &limit, &after) == -1)
		return;
	/* Shared: every host's, from the database; answered when it says. */
	if (pgstore_on()) {
		if (pgstore_ledger_page(after, limit, ledger_page_shared,
		    (void *)(uintptr_t)cc->id) == -1)
			ctl_error(cc, "the shared ledger (PostgreSQL) cannot"
			    " be reached");
		free(after);
		return;
	}
	if ((rc = ledger_page(ex->store, L_IN_DOUBT, after, limit, NULL, NULL,
	    &n, last, &more)) != 0) {
		ctl_error(cc, "the ledger cannot be read: %s",
		    store_strerror(rc));
		free(after);
		return;
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	msgpack_pack_array(mpmap_key(&m, "items"), n);
	/* Single-threaded: nothing changes the ledger between the passes. */
	ledger_page(ex->store, L_IN_DOUBT, after, limit, ledger_item, &mb,
	    &n, last, &more);
	if (more)
		mpmap_str(&m, "next", last);
	mpmap_end(&m);
	ctl_send(cc, &mb);
	free(after);
}

struct resolve_ans {
	uint64_t	 id;
	char		*key;
	int		 done;
};

static void
resolved_shared(const char *err, void *arg)
{
	struct resolve_ans	*ra = arg;
	struct ctl_conn		*cc = ctl_by_id(ra->id);
	struct msgbuf		 mb;
	struct mpmap		 m;

	if (cc != NULL && err != NULL)
		ctl_error(cc, "%s", err);
	else if (cc != NULL) {
		msgbuf_init(&mb);
		mpmap_begin(&m, &mb);
		mpmap_bool(&m, "ok", 1);
		mpmap_str(&m, "key", ra->key);
		mpmap_str(&m, "state", ra->done ? "done" : "failed");
		mpmap_end(&m);
		ctl_send(cc, &mb);
	}
	free(ra->key);
	free(ra);
}

/* resolve on the shared store: answered when the database has it. */
static void
resolve_shared(struct ctl_conn *cc, const char *key, int done,
    const char *who)
{
	struct resolve_ans	*ra;
	char			 err[512];

	ra = xcalloc(1, sizeof(*ra));
	ra->id = cc->id;
	ra->key = xstrdup(key);
	ra->done = done;
	if (write_resolve_shared(key, done, who, resolved_shared, ra, err,
	    sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
		free(ra->key);
		free(ra);
	}
}

static void
ctl_resolve(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf	 mb;
	struct mpmap	 m;
	char		*key = mp_strdup(mp_get(req, "key"));
	const msgpack_object *outcome = mp_get(req, "outcome");
	char		 err[512];
	int		 done;

	if (key == NULL || outcome == NULL || (!mp_streq(outcome, "done") &&
	    !mp_streq(outcome, "failed"))) {
		ctl_error(cc, "resolve needs a key and done or failed");
		free(key);
		return;
	}
	done = mp_streq(outcome, "done");
	if (pgstore_on()) {
		resolve_shared(cc, key, done, op->who);
		free(key);
		return;
	}
	if (write_resolve(key, done, op->who, err, sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
		free(key);
		return;
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "key", key);
	mpmap_str(&m, "state", done ? "done" : "failed");
	mpmap_end(&m);
	ctl_send(cc, &mb);
	free(key);
}

/*
 * An answer the shared store gave later (apshared.c's *_shared): to the
 * operator, if still connected.
 */
static void
ctl_later(struct msgbuf *mb, const char *err, void *arg)
{
	struct ctl_conn	*cc = ctl_by_id((uint64_t)(uintptr_t)arg);

	if (cc == NULL) {
		if (mb != NULL)
			msgbuf_free(mb);
		return;
	}
	if (mb != NULL)
		ctl_send(cc, mb);
	else
		ctl_error(cc, "%s", err);
}

#define SHARED_DOWN	"the shared store (PostgreSQL) cannot be reached"

static void
ctl_approvals(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf	 mb;
	char		*after;
	size_t		 limit;

	(void)op;
	if (ctl_page(cc, req, &limit, &after) == -1)
		return;
	/* Shared: every host's, answered when the database has. */
	if (pgstore_on()) {
		if (approvals_page_shared(after, limit, ctl_later,
		    (void *)(uintptr_t)cc->id) == -1)
			ctl_error(cc, SHARED_DOWN);
		free(after);
		return;
	}
	msgbuf_init(&mb);
	if (approvals_pack_page(&mb, after, limit) == -1) {
		msgbuf_free(&mb);
		ctl_error(cc, "the approvals cannot be read");
	} else
		ctl_send(cc, &mb);
	free(after);
}

/* One approval, whatever its state, with its args in full. */
static void
ctl_approval(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf	 mb;
	char		*id = mp_strdup(mp_get(req, "approval_id"));
	int		 rc;

	(void)op;
	if (id == NULL) {
		ctl_error(cc, "an approval id is needed");
		return;
	}
	if (pgstore_on()) {
		if (approval_one_shared(id, ctl_later,
		    (void *)(uintptr_t)cc->id) == -1)
			ctl_error(cc, SHARED_DOWN);
		free(id);
		return;
	}
	msgbuf_init(&mb);
	if ((rc = approval_pack_one(&mb, id)) == 1)
		ctl_send(cc, &mb);
	else {
		msgbuf_free(&mb);
		if (rc == 0)
			ctl_error(cc, "no approval %s", id);
		else
			ctl_error(cc, "the approvals cannot be read");
	}
	free(id);
}

static void
ctl_decide(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op, int approve)
{
	struct msgbuf	 mb;
	struct mpmap	 m;
	char		*id = mp_strdup(mp_get(req, "approval_id"));
	char		*note = mp_strdup(mp_get(req, "note"));
	char		 err[512];
	int		 rc;

	if (id == NULL) {
		ctl_error(cc, "an approval id is needed");
	} else if (mp_get(req, "note") != NULL && note == NULL) {
		ctl_error(cc, "the note must be a string");
	} else if (pgstore_on()) {
		/* Shared: decided for every host, answered when stored. */
		rc = approval_decide_shared(id, approve, op->who, note,
		    ctl_later, (void *)(uintptr_t)cc->id);
		if (rc == -1)
			ctl_error(cc, "no approval %s", id);
		else if (rc == -2)
			ctl_error(cc, SHARED_DOWN);
	} else if (approval_decide(id, approve, op->who, note, err,
	    sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
	} else {
		msgbuf_init(&mb);
		mpmap_begin(&m, &mb);
		mpmap_bool(&m, "ok", 1);
		mpmap_str(&m, "approval_id", id);
		mpmap_str(&m, "state", approve ? "approved" : "denied");
		mpmap_str(&m, "approver", op->who);
		mpmap_end(&m);
		ctl_send(cc, &mb);
	}
	free(id);
	free(note);
}

static void
ctl_approve(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	ctl_decide(cc, req, op, 1);
}

static void
ctl_deny(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	ctl_decide(cc, req, op, 0);
}

static void
ctl_keys_rotate(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct msgbuf		mb;
	struct mpmap		m;
	struct audit_rec	ar = { .event = "keys_rotate", .uid = -1 };
	char			err[256];

	(void)req;
	if (checkpoint_keys_rotate(err, sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
		return;
	}
	ar.approver = op->who;
	(void)audit_write(&ar, 1);
	/*
	 * Shared: the new key goes to the database, for the other hosts
	 * (and at each connection: one missed now is published then).
	 */
	if (pgstore_on())
		(void)pgstore_publish_keys();
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

/*
 * gatewayctl audit hash: the keyed hash a redacted value is written as
 * (audit.redact), so that an operator finds the records of a value he
 * knows.  The key stays here; what is hashed is the value's canonical
 * JSON: "value" is a string, "json" the JSON text of any value.
 */
static void
ctl_audit_hash(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	const msgpack_object	*val = mp_get(req, "value");
	const msgpack_object	*text = mp_get(req, "json");
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	struct canon_buf	 cj = { NULL, 0, 0 };
	struct msgbuf		 mb;
	struct mpmap		 m;
	char			 err[256], mac[AUDITREDACT_LEN];
	int			 rc = -1;

	(void)op;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&u);
	if ((val == NULL) == (text == NULL)) {
		snprintf(err, sizeof(err), "a value or a JSON value is needed");
		goto out;
	}
	if (text != NULL) {
		if (text->type != MSGPACK_OBJECT_STR) {
			snprintf(err, sizeof(err), "json: not a string");
			goto out;
		}
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		if (json_to_msgpack(text->via.str.ptr, text->via.str.size, &pk,
		    err, sizeof(err)) == -1)
			goto out;
		if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) !=
		    MSGPACK_UNPACK_SUCCESS) {
			snprintf(err, sizeof(err), "json: cannot be read");
			goto out;
		}
		val = &u.data;
	} else if (val->type != MSGPACK_OBJECT_STR) {
		snprintf(err, sizeof(err), "value: not a string");
		goto out;
	}
	if (canon_json(val, 0, &cj, err, sizeof(err)) == -1)
		goto out;
	audit_hash(cj.data, cj.len, mac);
	rc = 0;
out:
	if (rc == 0) {
		msgbuf_init(&mb);
		mpmap_begin(&m, &mb);
		mpmap_bool(&m, "ok", 1);
		mpmap_str(&m, "hash", mac);
		pk_strn(mpmap_key(&m, "canonical_json"), cj.data, cj.len);
		mpmap_end(&m);
		ctl_send(cc, &mb);
	} else
		ctl_error(cc, "%s", err);
	canon_buf_free(&cj);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

static int
ctl_operator(struct ctl_conn *cc, struct operator *op)
{
	struct passwd	*pw;
	pid_t		 pid;

	/* Asked anew for every command, as the contract says. */
	if (peer_cred(bufferevent_getfd(cc->bev), &op->uid, &op->gid,
	    &pid) == -1)
		return -1;
	if (!policy_is_operator(ex->conf, op->uid, op->gid))
		return -1;
	if ((pw = getpwuid(op->uid)) != NULL)
		snprintf(op->name, sizeof(op->name), "%s", pw->pw_name);
	else
		snprintf(op->name, sizeof(op->name), "%u", (unsigned)op->uid);
	snprintf(op->who, sizeof(op->who), "uid %u (%s)", (unsigned)op->uid,
	    op->name);
	return 0;
}

static void
ctl_dispatch(struct ctl_conn *cc, const msgpack_object *req)
{
	const msgpack_object	*opname = mp_get(req, "op");
	struct operator		 op;
	size_t			 i;

	memset(&op, 0, sizeof(op));
	if (ctl_operator(cc, &op) == -1) {
		log_warnx("control: uid %u is not an operator: refused",
		    (unsigned)op.uid);
		ctl_error(cc, "uid %u is not an operator", (unsigned)op.uid);
		return;
	}
	for (i = 0; i < sizeof(ctl_ops) / sizeof(ctl_ops[0]); i++) {
		if (opname != NULL && mp_streq(opname, ctl_ops[i].op)) {
			ctl_ops[i].fn(cc, req, &op);
			return;
		}
	}
	ctl_error(cc, "unknown command");
}

static void
ctl_idle(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn	*cc = arg;

	(void)fd;
	(void)what;
	log_debug("control: uid %u idle for %llus: closed", (unsigned)cc->uid,
	    (unsigned long long)ex->conf->control_idle_s);
	ctl_close(cc);
}

/* (Re)starts the idle clock: only a complete request resets it. */
static void
ctl_idle_arm(struct ctl_conn *cc)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)ex->conf->control_idle_s;
	tv.tv_usec = 0;
	evtimer_add(cc->idle, &tv);
}

static void
ctl_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn		*cc = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	msgpack_unpacked	 u;
	const char		*why;
	uint32_t		 len;

	for (;;) {
		switch (frame_peek(in, CONTROL_MAX_FRAME, &len)) {
		case FRAME_MORE:
			return;
		case FRAME_EMPTY:
		case FRAME_TOO_LARGE:
			log_warnx("control: bad frame from uid %u",
			    (unsigned)cc->uid);
			ctl_close(cc);
			return;
		case FRAME_READY:
			break;
		}
		if (frame_unpack_map((const char *)evbuffer_pullup(in,
		    len + FRAME_HDR) + FRAME_HDR, len, &u, &why) == -1) {
			log_warnx("control: uid %u: %s", (unsigned)cc->uid, why);
			ctl_close(cc);
			return;
		}
		ctl_dispatch(cc, &u.data);
		msgpack_unpacked_destroy(&u);
		evbuffer_drain(in, len + FRAME_HDR);
		ctl_idle_arm(cc);
	}
}

static void
ctl_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ctl_close(arg);
}

/*
 * A non-operator gets its refusal without asking, so gatewayctl can still
 * say why, and is closed at once: it never holds a slot that an operator
 * may need.  The socket is new and the frame small; a failed send only
 * loses the sentence.
 */
static void
ctl_refuse(int fd, uid_t uid)
{
	struct msgbuf	 mb;
	struct mpmap	 m;
	const char	*p;
	char		 msg[64];
	size_t		 len;

	log_warnx("control: uid %u is not an operator: refused",
	    (unsigned)uid);
	snprintf(msg, sizeof(msg), "uid %u is not an operator", (unsigned)uid);
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 0);
	mpmap_str(&m, "error", msg);
	mpmap_end(&m);
	p = msgbuf_finish(&mb, &len);
	(void)send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	msgbuf_free(&mb);
	close(fd);
}

static void
ctl_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_conn	*cc, *c;
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	size_t		 peruid = 0;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	if (peer_cred(fd, &uid, &gid, &pid) == -1) {
		close(fd);
		return;
	}
	/* Before the caps: only operators can use them up. */
	if (!policy_is_operator(ex->conf, uid, gid)) {
		ctl_refuse(fd, uid);
		return;
	}
	TAILQ_FOREACH(c, &ctl_conns, entry)
		if (c->uid == uid)
			peruid++;
	if (ctl_nconns >= CONTROL_MAX_CONNS || peruid >= CONTROL_MAX_PER_UID) {
		log_warnx("control: too many connections (uid %u)",
		    (unsigned)uid);
		close(fd);
		return;
	}
	/* Agents and tools leave operators a reserve: this uses it. */
	if (!fds_room(FDS_CONTROL)) {
		log_warnx("control: out of descriptors: uid %u refused",
		    (unsigned)uid);
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->uid = uid;
	cc->id = ++ctl_next_id;
	cc->bev = bufferevent_socket_new(ex->base, fd, BEV_OPT_CLOSE_ON_FREE);
	cc->idle = evtimer_new(ex->base, ctl_idle, cc);
	if (cc->bev == NULL || cc->idle == NULL)
		fatalx("control: bufferevent_socket_new");
	bufferevent_setcb(cc->bev, ctl_read, NULL, ctl_event, cc);
	bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&ctl_conns, cc, entry);
	ctl_nconns++;
	fds_hold(FDS_CONTROL);
	ctl_idle_arm(cc);
}

void
control_init(void)
{
	char	err[512];
	int	fd;

	fd = unix_listen(ex->conf->control_socket, 0666, err, sizeof(err));
	if (fd == -1)
		fatalx("control socket: %s", err);
	ctl_listener = listener_new(ex->base, fd, ctl_accept, NULL,
	    "control");
}

void
control_shutdown(void)
{
	struct ctl_conn	*cc;

	if (ctl_listener == NULL)
		return;
	listener_free(ctl_listener);
	ctl_listener = NULL;
	unlink(ex->conf->control_socket);
	while ((cc = TAILQ_FIRST(&ctl_conns)) != NULL)
		ctl_close(cc);
}
