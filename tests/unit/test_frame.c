/*
 * Frames and the msgpack walker in common/frame.c: frame_peek() on every
 * cut of a header and a body, mp_check() on every msgpack type, every
 * truncation of a nested value, impossible counts and the nesting limit,
 * and that whatever mp_check() accepts msgpack-c accepts with the same
 * length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <msgpack.h>

#include "common/frame.h"
#include "tests/unit/test.h"

#define NRANDOM		20000

/* "cd0001" -> bytes; returns the length. */
static size_t
unhex(const char *hex, unsigned char *out, size_t outlen)
{
	size_t		 n = 0;
	unsigned int	 b;

	while (hex[0] != '\0' && hex[1] != '\0' && n < outlen) {
		if (sscanf(hex, "%2x", &b) != 1)
			break;
		out[n++] = (unsigned char)b;
		hex += 2;
	}
	return n;
}

/*
 * msgpack-c reads exactly 'want' bytes of buf as one value (want >= 0),
 * or fails (want == -1 is not checked: msgpack-c is laxer on depth).
 */
static int
msgpack_agrees(const unsigned char *buf, size_t len, long want)
{
	msgpack_unpacked	 u;
	msgpack_unpack_return	 r;
	size_t			 off = 0;

	if (want < 0)
		return 1;
	msgpack_unpacked_init(&u);
	r = msgpack_unpack_next(&u, (const char *)buf, len, &off);
	msgpack_unpacked_destroy(&u);
	if (r != MSGPACK_UNPACK_SUCCESS || off != (size_t)want) {
		fprintf(stderr, "mp_check says %ld bytes, msgpack-c %d with "
		    "%zu bytes\n", want, (int)r, off);
		return 0;
	}
	return 1;
}

/* Does msgpack-c read exactly 'want' bytes?  Without a message. */
static int
msgpack_agrees_quiet(const unsigned char *buf, size_t len, long want)
{
	msgpack_unpacked	 u;
	msgpack_unpack_return	 r;
	size_t			 off = 0;

	msgpack_unpacked_init(&u);
	r = msgpack_unpack_next(&u, (const char *)buf, len, &off);
	msgpack_unpacked_destroy(&u);
	return r == MSGPACK_UNPACK_SUCCESS && off == (size_t)want;
}

/* frame_peek */

static void
test_peek_header(void)
{
	struct evbuffer	*in = evbuffer_new();
	unsigned char	 hdr[FRAME_HDR] = { 0, 0, 0, 10 };
	uint32_t	 len = 12345;
	int		 i;

	ASSERT(in != NULL);
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_MORE);
	ASSERT(len == 12345);		/* untouched without a header */
	for (i = 0; i < FRAME_HDR - 1; i++) {
		evbuffer_add(in, &hdr[i], 1);
		ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_MORE);
	}
	evbuffer_free(in);
}

static void
test_peek_body(void)
{
	struct evbuffer	*in = evbuffer_new();
	unsigned char	 hdr[FRAME_HDR];
	uint32_t	 len;
	int		 i;

	frame_put_len(hdr, 10);
	evbuffer_add(in, hdr, sizeof(hdr));
	for (i = 0; i < 10; i++) {
		len = 0;
		ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_MORE);
		ASSERT_EQ_INT(len, 10);
		evbuffer_add(in, "x", 1);
	}
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 10);
	/* Peeking consumes nothing. */
	ASSERT_EQ_INT(evbuffer_get_length(in), FRAME_HDR + 10);
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_READY);
	/* Bytes beyond the frame do not change the answer. */
	evbuffer_add(in, "yyyy", 4);
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 10);
	evbuffer_free(in);
}

static void
test_peek_empty(void)
{
	struct evbuffer	*in = evbuffer_new();
	unsigned char	 hdr[FRAME_HDR];
	uint32_t	 len = 99;

	frame_put_len(hdr, 0);
	evbuffer_add(in, hdr, sizeof(hdr));
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_EMPTY);
	ASSERT_EQ_INT(len, 0);
	/* Even with a max of 0 an empty frame is empty, not too large. */
	ASSERT_EQ_INT(frame_peek(in, 0, &len), FRAME_EMPTY);
	evbuffer_free(in);
}

