/*
 * JSON-RPC 2.0 lines of an MCP server, and the MCP results we use
 * (jsonrpc.h).  A server is an outside program: whatever it writes is
 * checked here, field by field, before mcp.c looks at it.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "executor/jsonrpc.h"

const char *const mcp_versions[] = {
	"2025-11-25",
	"2025-06-18",
	"2025-03-26",
	NULL
};

int
jsonrpc_depth(json_t *j, int limit)
{
	const char	*k;
	json_t		*v;
	size_t		 i;
	int		 d, max = 0;

	if (limit < 0)
		return 1;
	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			if ((d = jsonrpc_depth(v, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if ((d = jsonrpc_depth(v, limit - 1)) > max)
				max = d;
			if (max > limit)
				break;
		}
		return max + 1;
	}
	return 0;
}

/*
 * Text of a server for the agent or the log: UTF-8 kept (jansson checked
 * it), control characters as spaces, cut at a character boundary.
 */
static void
text_clean(char *out, size_t outlen, const char *in, size_t inlen)
{
	size_t	 o = 0, i, n;
	unsigned char c;

	if (outlen == 0)
		return;
	for (i = 0; i < inlen; i += n) {
		c = (unsigned char)in[i];
		n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (i + n > inlen || o + n >= outlen)
			break;
		if (c < 0x20 || c == 0x7f)
			out[o] = ' ';
		else
			memcpy(out + o, in + i, n);
		o += n;
	}
	out[o] = '\0';
}

static void
invalid(struct jr_msg *m, const char *why)
{
	m->kind = JR_INVALID;
	m->result = m->params = m->req_id = NULL;
	m->method[0] = '\0';
	snprintf(m->why, sizeof(m->why), "%s", why);
}

/* A response: our id, and exactly one of result and error. */
static void
parse_response(struct jr_msg *m, json_t *id)
{
	json_t	*result, *error, *code, *msg;

	if (!json_is_integer(id) || json_integer_value(id) < 0) {
		invalid(m, "response id is not one of ours");
		return;
	}
	m->id = json_integer_value(id);
	result = json_object_get(m->root, "result");
	error = json_object_get(m->root, "error");
	if ((result == NULL) == (error == NULL)) {
		invalid(m, "response needs exactly one of result and error");
		return;
	}
	if (result != NULL) {
		m->kind = JR_RESULT;
		m->result = result;
		return;
	}
	code = json_object_get(error, "code");
	msg = json_object_get(error, "message");
	if (!json_is_object(error) || !json_is_integer(code) ||
	    !json_is_string(msg)) {
		invalid(m, "error needs an integer code and a string message");
		return;
	}
	m->kind = JR_ERROR;
	m->code = json_integer_value(code);
	text_clean(m->message, sizeof(m->message), json_string_value(msg),
	    json_string_length(msg));
}

void
jsonrpc_parse(const char *line, size_t len, size_t max, struct jr_msg *m)
{
	json_error_t	 e;
	json_t		*v, *id, *method, *params;

	memset(m, 0, sizeof(*m));
	if (len > max) {
		invalid(m, "line too long");
		return;
	}
	m->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
	if (m->root == NULL) {
		invalid(m, "not JSON");
		return;
	}
	if (!json_is_object(m->root)) {
		invalid(m, "not a JSON object");
		return;
	}
	if (jsonrpc_depth(m->root, JSONRPC_MAX_DEPTH) > JSONRPC_MAX_DEPTH) {
		invalid(m, "nested too deep");
		return;
	}
	v = json_object_get(m->root, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		invalid(m, "jsonrpc is not \"2.0\"");
		return;
	}
	id = json_object_get(m->root, "id");
	method = json_object_get(m->root, "method");
	if (method == NULL) {
		if (id == NULL) {
			invalid(m, "neither a method nor an id");
			return;
		}
		parse_response(m, id);
		return;
	}
	if (!json_is_string(method) || json_string_length(method) == 0 ||
	    json_string_length(method) >= sizeof(m->method)) {
		invalid(m, "method is not a short string");
		return;
	}
	params = json_object_get(m->root, "params");
	if (params != NULL && !json_is_object(params) &&
	    !json_is_array(params)) {
		invalid(m, "params is neither an object nor an array");
		return;
	}
	if (json_object_get(m->root, "result") != NULL ||
	    json_object_get(m->root, "error") != NULL) {
		invalid(m, "a request with a result or an error");
		return;
	}
	text_clean(m->method, sizeof(m->method), json_string_value(method),
	    json_string_length(method));
	m->params = params;
	if (id == NULL) {
		m->kind = JR_NOTIFICATION;
		return;
	}
	/* JSON-RPC ids are strings or numbers (MCP: never null). */
	if (!json_is_string(id) && !json_is_integer(id)) {
		invalid(m, "request id is neither a string nor an integer");
		return;
	}
	m->kind = JR_REQUEST;
	m->req_id = id;
}

