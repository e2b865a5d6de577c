/*
 * The mcp backend (backend.h, mcp.h): a catalog tool's call is a
 * tools/call request to a ready process of its MCP server (mcpserver.c).
 *
 * Many calls are in flight on one process, each with its own request id
 * (a counter per process), up to the server's max_inflight; later calls
 * wait in a queue of at most MCP_QUEUE_MAX per process, in order, and a
 * call still waiting at its timeout ends unavailable: it was never sent.
 * A call is sent at most once: nothing is ever sent again by itself.
 *
 * Liveness: MCP_STRIKES calls in a row that time out, with no answer to
 * any request in between, mean the server hangs: it is killed and
 * restarted, and whatever else was in flight on it ends as lost.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>

#include "common/config.h"
#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/backend.h"
#include "executor/executor.h"
#include "executor/jsonrpc.h"
#include "executor/pins.h"
#include "executor/mcpserver.h"
#include "executor/mcp.h"

#define MCP_TIMEOUT_MS		10000	/* when the catalog left it at 0 */
#define MCP_QUEUE_MAX		1024	/* calls waiting, per process */
#define MCP_STRIKES		3
/* What msgpack may add to JSON that fits max_output (as toolrun.c). */
#define MSGPACK_SLACK		1024

/* A catalog tool's pin, as read from the store once. */
struct pinstate {
	int	loaded;
	int	has;
	uint8_t	hash[PIN_HASH_LEN];
};

static struct mcp_callq		 calls = TAILQ_HEAD_INITIALIZER(calls);
static size_t			 ncalls;
static struct event_base	*cbase;
static int			 expired;	/* no new calls */
static struct pinstate		*pinst;

static void	call_timer_cb(int, short, void *);

static void
mcp_init(struct event_base *base, const struct config *conf)
{
	cbase = base;
	pinst = xcalloc(conf->ncatalog + 1, sizeof(*pinst));
	mcpserver_init(base);
}

static size_t
mcp_active(void)
{
	return ncalls;
}

static uint32_t
max_inflight(const struct mcp_proc *p)
{
	return p->srv->max_inflight > 0 ? p->srv->max_inflight : 1;
}

/* Out of its process's queue or flight; its callback comes from the loop. */
static void
call_finish(struct mcp_call *c)
{
	struct mcp_proc	*p = c->proc;

	if (c->state == C_QUEUED && p != NULL) {
		TAILQ_REMOVE(&p->queue, c, entry);
		p->nqueue--;
	} else if (c->state == C_SENT) {
		TAILQ_REMOVE(&p->flight, c, entry);
		p->nflight--;
	}
	c->state = C_DONE;
	event_del(c->ev);
	event_active(c->ev, EV_TIMEOUT, 1);
}

static void
call_fail(struct mcp_call *c, enum tool_status st, int acted,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
call_fail(struct mcp_call *c, enum tool_status st, int acted,
    const char *fmt, ...)
{
	va_list	ap;

	c->res.status = st;
	c->res.may_have_acted = acted;
	va_start(ap, fmt);
	vsnprintf(c->res.message, sizeof(c->res.message), fmt, ap);
	va_end(ap);
	call_finish(c);
}

/* The callback, once, then everything is freed. */
static void
call_done(struct mcp_call *c)
{
	if (c->cancelled) {
		c->res.status = TR_CANCELLED;
		c->res.result = NULL;
		c->res.resultlen = 0;
		snprintf(c->res.message, sizeof(c->res.message), "cancelled");
	}
	c->res.wstatus = -1;
	c->res.duration_ms = mono_ms() - c->start_ms;
	TAILQ_REMOVE(&calls, c, all);
	ncalls--;
	event_free(c->ev);
	c->cb(&c->res, c->arg);
	msgpack_sbuffer_destroy(&c->sb);
	json_decref(c->req);
	free(c);
}

static void
send_cancelled(struct mcp_proc *p, int64_t id, const char *reason)
{
	json_t	*m;

	m = json_pack("{s:s, s:s, s:{s:I, s:s}}", "jsonrpc", "2.0",
	    "method", "notifications/cancelled", "params",
	    "requestId", (json_int_t)id, "reason", reason);
	if (m == NULL)
		fatalx("%s: json_pack", __func__);
	(void)mcpserver_send(p, m);
}

static void
call_send(struct mcp_proc *p, struct mcp_call *c)
{
	c->id = p->next_id++;
	if (json_object_set_new(c->req, "id", json_integer(c->id)) == -1)
		fatalx("%s: out of memory", __func__);
	(void)mcpserver_send(p, c->req);
	c->req = NULL;
	c->state = C_SENT;
	TAILQ_INSERT_TAIL(&p->flight, c, entry);
	p->nflight++;
}

/* Send what waits while there are slots. */
static void
proc_pump(struct mcp_proc *p)
{
	struct mcp_call	*c;

	while (p->state == P_READY && p->nflight < max_inflight(p) &&
	    (c = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, c, entry);
		p->nqueue--;
		call_send(p, c);
	}
}

static void
call_timer_cb(int fd, short ev, void *arg)
{
	struct mcp_call	*c = arg;
	struct mcp_proc	*p = c->proc;

	(void)fd;
	(void)ev;
	if (c->state == C_DONE) {
		call_done(c);
		return;
	}
	if (c->state == C_QUEUED) {
		call_fail(c, TR_UNAVAILABLE, 0, "not sent: %s had %zu calls"
		    " in flight for %u ms (max_inflight)", p->label,
		    p->nflight, (unsigned)c->timeout_ms);
		return;
	}
	send_cancelled(p, c->id, "timeout");
	call_fail(c, TR_TIMEOUT, 1, "no answer from %s within %u ms",
	    p->label, (unsigned)c->timeout_ms);
	if (++p->strikes >= MCP_STRIKES) {
		char	why[128];

		snprintf(why, sizeof(why), "%u calls in a row timed out",
		    p->strikes);
		mcpserver_restart(p, why);
		return;
	}
	proc_pump(p);
}

/* The element of p's last tools/list that is this catalog tool. */
static json_t *
find_def(const struct mcp_proc *p, const struct tool *t)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(p->tools, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
		    t->mcp.tool) == 0)
			return v;
	return NULL;
}

