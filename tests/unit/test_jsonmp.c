/*
 * JSON text to msgpack and back.  Expected msgpack bytes are what
 * Python's msgpack.packb() gives for the same value (msgpack-c and Python
 * both pick the smallest encoding).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/canon.h"
#include "common/jsonmp.h"
#include "tests/unit/test.h"

static char	errbuf[256];

/* json_to_msgpack() into a fresh sbuffer; its result. */
static int
pack(const char *text, size_t len, msgpack_sbuffer *sb)
{
	msgpack_packer	 pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	errbuf[0] = '\0';
	return json_to_msgpack(text, len, &pk, errbuf, sizeof(errbuf));
}

static void
tohex(const msgpack_sbuffer *sb, char *out, size_t outlen)
{
	size_t	 i;

	out[0] = '\0';
	for (i = 0; i < sb->size && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", (unsigned char)sb->data[i]);
}

/* 'text' packs to exactly the msgpack in 'hex'. */
static int
packs_to(const char *text, const char *hex)
{
	msgpack_sbuffer	 sb;
	char		 got[512];
	int		 r;

	r = pack(text, strlen(text), &sb);
	tohex(&sb, got, sizeof(got));
	msgpack_sbuffer_destroy(&sb);
	if (r != 0) {
		fprintf(stderr, "'%s': %s\n", text, errbuf);
		return 0;
	}
	if (strcmp(got, hex) != 0) {
		fprintf(stderr, "'%s': got %s, want %s\n", text, got, hex);
		return 0;
	}
	return 1;
}

/* 'len' bytes of 'text' are refused, with a message. */
static int
refused(const char *text, size_t len)
{
	msgpack_sbuffer	 sb;
	int		 r;

	r = pack(text, len, &sb);
	msgpack_sbuffer_destroy(&sb);
	if (r != -1) {
		fprintf(stderr, "'%.*s' accepted\n", (int)len, text);
		return 0;
	}
	if (errbuf[0] == '\0') {
		fprintf(stderr, "'%.*s': no error message\n", (int)len, text);
		return 0;
	}
	return 1;
}

#define REFUSED(s)	refused((s), sizeof(s) - 1)

/*
 * JSON -> msgpack -> JSON (compact) gives 'want'; NULL means the input
 * itself.  jansson keeps object order, so compact input comes back.
 */
static int
roundtrips(const char *text, const char *want)
{
	msgpack_sbuffer		 sb;
	msgpack_unpacked	 u;
	size_t			 off = 0;
	char			*s = NULL;
	int			 ok;

	if (want == NULL)
		want = text;
	if (pack(text, strlen(text), &sb) == -1) {
		fprintf(stderr, "'%s': %s\n", text, errbuf);
		msgpack_sbuffer_destroy(&sb);
		return 0;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == sb.size)
		s = msgpack_to_json(&u.data, 0);
	ok = s != NULL && strcmp(s, want) == 0;
	if (!ok)
		fprintf(stderr, "'%s': got '%s', want '%s'\n", text,
		    s ? s : "(null)", want);
	free(s);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return ok;
}

/* msgpack given in hex renders as 'want' (indent 'indent'). */
static int
renders(const char *hex, int indent, const char *want)
{
	msgpack_unpacked	 u;
	char			 b[512], *s = NULL;
	const char		*p;
	size_t			 n = 0, off = 0;
	unsigned int		 v;
	int			 ok;

	for (p = hex; p[0] != '\0' && p[1] != '\0' && n < sizeof(b); p += 2) {
		if (sscanf(p, "%2x", &v) != 1)
			return 0;
		b[n++] = (char)v;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, b, n, &off) == MSGPACK_UNPACK_SUCCESS)
		s = msgpack_to_json(&u.data, indent);
	ok = s != NULL && strcmp(s, want) == 0;
	if (!ok)
		fprintf(stderr, "%s: got '%s', want '%s'\n", hex,
		    s ? s : "(null)", want);
	free(s);
	msgpack_unpacked_destroy(&u);
	return ok;
}

