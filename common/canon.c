/*
 * Canonical JSON of a msgpack value, and the args hash (CONTRACT.md, "Args
 * hash and idempotency key").
 *
 * The output must be byte-identical to what the Python reference produces:
 *
 *	json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
 *
 * for the value Python's msgpack package decodes from the same bytes.  Two
 * executors (or an executor and a test written in Python) that disagree on
 * one byte compute different idempotency keys, and a retried write would
 * run twice; so every rule below copies a detail of CPython, and where
 * Python would quietly pick one reading of an ambiguous value (a duplicate
 * key) we refuse the value instead.
 */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/canon.h"
#include "common/xmalloc.h"

/* Enough for "-" + 17 digits + "." + "e-324" and for "0.0001" + 17 digits. */
#define DOUBLE_BUFLEN	32

/* The path in error messages ("args.meta.x") is cut here. */
#define PATH_MAX_LEN	96

struct canon {
	struct canon_buf	*out;
	char			*err;
	size_t			 errlen;
	char			 path[PATH_MAX_LEN + 3];	/* + "..." */
	size_t			 pathlen;
};

static const char *const injected_keys[] = {
	"idempotency_key",
	"approval_token",
};

static void	buf_add(struct canon_buf *, const void *, size_t);
static void	buf_addc(struct canon_buf *, char);
static void	buf_adds(struct canon_buf *, const char *);
static int	fail(struct canon *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	path_addc(struct canon *, char);
static size_t	path_push_key(struct canon *, const char *, size_t);
static size_t	path_push_index(struct canon *, uint32_t);
static void	path_pop(struct canon *, size_t);
static void	put_string(struct canon *, const char *, size_t);
static int	put_value(struct canon *, const msgpack_object *, int);
static int	put_array(struct canon *, const msgpack_object_array *, int);
static int	put_map(struct canon *, const msgpack_object_map *, int, int);
static int	kv_cmp(const void *, const void *);
static int	is_injected(const msgpack_object_str *);
static void	shortest_digits(double, char [20], int *);

void
canon_buf_free(struct canon_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/*
 * The buffer always keeps a NUL after its 'len' bytes, so callers may
 * print it; 'len' never counts that NUL (embedded NULs are escaped in
 * canonical JSON, but the hash covers exactly 'len' bytes anyway).
 */
static void
buf_add(struct canon_buf *b, const void *p, size_t n)
{
	size_t	 need, ncap;

	/* Cannot happen: the input this is built from is in memory. */
	if (n > SIZE_MAX - b->len - 1)
		abort();
	need = b->len + n + 1;
	if (need > b->cap) {
		ncap = b->cap ? b->cap : 64;
		while (ncap < need)
			ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
		b->data = xreallocarray(b->data, ncap, 1);
		b->cap = ncap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_addc(struct canon_buf *b, char c)
{
	buf_add(b, &c, 1);
}

static void
buf_adds(struct canon_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/*
 * Length of the well-formed UTF-8 sequence at 'p', or 0 if there is none
 * (Unicode 15, table 3-7).  The second-byte ranges are what rule out
 * overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF)
 * and code points above U+10FFFF (F4 90..BF, F5..FF).  This is exactly
 * what Python's strict UTF-8 decoder accepts, so a string we accept is a
 * string Python's msgpack would have decoded.
 */
size_t
utf8_seqlen(const unsigned char *p, size_t n)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2)
		return 0;
	else if (p[0] < 0xe0)
		len = 2;
	else if (p[0] < 0xf0) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] < 0xf5) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 l;

	while (n > 0) {
		if ((l = utf8_seqlen(p, n)) == 0)
			return 0;
		p += l;
		n -= l;
	}
	return 1;
}

/* Report "path: message"; always returns -1. */
static int
fail(struct canon *c, const char *fmt, ...)
{
	char	 msg[128];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->errlen > 0)
		snprintf(c->err, c->errlen, "%.*s: %s", (int)c->pathlen,
		    c->path, msg);
	return -1;
}

/*
 * The path is for a human reading an error, not for parsing: key bytes
 * outside printable ASCII show as '?', and a path longer than
 * PATH_MAX_LEN ends in "...".  Each push returns the old length for
 * path_pop().
 */
static void
path_addc(struct canon *c, char ch)
{
	if (c->pathlen < PATH_MAX_LEN)
		c->path[c->pathlen++] = ch;
	else if (c->pathlen == PATH_MAX_LEN) {
		memcpy(c->path + c->pathlen, "...", 3);
		c->pathlen += 3;
	}
}

