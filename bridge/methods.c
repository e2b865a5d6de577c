/*
 * The MCP methods toolgate-mcp serves, one small handler each, from two
 * tables: requests (answered) and notifications (never answered).
 * Whatever a line holds, the bridge keeps serving: bad JSON is -32700,
 * a message that is not a JSON-RPC 2.0 request is -32600 (a batch too:
 * MCP 2025-06-18 removed them), an unknown method -32601, bad params or
 * an unknown tool -32602.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

struct inreqs	inflight = TAILQ_HEAD_INITIALIZER(inflight);

struct inreq *
inreq_new(json_t *id, void *owner, void (*cancel)(struct inreq *))
{
	struct inreq	*r = xcalloc(1, sizeof(*r));

	r->id = json_incref(id);
	r->owner = owner;
	r->cancel = cancel;
	TAILQ_INSERT_TAIL(&inflight, r, entry);
	return r;
}

void
inreq_done(struct inreq *r)
{
	TAILQ_REMOVE(&inflight, r, entry);
	json_decref(r->id);
	free(r);
}

/*
 * The version the client asked for when we speak it; otherwise the
 * newest, as MCP's version negotiation says.
 */
static const char *
pick_version(const char *asked)
{
	size_t	i;

	for (i = 0; mcp_versions[i] != NULL; i++)
		if (strcmp(asked, mcp_versions[i]) == 0)
			return mcp_versions[i];
	return mcp_versions[0];
}

static void
m_initialize(json_t *id, json_t *params)
{
	json_t		*v = json_object_get(params, "protocolVersion");
	const char	*version;

	if (!json_is_string(v)) {
		out_error(id, RPC_INVALID_PARAMS, "initialize: protocolVersion"
		    " must be a string");
		return;
	}
	version = pick_version(json_string_value(v));
	log_info("initialize: protocol %s (asked for %s)", version,
	    json_string_value(v));
	out_result(id, json_pack("{s:s,s:{s:{s:b}},s:{s:s,s:s,s:s},s:s}",
	    "protocolVersion", version,
	    "capabilities", "tools", "listChanged", 0,
	    "serverInfo", "name", BRIDGE_NAME, "title", "toolgate",
	    "version", BRIDGE_VERSION,
	    "instructions", "Every tool call goes through toolgate, which"
	    " may refuse it, stop the run, or hold a write for an operator's"
	    " approval. A refusal comes back as an error result that says"
	    " why. A write held for approval that nobody decided in time"
	    " comes back as an error naming the approval: call the tool"
	    " again with the same arguments to go on waiting for it."));
}

static void
m_ping(json_t *id, json_t *params)
{
	(void)params;
	out_result(id, json_object());
}

static void
listed(void *arg, const char *err)
{
	struct inreq	*r = arg;

	if (!r->cancelled) {
		if (err != NULL)
			out_error(r->id, RPC_INTERNAL_ERROR, "%s", err);
		else
			out_result(r->id, tools_list_result());
	}
	inreq_done(r);
	bridge_check();
}

static void
m_tools_list(json_t *id, json_t *params)
{
	json_t	*cursor = json_object_get(params, "cursor");

	/* One page holds them all: no cursor was ever given out. */
	if (cursor != NULL && !json_is_null(cursor)) {
		out_error(id, RPC_INVALID_PARAMS, "tools/list: no such"
		    " cursor");
		return;
	}
	tools_fetch(listed, inreq_new(id, NULL, NULL));
}

static void
m_tools_call(json_t *id, json_t *params)
{
	json_t	*name = json_object_get(params, "name");
	json_t	*args = json_object_get(params, "arguments");
	json_t	*token = json_object_get(json_object_get(params, "_meta"),
		    "progressToken");
	json_t	*empty = NULL;

	if (!json_is_string(name)) {
		out_error(id, RPC_INVALID_PARAMS, "tools/call: name must be a"
		    " string");
		return;
	}
	if (args == NULL || json_is_null(args))
		args = empty = json_object();
	if (!json_is_object(args)) {
		out_error(id, RPC_INVALID_PARAMS, "tools/call: arguments must"
		    " be an object");
		return;
	}
	if (!json_is_string(token) && !json_is_integer(token))
		token = NULL;
	calls_start(id, json_string_value(name), args, token);
	json_decref(empty);
}