static void
test_scalars(void)
{
	ASSERT(packs_to("null", "c0"));
	ASSERT(packs_to("true", "c3"));
	ASSERT(packs_to("false", "c2"));
	ASSERT(packs_to("0", "00"));
	ASSERT(packs_to("-0", "00"));
	ASSERT(packs_to("127", "7f"));
	ASSERT(packs_to("128", "cc80"));
	ASSERT(packs_to("-1", "ff"));
	ASSERT(packs_to("-33", "d0df"));
	ASSERT(packs_to("65536", "ce00010000"));
	ASSERT(packs_to("1.5", "cb3ff8000000000000"));
	ASSERT(packs_to("-0.0", "cb8000000000000000"));
	ASSERT(packs_to("1E2", "cb4059000000000000"));
	ASSERT(packs_to("\"\"", "a0"));
	ASSERT(packs_to("\"a\\u0000b\"", "a3610062"));
	ASSERT(packs_to("\"\\u00e9\"", "a2c3a9"));
	ASSERT(packs_to("\"\\ud83d\\ude80\"", "a4f09f9a80"));
	ASSERT(packs_to("\"\xc3\xa9\"", "a2c3a9"));
}

static void
test_containers(void)
{
	ASSERT(packs_to("{}", "80"));
	ASSERT(packs_to("[]", "90"));
	ASSERT(packs_to("{\"a\":[1,{\"b\":null}]}", "81a1619201""81a162c0"));
	/* Object order is kept; sorting is canon.c's business. */
	ASSERT(packs_to("{\"b\":1,\"a\":2}", "82a16201a16102"));
}

static void
test_big_ints(void)
{
	ASSERT(packs_to("9223372036854775807", "cf7fffffffffffffff"));
	ASSERT(packs_to("-9223372036854775808", "d38000000000000000"));
	ASSERT(packs_to("4294967296", "cf0000000100000000"));
	/* Beyond long long jansson refuses; so do we. */
	ASSERT(REFUSED("9223372036854775808"));
	ASSERT(REFUSED("-9223372036854775809"));
	ASSERT(REFUSED("18446744073709551615"));
	ASSERT(REFUSED("[100000000000000000000000]"));
	ASSERT(strstr(errbuf, "too big integer") != NULL);
	ASSERT(REFUSED("1e400"));
	/* A big number written as a real is a real. */
	ASSERT(packs_to("1e19", "cb43e158e460913d00"));
}

static void
test_white_space(void)
{
	ASSERT(packs_to(" \t\r\n{}\n \t", "80"));
	ASSERT(packs_to("1\n", "01"));
	ASSERT(packs_to("\"x\"  ", "a178"));
}

static void
test_trailing_garbage(void)
{
	ASSERT(REFUSED("1 x"));
	ASSERT(REFUSED("{} x"));
	ASSERT(REFUSED("{}}"));
	ASSERT(REFUSED("[1]]"));
	ASSERT(REFUSED("{},"));
	ASSERT(REFUSED("\"a\"\""));
	ASSERT(REFUSED("null\x01"));
	/*
	 * A NUL byte after the value is not the end of the text (jansson
	 * itself skips a NUL right after a number).
	 */
	ASSERT(REFUSED("1\0"));
	ASSERT(REFUSED("[1\0]"));
	ASSERT(REFUSED("{\"a\":1\0}"));
	ASSERT(REFUSED("{}\0 "));
	ASSERT(REFUSED("{} x"));
	ASSERT(strstr(errbuf, "line 1") != NULL);
}

static void
test_empty(void)
{
	ASSERT(refused("", 0));
	ASSERT(REFUSED("   "));
	ASSERT(REFUSED("\n\n"));
	ASSERT(refused("{}", 0));	/* only 'len' bytes count */
	ASSERT(REFUSED("\0"));
}

static void
test_two_values(void)
{
	ASSERT(REFUSED("1 2"));
	ASSERT(REFUSED("{}{}"));
	ASSERT(REFUSED("[] []"));
	ASSERT(REFUSED("{\"a\":1}\n{\"b\":2}\n"));
	ASSERT(REFUSED("\"a\" \"b\""));
	ASSERT(REFUSED("null null"));
}