static size_t
path_push_key(struct canon *c, const char *k, size_t n)
{
	size_t	 old = c->pathlen, i;

	path_addc(c, '.');
	for (i = 0; i < n && c->pathlen < PATH_MAX_LEN; i++)
		path_addc(c, (k[i] > 0x20 && k[i] < 0x7f) ? k[i] : '?');
	if (i < n)
		path_addc(c, '.');	/* only to add the "..." */
	return old;
}

static size_t
path_push_index(struct canon *c, uint32_t i)
{
	char	 s[16], *p;
	size_t	 old = c->pathlen;

	snprintf(s, sizeof(s), "[%" PRIu32 "]", i);
	for (p = s; *p != '\0'; p++)
		path_addc(c, *p);
	return old;
}

static void
path_pop(struct canon *c, size_t old)
{
	c->pathlen = old;
}

/*
 * Python's json string encoder with ensure_ascii=False: '"' and '\' and
 * the five controls with short escapes get them, every other byte below
 * 0x20 becomes \u00XX in lower case hex, and everything else, DEL and all
 * non-ASCII included, is copied as is.  The caller has checked UTF-8.
 */
static void
put_string(struct canon *c, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 esc[7];
	size_t			 i, run = 0;
	unsigned char		 ch;

	/* msgpack-c gives an empty str a NULL pointer: no arithmetic on it. */
	if (n == 0) {
		buf_adds(c->out, "\"\"");
		return;
	}
	buf_addc(c->out, '"');
	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		buf_add(c->out, s + run, i - run);
		run = i + 1;
		switch (ch) {
		case '"':
			buf_adds(c->out, "\\\"");
			break;
		case '\\':
			buf_adds(c->out, "\\\\");
			break;
		case '\n':
			buf_adds(c->out, "\\n");
			break;
		case '\r':
			buf_adds(c->out, "\\r");
			break;
		case '\t':
			buf_adds(c->out, "\\t");
			break;
		case '\b':
			buf_adds(c->out, "\\b");
			break;
		case '\f':
			buf_adds(c->out, "\\f");
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 0xf];
			buf_add(c->out, esc, 6);
			break;
		}
	}
	buf_add(c->out, s + run, n - run);
	buf_addc(c->out, '"');
}

/*
 * Keys compare as byte strings, shorter prefix first.  For well-formed
 * UTF-8 that is the same order as comparing code point by code point
 * (UTF-8 was designed to keep it), which is what Python's sorted() does
 * with str keys.  Keys are checked to be UTF-8 before we sort.
 */
static int
kv_cmp(const void *a, const void *b)
{
	const msgpack_object_str *ka = &(*(const msgpack_object_kv *const *)a)
	    ->key.via.str;
	const msgpack_object_str *kb = &(*(const msgpack_object_kv *const *)b)
	    ->key.via.str;
	uint32_t	 n = ka->size < kb->size ? ka->size : kb->size;
	int		 r;

	if (n > 0 && (r = memcmp(ka->ptr, kb->ptr, n)) != 0)
		return r;
	if (ka->size != kb->size)
		return ka->size < kb->size ? -1 : 1;
	return 0;
}

static int
is_injected(const msgpack_object_str *k)
{
	size_t	 i;

	for (i = 0; i < sizeof(injected_keys) / sizeof(injected_keys[0]); i++)
		if (k->size == strlen(injected_keys[i]) &&
		    memcmp(k->ptr, injected_keys[i], k->size) == 0)
			return 1;
	return 0;
}

/*
 * A map: check every key, sort, refuse duplicates, then write the pairs.
 * Duplicates are checked before the injected keys are dropped, so two
 * "approval_token" keys are refused too: whoever reads that key must not
 * be left to guess which one was meant.
 */