static struct pinstate *
pin_of(const struct tool *t)
{
	struct pinstate	*ps = &pinst[t - ex->conf->catalog];
	int		 r;

	if (!ps->loaded) {
		if ((r = pins_get(t->name, ps->hash)) == -1)
			return NULL;
		ps->has = r;
		ps->loaded = 1;
	}
	return ps;
}

static int
pin_set(const struct tool *t, json_t *def)
{
	struct pinstate	*ps = &pinst[t - ex->conf->catalog];
	uint8_t		 h[PIN_HASH_LEN];
	char		*canon;
	int		 r;

	pins_hash(def, h, &canon);
	r = pins_put(t->name, h, canon);
	free(canon);
	if (r == -1)
		return -1;
	memcpy(ps->hash, h, sizeof(h));
	ps->has = ps->loaded = 1;
	return 0;
}

/*
 * How t stands on p, which is ready: 0 ok; else the status to end a call
 * with (nothing sent), and why in msg.  The definition and its hash are
 * those of p's last listing (mcp_proc_listed()).
 */
static int
tool_check(const struct mcp_proc *p, const struct tool *t, char *msg,
    size_t msglen)
{
	const struct mcp_def	*d = &p->defs[t - ex->conf->catalog];
	struct pinstate		*ps;

	if (d->def == NULL) {
		snprintf(msg, msglen, "%s does not offer tool %s", p->label,
		    t->mcp.tool);
		return TR_UNAVAILABLE;
	}
	if ((ps = pin_of(t)) == NULL) {
		snprintf(msg, msglen, "the pinned definition of %s cannot be"
		    " read", t->name);
		return TR_UNAVAILABLE;
	}
	/* Pinned at listing time, unless the store refused then. */
	if (!ps->has && pin_set(t, d->def) == -1) {
		snprintf(msg, msglen, "the definition of %s cannot be pinned",
		    t->name);
		return TR_UNAVAILABLE;
	}
	if (memcmp(d->hash, ps->hash, sizeof(d->hash)) != 0) {
		snprintf(msg, msglen, "%s changed the definition of %s since"
		    " it was pinned: calls are refused until an operator runs"
		    " 'gatewayctl tools accept %s'", p->label, t->mcp.tool,
		    t->name);
		return TR_CHANGED;
	}
	return 0;
}