static void
test_peek_max(void)
{
	struct evbuffer	*in = evbuffer_new();
	unsigned char	 hdr[FRAME_HDR], body[64];
	uint32_t	 len;

	memset(body, 'b', sizeof(body));
	/* Exactly max: waits for the body, then is ready. */
	frame_put_len(hdr, 64);
	evbuffer_add(in, hdr, sizeof(hdr));
	ASSERT_EQ_INT(frame_peek(in, 64, &len), FRAME_MORE);
	ASSERT_EQ_INT(len, 64);
	evbuffer_add(in, body, sizeof(body));
	ASSERT_EQ_INT(frame_peek(in, 64, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 64);
	/* The same frame against a max one smaller. */
	ASSERT_EQ_INT(frame_peek(in, 63, &len), FRAME_TOO_LARGE);
	ASSERT_EQ_INT(len, 64);
	evbuffer_free(in);

	/* max + 1: refused from the header alone, before any body. */
	in = evbuffer_new();
	frame_put_len(hdr, 65);
	evbuffer_add(in, hdr, sizeof(hdr));
	ASSERT_EQ_INT(frame_peek(in, 64, &len), FRAME_TOO_LARGE);
	ASSERT_EQ_INT(len, 65);
	evbuffer_free(in);

	/* The largest header there is. */
	in = evbuffer_new();
	frame_put_len(hdr, UINT32_MAX);
	evbuffer_add(in, hdr, sizeof(hdr));
	ASSERT_EQ_INT(frame_peek(in, UINT32_MAX - 1, &len), FRAME_TOO_LARGE);
	ASSERT_EQ_INT(len, UINT32_MAX);
	ASSERT_EQ_INT(frame_peek(in, UINT32_MAX, &len), FRAME_MORE);
	evbuffer_free(in);
}

static void
test_peek_two_frames(void)
{
	struct evbuffer	*in = evbuffer_new();
	unsigned char	 hdr[FRAME_HDR], body[8];
	uint32_t	 len;

	frame_put_len(hdr, 3);
	evbuffer_add(in, hdr, sizeof(hdr));
	evbuffer_add(in, "abc", 3);
	frame_put_len(hdr, 5);
	evbuffer_add(in, hdr, sizeof(hdr));
	evbuffer_add(in, "defgh", 5);

	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 3);
	evbuffer_drain(in, FRAME_HDR);
	ASSERT_EQ_INT(evbuffer_remove(in, body, len), 3);
	ASSERT_EQ_MEM(body, "abc", 3);

	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_READY);
	ASSERT_EQ_INT(len, 5);
	evbuffer_drain(in, FRAME_HDR);
	ASSERT_EQ_INT(evbuffer_remove(in, body, len), 5);
	ASSERT_EQ_MEM(body, "defgh", 5);

	ASSERT_EQ_INT(evbuffer_get_length(in), 0);
	ASSERT_EQ_INT(frame_peek(in, 100, &len), FRAME_MORE);
	evbuffer_free(in);
}

static void
test_put_len(void)
{
	static const uint32_t	 lens[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100,
	    0xffff, 0x10000, 0x01020304, 0x7fffffff, 0x80000000,
	    UINT32_MAX };
	unsigned char		 hdr[FRAME_HDR];
	struct evbuffer		*in;
	uint32_t		 len;
	size_t			 i;

	frame_put_len(hdr, 0x01020304);
	ASSERT_EQ_INT(hdr[0], 1);
	ASSERT_EQ_INT(hdr[1], 2);
	ASSERT_EQ_INT(hdr[2], 3);
	ASSERT_EQ_INT(hdr[3], 4);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		in = evbuffer_new();
		frame_put_len(hdr, lens[i]);
		ASSERT_EQ_INT(hdr[0], (lens[i] >> 24 & 0xff));
		ASSERT_EQ_INT(hdr[3], (lens[i] & 0xff));
		evbuffer_add(in, hdr, sizeof(hdr));
		len = 0xdeadbeef;
		(void)frame_peek(in, UINT32_MAX, &len);
		evbuffer_free(in);
		ASSERT_EQ_INT(len, lens[i]);
	}
}

/* mp_check: one value of every type */

struct mpcase {
	const char	*hex;
	long		 span;
};

