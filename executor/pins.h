/*
 * Pinned MCP tool definitions (CONTRACT.md, "mcp"): the first definition
 * an MCP server showed of each catalogued tool -- its description,
 * inputSchema and annotations -- is kept in the store (DB_PINS, under the
 * catalog name), as the SHA-256 of their canonical JSON followed by that
 * JSON (for an operator to look at).  A later different definition is
 * refused until an operator accepts it (mcp_tool_accept()).
 */
#ifndef TG_PINS_H
#define TG_PINS_H

#include <stdint.h>

#include <jansson.h>

#define PIN_HASH_LEN	32

/*
 * The hash of what is pinned of a tool definition (an object of a
 * tools/list answer); *canon, when not NULL, gets the canonical JSON
 * hashed (free it).
 */
void	pins_hash(json_t *def, uint8_t hash[PIN_HASH_LEN], char **canon);

/* 1 with hash set when tool has a pin, 0 when none, -1 on a store error. */
int	pins_get(const char *tool, uint8_t hash[PIN_HASH_LEN]);

/* Record (or replace) tool's pin: 0, or -1 on a store error (logged). */
int	pins_put(const char *tool, const uint8_t hash[PIN_HASH_LEN],
	    const char *canon);

#endif
