/*
 * gatewayctl compensate RUN_ID [--tool T] [--dry-run]: for every write of
 * the run that succeeded (L_DONE), the compensating call its catalog entry
 * names (catalog.*.compensate), submitted through the normal path: the
 * checks of call_check() (policy, kill switch, budgets), an operator's
 * approval when policy wants one, the write path (ledger, idempotency,
 * audit).  Nothing here runs a tool itself.
 *
 * Once only.  A compensation's idempotency key is the original's with
 * COMPENSATE_SUFFIX appended ("TENANT:TOOL:ARGS_HASH:compensate"), whatever
 * its tool and args: the ledger runs a key once, so asking twice, or twice
 * at once, replays (or joins) the first, and a config changed in between
 * cannot make a second compensation of the same write.
 *
 * Approval.  When the compensating tool needs one, the compensation is
 * recorded as an approval like any write, under an id derived from its key
 * (SHA-256 of "toolgate compensate", NUL, the key; 32 hex digits), so no
 * checkpoint is needed to find it again: the next compensate of the run
 * reports it pending, runs it once approved (with the args approved, as a
 * resume does), or reports it denied or expired.  Once the record is swept
 * (writes.retention_s after its expiry) a compensate asks anew.
 *
 * The shared store (PostgreSQL).  The run's keys are this host's (runs
 * stay per host), their records and their compensations' the database's
 * (forensics_load_shared), and the compensations go through the shared
 * ledger.  The approval is a row too: requested in the database as an
 * agent's is, and read from it when this host has no copy or has it
 * pending (decided on another host, its news not here).
 *
 * Its run.  The calls of one compensate command share a run of their own,
 * "compensate:RUN_ID:MS.N", so the budgets of a run apply to them and
 * nothing they do stops or counts against the original run, nor the next
 * compensate (a failed compensation may be asked again).
 *
 * The answer waits for the writes submitted, which end within their
 * tools' timeouts, but not past wait_ms (COMP_WAIT_MS, under gatewayctl's
 * own 60 s): those still running then are shown "running" and go on, and
 * the next compensate of the run shows their outcome (replayed).  An
 * operator who hangs up meanwhile only loses the answer.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <msgpack.h>
#include <sodium.h>

#include "common/canon.h"
#include "common/config.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/approval.h"
#include "executor/apstore.h"
#include "executor/control.h"
#include "executor/executor.h"
#include "executor/forensics.h"
#include "executor/jobs.h"
#include "executor/pgstore.h"
#include "executor/read.h"
#include "executor/request.h"
#include "executor/store.h"
#include "executor/write.h"

/* No agent connection has it: write_conn_gone() never ends these. */
#define COMP_CONN	UINT64_MAX
/*
 * The answer waits this long at most for the compensations submitted (the
 * request's wait_ms may say otherwise): gatewayctl waits 60 s for it.
 * What still runs then goes on and is shown "running".
 */
#define COMP_WAIT_MS	50000
#define COMP_WAIT_MAX_MS 3600000

struct comp_job;

/* One write of the run and what became of its compensation. */
struct comp_item {
	struct comp_job	*job;
	char		*tenant;
	char		*env;
	char		*tool;
	char		*args_hash;
	char		*key;
	char		*comp_tool;
	char		*comp_key;
	char		*comp_args_hash;
	char		*comp_args;	/* dry run: the canonical JSON */
	char		*approval_id;
	const char	*status;
	char		*reason;
	int		 waiting;	/* submitted, not answered yet */
};

struct comp_job {
	TAILQ_ENTRY(comp_job)	 entry;
	struct ctl_conn		*cc;	/* NULL once the operator hung up */
	struct operator		 op;
	char			*run_id;
	char			*crun;		/* its calls' run (see the top) */
	char			*tool;		/* only its writes; NULL: all */
	int			 dry_run;
	struct comp_item	*items;
	size_t			 n;
	size_t			 holds;	/* the handler's, and one a write */
	uint64_t		 wait_ms;
	struct event		*deadline;	/* answered then, done or not */
};

