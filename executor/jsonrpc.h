/*
 * What an MCP server answers the executor (mcp.c): the lines are parsed
 * by common/jsonrpc.c, and every result the executor uses goes through
 * one of the decoders below; all are pure (no I/O), and fuzzed
 * (fuzz_jsonrpc.c).
 */
#ifndef TG_EXECUTOR_JSONRPC_H
#define TG_EXECUTOR_JSONRPC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/jsonrpc.h"

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

#endif
