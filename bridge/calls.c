/*
 * tools/call (CONTRACT.md, "Agents that speak MCP"): a call in this
 * process's run, on an agent connection of its own (agent.c).
 *
 *	QUEUED -> CALL -> ok / denied / stopped / error: answered
 *	               -> needs_approval -> WAIT (bounded slices, progress
 *	                  between) -> RESUME once decided -> answered
 *	          WAIT past --approval-wait-ms: isError naming the approval;
 *	          the same call later starts at WAIT on that approval
 *	          (held.c) instead of asking anew.
 *
 * Exactly one side effect however the client retries is the gate's
 * doing (idempotency key, duplicate writes, single-use approvals): the
 * bridge never retries a call by itself, and a retry of a held call
 * resumes the one checkpoint.
 *
 * notifications/cancelled: a read still running is cancelled at the
 * tool by closing its connection (the executor kills a read whose agent
 * hung up); a write waiting for its approval stops waiting (nothing ran,
 * the approval stays); a write that is running is not cancelled, its
 * answer is dropped.  A cancelled request gets no response.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/jsonmp.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

enum call_state { C_QUEUED, C_LOOKUP, C_CALL, C_WAIT, C_RESUME };

struct call {
	TAILQ_ENTRY(call) entry;	/* running or queued */
	struct inreq	*req;
	enum call_state	 state;
	char		*shown;
	struct tool	 tool;		/* a copy: the set may change */
	json_t		*args;
	json_t		*progress;	/* progressToken, or NULL */
	uint64_t	 nprogress;
	char		*key;		/* held.c's, or NULL */
	char		*approval_id;
	char		*checkpoint;
	int64_t		 expires_at;
	uint64_t	 deadline;	/* mono_ms() end of the approval wait */
	struct aconn	*ac;
};

static TAILQ_HEAD(, call) running = TAILQ_HEAD_INITIALIZER(running);
static TAILQ_HEAD(, call) queued = TAILQ_HEAD_INITIALIZER(queued);
static size_t	nrunning;

static void	call_begin(struct call *);
static void	answered(void *, const msgpack_object *, const char *);

static void
call_free(struct call *c)
{
	aconn_free(c->ac);
	free(c->shown);
	free(c->tool.gate);
	json_decref(c->tool.description);
	json_decref(c->tool.schema);
	json_decref(c->args);
	json_decref(c->progress);
	free(c->key);
	free(c->approval_id);
	free(c->checkpoint);
	free(c);
}

/* The call is over (answered or not): free it and start a queued one. */
static void
call_end(struct call *c)
{
	struct call	*next;

	if (c->state == C_QUEUED)
		TAILQ_REMOVE(&queued, c, entry);
	else if (c->state != C_LOOKUP) {
		TAILQ_REMOVE(&running, c, entry);
		nrunning--;
	}
	inreq_done(c->req);
	call_free(c);
	if (nrunning < BRIDGE_MAX_CALLS &&
	    (next = TAILQ_FIRST(&queued)) != NULL) {
		TAILQ_REMOVE(&queued, next, entry);
		next->state = C_LOOKUP;
		call_begin(next);
	}
	bridge_check();
}

static void
answer(struct call *c, json_t *result)
{
	if (!c->req->cancelled)
		out_result(c->req->id, result);
	else
		json_decref(result);
	call_end(c);
}

/* A JSON string of text that may not be UTF-8 (the gate's, cut short). */
static json_t *
text_value(const char *s)
{
	json_t	*j;
	char	*clean;
	size_t	 n = strlen(s);

	if ((j = json_string(s)) != NULL)
		return j;
	clean = xmalloc(4 * n + 1);
	log_sanitize(clean, 4 * n + 1, s, n);
	j = json_string(clean);
	free(clean);
	return j;
}

/*
 * isError: true with the text, and what the gate said in _meta for a
 * client that reads it by program.
 */
