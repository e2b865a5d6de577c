/*
 * What the MCP client writes on our stdin: newline-delimited JSON-RPC 2.0
 * (bridge.h).  Bytes become lines here, and lines become messages, with
 * no I/O, so fuzz_bridge_rpc.c can feed both whatever it likes.
 *
 * A line longer than its limit is never held whole: once the limit is
 * passed, what was kept is dropped, the line is reported once as too
 * long, and its bytes are skipped up to the next newline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonrpc.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

void
linebuf_init(struct linebuf *lb, size_t max)
{
	memset(lb, 0, sizeof(*lb));
	lb->max = max;
}

void
linebuf_free(struct linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

/* Keep n more bytes of the line being read; 0, or -1 past the limit. */
static int
keep(struct linebuf *lb, const char *p, size_t n)
{
	size_t	cap;

	if (n == 0)
		return 0;
	if (n > lb->max - lb->len)
		return -1;
	if (lb->len + n > lb->cap) {
		cap = lb->cap == 0 ? 4096 : lb->cap;
		while (cap < lb->len + n)
			cap = cap > lb->max / 2 ? lb->max : cap * 2;
		lb->buf = xreallocarray(lb->buf, 1, cap);
		lb->cap = cap;
	}
	memcpy(lb->buf + lb->len, p, n);
	lb->len += n;
	return 0;
}

/*
 * Past the limit: what was kept goes, and so does the memory (one long
 * line must not keep its megabytes for the rest of the session).
 */
static void
too_long(struct linebuf *lb, line_fn fn, void *arg)
{
	free(lb->buf);
	lb->buf = NULL;
	lb->len = lb->cap = 0;
	lb->skipping = 1;
	fn(arg, NULL, 0, 1);
}

void
linebuf_feed(struct linebuf *lb, const char *p, size_t n, line_fn fn,
    void *arg)
{
	const char	*nl;
	size_t		 seg;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		seg = nl == NULL ? n : (size_t)(nl - p);
		if (!lb->skipping && keep(lb, p, seg) == -1)
			too_long(lb, fn, arg);
		if (nl == NULL)
			return;
		if (lb->skipping)
			lb->skipping = 0;
		else {
			/* A CR before the newline is JSON white space. */
			fn(arg, lb->len == 0 ? "" : lb->buf, lb->len, 0);
			lb->len = 0;
		}
		p += seg + 1;
		n -= seg + 1;
	}
}

void
linebuf_eof(struct linebuf *lb, line_fn fn, void *arg)
{
	if (!lb->skipping && lb->len > 0)
		fn(arg, lb->buf, lb->len, 0);
	lb->len = 0;
	lb->skipping = 0;
}

/* Only white space: no message, and no error either. */
static int
blank(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return 0;
	return 1;
}

static void
set_why(struct rpc_msg *m, enum rpc_kind kind, const char *why)
{
	m->kind = kind;
	snprintf(m->why, sizeof(m->why), "%s", why);
}

/* The id of a message we refuse, when it is one we can echo. */
static json_t *
usable_id(json_t *root)
{
	json_t	*id = json_object_get(root, "id");

	return json_is_string(id) || json_is_integer(id) ? id : NULL;
}

void
rpc_read(const char *line, size_t len, struct rpc_msg *m)
{
	json_t	*root;

	memset(m, 0, sizeof(*m));
	if (blank(line, len)) {
		set_why(m, RPC_BLANK, "empty line");
		return;
	}
	jsonrpc_parse(line, len, BRIDGE_LINE_MAX, &m->jr);
	root = m->jr.root;
	switch (m->jr.kind) {
	case JR_REQUEST:
		m->kind = RPC_REQUEST;
		m->id = m->jr.req_id;
		m->method = m->jr.method;
		m->params = m->jr.params;
		return;
	case JR_NOTIFICATION:
		m->kind = RPC_NOTIFICATION;
		m->method = m->jr.method;
		m->params = m->jr.params;
		return;
	case JR_RESULT:
	case JR_ERROR:
		m->kind = RPC_RESPONSE;
		return;
	case JR_INVALID:
		break;
	}
	if (root == NULL) {
		json_t		*any;
		json_error_t	 e;

		/*
		 * jansson takes only objects and arrays at the top: a
		 * string or a number is JSON all the same, and JSON-RPC
		 * calls it an Invalid Request, not a parse error.
		 */
		if (len <= BRIDGE_LINE_MAX && (any = json_loadb(line, len,
		    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e)) != NULL) {
			json_decref(any);
			set_why(m, RPC_INVALID, "not a JSON object");
			return;
		}
		set_why(m, RPC_BAD_JSON, m->jr.why);
		return;
	}
	if (json_is_array(root)) {
		/*
		 * MCP 2025-06-18 removed JSON-RPC batches, and 2025-11-25
		 * has none: one Invalid Request for the whole array.
		 */
		set_why(m, RPC_INVALID, "batches are not supported (MCP"
		    " 2025-06-18 removed them): send one message a line");
		return;
	}
	/* An answer of the client's (to an id that is not ours, say). */
	if (json_is_object(root) && json_object_get(root, "method") == NULL &&
	    (json_object_get(root, "result") != NULL ||
	    json_object_get(root, "error") != NULL)) {
		m->kind = RPC_RESPONSE;
		return;
	}
	if (json_is_object(root))
		m->id = usable_id(root);
	set_why(m, RPC_INVALID, m->jr.why);
}

void
rpc_msg_free(struct rpc_msg *m)
{
	jsonrpc_free(&m->jr);
	m->id = m->params = NULL;
	m->method = NULL;
}
