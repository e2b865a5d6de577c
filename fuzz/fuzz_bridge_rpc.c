/*
 * libFuzzer target for toolgate-mcp's reader (bridge/rpcread.c): the
 * input is what an MCP client might write on the bridge's stdin.  The
 * first byte picks the line limit (small, so over-long lines are common)
 * and the size of the pieces the bytes arrive in; the rest is the
 * stream.  Properties, each an abort() when broken:
 *
 *  - lines are the same however the stream is cut into pieces: the
 *    pieces' lines equal those of the whole stream fed at once;
 *  - no line holds a newline or is longer than the limit, and the
 *    buffer never grows past the limit (or its first 4 KiB);
 *  - an over-long line is reported once, as too long, and its bytes are
 *    skipped up to its newline;
 *  - every line read as a message has exactly the fields its kind
 *    promises: a request a clean method and a string or integer id, a
 *    notification no id, a refusal a reason and an id only when it is
 *    one to echo; a parse error is a line that is not JSON at all.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/bridge.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_LINES	4096

struct seen {
	size_t	 n;
	size_t	 max;
	size_t	 len[MAX_LINES];
	uint32_t sum[MAX_LINES];	/* a checksum of each line */
	int	 toolong[MAX_LINES];
};

static uint32_t
checksum(const char *p, size_t n)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void
check_msg(const char *line, size_t len)
{
	struct rpc_msg	 m;
	json_error_t	 e;
	json_t		*j;
	size_t		 i;

	rpc_read(line, len, &m);
	switch (m.kind) {
	case RPC_REQUEST:
		if (!json_is_string(m.id) && !json_is_integer(m.id))
			abort();
		/* FALLTHROUGH */
	case RPC_NOTIFICATION:
		if (m.method == NULL || m.method[0] == '\0')
			abort();
		for (i = 0; m.method[i] != '\0'; i++)
			if ((unsigned char)m.method[i] < 0x20)
				abort();
		if (m.kind == RPC_NOTIFICATION && m.id != NULL)
			abort();
		if (m.params != NULL && !json_is_object(m.params) &&
		    !json_is_array(m.params))
			abort();
		break;
	case RPC_RESPONSE:
	case RPC_BLANK:
		break;
	case RPC_BAD_JSON:
		if (m.why[0] == '\0' || m.id != NULL)
			abort();
		/* Really not JSON (or deeper than jansson goes). */
		j = json_loadb(line, len, JSON_DECODE_ANY |
		    JSON_REJECT_DUPLICATES, &e);
		if (j != NULL && len <= BRIDGE_LINE_MAX)
			abort();
		json_decref(j);
		break;
	case RPC_INVALID:
		if (m.why[0] == '\0')
			abort();
		if (m.id != NULL && !json_is_string(m.id) &&
		    !json_is_integer(m.id))
			abort();
		break;
	default:
		abort();
	}
	rpc_msg_free(&m);
}

static void
on_line(void *arg, const char *line, size_t len, int too_long)
{
	struct seen	*s = arg;

	if (too_long) {
		if (line != NULL || len != 0)
			abort();
	} else {
		if (len > s->max || memchr(line, '\n', len) != NULL)
			abort();
		check_msg(line, len);
	}
	if (s->n < MAX_LINES) {
		s->len[s->n] = len;
		s->sum[s->n] = too_long ? 0 : checksum(line, len);
		s->toolong[s->n] = too_long;
	}
	s->n++;
}

static void
feed(const uint8_t *data, size_t size, size_t max, size_t piece,
    struct seen *s)
{
	struct linebuf	lb;
	size_t		off, n;

	memset(s, 0, sizeof(*s));
	s->max = max;
	linebuf_init(&lb, max);
	for (off = 0; off < size; off += n) {
		n = size - off < piece ? size - off : piece;
		linebuf_feed(&lb, (const char *)data + off, n, on_line, s);
		if (lb.cap > (max > 4096 ? max : 4096) || lb.len > max)
			abort();
	}
	linebuf_eof(&lb, on_line, s);
	linebuf_free(&lb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen	 whole, pieces;
	size_t			 max, piece;

	if (size == 0)
		return 0;
	max = 1 + (data[0] & 0x3f) * 16;	/* 1 to 1009 bytes */
	piece = 1 + (data[0] >> 6) * 7;		/* 1, 8, 15 or 22 */
	data++;
	size--;

	feed(data, size, max, size == 0 ? 1 : size, &whole);
	feed(data, size, max, piece, &pieces);
	if (whole.n != pieces.n)
		abort();
	if (whole.n <= MAX_LINES &&
	    (memcmp(whole.len, pieces.len, whole.n * sizeof(whole.len[0])) ||
	    memcmp(whole.sum, pieces.sum, whole.n * sizeof(whole.sum[0])) ||
	    memcmp(whole.toolong, pieces.toolong,
	    whole.n * sizeof(whole.toolong[0]))))
		abort();
	return 0;
}