static TAILQ_HEAD(, comp_job)	jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint64_t			ncommands;

static void
job_free(struct comp_job *job)
{
	struct comp_item	*it;
	size_t			 i;

	TAILQ_REMOVE(&jobs, job, entry);
	if (job->deadline != NULL)
		event_free(job->deadline);
	for (i = 0; i < job->n; i++) {
		it = &job->items[i];
		free(it->tenant);
		free(it->env);
		free(it->tool);
		free(it->args_hash);
		free(it->key);
		free(it->comp_tool);
		free(it->comp_key);
		free(it->comp_args_hash);
		free(it->comp_args);
		free(it->approval_id);
		free(it->reason);
	}
	free(job->items);
	free(job->run_id);
	free(job->crun);
	free(job->tool);
	free(job);
}

static void
pack_item(struct msgbuf *mb, const struct comp_item *it, const char *running)
{
	struct mpmap	m;

	mpmap_begin(&m, mb);
	mpmap_str(&m, "tenant", it->tenant);
	mpmap_str_or_nil(&m, "tool", it->tool);
	mpmap_str_or_nil(&m, "args_hash", it->args_hash);
	mpmap_str(&m, "idempotency_key", it->key);
	mpmap_str_or_nil(&m, "compensating_tool", it->comp_tool);
	mpmap_str_opt(&m, "compensation_key", it->comp_key);
	mpmap_str_opt(&m, "compensation_args_hash", it->comp_args_hash);
	mpmap_str_opt(&m, "compensation_args", it->comp_args);
	mpmap_str(&m, "status", it->waiting ? "running" : it->status);
	mpmap_str_opt(&m, "approval_id", it->approval_id);
	mpmap_str_opt(&m, "reason", it->waiting ? running : it->reason);
	mpmap_end(&m);
}

/*
 * The operator gets the list, once: when every write submitted has its
 * outcome, or at the deadline with those still running shown so.
 */
static void
job_answer(struct comp_job *job)
{
	struct msgbuf	mb;
	struct mpmap	m;
	char		running[400];	/* a run_id is up to 256 bytes */
	size_t		i;

	if (job->cc == NULL)
		return;
	snprintf(running, sizeof(running), "still running after %llu ms:"
	    " it goes on; gatewayctl compensate %s again shows its outcome",
	    (unsigned long long)job->wait_ms, job->run_id);
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "run_id", job->run_id);
	mpmap_bool(&m, "dry_run", job->dry_run);
	mpmap_uint(&m, "count", job->n);
	msgpack_pack_array(mpmap_key(&m, "writes"), job->n);
	for (i = 0; i < job->n; i++)
		pack_item(&mb, &job->items[i], running);
	mpmap_end(&m);
	ctl_send(job->cc, &mb);
	job->cc = NULL;
}

static void
job_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_answer(arg);
}

/* Every write answered: the list goes (if it has not), then the job. */
static void
job_release(struct comp_job *job)
{
	if (--job->holds > 0)
		return;
	job_answer(job);
	job_free(job);
}

static void
item_settle(struct comp_item *it, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* it's outcome; a submitted one lets its job go on. */
static void
item_settle(struct comp_item *it, const char *status, const char *fmt, ...)
{
	va_list	ap;

	it->status = status;
	free(it->reason);
	it->reason = NULL;
	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&it->reason, fmt, ap) == -1)
			it->reason = NULL;
		va_end(ap);
	}
	if (it->waiting) {
		it->waiting = 0;
		job_release(it->job);
	}
}

