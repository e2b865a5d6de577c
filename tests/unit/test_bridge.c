/*
 * toolgate-mcp's pure parts: lines out of a stream (bridge/rpcread.c),
 * what each line is as a JSON-RPC message, and the names tools/list
 * shows (bridge/names.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "tests/unit/test.h"

struct got {
	int	n;
	int	toolong;
	char	line[8][64];
};

static void
on_line(void *arg, const char *line, size_t len, int too_long)
{
	struct got	*g = arg;

	if (too_long) {
		g->toolong++;
		snprintf(g->line[g->n++ % 8], 64, "<too long>");
		return;
	}
	snprintf(g->line[g->n++ % 8], 64, "%.*s", (int)len, line);
}

static void
test_lines(void)
{
	struct linebuf	lb;
	struct got	g;

	memset(&g, 0, sizeof(g));
	linebuf_init(&lb, 8);
	/* Pieces cut anywhere; a line of exactly the limit is a line. */
	linebuf_feed(&lb, "ab", 2, on_line, &g);
	linebuf_feed(&lb, "c\n12345678\n\nxyz", 16, on_line, &g);
	ASSERT_EQ_INT(g.n, 3);
	ASSERT_EQ_STR(g.line[0], "abc");
	ASSERT_EQ_STR(g.line[1], "12345678");
	ASSERT_EQ_STR(g.line[2], "");
	/* One over: reported once, skipped to its newline, memory gone. */
	linebuf_feed(&lb, "4567890", 7, on_line, &g);
	ASSERT_EQ_INT(g.toolong, 1);
	ASSERT(lb.buf == NULL && lb.skipping);
	linebuf_feed(&lb, "more and more", 13, on_line, &g);
	ASSERT_EQ_INT(g.toolong, 1);
	linebuf_feed(&lb, "end\nok\n", 7, on_line, &g);
	ASSERT_EQ_INT(g.n, 5);
	ASSERT_EQ_STR(g.line[3], "<too long>");
	ASSERT_EQ_STR(g.line[4], "ok");
	/* The last line without its newline counts at the end. */
	linebuf_feed(&lb, "tail", 4, on_line, &g);
	ASSERT_EQ_INT(g.n, 5);
	linebuf_eof(&lb, on_line, &g);
	ASSERT_EQ_INT(g.n, 6);
	ASSERT_EQ_STR(g.line[5], "tail");
	linebuf_free(&lb);
}

static enum rpc_kind
kind_of(const char *line, json_t **id)
{
	struct rpc_msg	m;
	enum rpc_kind	k;

	rpc_read(line, strlen(line), &m);
	k = m.kind;
	if (id != NULL)
		*id = m.id != NULL ? json_copy(m.id) : NULL;
	if ((k == RPC_INVALID || k == RPC_BAD_JSON) && m.why[0] == '\0')
		k = -1;
	rpc_msg_free(&m);
	return k;
}

static void
test_messages(void)
{
	json_t	*id;

	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ping\"}", &id), RPC_REQUEST);
	ASSERT(json_integer_value(id) == 1);
	json_decref(id);
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/"
	    "initialized\"}", NULL), RPC_NOTIFICATION);
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":"
	    "{}}", NULL), RPC_RESPONSE);
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":"
	    "{\"code\":1,\"message\":\"m\"}}", NULL), RPC_RESPONSE);
	ASSERT_EQ_INT(kind_of(" \r", NULL), RPC_BLANK);
	ASSERT_EQ_INT(kind_of("nope", &id), RPC_BAD_JSON);
	ASSERT(id == NULL);
	ASSERT_EQ_INT(kind_of("{\"a\":1,\"a\":2}", NULL), RPC_BAD_JSON);
	/* JSON, but no request: the id comes back when it can. */
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"1.0\",\"id\":\"q\",\"method\":"
	    "\"ping\"}", &id), RPC_INVALID);
	ASSERT_EQ_STR(json_string_value(id), "q");
	json_decref(id);
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":"
	    "\"ping\"}", &id), RPC_INVALID);
	ASSERT(id == NULL);
	ASSERT_EQ_INT(kind_of("{\"jsonrpc\":\"2.0\",\"id\":4}", &id),
	    RPC_INVALID);
	ASSERT(json_integer_value(id) == 4);
	json_decref(id);
	ASSERT_EQ_INT(kind_of("42", NULL), RPC_INVALID);
	ASSERT_EQ_INT(kind_of("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"ping\"}]", &id), RPC_INVALID);
	ASSERT(id == NULL);
}

static struct tool
mk(const char *gate)
{
	struct tool	t;

	memset(&t, 0, sizeof(t));
	t.gate = strdup(gate);
	return t;
}

static void
test_names(void)
{
	struct toolset	ts;
	struct tool	v[4];
	char		err[256], *s, long_name[70];

	s = name_show("ticket.close", 0);
	ASSERT_EQ_STR(s, "ticket_close");
	free(s);
	s = name_show("caf\xc3\xa9 a/b-c_D9", 0);
	ASSERT_EQ_STR(s, "caf__a_b-c_D9");
	free(s);
	s = name_show("ticket.close", 1);
	ASSERT_EQ_STR(s, "ticket.close");
	free(s);

	v[0] = mk("a.b");
	v[1] = mk("kb.read");
	v[2] = mk("a_b");
	ts.v = v;
	ts.n = 3;
	ASSERT_EQ_INT(names_assign(&ts, 0, err, sizeof(err)), -1);
	ASSERT(strstr(err, "a.b") != NULL && strstr(err, "a_b") != NULL);
	ASSERT_EQ_INT(names_assign(&ts, 1, err, sizeof(err)), 0);
	ASSERT(names_find(&ts, "a.b") == &v[0]);
	ASSERT(names_find(&ts, "kb_read") == NULL);
	ts.n = 2;
	ASSERT_EQ_INT(names_assign(&ts, 0, err, sizeof(err)), 0);
	ASSERT(names_find(&ts, "kb_read") == &v[1]);
	ASSERT(names_find(&ts, "kb.read") == NULL);

	memset(long_name, 'x', 65);
	long_name[65] = '\0';
	v[3] = mk(long_name);
	ts.v = v + 3;
	ts.n = 1;
	ASSERT_EQ_INT(names_assign(&ts, 1, err, sizeof(err)), -1);
	ASSERT(strstr(err, long_name) != NULL);
	long_name[64] = '\0';
	free(v[3].gate);
	v[3].gate = strdup(long_name);
	ASSERT_EQ_INT(names_assign(&ts, 0, err, sizeof(err)), 0);
	/* toolset_free() frees the array too: hand it a heap copy. */
	ts.v = malloc(sizeof(v));
	memcpy(ts.v, v, sizeof(v));
	ts.n = 4;
	toolset_free(&ts);
	ASSERT(ts.v == NULL && ts.n == 0);
}

int
main(void)
{
	RUN(test_lines);
	RUN(test_messages);
	RUN(test_names);
	return tests_failed != 0;
}