static int
put_map(struct canon *c, const msgpack_object_map *m, int depth, int top)
{
	const msgpack_object_kv	**kv = NULL;
	const msgpack_object_str *k;
	uint32_t		 i;
	size_t			 old;
	int			 first = 1, rv = -1;

	if (m->size > 0)
		kv = xreallocarray(NULL, m->size, sizeof(*kv));
	for (i = 0; i < m->size; i++) {
		kv[i] = &m->ptr[i];
		if (kv[i]->key.type != MSGPACK_OBJECT_STR) {
			fail(c, "map keys must be strings");
			goto done;
		}
		k = &kv[i]->key.via.str;
		if (!utf8_valid(k->ptr, k->size)) {
			fail(c, "invalid UTF-8 in a key");
			goto done;
		}
	}
	if (m->size > 1)
		qsort(kv, m->size, sizeof(*kv), kv_cmp);
	for (i = 1; i < m->size; i++) {
		if (kv_cmp(&kv[i - 1], &kv[i]) == 0) {
			k = &kv[i]->key.via.str;
			old = path_push_key(c, k->ptr, k->size);
			fail(c, "duplicate key");
			path_pop(c, old);
			goto done;
		}
	}

	buf_addc(c->out, '{');
	for (i = 0; i < m->size; i++) {
		k = &kv[i]->key.via.str;
		if (top && is_injected(k))
			continue;
		if (!first)
			buf_addc(c->out, ',');
		first = 0;
		put_string(c, k->ptr, k->size);
		buf_addc(c->out, ':');
		old = path_push_key(c, k->ptr, k->size);
		if (put_value(c, &kv[i]->val, depth) == -1)
			goto done;
		path_pop(c, old);
	}
	buf_addc(c->out, '}');
	rv = 0;
 done:
	free(kv);
	return rv;
}

static int
put_array(struct canon *c, const msgpack_object_array *a, int depth)
{
	uint32_t	 i;
	size_t		 old;

	buf_addc(c->out, '[');
	for (i = 0; i < a->size; i++) {
		if (i > 0)
			buf_addc(c->out, ',');
		old = path_push_index(c, i);
		if (put_value(c, &a->ptr[i], depth) == -1)
			return -1;
		path_pop(c, old);
	}
	buf_addc(c->out, ']');
	return 0;
}

/*
 * 'depth' counts the containers around 'o'; a container at depth
 * CANON_MAX_DEPTH is still fine, one inside it is not.  The top-level
 * map of args is at depth 1.
 */
static int
put_value(struct canon *c, const msgpack_object *o, int depth)
{
	char	 num[DOUBLE_BUFLEN];

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		buf_adds(c->out, "null");
		return 0;
	case MSGPACK_OBJECT_BOOLEAN:
		buf_adds(c->out, o->via.boolean ? "true" : "false");
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
		buf_adds(c->out, num);
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(num, sizeof(num), "%" PRId64, o->via.i64);
		buf_adds(c->out, num);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
		/*
		 * msgpack-c has already widened the float to a double, as
		 * Python's msgpack does; repr() of that double is what
		 * Python writes ("0.10000000149011612" for float32 0.1).
		 */
	case MSGPACK_OBJECT_FLOAT64:
		canon_double(o->via.f64, num, sizeof(num));
		buf_adds(c->out, num);
		return 0;
	case MSGPACK_OBJECT_STR:
		if (!utf8_valid(o->via.str.ptr, o->via.str.size))
			return fail(c, "invalid UTF-8");
		put_string(c, o->via.str.ptr, o->via.str.size);
		return 0;
	case MSGPACK_OBJECT_ARRAY:
		if (depth >= CANON_MAX_DEPTH)
			return fail(c, "nested too deeply");
		return put_array(c, &o->via.array, depth + 1);
	case MSGPACK_OBJECT_MAP:
		if (depth >= CANON_MAX_DEPTH)
			return fail(c, "nested too deeply");
		return put_map(c, &o->via.map, depth + 1, 0);
	case MSGPACK_OBJECT_BIN:
		return fail(c, "bin values are not allowed");
	case MSGPACK_OBJECT_EXT:
		return fail(c, "ext values are not allowed");
	}
	return fail(c, "unknown msgpack type");
}

/*
 * On failure 'out' is cut back to the length it had, so a caller that
 * appends several values never sends half of one.
 */