static const struct mpcase types[] = {
	{ "00", 1 },				/* positive fixint */
	{ "7f", 1 },
	{ "e0", 1 },				/* negative fixint */
	{ "ff", 1 },
	{ "cc01", 2 },				/* uint8 */
	{ "cd0102", 3 },			/* uint16 */
	{ "ce01020304", 5 },			/* uint32 */
	{ "cf0102030405060708", 9 },		/* uint64 */
	{ "d0ff", 2 },				/* int8 */
	{ "d1ff00", 3 },			/* int16 */
	{ "d2ff000000", 5 },			/* int32 */
	{ "d3ff00000000000000", 9 },		/* int64 */
	{ "ca3fc00000", 5 },			/* float32 */
	{ "cb3ff8000000000000", 9 },		/* float64 */
	{ "c0", 1 },				/* nil */
	{ "c2", 1 },				/* false */
	{ "c3", 1 },				/* true */
	{ "a0", 1 },				/* fixstr */
	{ "a3616263", 4 },
	{ "bf" "41414141414141414141414141414141414141414141414141414141414141",
	    32 },
	{ "d900", 2 },				/* str8 */
	{ "d903616263", 5 },
	{ "da0003616263", 6 },			/* str16 */
	{ "db00000003616263", 8 },		/* str32 */
	{ "c400", 2 },				/* bin8 */
	{ "c4020102", 4 },
	{ "c500020102", 5 },			/* bin16 */
	{ "c6000000020102", 7 },		/* bin32 */
	{ "d40101", 3 },			/* fixext1 */
	{ "d5010102", 4 },			/* fixext2 */
	{ "d60101020304", 6 },			/* fixext4 */
	{ "d7010102030405060708", 10 },		/* fixext8 */
	{ "d801" "0102030405060708090a0b0c0d0e0f10", 18 },	/* fixext16 */
	{ "c70001", 3 },			/* ext8, empty */
	{ "c702010102", 5 },			/* ext8 */
	{ "c80002010102", 6 },			/* ext16 */
	{ "c900000002010102", 8 },		/* ext32 */
	{ "90", 1 },				/* fixarray */
	{ "920102", 3 },
	{ "dc0000", 3 },			/* array16 */
	{ "dc00020102", 5 },
	{ "dd00000000", 5 },			/* array32 */
	{ "dd000000020102", 7 },
	{ "80", 1 },				/* fixmap */
	{ "810102", 3 },
	{ "de0000", 3 },			/* map16 */
	{ "de00010102", 5 },
	{ "df00000000", 5 },			/* map32 */
	{ "df000000010102", 7 },
};

static void
test_types(void)
{
	unsigned char	buf[64];
	size_t		i, n, cut;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		n = unhex(types[i].hex, buf, sizeof(buf));
		if (n != (size_t)types[i].span)
			fprintf(stderr, "case %s: %zu bytes\n", types[i].hex, n);
		ASSERT_EQ_INT(n, (size_t)types[i].span);
		if (mp_check((char *)buf, n) != types[i].span)
			fprintf(stderr, "case %s\n", types[i].hex);
		ASSERT_EQ_INT(mp_check((char *)buf, n), types[i].span);
		ASSERT(msgpack_agrees(buf, n, types[i].span));
		/* What follows the value is not part of it. */
		buf[n] = 0xc0;
		ASSERT_EQ_INT(mp_check((char *)buf, n + 1), types[i].span);
		ASSERT(msgpack_agrees(buf, n + 1, types[i].span));
		/* Every cut is refused. */
		for (cut = 0; cut < n; cut++) {
			if (mp_check((char *)buf, cut) != -1)
				fprintf(stderr, "case %s cut %zu\n",
				    types[i].hex, cut);
			ASSERT_EQ_INT(mp_check((char *)buf, cut), -1);
		}
	}
}

/* Every single byte on its own: only complete one-byte values pass. */
static void
test_single_bytes(void)
{
	unsigned char	b;
	int		c, whole;

	for (c = 0; c < 256; c++) {
		b = (unsigned char)c;
		whole = c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 ||
		    c == 0xc3 || c == 0xa0 || c == 0x90 || c == 0x80;
		if (mp_check((char *)&b, 1) != (whole ? 1 : -1))
			fprintf(stderr, "byte %02x\n", c);
		ASSERT_EQ_INT(mp_check((char *)&b, 1), (whole ? 1 : -1));
		ASSERT(msgpack_agrees(&b, 1, whole ? 1 : -1));
	}
}

static void
test_c1(void)
{
	static const char *const bad[] = {
		"c1", "c100", "c1c0", "91c1", "81c101", "8101c1", "9201c1",
		"dc0001c1", "82a161c1a162c0",
	};
	unsigned char	buf[32];
	size_t		i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = unhex(bad[i], buf, sizeof(buf));
		if (mp_check((char *)buf, n) != -1)
			fprintf(stderr, "case %s\n", bad[i]);
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
	}
}

