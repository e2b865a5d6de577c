/*
 * What an MCP server may write, line by line (executor/jsonrpc.c): each
 * kind of message, the lines refused and why, and the decoders of the
 * initialize, tools/list and tools/call results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "executor/jsonrpc.h"
#include "tests/unit/test.h"

#define MAX	4096

static enum jr_kind
kind_of(const char *line)
{
	struct jr_msg	m;
	enum jr_kind	k;

	jsonrpc_parse(line, strlen(line), MAX, &m);
	k = m.kind;
	if (k == JR_INVALID && m.why[0] == '\0')
		k = -1;		/* an invalid line must say why */
	jsonrpc_free(&m);
	return k;
}

static void
test_kinds(void)
{
	struct jr_msg	m;
	const char	*s;

	s = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"a\":1}}";
	jsonrpc_parse(s, strlen(s), MAX, &m);
	ASSERT_EQ_INT(m.kind, JR_RESULT);
	ASSERT_EQ_INT(m.id, 7);
	ASSERT(json_is_object(m.result));
	jsonrpc_free(&m);

	s = "{\"jsonrpc\":\"2.0\",\"id\":8,\"error\":{\"code\":-32602,"
	    "\"message\":\"bad\\nthing\",\"data\":[1]}}";
	jsonrpc_parse(s, strlen(s), MAX, &m);
	ASSERT_EQ_INT(m.kind, JR_ERROR);
	ASSERT_EQ_INT(m.id, 8);
	ASSERT_EQ_INT(m.code, -32602);
	/* No control characters reach a message. */
	ASSERT_EQ_STR(m.message, "bad thing");
	jsonrpc_free(&m);

	s = "{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"method\":\"roots/list\"}";
	jsonrpc_parse(s, strlen(s), MAX, &m);
	ASSERT_EQ_INT(m.kind, JR_REQUEST);
	ASSERT_EQ_STR(m.method, "roots/list");
	ASSERT_EQ_STR(json_string_value(m.req_id), "s-1");
	jsonrpc_free(&m);

	s = "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"notifications/tools/list_changed\",\"params\":{}}";
	jsonrpc_parse(s, strlen(s), MAX, &m);
	ASSERT_EQ_INT(m.kind, JR_NOTIFICATION);
	ASSERT_EQ_STR(m.method, "notifications/tools/list_changed");
	jsonrpc_free(&m);
}

static void
test_invalid(void)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[1,2]",
		"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}",
		"{\"id\":1,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\"}",
		/* ids of ours are integers >= 0 */
		"{\"jsonrpc\":\"2.0\",\"id\":-1,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":1,"
		    "\"message\":\"x\"}}",
		/* exactly one of result and error */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":"
		    "{\"code\":1,\"message\":\"x\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\","
		    "\"message\":\"x\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",
		/* requests */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":3}",
		"{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"result\":{}}",
		/* duplicate keys */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} trailing",
	};
	size_t	i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (kind_of(bad[i]) != JR_INVALID)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		ASSERT_EQ_INT(kind_of(bad[i]), JR_INVALID);
	}
}

/* A result of k nested arrays: k + 1 levels in all. */
static enum jr_kind
nested(int k, char *why, size_t whylen)
{
	struct jr_msg	 m;
	char		 buf[1024];
	enum jr_kind	 kind;
	int		 i, n;

	n = snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"result\":");
	for (i = 0; i < k; i++)
		buf[n++] = '[';
	for (i = 0; i < k; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	jsonrpc_parse(buf, n, MAX, &m);
	kind = m.kind;
	snprintf(why, whylen, "%s", m.why);
	jsonrpc_free(&m);
	return kind;
}

static void
test_limits(void)
{
	struct jr_msg	 m;
	const char	*s = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
	char		 why[128];

	jsonrpc_parse(s, strlen(s), strlen(s), &m);
	ASSERT_EQ_INT(m.kind, JR_RESULT);
	jsonrpc_free(&m);
	jsonrpc_parse(s, strlen(s), strlen(s) - 1, &m);
	ASSERT_EQ_INT(m.kind, JR_INVALID);
	ASSERT_EQ_STR(m.why, "line too long");
	jsonrpc_free(&m);

	/* 64 levels in all pass, 65 do not. */
	ASSERT_EQ_INT(nested(JSONRPC_MAX_DEPTH - 1, why, sizeof(why)),
	    JR_RESULT);
	ASSERT_EQ_INT(nested(JSONRPC_MAX_DEPTH, why, sizeof(why)),
	    JR_INVALID);
	ASSERT_EQ_STR(why, "nested too deep");
}

