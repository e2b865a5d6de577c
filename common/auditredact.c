/*
 * The redaction of args in the audit log: see auditredact.h.
 *
 * The input is the canonical JSON of the args (canon.c), compact and
 * well formed, so a member's name and value are found by scanning: a
 * string ends at the first unescaped quote, any other value at the comma
 * or brace that closes it at depth 0.  The scanner still checks what it
 * relies on and refuses anything else, since a fuzzer (and a future
 * caller) may hand it any bytes.
 */
#include <string.h>

#include <sodium.h>

#include "common/xmalloc.h"
#include "common/auditredact.h"

void
auditredact_mac(const unsigned char key[AUDITREDACT_KEYLEN],
    const char *value, size_t len, char out[AUDITREDACT_LEN])
{
	unsigned char	mac[crypto_auth_hmacsha256_BYTES];
	size_t		plen = sizeof(AUDITREDACT_PREFIX) - 1;

	crypto_auth_hmacsha256(mac, (const unsigned char *)value, len, key);
	memcpy(out, AUDITREDACT_PREFIX, plen);
	sodium_bin2hex(out + plen, AUDITREDACT_LEN - plen, mac, sizeof(mac));
}

static void
put(struct canon_buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->data = xreallocarray(b->data, 1, b->cap);
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

/* Past the string that starts at i (a quote); 0 when it does not end. */
static size_t
skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/*
 * Past the value that starts at i: a string, or anything up to the ',' or
 * '}' that ends it at depth 0 (strings inside skipped whole).  0 when it
 * does not end, or is empty.
 */
static size_t
skip_value(const char *s, size_t len, size_t i)
{
	size_t	start = i;
	int	depth = 0;

	if (i < len && s[i] == '"')
		return skip_string(s, len, i);
	while (i < len) {
		switch (s[i]) {
		case '"':
			if ((i = skip_string(s, len, i)) == 0)
				return 0;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return i > start ? i : 0;
			depth--;
			break;
		case ',':
			if (depth == 0)
				return i > start ? i : 0;
			break;
		}
		i++;
	}
	return 0;
}

static int
named(const char *name, size_t n, char *const *fields, size_t nfields)
{
	size_t	i;

	for (i = 0; i < nfields; i++)
		if (strlen(fields[i]) == n && memcmp(fields[i], name, n) == 0)
			return 1;
	return 0;
}

int
auditredact_args(const char *json, size_t len, char *const *fields,
    size_t nfields, const unsigned char key[AUDITREDACT_KEYLEN],
    struct canon_buf *out)
{
	char	mac[AUDITREDACT_LEN];
	size_t	i = 1, kend, vend;

	out->len = 0;
	if (len < 2 || json[0] != '{' || json[len - 1] != '}')
		return -1;
	put(out, "{", 1);
	if (len == 2) {
		put(out, "}", 1);
		return 0;
	}
	for (;;) {
		/* "name":value */
		if (json[i] != '"' || (kend = skip_string(json, len, i)) == 0 ||
		    kend >= len || json[kend] != ':' ||
		    (vend = skip_value(json, len, kend + 1)) == 0 ||
		    vend >= len)
			return -1;
		put(out, json + i, kend + 1 - i);
		/* A name with an escape is no config name: it never matches. */
		if (named(json + i + 1, kend - i - 2, fields, nfields)) {
			auditredact_mac(key, json + kend + 1, vend - kend - 1,
			    mac);
			put(out, "\"", 1);
			put(out, mac, strlen(mac));
			put(out, "\"", 1);
		} else
			put(out, json + kend + 1, vend - kend - 1);
		if (json[vend] == '}')
			break;
		if (json[vend] != ',' || vend + 1 >= len)
			return -1;
		put(out, ",", 1);
		i = vend + 1;
	}
	if (vend != len - 1)
		return -1;
	put(out, "}", 1);
	return 0;
}
