/*
 * How gatewayctl prints the catalog (`tools`) and what an MCP server
 * offers (`mcp tools SERVER`) for a person.  With --json the answers are
 * printed as they come, like every other command's.
 *
 * What an MCP server says (names, descriptions, annotations) is the
 * server's text, not ours: it is printed with control characters replaced,
 * so that a server cannot write escape sequences to the operator's
 * terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/jsonmp.h"
#include "common/mpack.h"
#include "ctl/ctl.h"

/* s (len bytes) on one line, at most max bytes, control bytes as '?'. */
static void
put_safe(const char *s, size_t len, size_t max)
{
	size_t	 i;

	for (i = 0; i < len && i < max; i++)
		putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
		    s[i]);
	if (len > max)
		fputs("...", stdout);
}

static void
put_str(const msgpack_object *o, size_t max)
{
	if (o != NULL && o->type == MSGPACK_OBJECT_STR)
		put_safe(o->via.str.ptr, o->via.str.size, max);
	else
		fputs("-", stdout);
}

static int
width(const msgpack_object *items, const char *key, int min)
{
	const msgpack_object	*o;
	uint32_t		 i;
	int			 w = min;

	for (i = 0; i < items->via.array.size; i++) {
		o = mp_get(&items->via.array.ptr[i], key);
		if (o != NULL && o->type == MSGPACK_OBJECT_STR &&
		    (int)o->via.str.size > w && o->via.str.size < 64)
			w = (int)o->via.str.size;
	}
	return w;
}

static void
put_col(const msgpack_object *o, int w)
{
	int	 n = 1;

	if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
		put_safe(o->via.str.ptr, o->via.str.size, 64);
		n = (int)o->via.str.size;
	} else
		fputs("-", stdout);
	printf("%*s", w - n + 2, "");
}

/* NAME MODE BACKEND STATE ALLOWED WHAT, one tool a line. */
int
print_tools(const msgpack_object *ans)
{
	const msgpack_object	*items = mp_get(ans, "items"), *t, *what;
	uint32_t		 i;
	int			 wn, ws;

	if (items == NULL || items->type != MSGPACK_OBJECT_ARRAY)
		return 1;
	wn = width(items, "name", 4);
	ws = width(items, "state", 5);
	printf("%-*s  %-5s  %-7s  %-*s  %-7s  %s\n", wn, "NAME", "MODE",
	    "BACKEND", ws, "STATE", "ALLOWED", "WHAT");
	for (i = 0; i < items->via.array.size; i++) {
		t = &items->via.array.ptr[i];
		put_col(mp_get(t, "name"), wn);
		put_col(mp_get(t, "mode"), 5);
		put_col(mp_get(t, "backend"), 7);
		put_col(mp_get(t, "state"), ws);
		what = mp_get(t, "allowed");
		printf("%-7s  ", what != NULL &&
		    what->type == MSGPACK_OBJECT_BOOLEAN && what->via.boolean ?
		    "yes" : "no");
		if ((what = mp_get(t, "mcp_tool")) != NULL) {
			put_str(mp_get(t, "server"), 64);
			putchar('/');
			put_str(what, 128);
		} else if ((what = mp_get(t, "url")) != NULL) {
			put_str(mp_get(t, "method"), 8);
			putchar(' ');
			put_str(what, 256);
		}
		putchar('\n');
	}
	return 0;
}

/* The annotations an MCP server gave, as "k=v, ...", safe to print. */
static void
put_annotations(const msgpack_object *a)
{
	char	*j;

	if (a == NULL || a->type != MSGPACK_OBJECT_MAP ||
	    a->via.map.size == 0) {
		fputs("none", stdout);
		return;
	}
	if ((j = msgpack_to_json(a, 0)) == NULL)
		return;
	put_safe(j, strlen(j), 300);
	free(j);
}

/*
 * Catalog lines to paste: the mode is the server's suggestion, from its
 * annotations, and says so; the catalog decides, never the server.
 */
int
print_mcp_tools(const msgpack_object *ans)
{
	const msgpack_object	*items = mp_get(ans, "items"), *t, *as;
	const msgpack_object	*server = mp_get(ans, "server");
	uint32_t		 i;

	if (items == NULL || items->type != MSGPACK_OBJECT_ARRAY)
		return 1;
	printf("# MCP server ");
	put_str(server, 128);
	printf(": %u tools.  Lines for the catalog; each mode is only a "
	    "suggestion\n# from the server's annotations (readOnlyHint): "
	    "check it before you paste.\n", items->via.array.size);
	for (i = 0; i < items->via.array.size; i++) {
		t = &items->via.array.ptr[i];
		printf("\n# ");
		put_str(mp_get(t, "name"), 128);
		printf(": ");
		put_str(mp_get(t, "description"), 200);
		printf("\n#   annotations: ");
		put_annotations(mp_get(t, "annotations"));
		if ((as = mp_get(t, "catalogued_as")) != NULL &&
		    as->type == MSGPACK_OBJECT_STR) {
			printf("\n#   already in the catalog as ");
			put_str(as, 128);
		}
		printf("\n  ");
		put_str(mp_get(t, "catalog_name"), 128);
		printf(": { mode: ");
		put_str(mp_get(t, "suggested_mode"), 8);
		printf(", mcp: { server: ");
		put_str(server, 128);
		printf(", tool: ");
		put_str(mp_get(t, "name"), 128);
		printf(" } }   # mode suggested, not applied\n");
	}
	return 0;
}
