/*
 * Control commands about the catalog and its backends: `gatewayctl tools`
 * (every catalog tool, its backend and whether calls reach it) and
 * `gatewayctl tools accept TOOL` (an MCP tool's changed definition taken
 * as the new pin, by an operator, on the record).
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/config.h"
#include "common/mpack.h"
#include "common/policy.h"
#include "common/xmalloc.h"
#include "executor/backend.h"
#include "executor/control.h"
#include "executor/executor.h"

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
