/*
 * The mcp backend (CONTRACT.md, "mcp"): catalog tools that are tools of
 * an MCP server the executor keeps running.  backend_mcp (backend.h) runs
 * them; what is here is for the control socket (gatewayctl tools, tools
 * accept, mcp tools) and the tools op.
 */
#ifndef TG_MCP_H
#define TG_MCP_H

#include <stddef.h>

#include <jansson.h>

struct tool;

/*
 * An mcp tool's state now: "ok", "changed" (its definition differs from
 * the pinned one: calls are denied), "not offered" (the server does not
 * list it), "starting" (no instance ready yet, one starting) or "server
 * down".  A tenant_env server: the first ready instance decides.
 */
const char	*mcp_tool_state(const struct tool *);

/*
 * Pin the definition the server shows now of this tool (gatewayctl tools
 * accept): 0, or -1 with why in msg (not an mcp tool, no instance ready,
 * not offered, store error).
 */
int		 mcp_tool_accept(const struct tool *, char *msg, size_t msglen);

/*
 * A new reference to the server's last complete tools/list "tools" array
 * (a tenant_env server: any instance that has one), NULL if none known.
 */
json_t		*mcp_server_tools(const char *server);

/*
 * A new reference to the definition (an element of tools/list) of this
 * catalog tool as a ready instance shows it now, NULL if none.
 */
json_t		*mcp_tool_def(const struct tool *);

#endif