static json_t *
load(const char *s)
{
	json_error_t	e;

	return json_loads(s, 0, &e);
}

static void
test_decode_init(void)
{
	char	 v[32], err[256];
	json_t	*r;

	r = load("{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{}}");
	ASSERT_EQ_INT(mcp_decode_init(r, v, sizeof(v), err, sizeof(err)), 0);
	ASSERT_EQ_STR(v, "2025-06-18");
	json_decref(r);
	r = load("{\"protocolVersion\":\"2024-11-05\"}");
	ASSERT_EQ_INT(mcp_decode_init(r, v, sizeof(v), err, sizeof(err)), -1);
	ASSERT(strstr(err, "2024-11-05") != NULL);
	json_decref(r);
	r = load("{\"protocolVersion\":20250618}");
	ASSERT_EQ_INT(mcp_decode_init(r, v, sizeof(v), err, sizeof(err)), -1);
	json_decref(r);
}

static void
test_decode_tools(void)
{
	const char	*cursor;
	char		 err[256];
	json_t		*r, *tools;

	r = load("{\"tools\":[{\"name\":\"a\",\"inputSchema\":{}}],"
	    "\"nextCursor\":\"c2\"}");
	ASSERT_EQ_INT(mcp_decode_tools(r, &tools, &cursor, err,
	    sizeof(err)), 0);
	ASSERT_EQ_INT(json_array_size(tools), 1);
	ASSERT_EQ_STR(cursor, "c2");
	json_decref(r);
	r = load("{\"tools\":[],\"nextCursor\":null}");
	ASSERT_EQ_INT(mcp_decode_tools(r, &tools, &cursor, err,
	    sizeof(err)), 0);
	ASSERT(cursor == NULL);
	json_decref(r);
	r = load("{\"tools\":[{\"description\":\"no name\"}]}");
	ASSERT_EQ_INT(mcp_decode_tools(r, &tools, &cursor, err,
	    sizeof(err)), -1);
	json_decref(r);
	r = load("{\"tools\":[{\"name\":\"a\",\"inputSchema\":[]}]}");
	ASSERT_EQ_INT(mcp_decode_tools(r, &tools, &cursor, err,
	    sizeof(err)), -1);
	json_decref(r);
	r = load("{\"tools\":{}}");
	ASSERT_EQ_INT(mcp_decode_tools(r, &tools, &cursor, err,
	    sizeof(err)), -1);
	json_decref(r);
}

static void
test_decode_call(void)
{
	char	 text[64], *s;
	json_t	*r, *out;
	int	 is_error;

	/* Only content and structuredContent are kept. */
	r = load("{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
	    "\"structuredContent\":{\"a\":1},\"_meta\":{\"x\":1},\"y\":2}");
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text,
	    sizeof(text)), 0);
	ASSERT_EQ_INT(is_error, 0);
	s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	ASSERT_EQ_STR(s, "{\"content\":[{\"text\":\"hi\",\"type\":\"text\"}],"
	    "\"structuredContent\":{\"a\":1}}");
	free(s);
	json_decref(out);
	json_decref(r);

	/* isError: the texts, joined, cut to fit, clean. */
	r = load("{\"content\":[{\"type\":\"text\",\"text\":\"no\\u0007pe\"},"
	    "{\"type\":\"image\",\"data\":\"xx\"},"
	    "{\"type\":\"text\",\"text\":\"caf\\u00e9\"}],\"isError\":true}");
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text,
	    sizeof(text)), 0);
	ASSERT_EQ_INT(is_error, 1);
	ASSERT_EQ_STR(text, "no pe caf\xc3\xa9");
	json_decref(out);
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text, 9), 0);
	/* "no pe ca" is 8 bytes: the é does not fit whole, so it goes. */
	ASSERT_EQ_STR(text, "no pe ca");
	json_decref(out);
	json_decref(r);

	r = load("{\"structuredContent\":{}}");
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text,
	    sizeof(text)), -1);
	ASSERT(out == NULL && text[0] != '\0');
	json_decref(r);
	r = load("{\"content\":[],\"structuredContent\":[1]}");
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text,
	    sizeof(text)), -1);
	json_decref(r);
	r = load("{\"content\":[],\"isError\":\"yes\"}");
	ASSERT_EQ_INT(mcp_decode_call(r, &out, &is_error, text,
	    sizeof(text)), -1);
	json_decref(r);
}

int
main(void)
{
	RUN(test_kinds);
	RUN(test_invalid);
	RUN(test_limits);
	RUN(test_decode_init);
	RUN(test_decode_tools);
	RUN(test_decode_call);
	return tests_failed != 0;
}