/* Lengths and counts that the bytes left cannot hold. */
static void
test_impossible_counts(void)
{
	static const char *const bad[] = {
		"ddffffffff00000000000000",	/* array32 of 2^32-1 */
		"dfffffffff00000000000000",	/* map32 of 2^32-1 */
		"dcffff0000",			/* array16 of 65535 */
		"deffff0000",			/* map16 of 65535 */
		"dbffffffff61",			/* str32 of 2^32-1 */
		"c6ffffffff61",			/* bin32 */
		"c9ffffffff0161",		/* ext32 */
		"daffff61",			/* str16 */
		"c5ffff61",			/* bin16 */
		"c8ffff0161",			/* ext16 */
		"d9ff61",			/* str8 */
		"c4ff61",			/* bin8 */
		"c7ff0161",			/* ext8 */
		"c7020161",			/* ext8 of 2, one there */
		"9301",				/* fixarray of 3, one there */
		"9f0000000000000000000000000000", /* 15 owed, 14 there */
		"820101",			/* fixmap of 2: 4 values owed */
		"dd000000030101",		/* array32 of 3, 2 there */
	};
	unsigned char	buf[64];
	size_t		i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = unhex(bad[i], buf, sizeof(buf));
		if (mp_check((char *)buf, n) != -1)
			fprintf(stderr, "case %s\n", bad[i]);
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
	}
	/* As many one-byte values as the count says: fine. */
	n = unhex("dc0003010203", buf, sizeof(buf));
	ASSERT_EQ_INT(mp_check((char *)buf, n), 6);
	n = unhex("9f000000000000000000000000000000", buf, sizeof(buf));
	ASSERT_EQ_INT(n, 16);
	ASSERT_EQ_INT(mp_check((char *)buf, n), 16);
}

/* A nested value using every kind of container and scalar. */
static void
pack_nested(msgpack_sbuffer *sb)
{
	msgpack_packer	pk;
	unsigned char	bin[300];
	char		str[70000];

	memset(bin, 0xab, sizeof(bin));
	memset(str, 's', sizeof(str));
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "ints", 4);
	msgpack_pack_array(&pk, 9);
	msgpack_pack_int64(&pk, -1);
	msgpack_pack_int64(&pk, -200);
	msgpack_pack_int64(&pk, -40000);
	msgpack_pack_int64(&pk, -3000000000LL);
	msgpack_pack_uint64(&pk, 7);
	msgpack_pack_uint64(&pk, 200);
	msgpack_pack_uint64(&pk, 40000);
	msgpack_pack_uint64(&pk, 3000000000ULL);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_str_with_body(&pk, "misc", 4);
	msgpack_pack_array(&pk, 7);
	msgpack_pack_float(&pk, 1.5f);
	msgpack_pack_double(&pk, 2.25);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_bin_with_body(&pk, bin, sizeof(bin));
	msgpack_pack_ext_with_body(&pk, bin, 4, 7);
	msgpack_pack_str_with_body(&pk, "strs", 4);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, str, 40);
	msgpack_pack_str_with_body(&pk, str, 300);
	msgpack_pack_str_with_body(&pk, str, sizeof(str));
	msgpack_pack_str_with_body(&pk, "deep", 4);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_str_with_body(&pk, "big", 3);
	msgpack_pack_array(&pk, 20);
	for (int i = 0; i < 20; i++)
		msgpack_pack_map(&pk, 0);
}

