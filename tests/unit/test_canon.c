/*
 * Canonical JSON and the args hash.  Every row of the shared vectors file
 * is a test of its own; the other expectations here were produced with
 * Debian's Python (/usr/bin/python3, json + msgpack), the reference the
 * contract names.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "tests/unit/test.h"

#define MIN_VECTORS	15
#define MAX_VECTORS	256

struct vector {
	char	*name;
	char	*msgpack_hex;
	char	*json_hex;
	char	*hash;
};

static struct vector	vectors[MAX_VECTORS];
static size_t		nvectors;
static size_t		cur_vector;
static char		errbuf[256];

/* Decode hex into a malloc'ed buffer; -1 on odd length or a bad digit. */
static int
unhex(const char *h, unsigned char **out, size_t *outlen)
{
	size_t		 n = strlen(h), i;
	unsigned int	 v;

	if (n % 2 != 0)
		return -1;
	*out = malloc(n / 2 + 1);
	if (*out == NULL)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(h + 2 * i, "%2x", &v) != 1) {
			free(*out);
			return -1;
		}
		(*out)[i] = (unsigned char)v;
	}
	*outlen = n / 2;
	return 0;
}

/*
 * Canonical JSON of the msgpack in 'hex' into 'out' (cleared first).
 * Returns canon_json()'s result; -2 if the hex does not unpack.
 */
static int
canon_hex(const char *hex, int top, struct canon_buf *out)
{
	msgpack_unpacked	 u;
	unsigned char		*b;
	size_t			 n, off = 0;
	int			 r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	if (unhex(hex, &b, &n) == -1)
		return -2;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)b, n, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != n)
		r = -2;
	else
		r = canon_json(&u.data, top, out, errbuf, sizeof(errbuf));
	msgpack_unpacked_destroy(&u);
	free(b);
	return r;
}

/* canon_hex() must succeed with exactly 'want'. */
static int
canon_is(const char *hex, int top, const char *want)
{
	struct canon_buf	 out;
	int			 ok;

	if (canon_hex(hex, top, &out) != 0) {
		fprintf(stderr, "canon of %s failed: %s\n", hex, errbuf);
		canon_buf_free(&out);
		return 0;
	}
	ok = out.len == strlen(want) && memcmp(out.data, want, out.len) == 0;
	if (!ok)
		fprintf(stderr, "canon of %s: got '%s', want '%s'\n", hex,
		    out.data, want);
	canon_buf_free(&out);
	return ok;
}

/* canon_hex() must fail with an error message containing 'msg'. */
static int
canon_fails(const char *hex, int top, const char *msg)
{
	struct canon_buf	 out;
	int			 r;

	r = canon_hex(hex, top, &out);
	canon_buf_free(&out);
	if (r != -1) {
		fprintf(stderr, "canon of %s: got %d, want -1\n", hex, r);
		return 0;
	}
	if (strstr(errbuf, msg) == NULL) {
		fprintf(stderr, "canon of %s: error '%s' lacks '%s'\n", hex,
		    errbuf, msg);
		return 0;
	}
	return 1;
}

static char *
vectors_path(void)
{
	const char	*dir = getenv("TG_SHARED");
	static char	 path[1024];

	if (dir == NULL || *dir == '\0')
		dir = "../shared";
	snprintf(path, sizeof(path), "%s/vectors/args_hash.tsv", dir);
	return path;
}

