/*
 * The MCP results the executor uses (jsonrpc.h); the lines that carry
 * them are parsed by common/jsonrpc.c.  A server is an outside program:
 * whatever it writes is checked here, field by field, before mcp.c looks
 * at it.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "executor/jsonrpc.h"

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
		jsonrpc_text_clean(text + used, textlen - used, json_string_value(s),
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