static void
test_duplicates(void)
{
	ASSERT(REFUSED("{\"a\":1,\"a\":2}"));
	ASSERT(REFUSED("{\"x\":{\"a\":1,\"b\":0,\"a\":1}}"));
	ASSERT(REFUSED("[{\"a\":1,\"\\u0061\":2}]"));
	ASSERT(strstr(errbuf, "duplicate") != NULL);
	ASSERT(packs_to("[{\"a\":1},{\"a\":2}]", "9281a1610181a16102"));
}

static void
test_bad_json(void)
{
	ASSERT(REFUSED("{\"a\":}"));
	ASSERT(REFUSED("[1,]"));
	ASSERT(REFUSED("NaN"));
	ASSERT(REFUSED("Infinity"));
	ASSERT(REFUSED("'a'"));
	ASSERT(REFUSED("01"));
	ASSERT(REFUSED("\"\xc0\x80\""));		/* overlong */
	ASSERT(REFUSED("\"\xed\xa0\x80\""));		/* surrogate */
	ASSERT(REFUSED("\"\\ud800\""));			/* lone surrogate */
	ASSERT(REFUSED("\"\x01\""));			/* raw control */
	ASSERT(REFUSED("{\"a\\u0000\":1}"));		/* NUL in a key */
	ASSERT(REFUSED("{\"a\":1"));			/* truncated */
}

/* jansson stops at 2048 levels: an error, not a crash. */
static void
test_deep(void)
{
	char	*s;
	size_t	 n = 5000;

	s = malloc(2 * n);
	ASSERT(s != NULL);
	memset(s, '[', n);
	memset(s + n, ']', n);
	if (!refused(s, 2 * n)) {
		free(s);
		fprintf(stderr, "deep JSON accepted\n");
		ASSERT(0);
	}
	free(s);
}

static void
test_roundtrip(void)
{
	ASSERT(roundtrips("{\"a\":[1,2.5,\"x\",true,false,null],\"b\":{}}",
	    NULL));
	ASSERT(roundtrips("{\"z\":1,\"a\":{\"y\":[],\"b\":-7}}", NULL));
	ASSERT(roundtrips("[9223372036854775807,-9223372036854775808]",
	    NULL));
	ASSERT(roundtrips("\"a\\u0000b\\n\\\"\"", NULL));
	ASSERT(roundtrips("\"\xe6\x9d\xb1\xf0\x9f\x9a\x80\"", NULL));
	ASSERT(roundtrips("1.0", NULL));
	ASSERT(roundtrips("-0.0", NULL));
	ASSERT(roundtrips("0.5", NULL));
	ASSERT(roundtrips(" [ 1 , 2 ] ", "[1,2]"));
	ASSERT(roundtrips("1e2", "100.0"));
	/* jansson prints reals with 17 digits. */
	ASSERT(roundtrips("0.1", "0.10000000000000001"));
	ASSERT(roundtrips("null", NULL));
}

/* What a tool prints and what the hash covers agree. */
static void
test_json_to_canon(void)
{
	msgpack_sbuffer		 sb;
	msgpack_unpacked	 u;
	struct canon_buf	 out;
	size_t			 off = 0;
	const char		*in = "{\"b\":[1,1.0,\"\\u00e9\\u001f\"],"
	    "\"a\":{\"d\":null,\"c\":true},\"idempotency_key\":\"x\"}";
	int			 r = -1;

	memset(&out, 0, sizeof(out));
	ASSERT_EQ_INT(pack(in, strlen(in), &sb), 0);
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS)
		r = canon_json(&u.data, 1, &out, errbuf, sizeof(errbuf));
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	if (r != 0)
		canon_buf_free(&out);
	ASSERT_EQ_INT(r, 0);
	ASSERT_EQ_STR(out.data, "{\"a\":{\"c\":true,\"d\":null},"
	    "\"b\":[1,1.0,\"\xc3\xa9\\u001f\"]}");
	canon_buf_free(&out);
}

