/*
 * What the principal may call, from the agent socket's tools op
 * (CONTRACT.md, "The tools op"), and tools/list made of it with
 * annotations the gate sets, never an upstream's: readOnlyHint for a
 * read, destructiveHint for a write, idempotentHint for every tool (the
 * gateway owns the idempotency key).
 *
 * The set is asked for at start (a name problem refuses to start), at
 * every tools/list, and when tools/call names a tool the set does not
 * hold (the gate may have been restarted with another catalog).  One
 * request at a time: whoever asks while one is out waits for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/jsonmp.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

struct toolset	 tools;

struct waiter {
	TAILQ_ENTRY(waiter) entry;
	tools_cb	 cb;
	void		*arg;
};
static TAILQ_HEAD(, waiter) waiters = TAILQ_HEAD_INITIALIZER(waiters);
static struct aconn	*fetching;

/* Tell everyone waiting; a callback may ask again (a new fetch). */
static void
fetched(const char *err)
{
	TAILQ_HEAD(, waiter)	 done = TAILQ_HEAD_INITIALIZER(done);
	struct waiter		*w;

	TAILQ_CONCAT(&done, &waiters, entry);
	while ((w = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, w, entry);
		w->cb(w->arg, err);
		free(w);
	}
}

static int
tool_from(const msgpack_object *o, struct tool *t, char *err, size_t errlen)
{
	const msgpack_object	*schema, *desc;

	memset(t, 0, sizeof(*t));
	if (o->type != MSGPACK_OBJECT_MAP ||
	    (t->gate = mp_strdup(mp_get(o, "name"))) == NULL ||
	    t->gate[0] == '\0') {
		snprintf(err, errlen, "the tools op answered a tool without"
		    " a name");
		return -1;
	}
	/* Fail closed: anything but a declared read is a write. */
	t->write = !ans_is(o, "mode", "read");
	/* Not in the contract's answer; used when the gate gives it. */
	t->mcp = mp_get(o, "backend") == NULL ? -1 :
	    ans_is(o, "backend", "mcp");
	/* The op says "" for none: MCP leaves the key out. */
	if ((desc = mp_get(o, "description")) != NULL &&
	    desc->type == MSGPACK_OBJECT_STR && desc->via.str.size > 0)
		t->description = msgpack_to_jansson(desc);
	schema = mp_get(o, "input_schema");
	if (schema != NULL && schema->type == MSGPACK_OBJECT_MAP)
		t->schema = msgpack_to_jansson(schema);
	else
		t->schema = json_pack("{s:s}", "type", "object");
	if (t->schema == NULL) {
		snprintf(err, errlen, "tool %s: its input schema does not"
		    " convert to JSON", t->gate);
		return -1;
	}
	return 0;
}

int
tools_from_answer(const msgpack_object *ans, int raw, struct toolset *out,
    char *err, size_t errlen)
{
	const msgpack_object	*list = mp_get(ans, "tools");
	char			*status, *msg;
	uint32_t		 i;

	memset(out, 0, sizeof(*out));
	if (!ans_is(ans, "status", "ok")) {
		status = ans_str(ans, "status");
		msg = ans_str(ans, "message");
		snprintf(err, errlen, "the gate answered the tools op %s: %s",
		    status != NULL ? status : "?", msg != NULL ? msg : "");
		free(status);
		free(msg);
		return -1;
	}
	if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "the gate's tools answer has no tools");
		return -1;
	}
	out->v = xcalloc(list->via.array.size + 1, sizeof(*out->v));
	for (i = 0; i < list->via.array.size; i++) {
		if (tool_from(&list->via.array.ptr[i], &out->v[out->n], err,
		    errlen) == -1) {
			/* The half-made tool goes with the set. */
			out->n++;
			toolset_free(out);
			return -1;
		}
		out->n++;
	}
	if (names_assign(out, raw, err, errlen) == -1) {
		toolset_free(out);
		return -1;
	}
	return 0;
}

static void
answered(void *arg, const msgpack_object *ans, const char *why)
{
	struct toolset	 ts;
	char		 err[1024];

	(void)arg;
	aconn_free(fetching);
	fetching = NULL;
	if (ans == NULL) {
		snprintf(err, sizeof(err), "the tools op: %s", why);
		fetched(err);
		return;
	}
	if (tools_from_answer(ans, opts.raw_names, &ts, err,
	    sizeof(err)) == -1) {
		fetched(err);
		return;
	}
	toolset_free(&tools);
	tools = ts;
	fetched(NULL);
}

void
tools_fetch(tools_cb cb, void *arg)
{
	struct waiter	*w;
	char		 err[256];

	w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&waiters, w, entry);
	if (fetching != NULL)
		return;
	if ((fetching = aconn_open(answered, NULL, err, sizeof(err))) == NULL) {
		fetched(err);
		return;
	}
	aconn_tools(fetching);
}

static json_t *
tool_json(const struct tool *t)
{
	json_t	*j, *ann;

	if (t->write)
		ann = json_pack("{s:b,s:b,s:b}", "readOnlyHint", 0,
		    "destructiveHint", 1, "idempotentHint", 1);
	else
		ann = json_pack("{s:b,s:b}", "readOnlyHint", 1,
		    "idempotentHint", 1);
	j = json_pack("{s:s,s:s,s:O,s:o}", "name", t->shown, "title", t->gate,
	    "inputSchema", t->schema, "annotations", ann);
	if (j == NULL || (t->description != NULL &&
	    json_object_set(j, "description", t->description) == -1))
		fatalx("tool_json: out of memory");
	return j;
}

json_t *
tools_list_result(void)
{
	json_t	*list;
	size_t	 i;

	if ((list = json_array()) == NULL)
		fatalx("tools_list_result: out of memory");
	for (i = 0; i < tools.n; i++)
		if (json_array_append_new(list, tool_json(&tools.v[i])) == -1)
			fatalx("tools_list_result: out of memory");
	return json_pack("{s:o}", "tools", list);
}