int
canon_json(const msgpack_object *o, int top_level_args, struct canon_buf *out,
    char *err, size_t errlen)
{
	struct canon	 c;
	size_t		 start = out->len;
	int		 rv;

	memset(&c, 0, sizeof(c));
	c.out = out;
	c.err = err;
	c.errlen = errlen;
	memcpy(c.path, "args", 4);
	c.pathlen = 4;

	if (top_level_args) {
		if (o->type != MSGPACK_OBJECT_MAP)
			return fail(&c, "must be a map");
		rv = put_map(&c, &o->via.map, 1, 1);
	} else
		rv = put_value(&c, o, 0);
	if (rv == -1 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rv;
}

/*
 * Whatever 'json' held before is not looked at (it may be uninitialized);
 * on failure it is left empty, so canon_buf_free() on it is always safe.
 */
int
args_hash(const msgpack_object *args, char hash[ARGS_HASH_LEN + 1],
    struct canon_buf *json, char *err, size_t errlen)
{
	static const char	 hex[] = "0123456789abcdef";
	struct canon_buf	 b;
	unsigned char		 md[crypto_hash_sha256_BYTES];
	size_t			 i;

	memset(&b, 0, sizeof(b));
	if (json != NULL)
		memset(json, 0, sizeof(*json));
	hash[0] = '\0';
	/* Idempotent; makes the hash safe to use before the caller's init. */
	if (sodium_init() == -1) {
		if (errlen > 0)
			snprintf(err, errlen, "args: libsodium unavailable");
		return -1;
	}
	if (canon_json(args, 1, &b, err, errlen) == -1) {
		canon_buf_free(&b);
		return -1;
	}
	crypto_hash_sha256(md, (const unsigned char *)b.data, b.len);
	for (i = 0; i < ARGS_HASH_LEN / 2; i++) {
		hash[2 * i] = hex[md[i] >> 4];
		hash[2 * i + 1] = hex[md[i] & 0xf];
	}
	hash[ARGS_HASH_LEN] = '\0';
	sodium_memzero(md, sizeof(md));
	if (json != NULL)
		*json = b;
	else
		canon_buf_free(&b);
	return 0;
}

/*
 * The shortest digits that read back to 'd' (d > 0, finite), as a digit
 * string without trailing zeros and the decimal exponent of the first
 * digit: what CPython's repr() gets from David Gay's dtoa in mode 0.
 * glibc's printf rounds correctly, so "%.*e" with p significant digits
 * gives the p-digit decimal nearest to d, and the first p whose result
 * reads back is the shortest length.  (At a power of two the interval
 * that reads back to d is lopsided, so in principle the nearest p-digit
 * decimal could miss while the one above d hits; comparing against
 * Python's repr for every power of two and about two million other
 * doubles found no such case, so we keep the simple loop.)
 */
static void
shortest_digits(double d, char digits[20], int *exp10)
{
	char	 s[DOUBLE_BUFLEN], *e;
	int	 p, n;

	for (p = 1; p <= 17; p++) {
		snprintf(s, sizeof(s), "%.*e", p - 1, d);
		if (strtod(s, NULL) == d)
			break;
	}
	/*
	 * s is "D.DDDDe[+-]XX" or "De[+-]XX"; the point is whatever the
	 * locale says, so take the digits and skip anything else.
	 */
	n = 0;
	for (e = s; *e != 'e'; e++)
		if (*e >= '0' && *e <= '9')
			digits[n++] = *e;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*exp10 = atoi(e + 1);
}

/*
 * CPython's float_repr_style "short" with Py_DTSF_ADD_DOT_0: positional
 * when the decimal exponent is in -4..15, otherwise "d.ddde+XX" with at
 * least two exponent digits.  json.dumps() uses float.__repr__, and
 * writes NaN and the infinities as JavaScript names (allow_nan=True).
 */
void
canon_double(double d, char *out, size_t outlen)
{
	char	 digits[20], s[DOUBLE_BUFLEN], *p = s;
	int	 exp10, n, i;

	if (isnan(d)) {
		snprintf(out, outlen, "NaN");
		return;
	}
	if (isinf(d)) {
		snprintf(out, outlen, "%s", d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (signbit(d))
		*p++ = '-';
	if (d == 0) {
		snprintf(p, sizeof(s) - 1, "0.0");
		snprintf(out, outlen, "%s", s);
		return;
	}
	shortest_digits(d < 0 ? -d : d, digits, &exp10);
	n = (int)strlen(digits);

	if (exp10 < -4 || exp10 >= 16) {
		*p++ = digits[0];
		if (n > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, n - 1);
			p += n - 1;
		}
		snprintf(p, sizeof(s) - (p - s), "e%c%02d",
		    exp10 < 0 ? '-' : '+', abs(exp10));
	} else if (exp10 < 0) {
		*p++ = '0';
		*p++ = '.';
		for (i = -1; i > exp10; i--)
			*p++ = '0';
		memcpy(p, digits, n);
		p[n] = '\0';
	} else if (exp10 + 1 < n) {
		memcpy(p, digits, exp10 + 1);
		p += exp10 + 1;
		*p++ = '.';
		memcpy(p, digits + exp10 + 1, n - exp10 - 1);
		p[n - exp10 - 1] = '\0';
	} else {
		memcpy(p, digits, n);
		p += n;
		for (i = n; i <= exp10; i++)
			*p++ = '0';
		memcpy(p, ".0", 3);
	}
	snprintf(out, outlen, "%s", s);
}
