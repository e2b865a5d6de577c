/*
 * The tools op, answered here rather than in gatewayd: an mcp tool's
 * description and input schema are what its server shows, checked
 * against the pinned definition, and only the executor runs the servers
 * and holds the pins.  Which tools are listed is policy_allowed()'s
 * word, the very function policy_gate() asks before every call in both
 * processes: gatewayd passes who asks, never a list of names, so one
 * place decides the allowlist and the list cannot differ from what a
 * call would be let through.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/config.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/policy.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/executor.h"
#include "executor/mcp.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/toolsop.h"

/*
 * Room kept in limits.max_frame for what gatewayd puts in front of the
 * list: the "id" key and the agent's id (at most 259 bytes packed) and a
 * map header a few bytes longer.
 */
#define TOOLS_ID_ROOM	512

static int
by_name(const void *a, const void *b)
{
	const struct tool	*const *ta = a, *const *tb = b;

	return strcmp((*ta)->name, (*tb)->name);
}

/* {"type": "object"}: the schema of a tool nobody described. */
static void
pack_default_schema(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "type", 4);
	msgpack_pack_str_with_body(pk, "object", 6);
}

/*
 * A JSON object as msgpack, whole or not at all: packed aside first, so
 * one that cannot be packed (deeper than jansson's parser takes) leaves
 * nothing half-written.  0, or -1.
 */
static int
pack_schema_json(msgpack_sbuffer *out, json_t *j)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 tpk;
	char		 err[128];
	int		 rv = -1;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&tpk, &sb, msgpack_sbuffer_write);
	if (json_is_object(j) &&
	    json_value_to_msgpack(j, &tpk, err, sizeof(err)) == 0) {
		msgpack_sbuffer_write(out, sb.data, sb.size);
		rv = 0;
	}
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

/* The catalog's input_schema (canonical JSON, checked at load), or {}. */
static void
pack_catalog_schema(struct mpmap *item, const struct tool *t)
{
	msgpack_packer	*pk = mpmap_key(item, "input_schema");
	char		 err[128];

	if (t->input_schema == NULL) {
		pack_default_schema(pk);
		return;
	}
	if (json_to_msgpack(t->input_schema, strlen(t->input_schema), pk,
	    err, sizeof(err)) == -1)
		fatalx("catalog tool %s: input_schema: %s", t->name, err);
}

/*
 * One tool's entry.  0, or 1 when it is left out: an mcp tool whose
 * server shows a definition other than the pinned one.  That definition
 * (its description above all) may be an attack on the model reading it;
 * calls to the tool are denied tool_changed until an operator accepts
 * it, so an agent is not told of the tool at all meanwhile.  An mcp
 * tool whose server is not ready, or does not offer it, is described by
 * the catalog, as any other tool: its calls are answered as they come.
 */
static int
pack_tool(msgpack_sbuffer *sb, msgpack_packer *pk, const struct tool *t)
{
	struct mpmap	 item;
	json_t		*def = NULL, *desc = NULL, *schema = NULL;
	const char	*state;

	if (t->backend == TB_MCP) {
		state = mcp_tool_state(t);
		if (strcmp(state, "changed") == 0) {
			log_debug("tools op: %s left out: its definition"
			    " changed", t->name);
			return 1;
		}
		/* Only a definition that matches its pin is shown. */
		if (strcmp(state, "ok") == 0 &&
		    (def = mcp_tool_def(t)) != NULL) {
			desc = json_object_get(def, "description");
			schema = json_object_get(def, "inputSchema");
		}
	}
	mpmap_begin_sb(&item, sb, pk);
	mpmap_str(&item, "name", t->name);
	mpmap_str(&item, "mode", t->mode == TOOL_READ ? "read" : "write");
	if (json_is_string(desc))
		mpmap_str(&item, "description", json_string_value(desc));
	else if (def != NULL)
		mpmap_str(&item, "description", "");
	else
		mpmap_str(&item, "description", t->description != NULL ?
		    t->description : "");
	if (def != NULL) {
		(void)mpmap_key(&item, "input_schema");
		if (pack_schema_json(sb, schema) == -1) {
			if (schema != NULL)
				log_warnx("tools op: %s: the server's"
				    " inputSchema cannot be passed on: shown"
				    " as {\"type\": \"object\"}", t->name);
			pack_default_schema(pk);
		}
	} else
		pack_catalog_schema(&item, t);
	mpmap_end(&item);
	json_decref(def);
	return 0;
}

