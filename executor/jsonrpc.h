/*
 * What an MCP server writes on its stdout, one line at a time: JSON-RPC
 * 2.0 messages (mcp.c).  Every line the executor reads from a server goes
 * through jsonrpc_parse(), and every result it uses through one of the
 * decoders below; all are pure (no I/O), and fuzzed (fuzz_jsonrpc.c).
 */
#ifndef TG_JSONRPC_H
#define TG_JSONRPC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Nesting deeper than this is refused on the way in. */
#define JSONRPC_MAX_DEPTH	64
#define JSONRPC_METHOD_MAX	128

enum jr_kind {
	JR_INVALID = 0,		/* not a JSON-RPC 2.0 message we accept */
	JR_RESULT,		/* a response with a result, to one of our ids */
	JR_ERROR,		/* a response with an error, to one of our ids */
	JR_REQUEST,		/* a request of the server's: method and id */
	JR_NOTIFICATION,	/* method, no id */
};

struct jr_msg {
	enum jr_kind	 kind;
	json_t		*root;		/* the whole message; owns the rest */
	/* JR_RESULT, JR_ERROR: our id (we only send non-negative integers) */
	int64_t		 id;
	json_t		*result;	/* JR_RESULT: borrowed from root */
	int64_t		 code;		/* JR_ERROR */
	char		 message[256];	/* JR_ERROR: sanitized */
	/* JR_REQUEST: the server's id, any JSON string or number; borrowed */
	json_t		*req_id;
	char		 method[JSONRPC_METHOD_MAX];	/* sanitized */
	json_t		*params;	/* JR_REQUEST, JR_NOTIFICATION; or NULL */
	char		 why[128];	/* JR_INVALID: what is wrong */
};

/*
 * Parse one line (without its newline) of at most max bytes.  Always
 * fills m; kind JR_INVALID with m->why set when the line is not one
 * JSON-RPC 2.0 message.  jsonrpc_free() releases it either way.
 */
void	jsonrpc_parse(const char *line, size_t len, size_t max,
	    struct jr_msg *m);
void	jsonrpc_free(struct jr_msg *m);

/* The MCP protocol versions we speak, newest (the one we ask for) first. */
extern const char *const mcp_versions[];

/*
 * initialize's result: 0 with the server's protocol version copied when
 * it is one we accept, else -1 with err set.
 */
int	mcp_decode_init(json_t *result, char *version, size_t vlen,
	    char *err, size_t errlen);

/*
 * One page of tools/list: *tools is borrowed from result (an array of
 * objects, each with a string name), *cursor the next page's cursor or
 * NULL.  -1 with err set when the page is malformed.
 */
int	mcp_decode_tools(json_t *result, json_t **tools, const char **cursor,
	    char *err, size_t errlen);

/*
 * A CallToolResult.  0: *out is a new object holding content and, when
 * given, structuredContent (nothing else); *is_error tells isError, and
 * then text holds the text of its content (sanitized, possibly empty).
 * -1 with text set when the result is malformed.
 */
int	mcp_decode_call(json_t *result, json_t **out, int *is_error,
	    char *text, size_t textlen);

/* Depth of nesting of a JSON value: 0 for a scalar, 1 for [] or {}. */
int	jsonrpc_depth(json_t *j, int limit);

#endif