/* The write path's answer to a compensation: it is settled by it. */
static void
comp_sink(struct call *c, const char *resp, size_t len, int replayed)
{
	struct comp_item	*it = c->sink_arg;
	msgpack_unpacked	 u;
	const msgpack_object	*st, *why, *msg;
	char			*status = NULL, *reason = NULL, *text = NULL;
	size_t			 off = 0;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, resp, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
		st = mp_get(&u.data, "status");
		if ((why = mp_get(&u.data, "stop_reason")) == NULL)
			why = mp_get(&u.data, "error");
		msg = mp_get(&u.data, "message");
		status = mp_strdup(st);
		reason = mp_strdup(why);
		text = mp_strdup(msg);
	}
	msgpack_unpacked_destroy(&u);
	/* Logged first: the last item settled frees its job, and it. */
	log_info("compensate: %s for %s: %s%s %s", c->idem_key ?
	    c->idem_key : "-", it->key, status ? status : "?",
	    replayed ? " (replayed)" : "", reason ? reason : "");
	if (status != NULL && strcmp(status, ST_OK) == 0)
		item_settle(it, replayed ? "replayed" : "done", replayed ?
		    "compensated already: not run again" : NULL);
	else
		item_settle(it, status != NULL && strcmp(status, ST_ERROR) == 0 ?
		    "failed" : "refused", "%s/%s: %s", status ? status : "?",
		    reason ? reason : "?", text ? text : "");
	free(status);
	free(reason);
	free(text);
}

/* "${NAME}" of the original, for a compensate.args string. */
static const char *
subst(const struct run_write *w, const char *name, size_t n)
{
	if (n == 6 && strncmp(name, "run_id", n) == 0)
		return w->rec.run_id;
	if (n == 4 && strncmp(name, "tool", n) == 0)
		return w->rec.tool;
	if (n == 9 && strncmp(name, "args_hash", n) == 0)
		return w->rec.args_hash;
	if (n == 15 && strncmp(name, "idempotency_key", n) == 0)
		return w->key;
	return NULL;
}

/* v with its ${NAME}s expanded (malloc'ed), or NULL with why in err. */
static char *
expand(const struct run_write *w, const char *v, char *err, size_t errlen)
{
	const char	*p, *end, *val;
	char		*out = xstrdup(""), *next;

	for (p = v; *p != '\0'; p = end + 1) {
		if ((end = strstr(p, "${")) == NULL) {
			xasprintf(&next, "%s%s", out, p);
			free(out);
			return next;
		}
		xasprintf(&next, "%s%.*s", out, (int)(end - p), p);
		free(out);
		out = next;
		p = end + 2;
		if ((end = strchr(p, '}')) == NULL ||
		    (val = subst(w, p, (size_t)(end - p))) == NULL) {
			snprintf(err, errlen, "\"%s\" names nothing the"
			    " original has", v);
			free(out);
			return NULL;
		}
		xasprintf(&next, "%s%s", out, val);
		free(out);
		out = next;
	}
	return out;
}

/*
 * The compensating call's args, packed into sb: the original's for the
 * name alone, else the map form's, built from them.  0, or -1 with why in
 * err: fail closed, nothing is sent with a field left out.
 */
static int
build_args(const struct run_write *w, const struct tool *t,
    msgpack_sbuffer *sb, char *err, size_t errlen)
{
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	const msgpack_object	*v;
	char			*orig, *s;
	size_t			 len = 0, off = 0, i;
	int			 rc = -1;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&u);
	orig = forensics_args(&w->rec, &len);
	if (orig != NULL && msgpack_unpack_next(&u, orig, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		free(orig);
		orig = NULL;
	}
	if (!t->comp_map) {
		if (orig == NULL) {
			snprintf(err, errlen, "the original's args were not"
			    " kept (more than %d bytes): its compensation"
			    " (the same args) cannot be made",
			    FORENSICS_ARGS_MAX);
			goto out;
		}
		msgpack_pack_object(&pk, u.data);
		rc = 0;
		goto out;
	}
	msgpack_pack_map(&pk, t->ncomp_args);
	for (i = 0; i < t->ncomp_args; i++) {
		pk_str(&pk, t->comp_names[i]);
		if (strncmp(t->comp_values[i], "$.", 2) == 0) {
			if (orig == NULL) {
				snprintf(err, errlen, "%s needs the original's"
				    " args, which were not kept (more than %d"
				    " bytes)", t->comp_values[i],
				    FORENSICS_ARGS_MAX);
				goto out;
			}
			if ((v = mp_get(&u.data, t->comp_values[i] + 2)) ==
			    NULL) {
				snprintf(err, errlen, "the original args have"
				    " no field \"%s\" (compensate.args.%s):"
				    " nothing was submitted",
				    t->comp_values[i] + 2, t->comp_names[i]);
				goto out;
			}
			msgpack_pack_object(&pk, *v);
			continue;
		}
		if ((s = expand(w, t->comp_values[i], err, errlen)) == NULL)
			goto out;
		pk_str(&pk, s);
		free(s);
	}
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	free(orig);
	if (rc == -1)
		msgpack_sbuffer_destroy(sb);
	return rc;
}

