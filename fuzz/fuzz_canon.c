/*
 * libFuzzer target for canon.c (and msgpack_to_json on the way): the input
 * is msgpack bytes.  Properties, each an abort() when broken:
 *
 *  - canon_json() either fails with a message and leaves the buffer as it
 *    was, or writes JSON that jansson reads back (unless it holds NaN or
 *    an infinity, which Python writes and JSON lacks);
 *  - args_hash() agrees with canon_json(top_level_args = 1);
 *  - round trip: canonical JSON -> json_to_msgpack() -> canon_json() gives
 *    the same bytes, when the value holds no floats (float32 and float64
 *    print differently), no unsigned integer above LLONG_MAX and no key
 *    with a NUL in it (jansson refuses those);
 *  - msgpack_to_json() renders any value as JSON jansson reads back.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/jsonmp.h"

#define HAS_FLOAT	0x01
#define HAS_NONFINITE	0x02
#define HAS_BIGUINT	0x04
#define HAS_NULKEY	0x08

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the value holds that limits the properties we can check. */
static int
scan(const msgpack_object *o)
{
	const msgpack_object_str *k;
	uint32_t	 i;
	int		 f = 0;

	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		f |= HAS_FLOAT;
		if (o->via.f64 != o->via.f64 || o->via.f64 - o->via.f64 != 0)
			f |= HAS_NONFINITE;
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			f |= HAS_BIGUINT;
		break;
	case MSGPACK_OBJECT_ARRAY:
		for (i = 0; i < o->via.array.size; i++)
			f |= scan(&o->via.array.ptr[i]);
		break;
	case MSGPACK_OBJECT_MAP:
		for (i = 0; i < o->via.map.size; i++) {
			k = &o->via.map.ptr[i].key.via.str;
			if (o->via.map.ptr[i].key.type == MSGPACK_OBJECT_STR &&
			    k->size > 0 &&
			    memchr(k->ptr, '\0', k->size) != NULL)
				f |= HAS_NULKEY;
			f |= scan(&o->via.map.ptr[i].key);
			f |= scan(&o->via.map.ptr[i].val);
		}
		break;
	default:
		break;
	}
	return f;
}

static void
check_parses(const char *s, size_t len)
{
	json_error_t	 e;
	json_t		*j;

	j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL, &e);
	if (j == NULL) {
		fprintf(stderr, "jansson refuses '%.*s': %s\n", (int)len, s,
		    e.text);
		abort();
	}
	json_decref(j);
}

/* Canonical JSON -> msgpack -> canonical JSON is the identity. */
static void
check_roundtrip(const struct canon_buf *b, int top)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	struct canon_buf	 b2;
	char			 err[256];
	size_t			 off = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_to_msgpack(b->data, b->len, &pk, err, sizeof(err)) == -1) {
		fprintf(stderr, "json_to_msgpack '%s': %s\n", b->data, err);
		abort();
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != sb.size)
		abort();
	memset(&b2, 0, sizeof(b2));
	if (canon_json(&u.data, top, &b2, err, sizeof(err)) == -1) {
		fprintf(stderr, "second canon of '%s': %s\n", b->data, err);
		abort();
	}
	if (b2.len != b->len || memcmp(b2.data, b->data, b->len) != 0) {
		fprintf(stderr, "round trip: '%s' != '%s'\n", b->data,
		    b2.data);
		abort();
	}
	canon_buf_free(&b2);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

static void
check_canon(const msgpack_object *o, int top, int flags)
{
	struct canon_buf	 b, hj;
	char			 err[256], hash[ARGS_HASH_LEN + 1];
	int			 r, hr;

	memset(&b, 0, sizeof(b));
	err[0] = '\0';
	r = canon_json(o, top, &b, err, sizeof(err));
	if (top) {
		hr = args_hash(o, hash, &hj, err, sizeof(err));
		if (hr != r)
			abort();
		if (hr == 0 && (hj.len != b.len ||
		    memcmp(hj.data, b.data, b.len) != 0 ||
		    strlen(hash) != ARGS_HASH_LEN))
			abort();
		canon_buf_free(&hj);
	}
	if (r == -1) {
		if (err[0] == '\0' || b.len != 0)
			abort();
		canon_buf_free(&b);
		return;
	}
	if (b.data == NULL || b.data[b.len] != '\0')
		abort();
	/*
	 * jansson refuses NaN, the infinities, integers above LLONG_MAX
	 * and a NUL in a key.
	 */
	if (!(flags & (HAS_NONFINITE | HAS_BIGUINT | HAS_NULKEY)))
		check_parses(b.data, b.len);
	if (!(flags & (HAS_FLOAT | HAS_BIGUINT | HAS_NULKEY)))
		check_roundtrip(&b, top);
	canon_buf_free(&b);
}

static void
check_render(const msgpack_object *o, int indent, int flags)
{
	char	*s;

	if ((s = msgpack_to_json(o, indent)) == NULL)
		abort();
	/* jansson writes a NUL in a key as \u0000 but will not read it. */
	if (!(flags & HAS_NULKEY))
		check_parses(s, strlen(s));
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked	 u;
	size_t			 off = 0;
	int			 flags;

	/*
	 * As in production (frame_unpack_map): mp_check() first, since
	 * msgpack-c allocates for a container's claimed element count
	 * before reading it, and a 6-byte map32 header would ask malloc
	 * for gigabytes.
	 */
	if (mp_check((const char *)data, size) < 0)
		return 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)data, size, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		flags = scan(&u.data);
		if (u.data.type == MSGPACK_OBJECT_MAP)
			check_canon(&u.data, 1, flags);
		check_canon(&u.data, 0, flags);
		check_render(&u.data, size > 0 ? data[size - 1] % 6 : 0,
		    flags);
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}
