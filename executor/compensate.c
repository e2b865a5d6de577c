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
#include "executor/read.h"
#include "executor/request.h"
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
	char			*run_id;
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
comp_call(struct comp_item *it, const struct run_write *w,
    const struct operator *op, const char *run_id)
{
	struct call	*c;

	c = xcalloc(1, sizeof(*c));
	c->ans_type = MSG_CALL_ANS;
	c->conn = COMP_CONN;
	c->uid = op->uid;
	c->tenant = xstrdup(w->tenant);
	c->env = xstrdup(w->rec.env ? w->rec.env : "");
	c->run_id = xstrdup(run_id);
	c->tool = xstrdup(it->comp_tool);
	c->compensates = xstrdup(w->key);
	c->sink = comp_sink;
	c->sink_arg = it;
	return c;
}

/*
 * An approved compensation: it runs with the args the operator approved.
 * Returns 0 with *args unpacked into u, or -1 with it settled.
 */
static int
approved_args(struct comp_item *it, const struct approval *a,
    msgpack_unpacked *u)
{
	size_t	off = 0;

	if (msgpack_unpack_next(u, a->args, a->argslen, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		item_settle(it, "refused", "approval %s: its args do not"
		    " decode", a->id);
		return -1;
	}
	return 0;
}

/*
 * Submit it's compensation: the approval first when one is needed, then
 * the checks and the write path, which answer comp_sink().
 */
static void
submit(struct comp_item *it, const struct run_write *w,
    const msgpack_object *args, const struct operator *op,
    const char *run_id)
{
	const struct tool	*tool;
	struct approval		 a;
	struct call		*c;
	msgpack_unpacked	 u;
	char			 id[APPROVAL_ID_LEN + 1];
	int			 found, approved = 0;

	memset(&a, 0, sizeof(a));
	msgpack_unpacked_init(&u);
	if (policy_needs_approval(ex->conf, it->comp_tool)) {
		approval_id_of(it->comp_key, id);
		it->approval_id = xstrdup(id);
		if ((found = approval_get(id, &a)) == -1) {
			item_settle(it, "refused", "the approvals cannot be"
			    " read");
			goto out;
		}
		if (found == 1) {
			switch (approval_effective_state(&a)) {
			case A_PENDING:
				item_settle(it, "pending_approval",
				    "approve it with gatewayctl approve %s,"
				    " then compensate again", id);
				goto out;
			case A_DENIED:
				item_settle(it, "refused", "an operator denied"
				    " this compensation%s%s", a.note ? ": " :
				    "", a.note ? a.note : "");
				goto out;
			case A_EXPIRED:
				item_settle(it, "refused", "its approval"
				    " expired undecided");
				goto out;
			case A_APPROVED:
				if (approved_args(it, &a, &u) == -1)
					goto out;
				args = &u.data;
				approved = 1;
				break;
			}
		}
	}
	c = comp_call(it, w, op, run_id);
	if (approved) {
		c->approver = a.approver ? xstrdup(a.approver) : NULL;
		c->approval_id = xstrdup(a.id);
	}
	it->waiting = 1;
	it->job->holds++;
	it->status = "submitted";
	switch (call_check(c, args, approved, &tool)) {
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
		if (approval_request_id(c, args, it->approval_id) == 0)
			item_settle(it, "pending_approval", "approve it with"
			    " gatewayctl approve %s, then compensate again",
			    it->approval_id);
		break;
	}
out:
	msgpack_unpacked_destroy(&u);
	approval_free(&a);
}

/* One write of the run: skipped, shown (dry run) or submitted. */
static void
comp_one(struct comp_item *it, const struct run_write *w,
    const struct operator *op, const char *run_id)
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
	submit(it, w, &u.data, op, run_id);
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

void
ctl_compensate(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	const msgpack_object	*dry = mp_get(req, "dry_run");
	const msgpack_object	*to = mp_get(req, "tool");
	const msgpack_object	*wait = mp_get(req, "wait_ms");
	struct timeval		 tv;
	struct run_writes	 rw;
	struct comp_job		*job;
	struct comp_item	*it;
	char			*run_id, *tenant, *tool = NULL, *crun = NULL;
	char			 err[256];
	size_t			 i, n = 0;

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
	if (forensics_load(tenant, run_id, &rw, err, sizeof(err)) == -1) {
		ctl_error(cc, "%s", err);
		goto out;
	}
	job = xcalloc(1, sizeof(*job));
	job->cc = cc;
	job->run_id = xstrdup(run_id);
	job->dry_run = dry != NULL && dry->via.boolean;
	job->holds = 1;		/* this handler's, until every write went */
	job->wait_ms = wait != NULL ? wait->via.u64 : COMP_WAIT_MS;
	if ((job->deadline = evtimer_new(ex->base, job_deadline, job)) == NULL)
		fatalx("compensate: evtimer_new");
	tv.tv_sec = (time_t)(job->wait_ms / 1000);
	tv.tv_usec = (suseconds_t)(job->wait_ms % 1000) * 1000;
	evtimer_add(job->deadline, &tv);
	TAILQ_INSERT_TAIL(&jobs, job, entry);
	for (i = 0; i < rw.n; i++)
		if (want(&rw.v[i], tool))
			n++;
	job->items = xcalloc(n ? n : 1, sizeof(*job->items));
	/* Its own run: two commands in one millisecond too (see the top). */
	xasprintf(&crun, "compensate:%s:%llu.%llu", run_id,
	    (unsigned long long)now_ms(), (unsigned long long)++ncommands);
	if (!job->dry_run && n > 0)
		log_info("compensate: run %s by %s: %zu writes, as run %s",
		    run_id, op->who, n, crun);
	for (i = 0; i < rw.n; i++) {
		if (!want(&rw.v[i], tool))
			continue;
		it = &job->items[job->n++];
		it->job = job;
		it->tenant = xstrdup(rw.v[i].tenant);
		it->tool = rw.v[i].rec.tool ? xstrdup(rw.v[i].rec.tool) : NULL;
		it->args_hash = rw.v[i].rec.args_hash ?
		    xstrdup(rw.v[i].rec.args_hash) : NULL;
		it->key = xstrdup(rw.v[i].key);
		comp_one(it, &rw.v[i], op, crun);
	}
	forensics_free(&rw);
	job_release(job);
out:
	free(crun);
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
