#include <string.h>

#include <event2/buffer.h>
#include <msgpack.h>

#include "common/frame.h"

/* The same on bytes held in memory: n of them at p. */
enum frame_state
frame_peek_buf(const char *p, size_t n, uint32_t max, uint32_t *len)
{
	const unsigned char	*u = (const unsigned char *)p;
	uint32_t		 flen;

	if (n < FRAME_HDR)
		return FRAME_MORE;
	flen = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	    (uint32_t)u[2] << 8 | u[3];
	*len = flen;
	if (flen == 0)
		return FRAME_EMPTY;
	if (flen > max)
		return FRAME_TOO_LARGE;
	if (n - FRAME_HDR < flen)
		return FRAME_MORE;
	return FRAME_READY;
}

enum frame_state
frame_peek(struct evbuffer *in, uint32_t max, uint32_t *len)
{
	unsigned char	hdr[FRAME_HDR];
	uint32_t	n;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return FRAME_MORE;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	*len = n;
	if (n == 0)
		return FRAME_EMPTY;
	if (n > max)
		return FRAME_TOO_LARGE;
	if (evbuffer_get_length(in) < (size_t)n + FRAME_HDR)
		return FRAME_MORE;
	return FRAME_READY;
}

void
frame_put_len(unsigned char hdr[FRAME_HDR], uint32_t len)
{
	hdr[0] = len >> 24;
	hdr[1] = len >> 16;
	hdr[2] = len >> 8;
	hdr[3] = len;
}

static uint64_t
be(const unsigned char *p, int n)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Look at the head of one value at p (avail bytes).  Sets *hdr to the bytes
 * of its header, *body to the payload bytes that follow it (strings, bin,
 * ext, numbers) and *children to the number of values it contains (maps
 * count keys and values).  Returns -1 for a byte that starts nothing or a
 * header cut short.
 */
static int
mp_head(const unsigned char *p, size_t avail, size_t *hdr, uint64_t *body,
    uint64_t *children)
{
	unsigned char	c = p[0];
	int		w;

	*hdr = 1;
	*body = 0;
	*children = 0;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 0;
	if ((c & 0xf0) == 0x80) {
		*children = 2 * (uint64_t)(c & 0x0f);
		return 0;
	}
	if ((c & 0xf0) == 0x90) {
		*children = c & 0x0f;
		return 0;
	}
	if ((c & 0xe0) == 0xa0) {
		*body = c & 0x1f;
		return 0;
	}
	switch (c) {
	case 0xca: *body = 4; return 0;
	case 0xcb: *body = 8; return 0;
	case 0xcc: case 0xd0: *body = 1; return 0;
	case 0xcd: case 0xd1: *body = 2; return 0;
	case 0xce: case 0xd2: *body = 4; return 0;
	case 0xcf: case 0xd3: *body = 8; return 0;
	case 0xd4: *body = 2; return 0;
	case 0xd5: *body = 3; return 0;
	case 0xd6: *body = 5; return 0;
	case 0xd7: *body = 9; return 0;
	case 0xd8: *body = 17; return 0;
	}
	/* Everything left carries a length of 1, 2 or 4 bytes. */
	switch (c) {
	case 0xc4: case 0xc7: case 0xd9: w = 1; break;
	case 0xc5: case 0xc8: case 0xda: case 0xdc: case 0xde: w = 2; break;
	case 0xc6: case 0xc9: case 0xdb: case 0xdd: case 0xdf: w = 4; break;
	default:
		return -1;	/* 0xc1 is never used */
	}
	if (avail < 1 + (size_t)w)
		return -1;
	*hdr = 1 + w;
	switch (c) {
	case 0xdc: case 0xdd:
		*children = be(p + 1, w);
		break;
	case 0xde: case 0xdf:
		*children = 2 * be(p + 1, w);
		break;
	case 0xc7: case 0xc8: case 0xc9:
		*body = be(p + 1, w) + 1;	/* the ext type byte */
		break;
	default:
		*body = be(p + 1, w);
	}
	return 0;
}

static int
is_container(unsigned char c)
{
	return (c & 0xe0) == 0x80 || c == 0xdc || c == 0xdd || c == 0xde ||
	    c == 0xdf;
}

long
mp_check(const char *buf, size_t len)
{
	return mp_check_depth(buf, len, MP_MAX_DEPTH);
}

long
mp_check_depth(const char *buf, size_t len, int maxdepth)
{
	const unsigned char	*p = (const unsigned char *)buf;
	uint64_t		 left[MP_MAX_DEPTH + 1];	/* values still owed per level */
	uint64_t		 body, children;
	size_t			 off = 0, hdr;
	int			 depth = 0;

	left[0] = 1;
	for (;;) {
		while (depth > 0 && left[depth] == 0)
			depth--;
		if (depth == 0 && left[0] == 0)
			return (long)off;
		if (off >= len)
			return -1;
		if (mp_head(p + off, len - off, &hdr, &body, &children) == -1)
			return -1;
		left[depth]--;
		if (hdr > len - off || body > len - off - hdr)
			return -1;
		off += hdr + body;
		/*
		 * A container one level too deep is refused even when empty:
		 * msgpack-c checks its stack before it looks at the count.
		 */
		if (is_container(p[off - hdr - body]) &&
		    (depth >= maxdepth || depth == MP_MAX_DEPTH))
			return -1;
		if (children == 0)
			continue;
		/* Each value takes at least one byte: refuse what cannot fit. */
		if (children > len - off)
			return -1;
		left[++depth] = children;
	}
}

int
frame_unpack_map(const char *buf, size_t len, msgpack_unpacked *u,
    const char **why)
{
	size_t	off = 0;
	long	span;

	span = mp_check(buf, len);
	if (span < 0) {
		*why = "not one valid msgpack value";
		return -1;
	}
	if ((size_t)span != len) {
		*why = "bytes left over after the msgpack value";
		return -1;
	}
	msgpack_unpacked_init(u);
	if (msgpack_unpack_next(u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		msgpack_unpacked_destroy(u);
		*why = "not one valid msgpack value";
		return -1;
	}
	if (u->data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(u);
		*why = "the frame does not hold a msgpack map";
		return -1;
	}
	return 0;
}
