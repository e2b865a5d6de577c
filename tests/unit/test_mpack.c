/*
 * common/mpack.c: a map built with mpmap has the bytes of the same map
 * packed with its size stated, at every header size, nested too.
 */
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "common/mpack.h"
#include "tests/unit/test.h"

/* n uint fields "k0".."k<n-1>", stated count vs counted. */
static int
same_bytes(uint32_t n)
{
	msgpack_sbuffer	 a;
	msgpack_packer	 pa;
	struct msgbuf	 b;
	struct mpmap	 m;
	char		 key[16];
	uint32_t	 i;
	int		 same;

	/* The same frame room in front of both, then something else. */
	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_write(&a, "\0\0\0\0", 4);
	msgbuf_init(&b);
	msgpack_packer_init(&pa, &a, msgpack_sbuffer_write);
	msgpack_pack_str(&pa, 3);
	msgpack_pack_str_body(&pa, "pre", 3);
	pk_str(&b.pk, "pre");
	msgpack_pack_map(&pa, n);
	mpmap_begin(&m, &b);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		pk_kv_uint(&pa, key, i);
		mpmap_uint(&m, key, i);
	}
	mpmap_end(&m);
	same = a.size == b.sbuf.size &&
	    memcmp(a.data, b.sbuf.data, a.size) == 0;
	msgpack_sbuffer_destroy(&a);
	msgbuf_free(&b);
	return same;
}

static void
test_counts(void)
{
	static const uint32_t	ns[] = { 0, 1, 15, 16, 17, 65535, 65536,
				    70000 };
	size_t			i;

	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		if (!same_bytes(ns[i]))
			fprintf(stderr, "%u fields differ\n", ns[i]);
		ASSERT(same_bytes(ns[i]));
	}
}

static void
test_nested(void)
{
	struct msgbuf		 mb;
	msgpack_unpacked	 u;
	struct mpmap		 outer, inner;
	const msgpack_object	*o;
	size_t			 off = 0;

	msgbuf_init(&mb);
	mpmap_begin(&outer, &mb);
	mpmap_str(&outer, "a", "x");
	mpmap_begin_in(&inner, &outer, "in");
	mpmap_bool(&inner, "t", 1);
	mpmap_str_opt(&inner, "skipped", NULL);
	mpmap_int(&inner, "neg", -5);
	mpmap_end(&inner);
	mpmap_str_opt(&outer, "b", "y");
	mpmap_nil(&outer, "z");
	mpmap_end(&outer);
	msgpack_unpacked_init(&u);
	off = 4;	/* the frame's room */
	ASSERT(msgpack_unpack_next(&u, mb.sbuf.data, mb.sbuf.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == mb.sbuf.size);
	ASSERT(u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 4);
	ASSERT(mp_streq(mp_get(&u.data, "a"), "x"));
	ASSERT(mp_streq(mp_get(&u.data, "b"), "y"));
	o = mp_get(&u.data, "in");
	ASSERT(o != NULL && o->type == MSGPACK_OBJECT_MAP &&
	    o->via.map.size == 2);
	ASSERT(mp_get(o, "t")->via.boolean);
	ASSERT(mp_get(o, "neg")->via.i64 == -5);
	ASSERT(mp_get(o, "skipped") == NULL);
	ASSERT(mp_get(&u.data, "z")->type == MSGPACK_OBJECT_NIL);
	msgpack_unpacked_destroy(&u);
	msgbuf_free(&mb);
}

int
main(void)
{
	RUN(test_counts);
	RUN(test_nested);
	return tests_failed != 0;
}