static void
answer_error(struct call *c, const msgpack_object *ans, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
answer_error(struct call *c, const msgpack_object *ans, const char *fmt, ...)
{
	static const char *const keys[] = {
		"status", "stop_reason", "error", "approval_id", NULL
	};
	va_list	 ap;
	char	*text, *v, k[64];
	json_t	*res, *meta;
	size_t	 i;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) == -1)
		fatalx("answer_error: out of memory");
	va_end(ap);
	meta = json_object();
	for (i = 0; ans != NULL && keys[i] != NULL; i++) {
		if ((v = ans_str(ans, keys[i])) == NULL)
			continue;
		snprintf(k, sizeof(k), "io.toolgate/%s", keys[i]);
		json_object_set_new(meta, k, text_value(v));
		free(v);
	}
	if (c->approval_id != NULL && json_object_get(meta,
	    "io.toolgate/approval_id") == NULL)
		json_object_set_new(meta, "io.toolgate/approval_id",
		    text_value(c->approval_id));
	res = json_pack("{s:[{s:s,s:o}],s:b,s:o}", "content", "type", "text",
	    "text", text_value(text), "isError", 1, "_meta", meta);
	free(text);
	if (res == NULL)
		fatalx("answer_error: out of memory");
	answer(c, res);
}

/* denied, stopped or error: the reason and the gate's message. */
static void
answer_refusal(struct call *c, const msgpack_object *ans)
{
	const msgpack_object	*retry, *after;
	char			*status = ans_str(ans, "status");
	char			*reason = ans_str(ans, "stop_reason");
	char			*err = ans_str(ans, "error");
	char			*msg = ans_str(ans, "message");
	char			 extra[96] = "";

	retry = mp_get(ans, "retryable");
	after = mp_get(ans, "retry_after_ms");
	if (retry != NULL && retry->type == MSGPACK_OBJECT_BOOLEAN &&
	    retry->via.boolean) {
		if (after != NULL &&
		    after->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			snprintf(extra, sizeof(extra), " (retryable: retry"
			    " after %llu ms)",
			    (unsigned long long)after->via.u64);
		else
			snprintf(extra, sizeof(extra), " (retryable)");
	} else if (after != NULL &&
	    after->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		snprintf(extra, sizeof(extra), " (retry after %llu ms)",
		    (unsigned long long)after->via.u64);
	answer_error(c, ans, "%s: %s: %s%s", status != NULL ? status : "?",
	    reason != NULL ? reason : err != NULL ? err : "?",
	    msg != NULL ? msg : "", extra);
	free(status);
	free(reason);
	free(err);
	free(msg);
}

/*
 * A result an MCP server gave: content (an array of typed parts) and
 * maybe structuredContent, nothing else (the executor keeps only those).
 */
static int
is_call_tool_result(json_t *r)
{
	const char	*k;
	json_t		*v, *part;
	size_t		 i;

	if (!json_is_object(r) || !json_is_array(json_object_get(r,
	    "content")))
		return 0;
	json_object_foreach(r, k, v)
		if (strcmp(k, "content") != 0 &&
		    !(strcmp(k, "structuredContent") == 0 &&
		    json_is_object(v)))
			return 0;
	json_array_foreach(json_object_get(r, "content"), i, part)
		if (!json_is_string(json_object_get(part, "type")))
			return 0;
	return 1;
}

static void
answer_ok(struct call *c, const msgpack_object *ans)
{
	const msgpack_object	*r = mp_get(ans, "result");
	json_t			*result, *res;
	char			*text;

	if (r == NULL || (result = msgpack_to_jansson(r)) == NULL) {
		answer_error(c, ans, "error: internal: the gate's result does"
		    " not convert to JSON");
		return;
	}
	/* An mcp tool's CallToolResult as the server gave it. */
	if (c->tool.mcp == 1 || (c->tool.mcp == -1 &&
	    is_call_tool_result(result))) {
		answer(c, result);
		return;
	}
	if ((text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)) ==
	    NULL) {
		json_decref(result);
		answer_error(c, ans, "error: internal: the gate's result does"
		    " not print as JSON");
		return;
	}
	res = json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text",
	    text);
	free(text);
	/* 2025-11-25 allows only an object there, and SDKs check. */
	if (res != NULL && json_is_object(result))
		json_object_set(res, "structuredContent", result);
	json_decref(result);
	if (res == NULL)
		fatalx("answer_ok: out of memory");
	answer(c, res);
}