/* The approval id a compensation's key gives (see the top). */
static void
approval_id_of(const char *comp_key, char id[APPROVAL_ID_LEN + 1])
{
	static const char		 tag[] = "toolgate compensate";
	crypto_hash_sha256_state	 st;
	unsigned char			 h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)tag,
	    sizeof(tag));		/* its NUL too */
	crypto_hash_sha256_update(&st, (const unsigned char *)comp_key,
	    strlen(comp_key));
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(id, APPROVAL_ID_LEN + 1, h, APPROVAL_ID_LEN / 2);
}

static struct call *
comp_call(struct comp_item *it)
{
	struct call	*c;

	c = xcalloc(1, sizeof(*c));
	c->ans_type = MSG_CALL_ANS;
	c->conn = COMP_CONN;
	c->uid = it->job->op.uid;
	c->tenant = xstrdup(it->tenant);
	c->env = xstrdup(it->env);
	c->run_id = xstrdup(it->job->crun);
	c->tool = xstrdup(it->comp_tool);
	c->compensates = xstrdup(it->key);
	c->sink = comp_sink;
	c->sink_arg = it;
	return c;
}

/* The approval of it is recorded (ok), or the database did not take it. */
static void
comp_stored(int ok, void *arg)
{
	struct comp_item	*it = arg;

	if (ok)
		item_settle(it, "pending_approval", "approve it with gatewayctl"
		    " approve %s, then compensate again", it->approval_id);
	else
		item_settle(it, "failed", "the shared store (PostgreSQL)"
		    " cannot record its approval: nothing was submitted;"
		    " compensate again");
}

/* The same, asked again of the database (comp_fetched). */
static void
comp_restored(int ok, void *arg)
{
	job_end();
	comp_stored(ok, arg);
}

/*
 * The compensating call goes: the checks, then the write path, which
 * answers comp_sink(), or the approval it needs, recorded.  a: the
 * approval that lets it run, NULL for none.
 */
static void
send_call(struct comp_item *it, const msgpack_object *args,
    const struct approval *a)
{
	const struct tool	*tool;
	struct call		*c;

	c = comp_call(it);
	if (a != NULL) {
		c->approver = a->approver ? xstrdup(a->approver) : NULL;
		c->approval_id = xstrdup(a->id);
	}
	it->waiting = 1;
	it->job->holds++;
	it->status = "submitted";
	switch (call_check(c, args, a != NULL, &tool)) {
	case ROUTE_NONE:
		break;		/* refused: comp_sink settled it */
	case ROUTE_READ:
		read_start(c, tool);	/* the config says a write: never */
		break;
	case ROUTE_WRITE:
		free(c->idem_key);
		c->idem_key = xstrdup(it->comp_key);
		write_start(c, tool);
		break;
	case ROUTE_APPROVAL:
		free(c->idem_key);
		c->idem_key = xstrdup(it->comp_key);
		approval_request_id(c, args, it->approval_id, comp_stored, it);
		break;
	}
}

/*
 * The compensation's approval as found (NULL: none yet) decides: asked
 * for, still pending, refused, or run with the args the operator
 * approved, as a resume does.
 */
