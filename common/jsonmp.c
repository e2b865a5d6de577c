/*
 * JSON text to msgpack (a tool's stdout becomes the result) and msgpack to
 * JSON text (gatewayctl --json).  jansson does the parsing and printing;
 * this file only walks one tree to build the other.
 *
 * JSON to msgpack is strict: exactly one value, no duplicate keys, UTF-8
 * only, integers within long long (jansson refuses bigger ones with "too
 * big integer" instead of rounding them, and so do we: a tool that prints
 * 2^64 gets an error, not a silently different number).
 *
 * msgpack to JSON is for people reading output, so it never refuses a
 * value that can be shown somehow: see msgpack_to_json() for the
 * conversions.
 */

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/canon.h"
#include "common/jsonmp.h"
#include "common/xmalloc.h"

/* jansson's parser stops at 2048 levels; we print no deeper than that. */
#define TOJSON_MAX_DEPTH	2048

/* A map key that is not a string is shown as at most this much JSON. */
#define KEY_TEXT_MAX		256	/* "..." included */

static int	pack_value(json_t *, msgpack_packer *, int);
static int	pack_object(json_t *, msgpack_packer *, int);
static int	pack_array(json_t *, msgpack_packer *, int);
static json_t	*mkstring(const char *, size_t);
static json_t	*mkhex(const char *, size_t);
static char	*key_text(const msgpack_object *, int, size_t *);
static json_t	*to_json_map(const msgpack_object_map *, int);
static json_t	*to_json_array(const msgpack_object_array *, int);
static json_t	*to_json(const msgpack_object *, int);

/*
 * Packing fails when the packer's write callback does (an sbuffer out of
 * memory), -1, or past jansson's parser depth (a tree built in memory, not
 * parsed: what its text would be refused for), -2, or for a NUL in a key
 * (jansson loads none), -3.  The msgpack_pack_*
 * results are or'ed together and checked once per value.  'depth' counts
 * values as jansson's parser does, scalars included.
 */
static int
pack_object(json_t *j, msgpack_packer *pk, int depth)
{
	const char	*key;
	size_t		 klen;
	json_t		*v;
	int		 r, rv;

	r = msgpack_pack_map(pk, json_object_size(j));
	json_object_keylen_foreach(j, key, klen, v) {
		/* Its text, "\u0000" in a key, would not load again. */
		if (memchr(key, '\0', klen) != NULL)
			return -3;
		r |= msgpack_pack_str(pk, klen);
		r |= msgpack_pack_str_body(pk, key, klen);
		if ((rv = pack_value(v, pk, depth)) != 0)
			return rv;
	}
	return r ? -1 : 0;
}

static int
pack_array(json_t *j, msgpack_packer *pk, int depth)
{
	size_t	 i;
	json_t	*v;
	int	 r, rv;

	r = msgpack_pack_array(pk, json_array_size(j));
	json_array_foreach(j, i, v)
		if ((rv = pack_value(v, pk, depth)) != 0)
			return rv;
	return r ? -1 : 0;
}

static int
pack_value(json_t *j, msgpack_packer *pk, int depth)
{
	int	 r;

	if (++depth > JSON_PARSER_MAX_DEPTH)
		return -2;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return pack_object(j, pk, depth);
	case JSON_ARRAY:
		return pack_array(j, pk, depth);
	case JSON_STRING:
		r = msgpack_pack_str(pk, json_string_length(j));
		r |= msgpack_pack_str_body(pk, json_string_value(j),
		    json_string_length(j));
		break;
	case JSON_INTEGER:
		/* msgpack picks the smallest encoding for the value. */
		r = msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		r = msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		r = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		r = msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		r = msgpack_pack_nil(pk);
		break;
	default:
		r = -1;
		break;
	}
	return r ? -1 : 0;
}