void
jsonrpc_free(struct jr_msg *m)
{
	json_decref(m->root);
	m->root = m->result = m->params = m->req_id = NULL;
}

int
mcp_decode_init(json_t *result, char *version, size_t vlen, char *err,
    size_t errlen)
{
	json_t		*v;
	const char	*s;
	size_t		 i;

	v = json_object_get(result, "protocolVersion");
	if (!json_is_object(result) || !json_is_string(v)) {
		snprintf(err, errlen, "initialize: no protocolVersion");
		return -1;
	}
	s = json_string_value(v);
	for (i = 0; mcp_versions[i] != NULL; i++)
		if (strcmp(s, mcp_versions[i]) == 0)
			break;
	if (mcp_versions[i] == NULL) {
		char	clean[64];

		log_sanitize(clean, sizeof(clean), s, json_string_length(v));
		snprintf(err, errlen, "initialize: protocol version %s is not"
		    " one we speak", clean);
		return -1;
	}
	snprintf(version, vlen, "%s", mcp_versions[i]);
	return 0;
}

int
mcp_decode_tools(json_t *result, json_t **tools, const char **cursor,
    char *err, size_t errlen)
{
	json_t	*t, *v, *name;
	size_t	 i;

	*tools = NULL;
	*cursor = NULL;
	t = json_object_get(result, "tools");
	if (!json_is_object(result) || !json_is_array(t)) {
		snprintf(err, errlen, "tools/list: no tools array");
		return -1;
	}
	json_array_foreach(t, i, v) {
		name = json_object_get(v, "name");
		if (!json_is_object(v) || !json_is_string(name) ||
		    json_string_length(name) == 0) {
			snprintf(err, errlen, "tools/list: tool %zu has no name",
			    i);
			return -1;
		}
		/* What pinning hashes must have the types the spec gives. */
		if (((v = json_object_get(v, "inputSchema")) != NULL &&
		    !json_is_object(v))) {
			snprintf(err, errlen, "tools/list: tool %zu:"
			    " inputSchema is not an object", i);
			return -1;
		}
	}
	v = json_object_get(result, "nextCursor");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "tools/list: nextCursor is not"
			    " a string");
			return -1;
		}
		*cursor = json_string_value(v);
	}
	*tools = t;
	return 0;
}

/* The text parts of content, joined by spaces, for an error message. */
static void
content_text(json_t *content, char *text, size_t textlen)
{
	json_t	*v, *s;
	size_t	 i, used = 0;

	text[0] = '\0';
	json_array_foreach(content, i, v) {
		s = json_object_get(v, "text");
		if (!json_is_string(s))
			continue;
		if (used > 0 && used + 1 < textlen)
			text[used++] = ' ';
		if (used + 1 >= textlen)
			break;
		text_clean(text + used, textlen - used, json_string_value(s),
		    json_string_length(s));
		used += strlen(text + used);
	}
}

int
mcp_decode_call(json_t *result, json_t **out, int *is_error, char *text,
    size_t textlen)
{
	json_t	*content, *sc, *ie;

	*out = NULL;
	*is_error = 0;
	text[0] = '\0';
	content = json_object_get(result, "content");
	sc = json_object_get(result, "structuredContent");
	ie = json_object_get(result, "isError");
	if (!json_is_object(result) || !json_is_array(content)) {
		snprintf(text, textlen, "CallToolResult has no content array");
		return -1;
	}
	if (sc != NULL && !json_is_object(sc)) {
		snprintf(text, textlen, "structuredContent is not an object");
		return -1;
	}
	if (ie != NULL && !json_is_boolean(ie)) {
		snprintf(text, textlen, "isError is not a boolean");
		return -1;
	}
	if (json_is_true(ie)) {
		*is_error = 1;
		content_text(content, text, textlen);
	}
	*out = json_object();
	if (*out == NULL || json_object_set(*out, "content", content) == -1 ||
	    (sc != NULL && json_object_set(*out, "structuredContent", sc) == -1))
		fatalx("%s: out of memory", __func__);
	return 0;
}
