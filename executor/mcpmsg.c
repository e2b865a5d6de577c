/*
 * What an MCP server says, line by line (mcpserver.h): the answers to the
 * handshake and to tools/list, the server's own requests and its
 * notifications; answers to calls go on to mcp.c.  Every line has been
 * through jsonrpc_parse() before anything here looks at it.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "executor/jsonrpc.h"
#include "executor/mcpserver.h"

#define MCP_LIST_PAGES_MAX	100
#define MCP_CLIENT_NAME		"toolgate"
#define MCP_CLIENT_VERSION	"1"
/*
 * A server that sends requests and does not read our answers: past this
 * much unread, its requests go unanswered rather than pile up here.
 */
#define MCP_REPLY_BACKLOG	(1024 * 1024)

static void	proc_list(struct mcp_proc *, const char *cursor);

void
mcpmsg_initialize(struct mcp_proc *p)
{
	json_t	*m;

	p->init_id = p->next_id++;
	m = json_pack("{s:s, s:I, s:s, s:{s:s, s:{}, s:{s:s, s:s}}}",
	    "jsonrpc", "2.0", "id", (json_int_t)p->init_id,
	    "method", "initialize", "params",
	    "protocolVersion", mcp_versions[0], "capabilities",
	    "clientInfo", "name", MCP_CLIENT_NAME,
	    "version", MCP_CLIENT_VERSION);
	if (m == NULL)
		fatalx("%s: json_pack", __func__);
	(void)mcpserver_send(p, m);
	p->state = P_INIT;
	mcpserver_timer(p, mcpserver_init_timeout(p));
}

static void
proc_reply_error(struct mcp_proc *p, json_t *id, int code, const char *msg)
{
	json_t	*m;

	m = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id,
	    "error", "code", code, "message", msg);
	if (m == NULL)
		fatalx("%s: json_pack", __func__);
	(void)mcpserver_send(p, m);
}

/* A request of the server's: we declared no capability to serve one. */
static void
proc_request(struct mcp_proc *p, struct jr_msg *m)
{
	json_t	*r;

	if (evbuffer_get_length(p->outq) > MCP_REPLY_BACKLOG) {
		if (mcpserver_log_ok(p, &p->req_rl))
			log_warnx("%s: request %s dropped: it does not read"
			    " its stdin", p->label, m->method);
		return;
	}
	if (strcmp(m->method, "ping") == 0) {
		/* Every MCP party answers ping. */
		r = json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id",
		    m->req_id, "result");
		if (r == NULL)
			fatalx("%s: json_pack", __func__);
		(void)mcpserver_send(p, r);
		return;
	}
	if (mcpserver_log_ok(p, &p->req_rl))
		log_warnx("%s: request %s refused: the executor declares no"
		    " client capabilities", p->label, m->method);
	proc_reply_error(p, m->req_id, -32601, "Method not found");
}

static void
proc_notification(struct mcp_proc *p, struct jr_msg *m)
{
	if (strcmp(m->method, "notifications/tools/list_changed") == 0) {
		log_info("%s: tools changed: listing them again", p->label);
		if (p->list_id != 0 || p->state != P_READY)
			p->relist = 1;
		else
			proc_list(p, NULL);
		return;
	}
	log_debug("%s: notification %s ignored", p->label, m->method);
}

static void
proc_init_answer(struct mcp_proc *p, struct jr_msg *m)
{
	char	 version[32], err[320];
	json_t	*n;

	if (m->kind == JR_ERROR) {
		snprintf(err, sizeof(err), "initialize: error %lld: %s",
		    (long long)m->code, m->message);
		mcpserver_restart(p, err);
		return;
	}
	if (mcp_decode_init(m->result, version, sizeof(version), err,
	    sizeof(err)) == -1) {
		mcpserver_restart(p, err);
		return;
	}
	p->init_id = 0;
	log_info("%s: protocol %s", p->label, version);
	n = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method",
	    "notifications/initialized");
	if (n == NULL)
		fatalx("%s: json_pack", __func__);
	(void)mcpserver_send(p, n);
	p->state = P_LISTING;
	proc_list(p, NULL);
}

