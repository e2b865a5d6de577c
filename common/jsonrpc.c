/*
 * JSON-RPC 2.0 lines, one message a line, as MCP's stdio transport
 * carries them (jsonrpc.h): what an MCP server writes to the executor
 * (executor/mcp.c) and what an MCP client writes to toolgate-mcp
 * (bridge/).  Both read from a program we do not control, so every line
 * is checked here, field by field, before anyone looks at it.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/jsonrpc.h"

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
void
jsonrpc_text_clean(char *out, size_t outlen, const char *in, size_t inlen)
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
	jsonrpc_text_clean(m->message, sizeof(m->message), json_string_value(msg),
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
	jsonrpc_text_clean(m->method, sizeof(m->method), json_string_value(method),
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