int
json_to_msgpack(const char *text, size_t len, msgpack_packer *pk, char *err,
    size_t errlen)
{
	json_error_t	 e;
	json_t		*j;
	int		 rv;

	/*
	 * JSON text never holds a raw NUL (strings escape it), and jansson
	 * 2.14 quietly skips one that directly follows a number: "[1\0]"
	 * loads as [1].  Refuse them all before jansson sees the text.
	 */
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "invalid JSON: NUL byte in text");
		return -1;
	}
	/*
	 * Without JSON_DISABLE_EOF_CHECK json_loadb() wants nothing but
	 * white space after the value, so "1 2" and "{} x" fail here.
	 * JSON_ALLOW_NUL lets "\u0000" into strings (msgpack str carries
	 * it); jansson still refuses it in keys.
	 */
	j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
	    JSON_ALLOW_NUL, &e);
	if (j == NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "invalid JSON at line %d "
			    "column %d: %s", e.line, e.column, e.text);
		return -1;
	}
	rv = pack_value(j, pk, 0);
	json_decref(j);
	if (rv != 0 && errlen > 0)
		snprintf(err, errlen, "cannot pack JSON as msgpack");
	return rv != 0 ? -1 : 0;
}

/*
 * The text route (json_dumps() then json_to_msgpack()) without the text:
 * a compact dump reloads as the same tree (jansson prints a real with 17
 * digits, which reads back as the same double; keys are unique and in
 * order), so the tree is packed as it is.  Only the parser's depth limit
 * and its refusal of NUL in keys are left to apply.
 */
int
json_value_to_msgpack(json_t *j, msgpack_packer *pk, char *err,
    size_t errlen)
{
	int	rv;

	if ((rv = pack_value(j, pk, 0)) != 0 && errlen > 0)
		snprintf(err, errlen, "%s", rv == -2 ? "invalid JSON: maximum"
		    " parsing depth reached" : rv == -3 ? "invalid JSON: NUL"
		    " byte in object key not supported" :
		    "cannot pack JSON as msgpack");
	return rv != 0 ? -1 : 0;
}

/*
 * Bounds per value of the compact text: a string byte is at most a
 * 6-byte escape (\u001f), a long long 20 characters, a real printed with
 * %.17g at most 24 plus jansson's ".0".
 */
#define BOUND_INT	20
#define BOUND_REAL	26
#define BOUND_WORD	5	/* false */

size_t
json_compact_bound(json_t *j)
{
	const char	*key;
	size_t		 klen, i, n;
	json_t		*v;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		n = 2;
		json_object_keylen_foreach(j, key, klen, v)
			n += 2 + 6 * klen + 2 + json_compact_bound(v);
		return n;
	case JSON_ARRAY:
		n = 2;
		json_array_foreach(j, i, v)
			n += 1 + json_compact_bound(v);
		return n;
	case JSON_STRING:
		return 2 + 6 * json_string_length(j);
	case JSON_INTEGER:
		return BOUND_INT;
	case JSON_REAL:
		return BOUND_REAL;
	default:
		return BOUND_WORD;
	}
}

/*
 * A JSON string from msgpack str bytes.  jansson refuses invalid UTF-8;
 * rather than hide the whole value from the person looking at it, each
 * bad byte becomes U+FFFD, as a terminal would show it.
 */
static json_t *
mkstring(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*fixed;
	size_t			 i, l, o = 0;
	json_t			*j;

	if (n == 0)			/* msgpack-c may give NULL here */
		return json_string("");
	if ((j = json_stringn(s, n)) != NULL)
		return j;
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	fixed = xmalloc(3 * n + 1);
	for (i = 0; i < n; i += l) {
		if ((l = utf8_seqlen(p + i, n - i)) == 0) {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			l = 1;
		} else {
			memcpy(fixed + o, s + i, l);
			o += l;
		}
	}
	j = json_stringn(fixed, o);
	free(fixed);
	return j;
}

static json_t *
mkhex(const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	char			*h;
	size_t			 i;
	json_t			*j;

	if (n > SIZE_MAX / 2 - 1)
		return NULL;
	h = xmalloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		h[2 * i] = hex[p[i] >> 4];
		h[2 * i + 1] = hex[p[i] & 0xf];
	}
	j = json_stringn(h, 2 * n);
	free(h);
	return j;
}

/*
 * A JSON object key for a msgpack map key (malloc'ed, length in *len):
 * a str is itself, bin and ext are hex, anything else is its compact
 * JSON text (1 -> "1", nil -> "null", [1,2] -> "[1,2]"), cut after
 * KEY_TEXT_MAX bytes with "...".  Keys that end up equal overwrite each
 * other, the last one shown.
 */