static void
with_approval(struct comp_item *it, const struct approval *a,
    const msgpack_object *args)
{
	msgpack_unpacked	u;
	size_t			off = 0;

	if (a == NULL) {
		send_call(it, args, NULL);
		return;
	}
	switch (approval_effective_state(a)) {
	case A_PENDING:
		item_settle(it, "pending_approval", "approve it with"
		    " gatewayctl approve %s, then compensate again", a->id);
		return;
	case A_DENIED:
		item_settle(it, "refused", "an operator denied this"
		    " compensation%s%s", a->note ? ": " : "",
		    a->note ? a->note : "");
		return;
	case A_EXPIRED:
		item_settle(it, "refused", "its approval expired undecided");
		return;
	case A_APPROVED:
		break;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, a->args, a->argslen, &off) !=
	    MSGPACK_UNPACK_SUCCESS)
		item_settle(it, "refused", "approval %s: its args do not"
		    " decode", a->id);
	else
		send_call(it, &u.data, a);
	msgpack_unpacked_destroy(&u);
}

/* A compensation's approval asked of the database (submit). */
struct comp_fetch {
	struct comp_item	*it;
	char			*args;		/* packed */
	size_t			 argslen;
	int			 have_local;	/* pending here */
};

/*
 * The database's record brought to this host's copy (what the write path
 * checks the approval against), as a resume's: 1 when there is a copy
 * to go by, 0 none, -1 with it settled.
 */
static int
bring_copy(struct comp_fetch *cf, int rc, struct approval *a,
    const char *host)
{
	int	prc;

	if (rc == -1) {
		item_settle(cf->it, "failed", "the shared store (PostgreSQL)"
		    " cannot be reached: its approval cannot be read");
		return -1;
	}
	if (rc == 1 && (prc = approval_bring_copy(a, cf->have_local)) != 0) {
		item_settle(cf->it, "failed", "approval %s: host %s's record"
		    " cannot be copied here: %s", a->id, host ? host : "?",
		    store_strerror(prc));
		return -1;
	}
	return rc == 1 || cf->have_local;
}

/*
 * What the database holds decides (bring_copy).  Pending here and unknown
 * there: the database never took it, it is asked to again.
 */
static void
comp_fetched(int rc, struct approval *a, const char *host, void *arg)
{
	struct comp_fetch	*cf = arg;
	struct comp_item	*it = cf->it;
	struct comp_job		*job = it->job;
	struct approval		 local;
	msgpack_unpacked	 u;
	size_t			 off = 0;
	int			 found = 0;

	job_end();
	it->waiting = 0;	/* the fetch's hold: released at the end */
	memset(&local, 0, sizeof(local));
	msgpack_unpacked_init(&u);
	if ((found = bring_copy(cf, rc, a, host)) == -1)
		goto out;
	if (found == 1 && (found = approval_get(it->approval_id,
	    &local)) != 1)
		item_settle(it, "refused", "the approvals cannot be read");
	else if (rc == 0 && found == 1 &&
	    approval_effective_state(&local) == A_PENDING) {
		log_warnx("compensate: approval %s is pending here but not in"
		    " the shared store: recorded there again", local.id);
		it->waiting = 1;
		job->holds++;
		job_begin();
		if (pgstore_approval_insert(&local, comp_restored, it) == -1)
			comp_restored(0, it);
	} else if (msgpack_unpack_next(&u, cf->args, cf->argslen, &off) !=
	    MSGPACK_UNPACK_SUCCESS)
		item_settle(it, "refused", "its args do not pack");
	else
		with_approval(it, found == 1 ? &local : NULL, &u.data);
out:
	msgpack_unpacked_destroy(&u);
	approval_free(&local);
	free(cf->args);
	free(cf);
	job_release(job);
}

/*
 * Submit it's compensation, args its args: its approval first when the
 * compensating tool needs one, from this host's copy, or on the shared
 * store from the database when there is none here or it is pending here
 * (it may have been decided on another host, its news not here yet).
 */
