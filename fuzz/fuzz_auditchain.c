/*
 * libFuzzer target for auditchain.c's decoders: the input is audit log
 * text.  Properties, each an abort() when broken:
 *
 *  - auditchain_parse() and auditchain_head_parse() take any bytes, and a
 *    line they accept has a prev (or hash) of 64 lower-case hex digits;
 *  - a kept head parsed from the input prints as JSON that parses back to
 *    the same head;
 *  - the verifier takes any lines, in any order, and its verdict is 0 or
 *    -1 with a message; the same lines give the same verdict twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/auditchain.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
hex64(const char *s)
{
	size_t	i;

	if (strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
verdict(const char *buf, size_t len, char *msg, size_t msglen)
{
	struct auditverify	*v = auditverify_new(NULL, NULL);
	const char		*p = buf, *nl;
	uint64_t		 lines, heads;
	int			 rc;

	auditverify_file(v, "fuzz", 0);
	while ((nl = memchr(p, '\n', len - (size_t)(p - buf))) != NULL) {
		auditverify_line(v, p, (size_t)(nl - p));
		p = nl + 1;
	}
	rc = auditverify_end(v, msg, msglen, &lines, &heads);
	auditverify_free(v);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auditline	 l;
	struct audithead	 h, h2;
	const char		*why;
	char			 m1[1024], m2[1024], *j;
	int			 r1, r2;

	if (sodium_init() < 0)
		abort();
	if (auditchain_parse((const char *)data, size, &l, &why) == 0 &&
	    (!hex64(l.prev) || (l.is_head && !hex64(l.head_hash))))
		abort();
	if (auditchain_head_parse((const char *)data, size, &h, &why) == 0) {
		if (!hex64(h.hash))
			abort();
		if ((j = auditchain_head_json(&h)) == NULL ||
		    auditchain_head_parse(j, strlen(j), &h2, &why) != 0 ||
		    memcmp(&h, &h2, sizeof(h)) != 0)
			abort();
		free(j);
	}
	r1 = verdict((const char *)data, size, m1, sizeof(m1));
	r2 = verdict((const char *)data, size, m2, sizeof(m2));
	if ((r1 != 0 && r1 != -1) || r1 != r2 || strcmp(m1, m2) != 0)
		abort();
	return 0;
}