static void
test_render(void)
{
	/* uint64 above LLONG_MAX: a string of the exact digits. */
	ASSERT(renders("cfffffffffffffffff", 0, "\"18446744073709551615\""));
	ASSERT(renders("cf8000000000000000", 0, "\"9223372036854775808\""));
	ASSERT(renders("cf7fffffffffffffff", 0, "9223372036854775807"));
	ASSERT(renders("d38000000000000000", 0, "-9223372036854775808"));
	/* bin and ext: hex of the data. */
	ASSERT(renders("c40300ff10", 0, "\"00ff10\""));
	ASSERT(renders("c400", 0, "\"\""));
	ASSERT(renders("d5070102", 0, "\"0102\""));
	ASSERT(renders("c70305616263", 0, "\"616263\""));
	/* Non-string keys are stringified; order is kept. */
	ASSERT(renders("84" "01a161" "c002" "920102c3" "c4016104", 0,
	    "{\"1\":\"a\",\"null\":2,\"[1,2]\":true,\"61\":4}"));
	ASSERT(renders("81ff01", 0, "{\"-1\":1}"));
	ASSERT(renders("8181a16101a162", 0, "{\"{\\\"a\\\":1}\":\"b\"}"));
	/* NaN and infinities, which JSON lacks. */
	ASSERT(renders("93cb7ff8000000000000cb7ff0000000000000"
	    "cbfff0000000000000", 0, "[\"NaN\",\"Infinity\",\"-Infinity\"]"));
	/* float32 widened. */
	ASSERT(renders("ca3fc00000", 0, "1.5"));
	/* Invalid UTF-8 bytes become U+FFFD, in values and keys. */
	ASSERT(renders("a461c08062", 0, "\"a\xef\xbf\xbd\xef\xbf\xbd" "b\""));
	ASSERT(renders("81a2ff6101", 0, "{\"\xef\xbf\xbd" "a\":1}"));
	ASSERT(renders("a3eda080", 0,
	    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""));
	/* NUL survives, escaped; in a key too. */
	ASSERT(renders("81a2610001", 0, "{\"a\\u0000\":1}"));
	/* Pretty printing. */
	ASSERT(renders("82a16101a16292c0c3", 2,
	    "{\n  \"a\": 1,\n  \"b\": [\n    null,\n    true\n  ]\n}"));
	ASSERT(renders("9101", 100, "[\n                               1\n]"));
	ASSERT(renders("9101", -1, "[1]"));
	/* Duplicate keys: the last one is shown. */
	ASSERT(renders("82a16101a16102", 0, "{\"a\":2}"));
}

/*
 * Keys inside keys: each level escapes the one below, so without a cap
 * 40 levels would print 2^40 backslashes.  Built by hand, as msgpack-c
 * unpacks no more than 32 levels.
 */
static void
test_key_in_key(void)
{
	msgpack_object		 o[41];
	msgpack_object_kv	 kv[40];
	char			*s;
	int			 i;

	memset(o, 0, sizeof(o));
	memset(kv, 0, sizeof(kv));
	o[40].type = MSGPACK_OBJECT_STR;
	o[40].via.str.ptr = "\"q\"";
	o[40].via.str.size = 3;
	for (i = 39; i >= 0; i--) {
		kv[i].key = o[i + 1];
		kv[i].val.type = MSGPACK_OBJECT_NIL;
		o[i].type = MSGPACK_OBJECT_MAP;
		o[i].via.map.size = 1;
		o[i].via.map.ptr = &kv[i];
	}
	s = msgpack_to_json(&o[0], 0);
	ASSERT(s != NULL);
	ASSERT(strlen(s) < 2048);
	ASSERT(strstr(s, "...") != NULL);
	free(s);
}

