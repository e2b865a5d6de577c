/*
 * Frames, as every toolgate socket speaks them: a 4-byte big-endian length
 * N, then N bytes holding exactly one msgpack value.  These functions only
 * look at bytes; the callers decide what a bad frame costs (an agent loses
 * its connection, the executor's peer is fatal).
 */
#ifndef TG_FRAME_H
#define TG_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define FRAME_HDR	4
/*
 * Containers nested deeper than this are refused before msgpack-c sees
 * them (its own parser stack holds 32 levels).
 */
#define MP_MAX_DEPTH	32
/*
 * What agents' args and tools' results may nest: the socketpair wraps
 * them in up to five more levels ([type, id, {response: {result: ...}}]),
 * and the wrapped message must still fit in MP_MAX_DEPTH.
 */
#define VALUE_MAX_DEPTH	24

struct evbuffer;

enum frame_state {
	FRAME_MORE,		/* not all of it has arrived yet */
	FRAME_READY,		/* *len bytes follow the header */
	FRAME_EMPTY,		/* length 0: a bad frame */
	FRAME_TOO_LARGE,	/* over the limit */
};

enum frame_state frame_peek(struct evbuffer *in, uint32_t max, uint32_t *len);
/* The same on n bytes at p, the header first. */
enum frame_state frame_peek_buf(const char *p, size_t n, uint32_t max,
	    uint32_t *len);

/* Write the header for a body of 'len' bytes. */
void	frame_put_len(unsigned char hdr[FRAME_HDR], uint32_t len);

/*
 * Walk one msgpack value in buf without allocating: every length must fit
 * in what is left, every container count must be possible in the bytes
 * left, nesting at most MP_MAX_DEPTH.  Returns the bytes it spans, or -1.
 * This runs before msgpack-c, whose parser would otherwise allocate for a
 * claimed 4-billion-element array in a 10-byte frame.
 */
long	mp_check(const char *buf, size_t len);
/* The same with another depth limit (at most MP_MAX_DEPTH). */
long	mp_check_depth(const char *buf, size_t len, int maxdepth);

/*
 * Decode a frame body that must hold exactly one msgpack map.  Returns 0
 * and fills 'u' (the caller calls msgpack_unpacked_destroy), or -1 with a
 * static reason in *why.
 */
int	frame_unpack_map(const char *buf, size_t len, msgpack_unpacked *u,
	    const char **why);

#endif
