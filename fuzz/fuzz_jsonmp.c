/*
 * libFuzzer target for jsonmp.c: the input is JSON text, as a tool might
 * print it.  Properties, each an abort() when broken:
 *
 *  - json_to_msgpack() accepts only what jansson accepts on its own;
 *  - what it packs unpacks whole (up to msgpack-c's 32 levels);
 *  - canon_json() accepts every value jansson accepted (jansson already
 *    refuses invalid UTF-8, duplicate keys and NUL in keys), objects also
 *    as args, and its output reads back as an equal JSON value;
 *  - msgpack_to_json() renders it back to an equal JSON value.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/canon.h"
#include "common/jsonmp.h"

/* msgpack-c's unpacker gives up on deeper nesting (EMBED_STACK_SIZE). */
#define UNPACK_MAX_DEPTH	32

#define LOAD_FLAGS	(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | \
			    JSON_ALLOW_NUL)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Containers around the deepest value: 0 for a scalar, 1 for []. */
static int
depth(json_t *j)
{
	const char	*k;
	json_t		*v;
	size_t		 i;
	int		 d, max = 0;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			if ((d = depth(v)) > max)
				max = d;
		return max + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if ((d = depth(v)) > max)
				max = d;
		return max + 1;
	}
	return 0;
}

/* 's' reads back as a JSON value equal to 'want'. */
static void
check_equal(const char *what, const char *s, size_t len, json_t *want)
{
	json_error_t	 e;
	json_t		*j;

	if ((j = json_loadb(s, len, LOAD_FLAGS, &e)) == NULL) {
		fprintf(stderr, "%s: jansson refuses '%.*s': %s\n", what,
		    (int)len, s, e.text);
		abort();
	}
	if (!json_equal(j, want)) {
		fprintf(stderr, "%s: '%.*s' differs\n", what, (int)len, s);
		abort();
	}
	json_decref(j);
}

static void
check_canon(const msgpack_object *o, json_t *want, int d)
{
	struct canon_buf	 b;
	char			 err[256];

	memset(&b, 0, sizeof(b));
	if (d > CANON_MAX_DEPTH)
		return;
	if (canon_json(o, 0, &b, err, sizeof(err)) == -1) {
		fprintf(stderr, "canon_json: %s\n", err);
		abort();
	}
	check_equal("canon_json", b.data, b.len, want);
	canon_buf_free(&b);
	if (o->type == MSGPACK_OBJECT_MAP &&
	    canon_json(o, 1, &b, err, sizeof(err)) == -1) {
		fprintf(stderr, "canon_json args: %s\n", err);
		abort();
	}
	canon_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	json_error_t		 e;
	json_t			*j;
	char			 err[256], *s;
	size_t			 off = 0;
	int			 r, d;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	r = json_to_msgpack((const char *)data, size, &pk, err, sizeof(err));
	j = json_loadb((const char *)data, size, LOAD_FLAGS, &e);
	if (r == -1) {
		if (err[0] == '\0')
			abort();
		goto done;
	}
	if (j == NULL)
		abort();
	d = depth(j);

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		if (off != sb.size)
			abort();
		check_canon(&u.data, j, d);
		if ((s = msgpack_to_json(&u.data, size % 5)) == NULL)
			abort();
		check_equal("msgpack_to_json", s, strlen(s), j);
		free(s);
	} else if (d <= UNPACK_MAX_DEPTH)
		abort();
	msgpack_unpacked_destroy(&u);
 done:
	json_decref(j);
	msgpack_sbuffer_destroy(&sb);
	return 0;
}
