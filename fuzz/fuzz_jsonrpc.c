/*
 * libFuzzer target for jsonrpc.c: the input is one line an MCP server
 * might write on its stdout.  The first byte picks the line limit; the
 * rest is the line.  Properties, each an abort() when broken:
 *
 *  - a line over the limit is invalid, and so is one jansson refuses, or
 *    one nested deeper than JSONRPC_MAX_DEPTH;
 *  - an invalid line says why; a valid one has exactly the fields its
 *    kind promises (an id of ours >= 0, a result or an error, a method
 *    without control characters, an id of the server's string or
 *    integer);
 *  - every decoder of results, run on whatever result or params came,
 *    either refuses with a message or gives what it promises: a version
 *    we speak, an array of named tools, a CallToolResult holding only
 *    content and structuredContent, with clean error text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "executor/jsonrpc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_clean(const char *what, const char *s, size_t cap)
{
	size_t	i, n = strnlen(s, cap);

	if (n == cap) {
		fprintf(stderr, "%s: not terminated\n", what);
		abort();
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			fprintf(stderr, "%s: control character\n", what);
			abort();
		}
	/* Valid UTF-8: jansson reads it back as a string. */
	if (n > 0) {
		json_t	*j = json_stringn(s, n);

		if (j == NULL) {
			fprintf(stderr, "%s: not UTF-8\n", what);
			abort();
		}
		json_decref(j);
	}
}

static void
check_decoders(json_t *v)
{
	json_t		*tools, *out, *t;
	const char	*cursor, *k;
	char		 version[32], err[256], text[512];
	size_t		 i;
	int		 is_error, ok;

	if (mcp_decode_init(v, version, sizeof(version), err,
	    sizeof(err)) == 0) {
		for (i = 0; mcp_versions[i] != NULL; i++)
			if (strcmp(version, mcp_versions[i]) == 0)
				break;
		if (mcp_versions[i] == NULL)
			abort();
	} else if (err[0] == '\0')
		abort();

	if (mcp_decode_tools(v, &tools, &cursor, err, sizeof(err)) == 0) {
		if (!json_is_array(tools))
			abort();
		json_array_foreach(tools, i, t)
			if (!json_is_string(json_object_get(t, "name")))
				abort();
		if (cursor != NULL && !json_is_string(json_object_get(v,
		    "nextCursor")))
			abort();
	} else if (err[0] == '\0' || tools != NULL)
		abort();

	ok = mcp_decode_call(v, &out, &is_error, text, sizeof(text));
	check_clean("call text", text, sizeof(text));
	if (ok == 0) {
		if (!json_is_object(out) ||
		    !json_is_array(json_object_get(out, "content")))
			abort();
		json_object_foreach(out, k, t)
			if (strcmp(k, "content") != 0 &&
			    strcmp(k, "structuredContent") != 0)
				abort();
		if (is_error != json_is_true(json_object_get(v, "isError")))
			abort();
		json_decref(out);
	} else if (text[0] == '\0' || out != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jr_msg	 m;
	json_error_t	 e;
	json_t		*j;
	size_t		 max;

	if (size == 0)
		return 0;
	max = data[0] < 0x80 ? 4096 : (size_t)data[0] - 0x80;
	data++;
	size--;

	jsonrpc_parse((const char *)data, size, max, &m);
	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
	switch (m.kind) {
	case JR_INVALID:
		if (m.why[0] == '\0' || m.result != NULL || m.params != NULL)
			abort();
		break;
	case JR_RESULT:
		if (m.result == NULL || m.id < 0)
			abort();
		break;
	case JR_ERROR:
		if (m.result != NULL || m.id < 0)
			abort();
		check_clean("error message", m.message, sizeof(m.message));
		break;
	case JR_REQUEST:
		if (!json_is_string(m.req_id) && !json_is_integer(m.req_id))
			abort();
		/* FALLTHROUGH */
	case JR_NOTIFICATION:
		if (m.method[0] == '\0')
			abort();
		check_clean("method", m.method, sizeof(m.method));
		break;
	default:
		abort();
	}
	if (m.kind != JR_INVALID) {
		if (size > max || j == NULL || !json_equal(j, m.root) ||
		    jsonrpc_depth(j, JSONRPC_MAX_DEPTH) > JSONRPC_MAX_DEPTH)
			abort();
		if (strcmp(json_string_value(json_object_get(j, "jsonrpc")),
		    "2.0") != 0)
			abort();
	}
	if (m.result != NULL)
		check_decoders(m.result);
	if (m.params != NULL)
		check_decoders(m.params);
	json_decref(j);
	jsonrpc_free(&m);
	return 0;
}