static char *
key_text(const msgpack_object *k, int depth, size_t *len)
{
	json_t	*j;
	char	*s;

	/* str, bin and ext: the text of the JSON string to_json() makes. */
	if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN ||
	    k->type == MSGPACK_OBJECT_EXT) {
		if ((j = to_json(k, depth)) == NULL)
			return NULL;
		*len = json_string_length(j);
		s = xmalloc(*len + 1);
		memcpy(s, json_string_value(j), *len + 1);
		json_decref(j);
		return s;
	}
	if ((j = to_json(k, depth)) == NULL)
		return NULL;
	s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(j);
	if (s == NULL)
		return NULL;
	/*
	 * Each level of keys inside keys escapes the quotes and backslashes
	 * of the level below, doubling them: 30 levels would need gigabytes.
	 * Cut the text (at a UTF-8 boundary) so every level stays small.
	 */
	if ((*len = strlen(s)) > KEY_TEXT_MAX) {
		*len = KEY_TEXT_MAX - 3;
		while (*len > 0 && ((unsigned char)s[*len] & 0xc0) == 0x80)
			(*len)--;
		memcpy(s + *len, "...", 4);
		*len += 3;
	}
	return s;
}

static json_t *
to_json_map(const msgpack_object_map *m, int depth)
{
	json_t		*j, *v;
	char		*k;
	size_t		 klen;
	uint32_t	 i;

	if ((j = json_object()) == NULL)
		return NULL;
	for (i = 0; i < m->size; i++) {
		if ((k = key_text(&m->ptr[i].key, depth + 1, &klen)) == NULL)
			goto fail;
		v = to_json(&m->ptr[i].val, depth + 1);
		/* json_object_setn_new() takes 'v' even when it fails. */
		if (v == NULL || json_object_setn_new(j, k, klen, v) == -1) {
			free(k);
			goto fail;
		}
		free(k);
	}
	return j;
 fail:
	json_decref(j);
	return NULL;
}

static json_t *
to_json_array(const msgpack_object_array *a, int depth)
{
	json_t		*j, *v;
	uint32_t	 i;

	if ((j = json_array()) == NULL)
		return NULL;
	for (i = 0; i < a->size; i++) {
		v = to_json(&a->ptr[i], depth + 1);
		if (v == NULL || json_array_append_new(j, v) == -1) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static json_t *
to_json(const msgpack_object *o, int depth)
{
	char	 num[32];

	if (depth > TOJSON_MAX_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 <= LLONG_MAX)
			return json_integer((json_int_t)o->via.u64);
		/*
		 * Above long long: a string of the exact digits.  A real
		 * would print a different number (2^64-1 as
		 * 1.8446744073709552e+19), and ids are what get this big.
		 */
		snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
		return json_string(num);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		/* JSON has no NaN or infinity; show Python's names. */
		if (isnan(o->via.f64))
			return json_string("NaN");
		if (isinf(o->via.f64))
			return json_string(o->via.f64 < 0 ? "-Infinity" :
			    "Infinity");
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return mkstring(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return mkhex(o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		return mkhex(o->via.ext.ptr, o->via.ext.size);
	case MSGPACK_OBJECT_ARRAY:
		return to_json_array(&o->via.array, depth);
	case MSGPACK_OBJECT_MAP:
		return to_json_map(&o->via.map, depth);
	}
	return NULL;
}

/* The same tree as msgpack_to_json() prints, for a caller that goes on. */
json_t *
msgpack_to_jansson(const msgpack_object *o)
{
	return to_json(o, 0);
}

/*
 * Conversions: unsigned integers above LLONG_MAX become strings of their
 * decimal digits; NaN and the infinities become the strings "NaN",
 * "Infinity", "-Infinity"; bin and ext (type code dropped) become lower
 * case hex strings; invalid UTF-8 bytes become U+FFFD; non-string map
 * keys are stringified (see key_text()).  Map order is kept.  Reals are
 * printed by jansson ("%.17g", so 0.1 shows as 0.10000000000000001).
 * The text comes from jansson's allocator, malloc unless someone called
 * json_set_alloc_funcs(), so free() it.
 */
char *
msgpack_to_json(const msgpack_object *o, int indent)
{
	json_t	*j;
	char	*s;
	size_t	 flags = JSON_ENCODE_ANY;

	if ((j = to_json(o, 0)) == NULL)
		return NULL;
	if (indent > 0)
		flags |= JSON_INDENT(indent > JSON_MAX_INDENT ?
		    JSON_MAX_INDENT : indent);
	else
		flags |= JSON_COMPACT;
	s = json_dumps(j, flags);
	json_decref(j);
	return s;
}
