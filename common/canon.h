/*
 * Canonical JSON of a msgpack value and the args hash (CONTRACT.md, "Args
 * hash and idempotency key").  The output is byte-identical to Python's
 * json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
 */
#ifndef TG_CANON_H
#define TG_CANON_H

#include <stddef.h>
#include <msgpack.h>

#include "common/frame.h"

/* Deeper nesting is bad_request: see VALUE_MAX_DEPTH. */
#define CANON_MAX_DEPTH		VALUE_MAX_DEPTH
#define ARGS_HASH_LEN		24	/* hex digits */

struct canon_buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	canon_buf_free(struct canon_buf *);

/*
 * Append the canonical JSON of 'o' to 'out'.  With 'top_level_args' set,
 * 'o' must be a map, and its top-level keys "idempotency_key" and
 * "approval_token" are left out.  Returns 0, or -1 with a message in err
 * for bin/ext values, non-string keys, invalid UTF-8, duplicate keys or
 * nesting deeper than CANON_MAX_DEPTH.
 */
int	canon_json(const msgpack_object *o, int top_level_args,
	    struct canon_buf *out, char *err, size_t errlen);

/*
 * The args hash: the first 24 hex digits of SHA-256 over the canonical
 * JSON of args.  'hash' gets ARGS_HASH_LEN + 1 bytes.  When 'json' is not
 * NULL it receives the canonical JSON (the caller frees it).
 */
int	args_hash(const msgpack_object *args, char hash[ARGS_HASH_LEN + 1],
	    struct canon_buf *json, char *err, size_t errlen);

/*
 * Python's repr() of a double, the shortest string that reads back to the
 * same value ("1.0", "1e+16", "1e-05", "-0.0").  NaN and infinities are
 * written as Python writes them ("NaN", "Infinity", "-Infinity").
 */
void	canon_double(double d, char *out, size_t outlen);

/*
 * The length of the well-formed UTF-8 sequence at p (n bytes left), or 0:
 * no overlong forms, surrogates or code points above U+10FFFF, which is
 * what Python's strict decoder accepts.  jsonmp.c uses it too.
 */
size_t	utf8_seqlen(const unsigned char *p, size_t n);
/* 1 when all n bytes at s are well-formed UTF-8 (as utf8_seqlen says). */
int	utf8_valid(const char *s, size_t n);

#endif