/* The tools/call request, without its id (given when it is sent). */
static json_t *
call_request(const struct tool_req *req, const struct tool *t)
{
	json_t		*args, *meta, *m;
	json_error_t	 e;

	args = json_loadb(req->input, req->inputlen, 0, &e);
	if (!json_is_object(args)) {
		json_decref(args);
		return NULL;
	}
	meta = json_pack("{s:s, s:s}", "io.toolgate/run_id",
	    req->run_id != NULL ? req->run_id : "", "io.toolgate/tenant",
	    req->tenant != NULL ? req->tenant : "");
	if (meta == NULL)
		fatalx("%s: json_pack", __func__);
	if (t->mode == TOOL_WRITE && req->idempotency_key != NULL &&
	    json_object_set_new(meta, "io.toolgate/idempotency_key",
	    json_string(req->idempotency_key)) == -1)
		fatalx("%s: out of memory", __func__);
	if (req->traceparent != NULL && json_object_set_new(meta,
	    "traceparent", json_string(req->traceparent)) == -1)
		fatalx("%s: out of memory", __func__);
	m = json_pack("{s:s, s:s, s:{s:s, s:o, s:o}}", "jsonrpc", "2.0",
	    "method", "tools/call", "params", "name", t->mcp.tool,
	    "arguments", args, "_meta", meta);
	if (m == NULL)
		fatalx("%s: json_pack", __func__);
	return m;
}