static void
submit(struct comp_item *it, const msgpack_object *args)
{
	struct comp_fetch	*cf;
	struct approval		 a;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	char			 id[APPROVAL_ID_LEN + 1];
	int			 found;

	if (!policy_needs_approval(ex->conf, it->comp_tool)) {
		send_call(it, args, NULL);
		return;
	}
	approval_id_of(it->comp_key, id);
	it->approval_id = xstrdup(id);
	memset(&a, 0, sizeof(a));
	if ((found = approval_get(id, &a)) == -1) {
		item_settle(it, "refused", "the approvals cannot be read");
		return;
	}
	if (!pgstore_on() ||
	    (found == 1 && approval_effective_state(&a) != A_PENDING)) {
		with_approval(it, found == 1 ? &a : NULL, args);
		approval_free(&a);
		return;
	}
	approval_free(&a);
	cf = xcalloc(1, sizeof(*cf));
	cf->it = it;
	cf->have_local = found == 1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *args);
	cf->argslen = sb.size;
	cf->args = msgpack_sbuffer_release(&sb);
	it->waiting = 1;
	it->job->holds++;
	it->status = "submitted";
	job_begin();
	if (pgstore_approval_get(id, comp_fetched, cf) == -1)
		comp_fetched(-1, NULL, NULL, cf);
}

