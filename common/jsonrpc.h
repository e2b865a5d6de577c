/*
 * JSON-RPC 2.0 messages as MCP's stdio transport carries them: one a
 * line.  jsonrpc_parse() is pure (no I/O) and fuzzed (fuzz_jsonrpc.c,
 * fuzz_bridge_rpc.c): the executor reads MCP servers with it
 * (executor/mcp.c), toolgate-mcp reads its MCP client (bridge/).
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
	JR_REQUEST,		/* a request of the peer's: method and id */
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
	/* JR_REQUEST: the peer's id, a JSON string or integer; borrowed */
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

/* Depth of nesting of a JSON value: 0 for a scalar, 1 for [] or {}. */
int	jsonrpc_depth(json_t *j, int limit);

/*
 * Text from a peer for a person or a log: UTF-8 kept (jansson checked
 * it), control characters as spaces, cut at a character boundary to fit
 * outlen (NUL included).
 */
void	jsonrpc_text_clean(char *out, size_t outlen, const char *in,
	    size_t inlen);

#endif
