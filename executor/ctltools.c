/*
 * Control commands about the catalog and its backends: `gatewayctl tools`
 * (every catalog tool, its backend and whether calls reach it) and
 * `gatewayctl tools accept TOOL` (an MCP tool's changed definition taken
 * as the new pin, by an operator, on the record) and `gatewayctl mcp tools
 * SERVER` (what a server offers, for the operator to catalog).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/config.h"
#include "common/jsonmp.h"
#include "common/mpack.h"
#include "common/policy.h"
#include "common/xmalloc.h"
#include "executor/backend.h"
#include "executor/control.h"
#include "executor/executor.h"
#include "executor/mcp.h"

static const char *
mode_name(enum tool_mode m)
{
	return m == TOOL_READ ? "read" : "write";
}

static int
allowed(const char *name)
{
	size_t	 i;

	for (i = 0; i < ex->conf->nallow; i++)
		if (strcmp(ex->conf->allow[i], name) == 0)
			return 1;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	const struct tool	*const *ta = a, *const *tb = b;

	return strcmp((*ta)->name, (*tb)->name);
}

/*
 * The catalog in name order: an operator reads it, and a script compares
 * two of them.  The catalog is the config's, bounded by its size.
 */
void
ctl_tools(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	const struct config	*c = ex->conf;
	const struct tool	**sorted, *t;
	struct msgbuf		 mb;
	struct mpmap		 m, item;
	size_t			 i;

	(void)req;
	(void)op;
	sorted = xcalloc(c->ncatalog + 1, sizeof(*sorted));
	for (i = 0; i < c->ncatalog; i++)
		sorted[i] = &c->catalog[i];
	qsort(sorted, c->ncatalog, sizeof(*sorted), by_name);
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	msgpack_pack_array(mpmap_key(&m, "items"), (uint32_t)c->ncatalog);
	for (i = 0; i < c->ncatalog; i++) {
		t = sorted[i];
		mpmap_begin(&item, &mb);
		mpmap_str(&item, "name", t->name);
		mpmap_str(&item, "mode", mode_name(t->mode));
		mpmap_str(&item, "backend", backend_name(t));
		mpmap_str(&item, "state", backend_tool_state(t));
		mpmap_bool(&item, "allowed", allowed(t->name));
		if (t->backend == TB_MCP) {
			mpmap_str(&item, "server", t->mcp.server);
			mpmap_str(&item, "mcp_tool", t->mcp.tool);
		} else if (t->backend == TB_HTTP) {
			mpmap_str(&item, "method", t->http.method);
			mpmap_str(&item, "url", t->http.url);
		}
		mpmap_end(&item);
	}
	mpmap_end(&m);
	free(sorted);
	ctl_send(cc, &mb);
}

void
ctl_tools_accept(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	struct audit_rec	 ar = { .event = "tool_accept", .uid = -1 };
	const struct tool	*t;
	struct msgbuf		 mb;
	struct mpmap		 m;
	char			*name, msg[512];

	if ((name = mp_strdup(mp_get(req, "tool"))) == NULL) {
		ctl_error(cc, "tools accept: a tool name is needed");
		return;
	}
	if ((t = policy_tool(ex->conf, name)) == NULL) {
		ctl_error(cc, "%s is not a tool of the catalog", name);
		free(name);
		return;
	}
	free(name);
	msg[0] = '\0';
	if (backend_tool_accept(t, msg, sizeof(msg)) == -1) {
		ctl_error(cc, "%s", msg);
		return;
	}
	/* An operator let a changed tool be called again: on the record. */
	ar.tool = t->name;
	ar.approver = op->who;
	ar.note = msg[0] != '\0' ? msg : NULL;
	if (audit_write(&ar, 1) == -1) {
		ctl_error(cc, "accepted, but the audit log cannot be written");
		return;
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "tool", t->name);
	mpmap_str(&m, "state", backend_tool_state(t));
	if (msg[0] != '\0')
		mpmap_str(&m, "message", msg);
	mpmap_end(&m);
	ctl_send(cc, &mb);
}

/* A JSON value of the server's into the answer, as msgpack; nil if none. */
static void
pack_json(struct mpmap *m, const char *key, const json_t *v)
{
	msgpack_packer	*pk = mpmap_key(m, key);
	char		*text, err[128];

	if (v == NULL || (text = json_dumps(v, JSON_COMPACT |
	    JSON_ENCODE_ANY)) == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	if (json_to_msgpack(text, strlen(text), pk, err, sizeof(err)) == -1)
		msgpack_pack_nil(pk);
	free(text);
}

/* The catalog tool that is this server's tool 'name', if any. */
static const char *
catalogued_as(const struct config *c, const char *server, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ncatalog; i++)
		if (c->catalog[i].backend == TB_MCP &&
		    strcmp(c->catalog[i].mcp.server, server) == 0 &&
		    strcmp(c->catalog[i].mcp.tool, name) == 0)
			return c->catalog[i].name;
	return NULL;
}

/*
 * One tool a server offers.  The mode is a suggestion from readOnlyHint
 * and is labelled so: the catalog sets modes, the server never does, and
 * a tool not marked read-only is suggested as a write (fail closed).
 */
static void
pack_offer(struct msgbuf *mb, const char *server, const json_t *t)
{
	const json_t	*ann = json_object_get(t, "annotations");
	const char	*name = json_string_value(json_object_get(t, "name"));
	const char	*as;
	struct mpmap	 m;
	char		 cname[300];

	mpmap_begin(&m, mb);
	mpmap_str_or_nil(&m, "name", name);
	pack_json(&m, "description", json_object_get(t, "description"));
	pack_json(&m, "input_schema", json_object_get(t, "inputSchema"));
	pack_json(&m, "annotations", ann);
	mpmap_str(&m, "suggested_mode", json_is_true(json_object_get(ann,
	    "readOnlyHint")) ? "read" : "write");
	snprintf(cname, sizeof(cname), "%s.%s", server, name ? name : "");
	mpmap_str_or_nil(&m, "catalog_name", name != NULL &&
	    cfg_valid_name(cname) ? cname : NULL);
	as = name != NULL ? catalogued_as(ex->conf, server, name) : NULL;
	mpmap_str_opt(&m, "catalogued_as", as);
	mpmap_end(&m);
}

void
ctl_mcp_tools(struct ctl_conn *cc, const msgpack_object *req,
    const struct operator *op)
{
	const struct config	*c = ex->conf;
	struct msgbuf		 mb;
	struct mpmap		 m;
	json_t			*tools, *t;
	char			*server;
	size_t			 i, n = 0;

	(void)op;
	if ((server = mp_strdup(mp_get(req, "server"))) == NULL) {
		ctl_error(cc, "mcp tools: a server name is needed");
		return;
	}
	for (i = 0; i < c->nmcp_servers; i++)
		if (strcmp(c->mcp_servers[i].name, server) == 0)
			break;
	if (i == c->nmcp_servers) {
		ctl_error(cc, "%s is not a server of mcp_servers", server);
		free(server);
		return;
	}
	if ((tools = mcp_server_tools(server)) == NULL) {
		ctl_error(cc, "MCP server %s has not listed its tools (it is "
		    "down or starting: see the log)", server);
		free(server);
		return;
	}
	json_array_foreach(tools, i, t)
		if (json_is_object(t))
			n++;
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "server", server);
	msgpack_pack_array(mpmap_key(&m, "items"), (uint32_t)n);
	json_array_foreach(tools, i, t)
		if (json_is_object(t))
			pack_offer(&mb, server, t);
	mpmap_end(&m);
	json_decref(tools);
	free(server);
	ctl_send(cc, &mb);
}