/* One write of the run: skipped, shown (dry run) or submitted. */
static void
comp_one(struct comp_item *it, const struct run_write *w)
{
	const struct tool	*t;
	msgpack_sbuffer		 sb;
	msgpack_unpacked	 u;
	struct canon_buf	 json = { NULL, 0, 0 };
	char			 err[512], hash[ARGS_HASH_LEN + 1];
	size_t			 off = 0;

	if (w->rec.state != L_DONE) {
		item_settle(it, "skipped", "it did not succeed (%s):"
		    " nothing to undo", ledger_state_str(w->rec.state));
		return;
	}
	if (w->rec.tool == NULL ||
	    (t = policy_tool(ex->conf, w->rec.tool)) == NULL ||
	    t->compensate == NULL) {
		item_settle(it, "refused", "%s names no compensate in the"
		    " catalog", w->rec.tool ? w->rec.tool : "the write");
		return;
	}
	it->comp_tool = xstrdup(t->compensate);
	it->comp_key = xstrdup(w->comp_key);
	if (build_args(w, t, &sb, err, sizeof(err)) == -1) {
		item_settle(it, "refused", "%s", err);
		return;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		item_settle(it, "refused", "its args do not pack");
		goto out;
	}
	if (args_hash(&u.data, hash, &json, err, sizeof(err)) == -1) {
		item_settle(it, "refused", "its args: %s", err);
		goto out;
	}
	it->comp_args_hash = xstrdup(hash);
	if (it->job->dry_run) {
		it->comp_args = xmalloc(json.len + 1);
		memcpy(it->comp_args, json.data, json.len);
		it->comp_args[json.len] = '\0';
		item_settle(it, policy_needs_approval(ex->conf,
		    it->comp_tool) ? "would_ask_approval" : "would_submit",
		    NULL);
		goto out;
	}
	submit(it, &u.data);
out:
	canon_buf_free(&json);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* tool (optional): only its writes. */
static int
want(const struct run_write *w, const char *tool)
{
	return tool == NULL || (w->rec.tool != NULL &&
	    strcmp(w->rec.tool, tool) == 0);
}

/*
 * The run's writes are known: an item for each (each of tool's when
 * given), settled or submitted, and the deadline of the answer set.
 */
static void
job_fill(struct comp_job *job, const struct run_writes *rw)
{
	struct timeval		 tv;
	struct comp_item	*it;
	size_t			 i, n = 0;

	if ((job->deadline = evtimer_new(ex->base, job_deadline, job)) == NULL)
		fatalx("compensate: evtimer_new");
	tv.tv_sec = (time_t)(job->wait_ms / 1000);
	tv.tv_usec = (suseconds_t)(job->wait_ms % 1000) * 1000;
	evtimer_add(job->deadline, &tv);
	for (i = 0; i < rw->n; i++)
		if (want(&rw->v[i], job->tool))
			n++;
	job->items = xcalloc(n ? n : 1, sizeof(*job->items));
	if (!job->dry_run && n > 0)
		log_info("compensate: run %s by %s: %zu writes, as run %s",
		    job->run_id, job->op.who, n, job->crun);
	for (i = 0; i < rw->n; i++) {
		if (!want(&rw->v[i], job->tool))
			continue;
		it = &job->items[job->n++];
		it->job = job;
		it->tenant = xstrdup(rw->v[i].tenant);
		it->env = xstrdup(rw->v[i].rec.env ? rw->v[i].rec.env : "");
		it->tool = rw->v[i].rec.tool ? xstrdup(rw->v[i].rec.tool) :
		    NULL;
		it->args_hash = rw->v[i].rec.args_hash ?
		    xstrdup(rw->v[i].rec.args_hash) : NULL;
		it->key = xstrdup(rw->v[i].key);
		comp_one(it, &rw->v[i]);
	}
}

/*
 * The run's writes, or why they cannot be read: at once from LMDB, when
 * the database answers on the shared store.  The job's first hold goes.
 */
static void
comp_loaded(struct run_writes *rw, const char *err, void *arg)
{
	struct comp_job	*job = arg;

	if (rw == NULL) {
		if (job->cc != NULL)
			ctl_error(job->cc, "%s", err);
		job->cc = NULL;
	} else
		job_fill(job, rw);
	job_release(job);
}

void
ctl_compensate(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	const msgpack_object	*dry = mp_get(req, "dry_run");
	const msgpack_object	*to = mp_get(req, "tool");
	const msgpack_object	*wait = mp_get(req, "wait_ms");
	struct run_writes	 rw;
	struct comp_job		*job;
	char			*run_id, *tenant, *tool = NULL;
	char			 err[256];

	if (ctl_run_args(cc, req, &run_id, &tenant) == -1)
		return;
	if ((dry != NULL && dry->type != MSGPACK_OBJECT_BOOLEAN) ||
	    (to != NULL && (tool = mp_strdup(to)) == NULL)) {
		ctl_error(cc, "dry_run must be a boolean and tool a string");
		goto out;
	}
	if (wait != NULL && (wait->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    wait->via.u64 == 0 || wait->via.u64 > COMP_WAIT_MAX_MS)) {
		ctl_error(cc, "wait_ms must be an integer of 1..%d",
		    COMP_WAIT_MAX_MS);
		goto out;
	}
	job = xcalloc(1, sizeof(*job));
	job->cc = cc;
	job->op = *op;
	job->run_id = xstrdup(run_id);
	job->tool = tool;
	tool = NULL;
	job->dry_run = dry != NULL && dry->via.boolean;
	job->holds = 1;		/* until every write went (comp_loaded) */
	job->wait_ms = wait != NULL ? wait->via.u64 : COMP_WAIT_MS;
	/* Its own run: two commands in one millisecond too (see the top). */
	xasprintf(&job->crun, "compensate:%s:%llu.%llu", run_id,
	    (unsigned long long)now_ms(), (unsigned long long)++ncommands);
	TAILQ_INSERT_TAIL(&jobs, job, entry);
	if (pgstore_on()) {
		if (forensics_load_shared(tenant, run_id, comp_loaded, job,
		    err, sizeof(err)) == -1)
			comp_loaded(NULL, err, job);
	} else if (forensics_load(tenant, run_id, &rw, err,
	    sizeof(err)) == -1)
		comp_loaded(NULL, err, job);
	else {
		comp_loaded(&rw, NULL, job);
		forensics_free(&rw);
	}
out:
	free(run_id);
	free(tenant);
	free(tool);
}

void
compensate_conn_gone(struct ctl_conn *cc)
{
	struct comp_job	*job;

	TAILQ_FOREACH(job, &jobs, entry)
		if (job->cc == cc)
			job->cc = NULL;
}