/* Read the vectors file; the count is checked by test_vectors_file. */
static void
load_vectors(void)
{
	FILE	*f;
	char	 line[8192], *fields[4], *p;
	int	 i;

	if ((f = fopen(vectors_path(), "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL && nvectors < MAX_VECTORS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		p = line;
		for (i = 0; i < 4; i++)
			fields[i] = strsep(&p, "\t");
		if (fields[3] == NULL || p != NULL) {
			fprintf(stderr, "bad vectors line: %s\n", line);
			continue;
		}
		vectors[nvectors].name = strdup(fields[0]);
		vectors[nvectors].msgpack_hex = strdup(fields[1]);
		vectors[nvectors].json_hex = strdup(fields[2]);
		vectors[nvectors].hash = strdup(fields[3]);
		nvectors++;
	}
	fclose(f);
}

static void
free_vectors(void)
{
	size_t	 i;

	for (i = 0; i < nvectors; i++) {
		free(vectors[i].name);
		free(vectors[i].msgpack_hex);
		free(vectors[i].json_hex);
		free(vectors[i].hash);
	}
}

static void
test_vectors_file(void)
{
	if (nvectors < MIN_VECTORS)
		fprintf(stderr, "%s: %zu vectors, want at least %d\n",
		    vectors_path(), nvectors, MIN_VECTORS);
	ASSERT(nvectors >= MIN_VECTORS);
}

/* One row: canonical JSON bytes and hash, through args_hash(). */
static void
test_vector(void)
{
	const struct vector	*v = &vectors[cur_vector];
	msgpack_unpacked	 u;
	struct canon_buf	 json, again;
	unsigned char		*mp, *want;
	size_t			 mplen, wantlen, off = 0;
	char			 hash[ARGS_HASH_LEN + 1];
	int			 unpacked, hashed, same, again_same;

	ASSERT_EQ_INT(unhex(v->msgpack_hex, &mp, &mplen), 0);
	if (unhex(v->json_hex, &want, &wantlen) == -1) {
		free(mp);
		fprintf(stderr, "bad canonical JSON hex\n");
		ASSERT(0);
	}
	msgpack_unpacked_init(&u);
	unpacked = msgpack_unpack_next(&u, (const char *)mp, mplen, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == mplen;
	hashed = unpacked && args_hash(&u.data, hash, &json, errbuf,
	    sizeof(errbuf)) == 0;
	same = hashed && json.len == wantlen &&
	    memcmp(json.data, want, wantlen) == 0;
	if (hashed && !same)
		fprintf(stderr, "%s: got '%s'\n", v->name, json.data);
	/* canon_json() with top_level_args gives the same bytes. */
	memset(&again, 0, sizeof(again));
	again_same = hashed && canon_json(&u.data, 1, &again, errbuf,
	    sizeof(errbuf)) == 0 && again.len == json.len &&
	    memcmp(again.data, json.data, json.len) == 0;
	canon_buf_free(&again);
	if (hashed)
		canon_buf_free(&json);
	msgpack_unpacked_destroy(&u);
	free(mp);
	free(want);
	ASSERT(unpacked);
	ASSERT(hashed);
	ASSERT(same);
	ASSERT(again_same);
	ASSERT_EQ_STR(hash, v->hash);
}

static void
test_canon_double(void)
{
	static const struct {
		double		 d;
		const char	*want;
	} t[] = {
		{ 1.0, "1.0" },
		{ 0.5, "0.5" },
		{ -0.0, "-0.0" },
		{ 0.0, "0.0" },
		{ 0.1, "0.1" },
		{ -1.5, "-1.5" },
		{ 100.0, "100.0" },
		{ 1234.5678, "1234.5678" },
		{ 1e16, "1e+16" },
		{ 1e15, "1000000000000000.0" },
		{ 9999999999999998.0, "9999999999999998.0" },
		{ 9007199254740992.0, "9007199254740992.0" },
		{ 123456789012345.0, "123456789012345.0" },
		{ 1e-5, "1e-05" },
		{ 2.5e-5, "2.5e-05" },
		{ 1e-4, "0.0001" },
		{ 0.001, "0.001" },
		{ 1e-7, "1e-07" },
		{ 1.5e300, "1.5e+300" },
		{ 5e-324, "5e-324" },
		{ 1.5e-323, "1.5e-323" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ 12345678901234567890.0, "1.2345678901234567e+19" },
		{ 0.30000000000000004, "0.30000000000000004" },
		{ 1e22, "1e+22" },
		{ (double)0.1f, "0.10000000149011612" },
		{ NAN, "NaN" },
		{ -NAN, "NaN" },
		{ INFINITY, "Infinity" },
		{ -INFINITY, "-Infinity" },
	};
	char	 out[32];
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		canon_double(t[i].d, out, sizeof(out));
		ASSERT_EQ_STR(out, t[i].want);
	}
	/* A short buffer gets a truncated, terminated string. */
	canon_double(1.5e300, out, 4);
	ASSERT_EQ_STR(out, "1.5");
}

/* Every double we print must read back to itself. */
static void
test_canon_double_roundtrip(void)
{
	char		 out[32];
	uint64_t	 bits = 0x9e3779b97f4a7c15ULL;
	double		 d;
	int		 i;

	for (i = 0; i < 100000; i++) {
		bits ^= bits << 13;
		bits ^= bits >> 7;
		bits ^= bits << 17;
		memcpy(&d, &bits, sizeof(d));
		if (isnan(d) || isinf(d))
			continue;
		canon_double(d, out, sizeof(out));
		ASSERT(strtod(out, NULL) == d);
	}
}

static void
test_floats_in_msgpack(void)
{
	/* float32 0.1, widened as Python's msgpack does. */
	ASSERT(canon_is("ca3dcccccd", 0, "0.10000000149011612"));
	ASSERT(canon_is("81a166ca3fc00000", 1, "{\"f\":1.5}"));
	/* float64 NaN and infinities, as json.dumps writes them. */
	ASSERT(canon_is("93cb7ff8000000000000cb7ff0000000000000"
	    "cbfff0000000000000", 0, "[NaN,Infinity,-Infinity]"));
}

static void
test_scalars(void)
{
	ASSERT(canon_is("c0", 0, "null"));
	ASSERT(canon_is("c3", 0, "true"));
	ASSERT(canon_is("c2", 0, "false"));
	ASSERT(canon_is("cfffffffffffffffff", 0, "18446744073709551615"));
	ASSERT(canon_is("d38000000000000000", 0, "-9223372036854775808"));
	/* int8 holding a positive number is a positive integer to msgpack-c */
	ASSERT(canon_is("d005", 0, "5"));
	ASSERT(canon_is("e0", 0, "-32"));
	ASSERT(canon_is("9201a161", 0, "[1,\"a\"]"));
	ASSERT(canon_is("a0", 0, "\"\""));
}

/* All 32 controls, DEL, quote, backslash and slash, per Python. */
static void
test_control_escapes(void)
{
	struct canon_buf	 out;
	msgpack_object		 o;
	char			 s[36];
	int			 i;
	const char		*want = "\"\\u0000\\u0001\\u0002\\u0003\\u0004"
	    "\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
	    "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
	    "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f\\\"\\\\/\"";

	for (i = 0; i < 32; i++)
		s[i] = (char)i;
	memcpy(s + 32, "\x7f\"\\/", 4);
	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_STR;
	o.via.str.ptr = s;
	o.via.str.size = sizeof(s);
	memset(&out, 0, sizeof(out));
	ASSERT_EQ_INT(canon_json(&o, 0, &out, errbuf, sizeof(errbuf)), 0);
	ASSERT_EQ_STR(out.data, want);
	ASSERT_EQ_INT(out.len, strlen(want));
	canon_buf_free(&out);
	ASSERT(out.data == NULL);
	ASSERT_EQ_INT(out.len, 0);
	ASSERT_EQ_INT(out.cap, 0);

	/* Embedded NUL inside a longer string. */
	ASSERT(canon_is("a3610062", 0, "\"a\\u0000b\""));
}

static void
test_unicode(void)
{
	/* Non-ASCII passes through raw: "Zoë", "東京", U+10FFFF. */
	ASSERT(canon_is("a45a6fc3ab", 0, "\"Zo\xc3\xab\""));
	ASSERT(canon_is("a6e69db1e4baac", 0, "\"\xe6\x9d\xb1\xe4\xba\xac\""));
	ASSERT(canon_is("a4f48fbfbf", 0, "\"\xf4\x8f\xbf\xbf\""));
	/* U+E000 and U+FFFF, either side of where surrogates are not. */
	ASSERT(canon_is("a3ee8080", 0, "\"\xee\x80\x80\""));
	ASSERT(canon_is("a3efbfbf", 0, "\"\xef\xbf\xbf\""));
	/* U+2028 is not escaped by Python with ensure_ascii=False. */
	ASSERT(canon_is("a3e280a8", 0, "\"\xe2\x80\xa8\""));
}

/*
 * Keys "", "z", "é", U+FFFF, U+10000, "a\0", "a": Python sorts by code
 * point, and U+10000 after U+FFFF (UTF-16 order would differ).
 */
static void
test_key_order(void)
{
	struct canon_buf	 out;
	unsigned char		*want;
	size_t			 n;

	ASSERT(unhex("7b22223a312c2261223a372c22615c7530303030223a362c227a"
	    "223a322c22c3a9223a332c22efbfbf223a342c22f0908080223a357d",
	    &want, &n) == 0);
	if (canon_hex("87a001a17a02a2c3a903a3efbfbf04a4f090808005a2610006"
	    "a16107", 1, &out) != 0) {
		free(want);
		canon_buf_free(&out);
		fprintf(stderr, "canon failed\n");
		ASSERT(0);
	}
	ASSERT_EQ_INT(out.len, n);
	ASSERT_EQ_MEM(out.data, want, n);
	free(want);
	canon_buf_free(&out);
}

static void
test_injected_keys(void)
{
	/*
	 * {"approval_token":"x","idempotency_key":"y","a":{"approval_token":
	 * "z"},"approval_token2":1,"idempotency_ke":2}
	 */
	const char	*hex = "85ae617070726f76616c5f746f6b656ea178af69646"
	    "56d706f74656e63795f6b6579a179a16181ae617070726f76616c5f746f6b6"
	    "56ea17aaf617070726f76616c5f746f6b656e3201ae6964656d706f74656e6"
	    "3795f6b6502";

	ASSERT(canon_is(hex, 1, "{\"a\":{\"approval_token\":\"z\"},"
	    "\"approval_token2\":1,\"idempotency_ke\":2}"));
	/* Without top_level_args nothing is dropped. */
	ASSERT(canon_is(hex, 0, "{\"a\":{\"approval_token\":\"z\"},"
	    "\"approval_token\":\"x\",\"approval_token2\":1,"
	    "\"idempotency_ke\":2,\"idempotency_key\":\"y\"}"));
	/* Only injected keys: an empty object. */
	ASSERT(canon_is("81ae617070726f76616c5f746f6b656ec0", 1, "{}"));
	/* In an array inside args they are kept too. */
	ASSERT(canon_is("81a1619181ae617070726f76616c5f746f6b656e01", 1,
	    "{\"a\":[{\"approval_token\":1}]}"));
}

static void
test_bin_ext(void)
{
	ASSERT(canon_fails("81a161c40100", 1, "args.a: bin values are not "
	    "allowed"));
	ASSERT(canon_fails("81a161d40100", 1, "args.a: ext values are not "
	    "allowed"));
	ASSERT(canon_fails("81a16193c0c0c700ff", 1, "args.a[2]: ext"));
	ASSERT(canon_fails("81a16191c400", 1, "args.a[0]: bin"));
	ASSERT(canon_fails("c400", 0, "bin values"));
	ASSERT(canon_fails("81a16181a162c40100", 1, "args.a.b: bin"));
}

static void
test_bad_keys(void)
{
	ASSERT(canon_fails("810102", 1, "args: map keys must be strings"));
	ASSERT(canon_fails("81a16181c001", 1, "args.a: map keys must be "
	    "strings"));
	ASSERT(canon_fails("81c4016101", 1, "map keys must be strings"));
	ASSERT(canon_fails("81cb3ff000000000000001", 1, "map keys"));
	ASSERT(canon_fails("819001", 1, "map keys"));
	/* A bad key after good ones. */
	ASSERT(canon_fails("82a16101c301", 1, "map keys"));
}

static void
test_invalid_utf8(void)
{
	static const char *const bad[] = {
		"a2c080",		/* overlong NUL */
		"a2c1bf",		/* overlong '?' */
		"a3e08080",		/* overlong, 3 bytes */
		"a3e09fbf",		/* overlong U+07FF */
		"a4f08fbfbf",		/* overlong U+FFFF */
		"a3eda080",		/* surrogate U+D800 */
		"a3edbfbf",		/* surrogate U+DFFF */
		"a6eda080edb080",	/* surrogate pair, CESU-8 */
		"a4f4908080",		/* U+110000 */
		"a4f5808080",		/* F5 lead byte */
		"a1ff",
		"a1fe",
		"a180",			/* lone continuation */
		"a2e69d",		/* truncated 3 bytes */
		"a1c3",			/* truncated 2 bytes */
		"a3f09f9a",		/* truncated 4 bytes */
		"a2c341",		/* lead byte then ASCII */
		"a3e641b1",		/* bad second byte */
		"a3e69d41",		/* bad third byte */
	};
	char	 hex[64];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* As a value: {"s": bad} */
		snprintf(hex, sizeof(hex), "81a173%s", bad[i]);
		ASSERT(canon_fails(hex, 1, "args.s: invalid UTF-8"));
		/* As a key: {bad: 1} */
		snprintf(hex, sizeof(hex), "81%s01", bad[i]);
		ASSERT(canon_fails(hex, 1, "args: invalid UTF-8 in a key"));
		/* Nested in an array. */
		snprintf(hex, sizeof(hex), "81a17392a0%s", bad[i]);
		ASSERT(canon_fails(hex, 1, "args.s[1]: invalid UTF-8"));
	}
}

static void
test_duplicate_keys(void)
{
	ASSERT(canon_fails("82a16101a16102", 1, "args.a: duplicate key"));
	ASSERT(canon_fails("81a16183a16201a16302a16203", 1,
	    "args.a.b: duplicate key"));
	/* Same bytes, different order of insertion. */
	ASSERT(canon_fails("83a16201a16102a16203", 0, "duplicate key"));
	/* Refused even for the keys that would be dropped. */
	ASSERT(canon_fails("82ae617070726f76616c5f746f6b656e01ae617070726f76"
	    "616c5f746f6b656e02", 1, "duplicate key"));
	/* A prefix is not a duplicate. */
	ASSERT(canon_is("82a2616101a16102", 1, "{\"a\":2,\"aa\":1}"));
}

static void
test_top_level(void)
{
	char	 hash[ARGS_HASH_LEN + 1];
	struct canon_buf json;
	msgpack_object	 o;

	ASSERT(canon_fails("90", 1, "args: must be a map"));
	ASSERT(canon_fails("01", 1, "must be a map"));
	ASSERT(canon_fails("c0", 1, "must be a map"));
	ASSERT(canon_fails("a0", 1, "must be a map"));
	ASSERT(canon_is("920102", 0, "[1,2]"));

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_ARRAY;
	memset(&json, 0xa5, sizeof(json));	/* garbage must be ignored */
	ASSERT_EQ_INT(args_hash(&o, hash, &json, errbuf, sizeof(errbuf)), -1);
	ASSERT_EQ_STR(errbuf, "args: must be a map");
	ASSERT(json.data == NULL);
	ASSERT_EQ_INT(json.len, 0);
	canon_buf_free(&json);
	/* NULL err with errlen 0 is fine. */
	ASSERT_EQ_INT(args_hash(&o, hash, NULL, NULL, 0), -1);
}

/*
 * A chain of 'levels' nested containers built by hand, so that depths
 * past what msgpack-c's own unpacker takes (32 levels) are tested too:
 * canon_json() must not rely on the limit CANON_MAX_DEPTH happens to
 * have today.
 */
static msgpack_object *
nest(int levels, int maps)
{
	msgpack_object		*o;
	msgpack_object_kv	*kv;
	int			 i;

	o = calloc(levels + 1, sizeof(*o));
	kv = calloc(levels, sizeof(*kv));
	if (o == NULL || kv == NULL)
		abort();
	o[levels].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o[levels].via.u64 = 7;
	for (i = levels - 1; i >= 0; i--) {
		if (maps || i == 0) {
			o[i].type = MSGPACK_OBJECT_MAP;
			o[i].via.map.size = 1;
			o[i].via.map.ptr = &kv[i];
			kv[i].key.type = MSGPACK_OBJECT_STR;
			kv[i].key.via.str.ptr = "k";
			kv[i].key.via.str.size = 1;
			kv[i].val = o[i + 1];
		} else {
			o[i].type = MSGPACK_OBJECT_ARRAY;
			o[i].via.array.size = 1;
			o[i].via.array.ptr = &o[i + 1];
		}
		/* kv[i].val is a copy: keep the chain pointing at o[]. */
	}
	return o;
}

static void
free_nest(msgpack_object *o)
{
	free(o[0].via.map.ptr);
	free(o);
}

static int
canon_depth(int levels, int maps)
{
	msgpack_object		*o = nest(levels, maps);
	struct canon_buf	 out;
	int			 r;

	memset(&out, 0, sizeof(out));
	errbuf[0] = '\0';
	r = canon_json(o, 1, &out, errbuf, sizeof(errbuf));
	canon_buf_free(&out);
	free_nest(o);
	return r;
}

/* {"a": [[...]]}: 'levels' containers, the innermost an empty array. */
static void
deep_hex(int levels, char *hex, size_t hexlen)
{
	size_t	 n;
	int	 i;

	n = (size_t)snprintf(hex, hexlen, "81a161");
	for (i = 0; i < levels - 2 && n + 5 < hexlen; i++, n += 2)
		memcpy(hex + n, "91", 2);
	memcpy(hex + n, "90", 3);
}

static void
test_depth(void)
{
	struct canon_buf	 out;
	char			 hex[256];

	/* The top-level map counts as depth 1. */
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH, 1), 0);
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH + 1, 1), -1);
	ASSERT(strncmp(errbuf, "args.k.k.k", 10) == 0);
	ASSERT(strstr(errbuf, ".k: nested too deeply") != NULL);
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH, 0), 0);
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH + 1, 0), -1);
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH + 40, 0), -1);
	ASSERT_EQ_INT(canon_depth(CANON_MAX_DEPTH + 40, 1), -1);

	/* The same through msgpack-c's unpacker, when it can get there. */
	deep_hex(CANON_MAX_DEPTH, hex, sizeof(hex));
	ASSERT_EQ_INT(canon_hex(hex, 1, &out), 0);
	canon_buf_free(&out);
	if (CANON_MAX_DEPTH < 32) {
		deep_hex(CANON_MAX_DEPTH + 1, hex, sizeof(hex));
		ASSERT(canon_fails(hex, 1, "nested too deeply"));
	}
	/* 33 levels do not unpack at all (MSGPACK_EMBED_STACK_SIZE). */
	deep_hex(33, hex, sizeof(hex));
	ASSERT_EQ_INT(canon_hex(hex, 1, &out), -2);
	canon_buf_free(&out);
}

