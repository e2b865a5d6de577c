/*
 * JSON text without jansson (jsonout.h).  tests/unit/test_jsonout.c holds
 * it to jansson's bytes.
 */
#include <stdio.h>
#include <string.h>

#include "common/canon.h"
#include "common/jsonout.h"
#include "common/xmalloc.h"

static void
reserve(struct jsonout *o, size_t n)
{
	if (o->cap - o->len >= n)
		return;
	o->cap = (o->len + n) * 2;
	o->buf = xreallocarray(o->buf, 1, o->cap);
}

void
jsonout_raw(struct jsonout *o, const char *s, size_t n)
{
	reserve(o, n);
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

void
jsonout_int(struct jsonout *o, long long v)
{
	reserve(o, 24);
	o->len += (size_t)snprintf(o->buf + o->len, 24, "%lld", v);
}

/* One code point as jansson writes it under JSON_ENSURE_ASCII. */
static void
escape_cp(struct jsonout *o, unsigned long cp)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned long		u[2];
	int			i, n = 1;
	char			*p;

	u[0] = cp;
	if (cp >= 0x10000) {
		cp -= 0x10000;
		u[0] = 0xd800 | ((cp & 0xffc00) >> 10);
		u[1] = 0xdc00 | (cp & 0x3ff);
		n = 2;
	}
	reserve(o, 12);
	p = o->buf + o->len;
	for (i = 0; i < n; i++) {
		*p++ = '\\';
		*p++ = 'u';
		*p++ = hex[(u[i] >> 12) & 0xf];
		*p++ = hex[(u[i] >> 8) & 0xf];
		*p++ = hex[(u[i] >> 4) & 0xf];
		*p++ = hex[u[i] & 0xf];
	}
	o->len += 6 * n;
}

int
jsonout_str(struct jsonout *o, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), i, run, l;
	unsigned long		 cp;

	if (!utf8_valid(s, n))
		return -1;
	reserve(o, n + 2);
	o->buf[o->len++] = '"';
	for (i = 0; i < n; i += l) {
		/* Plain ASCII goes as it is, a run at a time. */
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i)
			jsonout_raw(o, s + i, run - i);
		if ((i = run) >= n)
			break;
		l = 1;
		switch (p[i]) {
		case '"':
			jsonout_raw(o, "\\\"", 2);
			continue;
		case '\\':
			jsonout_raw(o, "\\\\", 2);
			continue;
		case '\b':
			jsonout_raw(o, "\\b", 2);
			continue;
		case '\f':
			jsonout_raw(o, "\\f", 2);
			continue;
		case '\n':
			jsonout_raw(o, "\\n", 2);
			continue;
		case '\r':
			jsonout_raw(o, "\\r", 2);
			continue;
		case '\t':
			jsonout_raw(o, "\\t", 2);
			continue;
		}
		if (p[i] < 0x80) {
			escape_cp(o, p[i]);
			continue;
		}
		/* Well-formed (checked above): decode and escape it. */
		l = utf8_seqlen(p + i, n - i);
		cp = p[i] & (0xff >> (l + 1));
		for (run = 1; run < l; run++)
			cp = cp << 6 | (p[i + run] & 0x3f);
		escape_cp(o, cp);
	}
	jsonout_raw(o, "\"", 1);
	return 0;
}
