/*
 * The audit log's keyed hash and the redaction of args: the hash is
 * HMAC-SHA-256 as RFC 2104 defines it (checked against Python's hmac),
 * only the named top-level members change, and what is not one compact
 * JSON object is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/auditredact.h"
#include "tests/unit/test.h"

static unsigned char	key[AUDITREDACT_KEYLEN];

static void
test_mac(void)
{
	char	out[AUDITREDACT_LEN];

	auditredact_mac(key, "\"alice@example.com\"", 19, out);
	ASSERT_EQ_STR(out, "hmac-sha256:6fe27db8c6e7931b32acaa3a54136e7f"
	    "f3f4a0bd6612d5681738fce8bfebd31a");
	auditredact_mac(key, "42", 2, out);
	ASSERT_EQ_STR(out, "hmac-sha256:7df989924b2ebf8832c80802d1213a8a"
	    "21a062a23877f0718effe501daee1703");
}

static int
redacts(const char *in, const char *want)
{
	static char		*fields[] = { "email", "card", "deep" };
	struct canon_buf	 out = { NULL, 0, 0 };
	int			 ok;

	if (auditredact_args(in, strlen(in), fields, 3, key, &out) == -1)
		ok = want == NULL;
	else
		ok = want != NULL && out.len == strlen(want) &&
		    memcmp(out.data, want, out.len) == 0;
	if (!ok)
		fprintf(stderr, "%s: got '%.*s', want %s\n", in, (int)out.len,
		    out.data ? out.data : "", want ? want : "(refused)");
	canon_buf_free(&out);
	return ok;
}

static void
test_redact(void)
{
	ASSERT(redacts("{}", "{}"));
	ASSERT(redacts("{\"a\":1}", "{\"a\":1}"));
	ASSERT(redacts("{\"a\":1,\"email\":\"alice@example.com\",\"z\":[1]}",
	    "{\"a\":1,\"email\":\"hmac-sha256:6fe27db8c6e7931b32acaa3a54136e7f"
	    "f3f4a0bd6612d5681738fce8bfebd31a\",\"z\":[1]}"));
	/* A whole value: an object with a brace in a string, a number. */
	ASSERT(redacts("{\"card\":42,\"deep\":{\"a\":[1,\"}\"]}}",
	    "{\"card\":\"hmac-sha256:7df989924b2ebf8832c80802d1213a8a"
	    "21a062a23877f0718effe501daee1703\",\"deep\":\"hmac-sha256:"
	    "fa040fa4438bd1abfa65698ba0cf0d008cef6647bace221372ef8c8c935814fb"
	    "\"}"));
	/* Nested members of the same name are left as they are. */
	ASSERT(redacts("{\"x\":{\"email\":\"e\"}}", "{\"x\":{\"email\":\"e\"}}"));
	/* A name that only looks like one, escaped, never matches. */
	ASSERT(redacts("{\"em\\u0061il\":1}", "{\"em\\u0061il\":1}"));
	ASSERT(redacts("{\"a\\\"\":\"\\\"}\"}", "{\"a\\\"\":\"\\\"}\"}"));
	/* Not one compact object. */
	ASSERT(redacts("", NULL));
	ASSERT(redacts("[1]", NULL));
	ASSERT(redacts("{\"a\"}", NULL));
	ASSERT(redacts("{\"a\":}", NULL));
	ASSERT(redacts("{\"a\":1,}", NULL));
	ASSERT(redacts("{\"a\":1}}", NULL));
	ASSERT(redacts("{\"a\":\"1}", NULL));
	ASSERT(redacts("{\"a\":[1}", NULL));
	ASSERT(redacts("{1:2}", NULL));
}

int
main(void)
{
	size_t	i;

	if (sodium_init() == -1)
		return 1;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	RUN(test_mac);
	RUN(test_redact);
	return tests_failed != 0;
}
