/*
 * bench-mcp-server: the trivial MCP server behind make bench's mcp
 * scenarios.  stdio transport: newline-delimited JSON-RPC 2.0 on stdin and
 * stdout.  It answers initialize, tools/list (a "read" and a "write"
 * tool) and tools/call (at once, with the text "ok"); ignores
 * notifications; answers any other request with -32601.  It must never be
 * what the bench measures, so it takes every complete line a read(2)
 * brings, however many requests are pipelined, and writes all their
 * answers with one write(2).
 *
 *   bench-mcp-server	(no arguments; ends at EOF on stdin)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define LATEST_PROTOCOL	"2025-11-25"

static const char *protocols[] = {
	LATEST_PROTOCOL, "2025-06-18", "2025-03-26"
};

static const char tools_json[] =
	"{\"tools\":["
	"{\"name\":\"read\",\"description\":\"Answers ok at once.\","
	"\"inputSchema\":{\"type\":\"object\"},"
	"\"annotations\":{\"readOnlyHint\":true}},"
	"{\"name\":\"write\",\"description\":\"Answers ok at once, changes"
	" nothing.\",\"inputSchema\":{\"type\":\"object\"},"
	"\"annotations\":{\"readOnlyHint\":false,\"idempotentHint\":true}}]}";

static const char call_json[] =
	"{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}";

/* The answers to one read's worth of requests. */
struct out {
	char	*buf;
	size_t	 len, cap;
};

static void
out_add(struct out *o, const char *s, size_t n)
{
	char	*nb;
	size_t	 ncap;

	if (o->len + n > o->cap) {
		ncap = o->cap ? o->cap : 65536;
		while (ncap < o->len + n)
			ncap *= 2;
		if ((nb = realloc(o->buf, ncap)) == NULL) {
			fprintf(stderr, "bench-mcp-server: out of memory\n");
			exit(1);
		}
		o->buf = nb;
		o->cap = ncap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void
out_flush(struct out *o)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < o->len) {
		n = write(STDOUT_FILENO, o->buf + off, o->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			exit(0);	/* the client is gone */
		off += (size_t)n;
	}
	o->len = 0;
}

/* {"jsonrpc":"2.0","id":ID,"KEY":VALUE}, a line. */
static void
answer(struct out *o, json_t *id, const char *key, const char *value)
{
	char	*ids;

	if ((ids = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
		return;
	out_str(o, "{\"jsonrpc\":\"2.0\",\"id\":");
	out_str(o, ids);
	out_str(o, ",\"");
	out_str(o, key);
	out_str(o, "\":");
	out_str(o, value);
	out_str(o, "}\n");
	free(ids);
}

static void
answer_initialize(struct out *o, json_t *id, json_t *params)
{
	const char	*want, *ver = LATEST_PROTOCOL;
	char		 result[256];
	size_t		 i;

	want = json_string_value(json_object_get(params, "protocolVersion"));
	for (i = 0; want != NULL && i < sizeof(protocols) / sizeof(*protocols);
	    i++)
		if (strcmp(want, protocols[i]) == 0)
			ver = protocols[i];
	snprintf(result, sizeof(result), "{\"protocolVersion\":\"%s\","
	    "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":"
	    "\"toolgate-bench\",\"version\":\"1\"}}", ver);
	answer(o, id, "result", result);
}

static void
handle(struct out *o, const char *line, size_t len)
{
	json_error_t	 err;
	json_t		*msg, *id;
	const char	*method;

	if ((msg = json_loadb(line, len, 0, &err)) == NULL) {
		fprintf(stderr, "bench-mcp-server: bad line: %s\n", err.text);
		return;
	}
	id = json_object_get(msg, "id");
	method = json_string_value(json_object_get(msg, "method"));
	/* Notifications, and answers to requests we never send: nothing. */
	if (id == NULL || method == NULL) {
		json_decref(msg);
		return;
	}
	if (strcmp(method, "tools/call") == 0)
		answer(o, id, "result", call_json);
	else if (strcmp(method, "tools/list") == 0)
		answer(o, id, "result", tools_json);
	else if (strcmp(method, "initialize") == 0)
		answer_initialize(o, id, json_object_get(msg, "params"));
	else if (strcmp(method, "ping") == 0)
		answer(o, id, "result", "{}");
	else
		answer(o, id, "error",
		    "{\"code\":-32601,\"message\":\"method not found\"}");
	json_decref(msg);
}

int
main(int argc, char *argv[])
{
	static char	 in[1 << 20];
	struct out	 o = { NULL, 0, 0 };
	size_t		 have = 0, start, i;
	ssize_t		 n;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: bench-mcp-server\n");
		return 2;
	}
	for (;;) {
		if (have == sizeof(in)) {
			fprintf(stderr, "bench-mcp-server: line too long\n");
			return 1;
		}
		n = read(STDIN_FILENO, in + have, sizeof(in) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		have += (size_t)n;
		start = 0;
		for (i = have - (size_t)n; i < have; i++)
			if (in[i] == '\n') {
				if (i > start)
					handle(&o, in + start, i - start);
				start = i + 1;
			}
		memmove(in, in + start, have - start);
		have -= start;
		out_flush(&o);
	}
}