static void
test_truncations(void)
{
	msgpack_sbuffer	sb;
	size_t		cut;
	long		r;

	pack_nested(&sb);
	r = mp_check(sb.data, sb.size);
	ASSERT_EQ_INT(r, (long)sb.size);
	ASSERT(msgpack_agrees((unsigned char *)sb.data, sb.size, r));
	for (cut = 0; cut < sb.size; cut++) {
		if (mp_check(sb.data, cut) != -1) {
			fprintf(stderr, "cut %zu of %zu\n", cut, sb.size);
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

/*
 * 'levels' containers (fixarray of 1, or fixmap of 1 with the value
 * nested) around 'inner'.
 */
static size_t
nest(unsigned char *buf, int levels, int maps, unsigned char inner)
{
	size_t	n = 0;
	int	i;

	for (i = 0; i < levels; i++) {
		if (maps) {
			buf[n++] = 0x81;
			buf[n++] = 0x01;	/* the key */
		} else
			buf[n++] = 0x91;
	}
	buf[n++] = inner;
	return n;
}

static void
test_depth(void)
{
	unsigned char	buf[256];
	size_t		n, m;
	int		maps;

	for (maps = 0; maps <= 1; maps++) {
		n = nest(buf, MP_MAX_DEPTH, maps, 0x01);
		ASSERT_EQ_INT(mp_check((char *)buf, n), (long)n);
		ASSERT(msgpack_agrees(buf, n, (long)n));
		n = nest(buf, MP_MAX_DEPTH + 1, maps, 0x01);
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
		n = nest(buf, MP_MAX_DEPTH + 10, maps, 0x01);
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
		/* An empty container at the bottom of 31: level 32, fine. */
		n = nest(buf, MP_MAX_DEPTH - 1, maps, 0x90);
		ASSERT_EQ_INT(mp_check((char *)buf, n), (long)n);
		ASSERT(msgpack_agrees(buf, n, (long)n));
		n = nest(buf, MP_MAX_DEPTH - 1, maps, 0x80);
		ASSERT_EQ_INT(mp_check((char *)buf, n), (long)n);
		ASSERT(msgpack_agrees(buf, n, (long)n));
		/*
		 * An empty container below 32 levels is level 33.  msgpack-c
		 * checks its stack before it looks at the count, so it
		 * refuses even an empty one there; mp_check() must too, or
		 * it accepts what msgpack-c then fails on.
		 */
		n = nest(buf, MP_MAX_DEPTH, maps, 0x90);
		ASSERT(!msgpack_agrees_quiet(buf, n, (long)n));
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
		n = nest(buf, MP_MAX_DEPTH, maps, 0x80);
		ASSERT(!msgpack_agrees_quiet(buf, n, (long)n));
		ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
	}
	/* Depth goes back down: two 32-deep branches side by side. */
	buf[0] = 0x92;
	n = 1 + nest(buf + 1, MP_MAX_DEPTH - 1, 0, 0x01);
	m = nest(buf + n, MP_MAX_DEPTH - 1, 0, 0x02);
	n += m;
	ASSERT_EQ_INT(mp_check((char *)buf, n), (long)n);
	ASSERT(msgpack_agrees(buf, n, (long)n));
	/* ... and the second branch one deeper is refused. */
	buf[0] = 0x92;
	n = 1 + nest(buf + 1, MP_MAX_DEPTH - 1, 0, 0x01);
	n += nest(buf + n, MP_MAX_DEPTH, 0, 0x02);
	ASSERT_EQ_INT(mp_check((char *)buf, n), -1);
}

/* A small deterministic generator of msgpack values and noise. */

static uint64_t	rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static void
gen_value(msgpack_packer *pk, int depth, int maxdepth)
{
	char		 s[300];
	uint32_t	 i, n;

	memset(s, 'z', sizeof(s));
	switch (rnd() % (depth < maxdepth ? 14 : 11)) {
	case 0:
		msgpack_pack_uint64(pk, (uint64_t)rnd() << (rnd() % 33));
		break;
	case 1:
		msgpack_pack_int64(pk, -(int64_t)(rnd() >> (rnd() % 32)) - 1);
		break;
	case 2:
		msgpack_pack_double(pk, rnd() / 3.0);
		break;
	case 3:
		msgpack_pack_float(pk, (float)rnd());
		break;
	case 4:
		msgpack_pack_nil(pk);
		break;
	case 5:
		if (rnd() & 1)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case 6:
		msgpack_pack_str_with_body(pk, s, rnd() % sizeof(s));
		break;
	case 7:
		msgpack_pack_bin_with_body(pk, s, rnd() % sizeof(s));
		break;
	case 8:
		n = rnd() % 20;
		msgpack_pack_ext_with_body(pk, s, n, (int8_t)(rnd() % 128));
		break;
	case 9:
		msgpack_pack_array(pk, 0);
		break;
	case 10:
		msgpack_pack_map(pk, 0);
		break;
	case 11:
	case 12:
		n = rnd() % (rnd() % 8 == 0 ? 20 : 4);
		msgpack_pack_array(pk, n);
		for (i = 0; i < n; i++)
			gen_value(pk, depth + 1, maxdepth);
		break;
	default:
		n = rnd() % 4;
		msgpack_pack_map(pk, n);
		for (i = 0; i < 2 * n; i++)
			gen_value(pk, depth + 1, maxdepth);
		break;
	}
}

/*
 * Whatever mp_check() accepts, msgpack-c accepts with the same length:
 * generated values (at most 32 deep: mp_check must accept them whole),
 * then the same values mutated and cut.
 */
static void
test_agrees_with_msgpack(void)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	unsigned char	*buf;
	size_t		 len, j;
	long		 r;
	int		 i, accepted = 0, refused = 0;

	for (i = 0; i < NRANDOM; i++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		/* Most shallow, some right at the limit. */
		gen_value(&pk, 0, i % 10 == 0 ? MP_MAX_DEPTH - 1 : 6);
		buf = (unsigned char *)sb.data;
		len = sb.size;
		r = mp_check((char *)buf, len);
		if (r != (long)len) {
			fprintf(stderr, "value %d: %ld of %zu\n", i, r, len);
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
		if (!msgpack_agrees(buf, len, r)) {
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
		/* Flip a few bytes, maybe cut it, maybe add a tail. */
		for (j = 0; j < 1 + rnd() % 3; j++)
			buf[rnd() % len] = (unsigned char)rnd();
		if (rnd() % 4 == 0)
			len = rnd() % len;
		r = mp_check((char *)buf, len);
		if (r >= 0)
			accepted++;
		else
			refused++;
		if (!msgpack_agrees(buf, len, r)) {
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
		msgpack_sbuffer_destroy(&sb);
	}
	/* Pure noise as well. */
	for (i = 0; i < NRANDOM; i++) {
		unsigned char	noise[64];

		len = rnd() % sizeof(noise);
		for (j = 0; j < len; j++)
			noise[j] = (unsigned char)rnd();
		r = mp_check((char *)noise, len);
		ASSERT(r <= (long)len);
		ASSERT(msgpack_agrees(noise, len, r));
	}
	/* The mutations exercised both answers. */
	ASSERT(accepted > 100 && refused > 100);
}

/* frame_unpack_map */

static int
unpack_hex(const char *hex, const char **why)
{
	msgpack_unpacked	u;
	unsigned char		buf[64];
	size_t			n;

	n = unhex(hex, buf, sizeof(buf));
	*why = NULL;
	if (frame_unpack_map((char *)buf, n, &u, why) == -1)
		return -1;
	if (u.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&u);
		return -2;
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}

static void
test_unpack_map(void)
{
	static const char *const bad[] = {
		"",			/* nothing */
		"90",			/* array */
		"920102",
		"01",			/* int */
		"c0",			/* nil */
		"a3616263",		/* str */
		"c3",			/* bool */
		"8001",			/* trailing byte */
		"81a161018001",		/* two maps */
		"81a161",		/* truncated */
		"81",
		"82a16101a162",
		"81a161c1",		/* 0xc1 inside */
	};
	const char	*why;
	size_t		 i, n, cut;
	msgpack_sbuffer	 sb;
	msgpack_unpacked u;

	ASSERT_EQ_INT(unpack_hex("80", &why), 0);
	ASSERT_EQ_INT(unpack_hex("81a16101", &why), 0);
	ASSERT_EQ_INT(unpack_hex("82a16101a16292c0c3", &why), 0);
	ASSERT_EQ_INT(unpack_hex("de0001a16101", &why), 0);
	ASSERT_EQ_INT(unpack_hex("df00000001a16101", &why), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = (size_t)unpack_hex(bad[i], &why);
		if (n != (size_t)-1)
			fprintf(stderr, "case '%s'\n", bad[i]);
		ASSERT_EQ_INT(n, (size_t)-1);
		ASSERT(why != NULL && why[0] != '\0');
	}
	/* The nested map: whole it decodes, every cut is refused. */
	pack_nested(&sb);
	if (frame_unpack_map(sb.data, sb.size, &u, &why) == -1) {
		msgpack_sbuffer_destroy(&sb);
		ASSERT(0);
	}
	i = u.data.via.map.size;
	msgpack_unpacked_destroy(&u);
	ASSERT_EQ_INT(i, 5);
	for (cut = 0; cut < sb.size; cut += cut < 400 ? 1 : 997) {
		if (frame_unpack_map(sb.data, cut, &u, &why) != -1) {
			msgpack_unpacked_destroy(&u);
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
	}
	msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
	RUN(test_peek_header);
	RUN(test_peek_body);
	RUN(test_peek_empty);
	RUN(test_peek_max);
	RUN(test_peek_two_frames);
	RUN(test_put_len);
	RUN(test_types);
	RUN(test_single_bytes);
	RUN(test_c1);
	RUN(test_impossible_counts);
	RUN(test_truncations);
	RUN(test_depth);
	RUN(test_agrees_with_msgpack);
	RUN(test_unpack_map);
	return tests_failed != 0;
}