/* Long paths in messages end in "...". */
static void
test_long_path(void)
{
	char	 hex[512];
	size_t	 n;
	int	 i;

	/* {"a": {"bbb...b" (200 b): bin}} */
	n = (size_t)snprintf(hex, sizeof(hex), "81a16181d9c8");
	for (i = 0; i < 200; i++, n += 2)
		memcpy(hex + n, "62", 2);
	memcpy(hex + n, "c400", 5);
	ASSERT(canon_fails(hex, 1, "args.a.bbbbbbbb"));
	ASSERT(strstr(errbuf, "bbb...: bin values are not allowed") != NULL);
	ASSERT(strlen(errbuf) < 96 + 3 + 40);
}

/* A failed canon_json() leaves what was already in the buffer. */
static void
test_append_and_rollback(void)
{
	struct canon_buf	 out;
	msgpack_unpacked	 u;
	size_t			 off = 0;
	/* [1,"a",{"b":bin}] */
	const char		 bad[] = "\x93\x01\xa1\x61\x81\xa1\x62\xc4\x00";
	const char		 good[] = "\x92\x01\xc3";

	memset(&out, 0, sizeof(out));
	msgpack_unpacked_init(&u);
	ASSERT(msgpack_unpack_next(&u, good, sizeof(good) - 1, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	ASSERT_EQ_INT(canon_json(&u.data, 0, &out, errbuf, sizeof(errbuf)), 0);
	ASSERT_EQ_INT(canon_json(&u.data, 0, &out, errbuf, sizeof(errbuf)), 0);
	ASSERT_EQ_STR(out.data, "[1,true][1,true]");
	off = 0;
	ASSERT(msgpack_unpack_next(&u, bad, sizeof(bad) - 1, &off) ==
	    MSGPACK_UNPACK_SUCCESS);
	ASSERT_EQ_INT(canon_json(&u.data, 0, &out, errbuf, sizeof(errbuf)), -1);
	ASSERT_EQ_STR(errbuf, "args[2].b: bin values are not allowed");
	ASSERT_EQ_INT(out.len, 16);
	ASSERT_EQ_STR(out.data, "[1,true][1,true]");
	msgpack_unpacked_destroy(&u);
	canon_buf_free(&out);
}

static void
test_error_path_sanitized(void)
{
	/* {"a\nb": {"x": bin}}: the newline shows as '?'. */
	ASSERT(canon_fails("81a3610a6281a178c400", 1, "args.a?b.x: bin"));
	/* A tiny error buffer is still terminated. */
	{
		struct canon_buf	 out;
		msgpack_object		 o;
		char			 small[5];

		memset(&o, 0, sizeof(o));
		o.type = MSGPACK_OBJECT_BIN;
		memset(&out, 0, sizeof(out));
		ASSERT_EQ_INT(canon_json(&o, 0, &out, small, sizeof(small)), -1);
		ASSERT_EQ_STR(small, "args");
		canon_buf_free(&out);
	}
}

static void
test_args_hash_json_null(void)
{
	char		 h1[ARGS_HASH_LEN + 1], h2[ARGS_HASH_LEN + 1];
	msgpack_object	 o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_MAP;
	ASSERT_EQ_INT(args_hash(&o, h1, NULL, errbuf, sizeof(errbuf)), 0);
	/* sha256("{}") */
	ASSERT_EQ_STR(h1, "44136fa355b3678a1146ad16");
	ASSERT_EQ_INT(args_hash(&o, h2, NULL, errbuf, sizeof(errbuf)), 0);
	ASSERT_EQ_STR(h1, h2);
	ASSERT_EQ_INT(strlen(h1), ARGS_HASH_LEN);
}

int
main(void)
{
	size_t	 i;
	char	 name[128];

	load_vectors();
	RUN(test_vectors_file);
	for (i = 0; i < nvectors; i++) {
		cur_vector = i;
		snprintf(name, sizeof(name), "test_vector_%s", vectors[i].name);
		run_test(name, test_vector);
	}
	RUN(test_canon_double);
	RUN(test_canon_double_roundtrip);
	RUN(test_floats_in_msgpack);
	RUN(test_scalars);
	RUN(test_control_escapes);
	RUN(test_unicode);
	RUN(test_key_order);
	RUN(test_injected_keys);
	RUN(test_bin_ext);
	RUN(test_bad_keys);
	RUN(test_invalid_utf8);
	RUN(test_duplicate_keys);
	RUN(test_top_level);
	RUN(test_depth);
	RUN(test_long_path);
	RUN(test_append_and_rollback);
	RUN(test_error_path_sanitized);
	RUN(test_args_hash_json_null);
	free_vectors();
	return tests_failed != 0;
}