static void
mcp_start(const struct tool_req *req, tool_done_cb cb, void *arg)
{
	const struct tool	*t = req->tool;
	struct mcp_call		*c;
	struct mcp_proc		*p;
	struct timeval		 tv;
	char			 msg[sizeof(c->res.message)];
	int			 st;

	if (cbase == NULL)
		fatalx("%s: the mcp backend was not initialised", __func__);
	c = xcalloc(1, sizeof(*c));
	c->tool = t;
	c->cb = cb;
	c->arg = arg;
	c->write = t->mode == TOOL_WRITE;
	c->state = C_QUEUED;
	c->start_ms = mono_ms();
	c->timeout_ms = t->timeout_ms ? t->timeout_ms : MCP_TIMEOUT_MS;
	msgpack_sbuffer_init(&c->sb);
	if ((c->ev = evtimer_new(cbase, call_timer_cb, c)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	TAILQ_INSERT_TAIL(&calls, c, all);
	ncalls++;

	/* Every refusal below is before anything was sent. */
	if (expired) {
		call_fail(c, TR_UNAVAILABLE, 0, "not started: the executor is"
		    " shutting down");
		return;
	}
	p = mcpserver_find(t->mcp.server_idx, req->tenant, req->env);
	if (t->backend != TB_MCP || p == NULL) {
		call_fail(c, TR_UNAVAILABLE, 0, "no MCP server %s for %s/%s",
		    t->mcp.server != NULL ? t->mcp.server : "?",
		    req->tenant != NULL ? req->tenant : "",
		    req->env != NULL ? req->env : "");
		return;
	}
	if (p->state != P_READY) {
		call_fail(c, TR_UNAVAILABLE, 0, "%s is %s", p->label,
		    p->state == P_DOWN ? "down (restarting)" : "starting");
		return;
	}
	if ((st = tool_check(p, t, msg, sizeof(msg))) != 0) {
		call_fail(c, st, 0, "%s", msg);
		return;
	}
	if ((c->req = call_request(req, t)) == NULL) {
		call_fail(c, TR_FAILED, 0, "args are not a JSON object");
		return;
	}
	if (p->nflight >= max_inflight(p) && p->nqueue >= MCP_QUEUE_MAX) {
		call_fail(c, TR_UNAVAILABLE, 0, "%s is busy: %zu calls in"
		    " flight, %zu waiting", p->label, p->nflight, p->nqueue);
		return;
	}
	c->proc = p;
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	if (evtimer_add(c->ev, &tv) == -1)
		fatalx("%s: evtimer_add", __func__);
	TAILQ_INSERT_TAIL(&p->queue, c, entry);
	p->nqueue++;
	proc_pump(p);
}

/* A CallToolResult, as the agent gets it. */
static void
call_result(struct mcp_call *c, json_t *result, size_t max_output)
{
	msgpack_packer	 pk;
	json_t		*out;
	char		 text[sizeof(c->res.message)], err[256], *s;
	size_t		 len;
	int		 is_error, rc;

	if (mcp_decode_call(result, &out, &is_error, text,
	    sizeof(text)) == -1) {
		call_fail(c, TR_BAD_OUTPUT, 0, "%s", text);
		return;
	}
	if (is_error) {
		/* It ran and says it failed: as an exec tool's exit 1. */
		json_decref(out);
		call_fail(c, TR_FAILED, 0, "%s", text[0] != '\0' ? text :
		    "the tool reported an error (isError)");
		return;
	}
	msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
	/*
	 * The limit is on the result's JSON text; making that text only to
	 * parse it again costs more than the rest of a call.  Within the
	 * bound, the text is within the limit and the tree is packed as it
	 * is (the same bytes); past it, the text is made to be measured.
	 */
	if (json_compact_bound(out) <= max_output)
		rc = json_value_to_msgpack(out, &pk, err, sizeof(err));
	else {
		s = json_dumps(out, JSON_COMPACT);
		if (s == NULL)
			fatalx("%s: json_dumps", __func__);
		len = strlen(s);
		if (len > max_output) {
			json_decref(out);
			free(s);
			call_fail(c, TR_BAD_OUTPUT, 0, "output larger than %zu"
			    " bytes", max_output);
			return;
		}
		rc = json_to_msgpack(s, len, &pk, err, sizeof(err));
		free(s);
	}
	json_decref(out);
	if (rc == -1)
		call_fail(c, TR_BAD_OUTPUT, 0, "result: %s", err);
	else if (c->sb.size > max_output + MSGPACK_SLACK)
		call_fail(c, TR_BAD_OUTPUT, 0, "result is %zu bytes as msgpack,"
		    " more than limits.max_output (%zu)", c->sb.size,
		    max_output);
	else if (mp_check_depth(c->sb.data, c->sb.size, VALUE_MAX_DEPTH) < 0)
		call_fail(c, TR_BAD_OUTPUT, 0, "result nests deeper than %d"
		    " levels", VALUE_MAX_DEPTH);
	else {
		c->res.status = TR_OK;
		c->res.result = c->sb.data;
		c->res.resultlen = c->sb.size;
		call_finish(c);
	}
}

void
mcp_proc_answer(struct mcp_proc *p, struct jr_msg *m)
{
	struct mcp_call	*c;

	TAILQ_FOREACH(c, &p->flight, entry)
		if (c->id == m->id)
			break;
	/* It answers: whatever it was, it is alive. */
	p->strikes = 0;
	if (c == NULL) {
		log_debug("%s: answer to %lld, which no call waits for:"
		    " dropped", p->label, (long long)m->id);
		return;
	}
	if (m->kind == JR_ERROR)
		call_fail(c, TR_FAILED, 0, "MCP error %lld: %s",
		    (long long)m->code, m->message);
	else
		call_result(c, m->result, ex->conf->max_output);
	proc_pump(p);
}

void
mcp_proc_lost(struct mcp_proc *p, const char *why)
{
	struct mcp_call	*c;

	/* A write that was sent may have acted: it is in doubt. */
	while ((c = TAILQ_FIRST(&p->flight)) != NULL)
		call_fail(c, TR_FAILED, c->write, "%s: %s while the call was"
		    " in flight", p->label, why);
	while ((c = TAILQ_FIRST(&p->queue)) != NULL)
		call_fail(c, TR_UNAVAILABLE, 0, "not sent: %s: %s", p->label,
		    why);
	p->strikes = 0;
}

void
mcp_proc_ready(struct mcp_proc *p)
{
	proc_pump(p);
}

void
mcp_proc_listed(struct mcp_proc *p)
{
	const struct config	*conf = ex->conf;
	const struct tool	*t;
	struct pinstate		*ps;
	struct mcp_def		*d;
	size_t			 i;

	/* Every call checks the pin: the hashes are worked out here, once. */
	if (p->defs == NULL)
		p->defs = xcalloc(conf->ncatalog + 1, sizeof(*p->defs));
	for (i = 0; i < conf->ncatalog; i++) {
		t = &conf->catalog[i];
		d = &p->defs[i];
		d->def = NULL;
		if (t->backend != TB_MCP || t->mcp.server_idx != p->srv_idx)
			continue;
		if ((d->def = find_def(p, t)) == NULL) {
			log_warnx("%s: catalog tool %s: the server does not"
			    " offer %s", p->label, t->name, t->mcp.tool);
			continue;
		}
		pins_hash(d->def, d->hash, NULL);
		if ((ps = pin_of(t)) == NULL)
			continue;
		if (!ps->has) {
			if (pin_set(t, d->def) == 0)
				log_info("%s: tool %s: definition pinned",
				    p->label, t->name);
			continue;
		}
		if (memcmp(d->hash, ps->hash, sizeof(d->hash)) != 0)
			log_warnx("%s: tool %s: the definition differs from"
			    " the pinned one: calls are refused until"
			    " 'gatewayctl tools accept %s'", p->label, t->name,
			    t->name);
	}
}

static int
mcp_cancel(const void *arg)
{
	struct mcp_call	*c;

	TAILQ_FOREACH(c, &calls, all)
		if (c->arg == arg && !c->cancelled)
			break;
	if (c == NULL)
		return 0;
	c->cancelled = 1;
	if (c->state == C_DONE)
		return 1;
	/* Its answer, should one come, is dropped (no call waits). */
	if (c->state == C_SENT)
		send_cancelled(c->proc, c->id, "the agent hung up");
	call_fail(c, TR_CANCELLED, c->state == C_SENT, "cancelled");
	if (c->proc != NULL)
		proc_pump(c->proc);
	return 1;
}

static size_t
mcp_expire(void)
{
	struct mcp_call	*c;
	size_t		 n = 0;

	expired = 1;
	TAILQ_FOREACH(c, &calls, all) {
		if (c->state == C_QUEUED && c->proc != NULL)
			call_fail(c, TR_UNAVAILABLE, 0, "not sent: the executor"
			    " is shutting down");
		else if (c->state == C_SENT) {
			/* Ended as its timeout ends it: a write is in doubt. */
			send_cancelled(c->proc, c->id, "shutdown");
			call_fail(c, TR_TIMEOUT, 1, "no answer by the shutdown"
			    " deadline (limits.shutdown_s)");
			n++;
		}
	}
	return n;
}

static void
mcp_shutdown(void)
{
	mcpserver_shutdown();
	free(pinst);
	pinst = NULL;
}

/* The first process of t's server that is ready, else any of it. */
static struct mcp_proc *
proc_for_tool(const struct tool *t, int *ready)
{
	struct mcp_proc	*p, *any = NULL;

	*ready = 0;
	if (t->backend != TB_MCP)
		return NULL;
	TAILQ_FOREACH(p, &mcp_procs, entry) {
		if (p->srv_idx != t->mcp.server_idx)
			continue;
		if (p->state == P_READY) {
			*ready = 1;
			return p;
		}
		if (any == NULL || p->state != P_DOWN)
			any = p;
	}
	return any;
}

const char *
mcp_tool_state(const struct tool *t)
{
	struct mcp_proc	*p;
	char		 msg[512];
	int		 ready;

	if ((p = proc_for_tool(t, &ready)) == NULL)
		return "server down";
	if (!ready)
		return p->state == P_DOWN ? "server down" : "starting";
	switch (tool_check(p, t, msg, sizeof(msg))) {
	case 0:
		return "ok";
	case TR_CHANGED:
		return "changed";
	default:
		return find_def(p, t) == NULL ? "not offered" : "server down";
	}
}

int
mcp_tool_accept(const struct tool *t, char *msg, size_t msglen)
{
	struct mcp_proc	*p;
	json_t		*def;
	int		 ready;

	if (t->backend != TB_MCP) {
		snprintf(msg, msglen, "%s is not an mcp tool", t->name);
		return -1;
	}
	if ((p = proc_for_tool(t, &ready)) == NULL || !ready) {
		snprintf(msg, msglen, "MCP server %s is not ready: there is"
		    " no definition to accept", t->mcp.server);
		return -1;
	}
	if ((def = find_def(p, t)) == NULL) {
		snprintf(msg, msglen, "%s does not offer tool %s", p->label,
		    t->mcp.tool);
		return -1;
	}
	if (pin_set(t, def) == -1) {
		snprintf(msg, msglen, "the store refused the pin of %s",
		    t->name);
		return -1;
	}
	log_info("tool %s: the definition %s shows now is pinned", t->name,
	    p->label);
	return 0;
}

json_t *
mcp_server_tools(const char *server)
{
	struct mcp_proc	*p;

	TAILQ_FOREACH(p, &mcp_procs, entry)
		if (strcmp(p->srv->name, server) == 0 && p->tools != NULL)
			return json_incref(p->tools);
	return NULL;
}

json_t *
mcp_tool_def(const struct tool *t)
{
	struct mcp_proc	*p;
	json_t		*def;
	int		 ready;

	if ((p = proc_for_tool(t, &ready)) == NULL || !ready ||
	    (def = find_def(p, t)) == NULL)
		return NULL;
	return json_incref(def);
}

/* The mcp backend (backend.h). */
const struct backend_ops	backend_mcp = {
	.name = "mcp",
	.init = mcp_init,
	.start = mcp_start,
	.cancel = mcp_cancel,
	.expire = mcp_expire,
	.active = mcp_active,
	.shutdown = mcp_shutdown,
	.tool_state = mcp_tool_state,
	.tool_accept = mcp_tool_accept,
};