/* One long key, [0,0,...] with 300 zeros, is cut to 256 bytes. */
static void
test_long_key(void)
{
	msgpack_object		 zeros[300], map;
	msgpack_object_kv	 kv;
	const char		*want_end = "0,0,...\":true}";
	char			*s;
	int			 i;

	memset(zeros, 0, sizeof(zeros));
	for (i = 0; i < 300; i++)
		zeros[i].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	memset(&kv, 0, sizeof(kv));
	kv.key.type = MSGPACK_OBJECT_ARRAY;
	kv.key.via.array.size = 300;
	kv.key.via.array.ptr = zeros;
	kv.val.type = MSGPACK_OBJECT_BOOLEAN;
	kv.val.via.boolean = true;
	memset(&map, 0, sizeof(map));
	map.type = MSGPACK_OBJECT_MAP;
	map.via.map.size = 1;
	map.via.map.ptr = &kv;
	s = msgpack_to_json(&map, 0);
	ASSERT(s != NULL);
	/* {" + 256 bytes of key + ":true} */
	if (strlen(s) != 2 + 256 + 7 || strncmp(s, "{\"[0,0,", 7) != 0 ||
	    strcmp(s + strlen(s) - strlen(want_end), want_end) != 0) {
		fprintf(stderr, "got '%s'\n", s);
		free(s);
		ASSERT(0);
	}
	free(s);
}

/*
 * json_value_to_msgpack(j) against the text route it replaces
 * (json_dumps(j, JSON_COMPACT), then json_to_msgpack()): both refuse, or
 * both give the same bytes; and json_compact_bound() is at least the
 * text's length.
 */
static int
same_as_text(json_t *j)
{
	msgpack_sbuffer	 sb1, sb2;
	msgpack_packer	 pk;
	char		*s, err[256];
	int		 r1 = -1, r2, ok = 1;

	msgpack_sbuffer_init(&sb1);
	if ((s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		msgpack_packer_init(&pk, &sb1, msgpack_sbuffer_write);
		r1 = json_to_msgpack(s, strlen(s), &pk, err, sizeof(err));
		if (json_compact_bound(j) < strlen(s)) {
			fprintf(stderr, "bound %zu < %zu for %.60s\n",
			    json_compact_bound(j), strlen(s), s);
			ok = 0;
		}
	}
	msgpack_sbuffer_init(&sb2);
	msgpack_packer_init(&pk, &sb2, msgpack_sbuffer_write);
	err[0] = '\0';
	r2 = json_value_to_msgpack(j, &pk, err, sizeof(err));
	if (r1 != r2 || (r2 == -1 && err[0] == '\0') || (r1 == 0 &&
	    (sb1.size != sb2.size || memcmp(sb1.data, sb2.data,
	    sb1.size) != 0))) {
		fprintf(stderr, "%.60s: text route %d (%zu bytes), direct %d"
		    " (%zu bytes) %s\n", s ? s : "(no text)", r1, sb1.size, r2,
		    sb2.size, err);
		ok = 0;
	}
	free(s);
	msgpack_sbuffer_destroy(&sb1);
	msgpack_sbuffer_destroy(&sb2);
	return ok;
}

/* json_value_to_msgpack()'s result alone. */
static int
direct(json_t *j)
{
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	char		 err[256];
	int		 r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	r = json_value_to_msgpack(j, &pk, err, sizeof(err));
	msgpack_sbuffer_destroy(&sb);
	return r;
}

/* The same for the value of a JSON text. */
static int
same_as_text_of(const char *text)
{
	json_t	*j;
	int	 ok;

	j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (j == NULL) {
		fprintf(stderr, "'%s' does not load\n", text);
		return 0;
	}
	ok = same_as_text(j);
	json_decref(j);
	return ok;
}

/* 'levels' arrays around 'inner' (stolen). */
static json_t *
nest(size_t levels, json_t *inner)
{
	json_t	*a;

	while (levels-- > 0) {
		a = json_array();
		json_array_append_new(a, inner);
		inner = a;
	}
	return inner;
}

/* A random tree of scalars of every kind, reals from random bits. */
static json_t *
random_tree(unsigned *seed, int depth)
{
	json_t		*j;
	uint64_t	 bits;
	double		 d;
	char		 key[16];
	int		 i, n;

	switch (depth > 4 ? 5 + rand_r(seed) % 4 : rand_r(seed) % 9) {
	case 0:
		j = json_object();
		n = rand_r(seed) % 5;
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "k\xc3\xa9%d", i);
			json_object_set_new(j, key, random_tree(seed,
			    depth + 1));
		}
		return j;
	case 1:
		j = json_array();
		n = rand_r(seed) % 5;
		for (i = 0; i < n; i++)
			json_array_append_new(j, random_tree(seed, depth + 1));
		return j;
	case 2:
		return json_string("a\"\\\x01\t/\xe2\x82\xac\xf0\x9f\x98\x80");
	case 3:
		return json_integer((json_int_t)((uint64_t)rand_r(seed) << 33 ^
		    (uint64_t)rand_r(seed) << 2 ^ (uint64_t)rand_r(seed)));
	case 4:
		return json_stringn("nul\0in", 6);
	default:
		/* Any finite double: jansson makes no real of NaN or inf. */
		do {
			bits = (uint64_t)rand_r(seed) << 42 ^
			    (uint64_t)rand_r(seed) << 21 ^
			    (uint64_t)rand_r(seed);
			memcpy(&d, &bits, sizeof(d));
		} while (!isfinite(d));
		return json_real(d);
	}
}