static void
n_initialized(json_t *params)
{
	(void)params;
	log_debug("the client is initialized");
}

static void
n_cancelled(json_t *params)
{
	json_t		*rid = json_object_get(params, "requestId");
	struct inreq	*r;

	if (rid == NULL)
		return;
	TAILQ_FOREACH(r, &inflight, entry)
		if (!r->cancelled && json_equal(r->id, rid))
			break;
	/* Finished already, or never ours: MCP says ignore it. */
	if (r == NULL)
		return;
	r->cancelled = 1;
	/* The handler may end the request (and free r). */
	if (r->cancel != NULL)
		r->cancel(r);
}

static const struct {
	const char	*name;
	void		(*fn)(json_t *id, json_t *params);
} requests[] = {
	{ "initialize",		m_initialize },
	{ "ping",		m_ping },
	{ "tools/list",		m_tools_list },
	{ "tools/call",		m_tools_call },
};

static const struct {
	const char	*name;
	void		(*fn)(json_t *params);
} notifications[] = {
	{ "notifications/initialized",	n_initialized },
	{ "notifications/cancelled",	n_cancelled },
};

static void
request(struct rpc_msg *m)
{
	size_t	i;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		if (strcmp(m->method, requests[i].name) == 0)
			break;
	if (i == sizeof(requests) / sizeof(requests[0])) {
		out_error(m->id, RPC_METHOD_NOT_FOUND, "Method not found: %s",
		    m->method);
		return;
	}
	/* MCP's params are objects (ping's may be left out). */
	if (m->params != NULL && !json_is_object(m->params)) {
		out_error(m->id, RPC_INVALID_PARAMS, "%s: params must be an"
		    " object", m->method);
		return;
	}
	requests[i].fn(m->id, m->params);
}

static void
notification(struct rpc_msg *m)
{
	size_t	i;

	if (m->params != NULL && !json_is_object(m->params))
		return;
	for (i = 0; i < sizeof(notifications) / sizeof(notifications[0]); i++)
		if (strcmp(m->method, notifications[i].name) == 0) {
			notifications[i].fn(m->params);
			return;
		}
	log_debug("notification %s ignored", m->method);
}

/* A sample of a bad line for the log, printable. */
static void
log_bad(const char *what, const char *why, const char *line, size_t len)
{
	char	sample[200];

	log_sanitize(sample, sizeof(sample), line, len < 48 ? len : 48);
	log_warnx("%s: %s: \"%s%s\"", what, why, sample, len > 48 ? "..." : "");
}

void
methods_line(void *arg, const char *line, size_t len, int too_long)
{
	struct rpc_msg	m;

	(void)arg;
	if (too_long) {
		log_warnx("a line longer than %u bytes: skipped",
		    BRIDGE_LINE_MAX);
		out_error(NULL, RPC_INVALID_REQUEST, "Invalid Request: a line"
		    " longer than %u bytes was skipped", BRIDGE_LINE_MAX);
		return;
	}
	rpc_read(line, len, &m);
	switch (m.kind) {
	case RPC_REQUEST:
		request(&m);
		break;
	case RPC_NOTIFICATION:
		notification(&m);
		break;
	case RPC_BLANK:
		break;
	case RPC_RESPONSE:
		log_debug("a response from the client: ignored (we ask"
		    " nothing)");
		break;
	case RPC_BAD_JSON:
		log_bad("parse error", m.why, line, len);
		out_error(NULL, RPC_PARSE_ERROR, "Parse error: %s", m.why);
		break;
	case RPC_INVALID:
		log_bad("invalid request", m.why, line, len);
		out_error(m.id, RPC_INVALID_REQUEST, "Invalid Request: %s",
		    m.why);
		break;
	}
	rpc_msg_free(&m);
}