static void
progress(struct call *c)
{
	char	msg[256];

	if (c->progress == NULL || c->req->cancelled)
		return;
	snprintf(msg, sizeof(msg), "waiting for an operator to decide"
	    " approval %s", c->approval_id);
	out_notify("notifications/progress", json_pack("{s:O,s:I,s:s}",
	    "progressToken", c->progress, "progress",
	    (json_int_t)++c->nprogress, "message", msg));
}

/* The time left of the approval wait: one slice of it. */
static void
wait_slice(struct call *c)
{
	uint64_t	now = mono_ms(), left;

	left = now >= c->deadline ? 0 : c->deadline - now;
	c->state = C_WAIT;
	aconn_wait(c->ac, c->approval_id, left < WAIT_SLICE_MS ? left :
	    WAIT_SLICE_MS);
}

static void
timed_out(struct call *c)
{
	char	when[64] = "";
	time_t	t = (time_t)c->expires_at;
	struct tm tm;

	if (c->expires_at > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), " (it expires at"
		    " %Y-%m-%dT%H:%M:%SZ)", &tm);
	answer_error(c, NULL, "approval required: approval %s is waiting"
	    " for an operator%s, and nobody decided within %llu ms. Nothing"
	    " ran. Call this tool again with the same arguments to go on"
	    " waiting for that approval: the call runs once it is approved,"
	    " and no new approval is asked for.", c->approval_id, when,
	    (unsigned long long)opts.approval_wait_ms);
}

/* The approval the call waits for: from needs_approval or held.c. */
static void
hold(struct call *c, const char *approval_id, const char *checkpoint,
    int64_t expires_at)
{
	free(c->approval_id);
	free(c->checkpoint);
	c->approval_id = xstrdup(approval_id);
	c->checkpoint = xstrdup(checkpoint);
	c->expires_at = expires_at;
	c->deadline = mono_ms() + opts.approval_wait_ms;
	progress(c);
	wait_slice(c);
}

static void
on_call(struct call *c, const msgpack_object *ans)
{
	const msgpack_object	*exp;
	char			*aid, *cp;

	if (ans_is(ans, "status", "ok")) {
		answer_ok(c, ans);
		return;
	}
	if (!ans_is(ans, "status", "needs_approval")) {
		answer_refusal(c, ans);
		return;
	}
	aid = ans_str(ans, "approval_id");
	cp = ans_str(ans, "checkpoint");
	exp = mp_get(ans, "expires_at");
	if (aid == NULL || cp == NULL) {
		free(aid);
		free(cp);
		answer_error(c, ans, "error: internal: needs_approval without"
		    " an approval id and a checkpoint");
		return;
	}
	if (c->key != NULL)
		held_put(c->key, aid, cp, exp != NULL &&
		    exp->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
		    (int64_t)exp->via.u64 : 0);
	log_info("%s: approval %s asked for; waiting up to %llu ms",
	    c->tool.gate, aid, (unsigned long long)opts.approval_wait_ms);
	hold(c, aid, cp, exp != NULL &&
	    exp->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
	    (int64_t)exp->via.u64 : 0);
	free(aid);
	free(cp);
}

static void
on_wait(struct call *c, const msgpack_object *ans)
{
	if (!ans_is(ans, "status", "ok")) {
		/* No such approval any more (swept): ask anew next time. */
		if (c->key != NULL)
			held_drop(c->key);
		answer_refusal(c, ans);
		return;
	}
	if (ans_is(ans, "state", "pending")) {
		if (mono_ms() >= c->deadline) {
			timed_out(c);
			return;
		}
		progress(c);
		wait_slice(c);
		return;
	}
	/*
	 * Decided: approved, denied or expired.  The resume says which in
	 * the gate's own words (a denial's note included), and runs the
	 * call only when it is approved.
	 */
	c->state = C_RESUME;
	aconn_resume(c->ac, c->checkpoint);
}

static void
on_resume(struct call *c, const msgpack_object *ans)
{
	if (ans_is(ans, "status", "ok")) {
		answer_ok(c, ans);
		return;
	}
	if (ans_is(ans, "status", "pending")) {
		/* Not decided after all: wait on. */
		wait_slice(c);
		return;
	}
	/*
	 * Denied, expired, a bad checkpoint, a stopped run: this approval
	 * is done with.  An error (the tool failed) keeps it: resuming the
	 * same checkpoint runs the write again under the same approval.
	 */
	if (c->key != NULL && !ans_is(ans, "status", "error"))
		held_drop(c->key);
	answer_refusal(c, ans);
}