static void
proc_list(struct mcp_proc *p, const char *cursor)
{
	json_t	*m;

	p->list_id = p->next_id++;
	m = json_pack("{s:s, s:I, s:s, s:{}}", "jsonrpc", "2.0",
	    "id", (json_int_t)p->list_id, "method", "tools/list", "params");
	if (m == NULL || (cursor != NULL && json_object_set_new(
	    json_object_get(m, "params"), "cursor", json_string(cursor)) == -1))
		fatalx("%s: json_pack", __func__);
	if (cursor == NULL) {
		json_decref(p->tools_acc);
		p->tools_acc = json_array();
		p->pages = 0;
	}
	(void)mcpserver_send(p, m);
	mcpserver_timer(p, mcpserver_init_timeout(p));
}

/* A listing that failed: fatal for a start, the old list kept after. */
static void
proc_list_failed(struct mcp_proc *p, const char *why)
{
	if (p->state != P_READY) {
		mcpserver_restart(p, why);
		return;
	}
	log_warnx("%s: %s: keeping the tools listed before", p->label, why);
	evtimer_del(p->ev_timer);
	p->list_id = 0;
	json_decref(p->tools_acc);
	p->tools_acc = NULL;
}

static void
proc_list_answer(struct mcp_proc *p, struct jr_msg *m)
{
	json_t		*tools;
	const char	*cursor;
	char		 err[320];

	if (m->kind == JR_ERROR) {
		snprintf(err, sizeof(err), "tools/list: error %lld: %s",
		    (long long)m->code, m->message);
		proc_list_failed(p, err);
		return;
	}
	if (mcp_decode_tools(m->result, &tools, &cursor, err,
	    sizeof(err)) == -1) {
		proc_list_failed(p, err);
		return;
	}
	if (json_array_extend(p->tools_acc, tools) == -1)
		fatalx("%s: out of memory", __func__);
	if (cursor != NULL) {
		if (++p->pages >= MCP_LIST_PAGES_MAX) {
			proc_list_failed(p, "tools/list: too many pages");
			return;
		}
		proc_list(p, cursor);
		return;
	}
	evtimer_del(p->ev_timer);
	p->list_id = 0;
	json_decref(p->tools);
	p->tools = p->tools_acc;
	p->tools_acc = NULL;
	mcp_proc_listed(p);
	if (p->state == P_LISTING) {
		p->state = P_READY;
		p->ready_ms = mono_ms();
		log_info("%s: ready, %zu tools", p->label,
		    json_array_size(p->tools));
		mcp_proc_ready(p);
	}
	if (p->relist && p->state == P_READY) {
		p->relist = 0;
		proc_list(p, NULL);
	}
}

void
mcpmsg_line(struct mcp_proc *p, const char *line, size_t len, size_t max)
{
	struct jr_msg	m;
	char		sample[100];

	jsonrpc_parse(line, len, max, &m);
	switch (m.kind) {
	case JR_INVALID:
		if (!mcpserver_log_ok(p, &p->junk_rl))
			break;
		log_sanitize(sample, sizeof(sample), line, len < 60 ? len : 60);
		log_warnx("%s: stdout line dropped (%s): %s", p->label, m.why,
		    sample);
		break;
	case JR_RESULT:
	case JR_ERROR:
		if (p->init_id != 0 && m.id == p->init_id)
			proc_init_answer(p, &m);
		else if (p->list_id != 0 && m.id == p->list_id)
			proc_list_answer(p, &m);
		else if (p->state == P_READY)
			mcp_proc_answer(p, &m);
		else
			log_warnx("%s: answer to %lld before it is ready:"
			    " dropped", p->label, (long long)m.id);
		break;
	case JR_REQUEST:
		proc_request(p, &m);
		break;
	case JR_NOTIFICATION:
		proc_notification(p, &m);
		break;
	}
	jsonrpc_free(&m);
}