/*
 * The response map: status ok and the tools, in name order, into sb.
 * Returns how many are listed.
 */
static size_t
pack_list(msgpack_sbuffer *sb, msgpack_packer *pk)
{
	const struct config	*c = ex->conf;
	const struct tool	**sorted;
	struct mpmap		 resp;
	size_t			 i, n = 0, ntools = 0;
	size_t			 arr_at;
	unsigned char		 hdr[5];

	sorted = xcalloc(c->ncatalog + 1, sizeof(*sorted));
	for (i = 0; i < c->ncatalog; i++)
		if (policy_allowed(c, c->catalog[i].name))
			sorted[n++] = &c->catalog[i];
	qsort(sorted, n, sizeof(*sorted), by_name);
	mpmap_begin_sb(&resp, sb, pk);
	mpmap_str(&resp, "status", ST_OK);
	(void)mpmap_key(&resp, "tools");
	/*
	 * The array's length is known only once the changed tools are
	 * left out: an array 32 header (5 bytes) is written now and set
	 * after, which msgpack allows for any length.
	 */
	arr_at = sb->size;
	memset(hdr, 0, sizeof(hdr));
	msgpack_sbuffer_write(sb, (const char *)hdr, sizeof(hdr));
	for (i = 0; i < n; i++)
		if (pack_tool(sb, pk, sorted[i]) == 0)
			ntools++;
	sb->data[arr_at] = (char)0xdd;
	sb->data[arr_at + 1] = (char)((ntools >> 24) & 0xff);
	sb->data[arr_at + 2] = (char)((ntools >> 16) & 0xff);
	sb->data[arr_at + 3] = (char)((ntools >> 8) & 0xff);
	sb->data[arr_at + 4] = (char)(ntools & 0xff);
	mpmap_end(&resp);
	free(sorted);
	return ntools;
}

void
tools_answer(const struct proto_msg *m)
{
	const struct principal	*p;
	struct claim		 cl;
	struct msgbuf		 mb;
	struct mpmap		 body;
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	char			 msg[256];
	uid_t			 uid;
	size_t			 n;

	request_claim(m, &cl);
	if ((p = peer_principal(&cl, &uid)) == NULL) {
		answer_plain(MSG_TOOLS_ANS, m->id, &(struct response){
		    .status = ST_DENIED, .reason = R_UNKNOWN_PRINCIPAL,
		    .message = "the caller has no principal" });
		return;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	n = pack_list(&sb, &pk);
	/*
	 * A list that would not fit in one agent frame is an error, never
	 * cut short: an agent must not take part of the list for all of
	 * it.  The catalog (or its servers' descriptions) is too big for
	 * limits.max_frame; the operator raises that or trims them.
	 */
	if (sb.size + TOOLS_ID_ROOM > ex->conf->max_frame) {
		snprintf(msg, sizeof(msg), "the list of %zu tools takes %zu"
		    " bytes, over limits.max_frame (%llu) less %d for the"
		    " id: raise limits.max_frame or shorten the"
		    " descriptions", n, sb.size,
		    (unsigned long long)ex->conf->max_frame, TOOLS_ID_ROOM);
		log_warnx("tools op for %s/%s: %s", p->tenant, p->env, msg);
		answer_plain(MSG_TOOLS_ANS, m->id, &(struct response){
		    .status = ST_ERROR, .reason = E_INTERNAL,
		    .message = msg });
		msgpack_sbuffer_destroy(&sb);
		return;
	}
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_TOOLS_ANS, m->id, &body);
	(void)mpmap_key(&body, "response");
	msgpack_sbuffer_write(&mb.sbuf, sb.data, sb.size);
	mpmap_end(&body);
	gw_send(&mb);
	msgbuf_free(&mb);
	msgpack_sbuffer_destroy(&sb);
}