static void
test_value_same_as_text(void)
{
	static const char	*texts[] = {
		"null", "true", "false", "0", "-1", "127", "128", "-33",
		"9223372036854775807", "-9223372036854775808",
		"0.1", "1.0", "-0.0", "1e300", "-2.5e-300", "5e-324",
		"1.7976931348623157e308", "123456789.123456789", "1e20",
		"3.141592653589793", "\"\"", "\"a\\u0000b\"",
		"\"\\u00e9\\ud83d\\ude00 \xe6\x9d\xb1\\n\\t\\\"\\/\"",
		"{}", "[]", "[[],{},[{}]]",
		"{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
		    "\"structuredContent\":{\"n\":1,\"f\":0.25,\"l\":[1,"
		    "[2,[3]]],\"u\":\"\xc3\xa9\"}}",
		"{\"z\":1,\"a\":2,\"m\":{\"b\":[true,null]}}",
	};
	json_t		*j, *o;
	unsigned	 seed = 10;
	size_t		 i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		ASSERT(same_as_text_of(texts[i]));
	for (i = 0; i < 2000; i++) {
		j = random_tree(&seed, 0);
		if (!same_as_text(j)) {
			json_decref(j);
			ASSERT(0);
		}
		json_decref(j);
	}
	/* The parser's depth: a scalar at 2048 values deep, then 2049. */
	j = nest(2047, json_integer(1));
	ASSERT(same_as_text(j));
	ASSERT(direct(j) == 0);
	json_decref(j);
	j = nest(2048, json_integer(1));
	ASSERT(same_as_text(j));
	ASSERT(direct(j) == -1);
	json_decref(j);
	j = nest(3000, json_array());
	ASSERT(same_as_text(j));
	json_decref(j);
	/* A NUL in a key: its text does not load, nor does the tree pack. */
	o = json_object();
	json_object_setn_new(o, "a\0b", 3, json_true());
	ASSERT(same_as_text(o));
	ASSERT(direct(o) == -1);
	json_decref(o);
}

int
main(void)
{
	RUN(test_scalars);
	RUN(test_containers);
	RUN(test_big_ints);
	RUN(test_white_space);
	RUN(test_trailing_garbage);
	RUN(test_empty);
	RUN(test_two_values);
	RUN(test_duplicates);
	RUN(test_bad_json);
	RUN(test_deep);
	RUN(test_roundtrip);
	RUN(test_json_to_canon);
	RUN(test_render);
	RUN(test_key_in_key);
	RUN(test_long_key);
	RUN(test_value_same_as_text);
	return tests_failed != 0;
}
