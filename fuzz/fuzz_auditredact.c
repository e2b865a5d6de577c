/*
 * libFuzzer target for auditredact.c: the input is the canonical JSON of
 * some args (any bytes, as a future caller might pass).  Properties, each
 * an abort() when broken:
 *
 *  - nothing is read past the input, and a refusal is all that bad input
 *    costs;
 *  - when jansson reads the input as one object, and the redaction takes
 *    it, the output is an object with the same member names in the same
 *    number, the named ones' values "hmac-sha256:" strings and every
 *    other value unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/auditredact.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	*fields[] = { "a", "email", "card" };

static int
is_field(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(name, fields[i]) == 0)
			return 1;
	return 0;
}

static void
check(json_t *in, json_t *out)
{
	const char	*k, *s;
	json_t		*v, *w;

	if (!json_is_object(out) || json_object_size(out) !=
	    json_object_size(in)) {
		fprintf(stderr, "not the same members\n");
		abort();
	}
	json_object_foreach(in, k, v) {
		if ((w = json_object_get(out, k)) == NULL) {
			fprintf(stderr, "member %s lost\n", k);
			abort();
		}
		if (is_field(k)) {
			s = json_string_value(w);
			if (s == NULL || strncmp(s, AUDITREDACT_PREFIX,
			    strlen(AUDITREDACT_PREFIX)) != 0 ||
			    strlen(s) != AUDITREDACT_LEN - 1) {
				fprintf(stderr, "member %s not redacted\n", k);
				abort();
			}
		} else if (!json_equal(v, w)) {
			fprintf(stderr, "member %s changed\n", k);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char	 key[AUDITREDACT_KEYLEN] = { 1, 2, 3 };
	struct canon_buf		 out = { NULL, 0, 0 };
	json_t				*in, *o;
	char				*copy;

	/* Exactly size bytes, so that a read past them is caught. */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	if (auditredact_args(copy, size, fields, 3, key, &out) == 0 &&
	    (in = json_loadb(copy, size, JSON_REJECT_DUPLICATES, NULL)) !=
	    NULL) {
		if (json_is_object(in)) {
			if ((o = json_loadb(out.data, out.len, 0, NULL)) ==
			    NULL) {
				fprintf(stderr, "output is not JSON\n");
				abort();
			}
			check(in, o);
			json_decref(o);
		}
		json_decref(in);
	}
	free(copy);
	canon_buf_free(&out);
	return 0;
}