static void
answered(void *arg, const msgpack_object *ans, const char *why)
{
	struct call	*c = arg;

	if (ans == NULL) {
		answer_error(c, NULL, "error: unavailable: %s.%s", why,
		    c->state == C_WAIT || !c->tool.write ? "" : " Whether the"
		    " write ran is not known here; the gate runs it at most"
		    " once, and asking again (the same arguments) tells.");
		return;
	}
	switch (c->state) {
	case C_CALL:
		on_call(c, ans);
		break;
	case C_WAIT:
		on_wait(c, ans);
		break;
	case C_RESUME:
		on_resume(c, ans);
		break;
	default:
		fatalx("answered: call in state %d", c->state);
	}
}

/* Connected, the tool known: send the call, or wait on its approval. */
static void
call_begin(struct call *c)
{
	struct held	*h;
	char		 err[256];

	TAILQ_INSERT_TAIL(&running, c, entry);
	nrunning++;
	c->state = C_CALL;
	if ((c->ac = aconn_open(answered, c, err, sizeof(err))) == NULL) {
		answer_error(c, NULL, "error: unavailable: %s", err);
		return;
	}
	if (c->key != NULL && (h = held_find(c->key)) != NULL) {
		log_info("%s: the same call as before: waiting for approval %s",
		    c->tool.gate, h->approval_id);
		hold(c, h->approval_id, h->checkpoint, h->expires_at);
		return;
	}
	if (aconn_call(c->ac, c->tool.gate, c->args, err, sizeof(err)) == -1)
		answer_error(c, NULL, "error: bad_request: the arguments: %s",
		    err);
}

static void
tool_copy(struct tool *dst, const struct tool *src)
{
	dst->gate = xstrdup(src->gate);
	dst->write = src->write;
	dst->mcp = src->mcp;
}

/* The name known: run now, or queue behind BRIDGE_MAX_CALLS. */
static void
call_known(struct call *c, const struct tool *t)
{
	tool_copy(&c->tool, t);
	c->key = held_key(t->gate, c->args);
	if (nrunning >= BRIDGE_MAX_CALLS) {
		c->state = C_QUEUED;
		TAILQ_INSERT_TAIL(&queued, c, entry);
		return;
	}
	call_begin(c);
}

/* A name the set did not hold, after asking the gate again. */
static void
looked_up(void *arg, const char *err)
{
	struct call		*c = arg;
	const struct tool	*t;

	if (c->req->cancelled) {
		call_end(c);
		return;
	}
	if ((t = names_find(&tools, c->shown)) != NULL) {
		call_known(c, t);
		return;
	}
	if (err != NULL)
		log_warnx("tools/call %s: %s", c->shown, err);
	out_error(c->req->id, RPC_INVALID_PARAMS, "Unknown tool: %s",
	    c->shown);
	call_end(c);
}

static void
cancel(struct inreq *r)
{
	struct call	*c = r->owner;

	switch (c->state) {
	case C_QUEUED:
		call_end(c);
		break;
	case C_CALL:
		/* A read hangs up: the executor kills its tool. */
		if (!c->tool.write) {
			log_info("%s: cancelled by the client: hanging up",
			    c->tool.gate);
			call_end(c);
		}
		break;
	case C_WAIT:
		/* Nothing ran; the approval stays for a retry. */
		call_end(c);
		break;
	case C_LOOKUP:		/* looked_up() ends it */
	case C_RESUME:		/* a write running: its answer is dropped */
		break;
	}
}

void
calls_start(json_t *id, const char *name, json_t *args,
    json_t *progress_token)
{
	struct call		*c;
	const struct tool	*t;

	c = xcalloc(1, sizeof(*c));
	c->req = inreq_new(id, c, cancel);
	c->shown = xstrdup(name);
	c->args = json_incref(args);
	c->progress = json_incref(progress_token);
	c->state = C_LOOKUP;
	if ((t = names_find(&tools, name)) != NULL) {
		call_known(c, t);
		return;
	}
	tools_fetch(looked_up, c);
}
