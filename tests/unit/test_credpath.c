/*
 * Credential paths (common/credpath.c): a tree outside systemd, systemd's
 * flat names inside $CREDENTIALS_DIRECTORY, the config's
 * $CREDENTIALS_DIRECTORY expanded, and the flat names that would be
 * ambiguous refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/credpath.h"
#include "tests/unit/test.h"

#define CD	"/run/credentials/toolgate.service"

static const char *const three[] = { "acme", "prod", "kb.read" };

static void
test_tree(void)
{
	char		 buf[256];
	const char	*why = NULL;

	unsetenv("CREDENTIALS_DIRECTORY");
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), "/etc/toolgate/credentials",
	    three, 3, &why), 0);
	ASSERT_EQ_STR(buf, "/etc/toolgate/credentials/acme/prod/kb.read");
	ASSERT(!credpath_flat("/etc/toolgate/credentials"));
	/* Outside systemd's directory, '_' is only a character. */
	setenv("CREDENTIALS_DIRECTORY", CD, 1);
	{
		const char *const c[] = { "a_b", "c", "t" };

		ASSERT_EQ_INT(credpath(buf, sizeof(buf), "/srv/creds", c, 3,
		    &why), 0);
		ASSERT_EQ_STR(buf, "/srv/creds/a_b/c/t");
	}
	/* A sibling whose name begins like it is not it. */
	ASSERT(!credpath_flat(CD "x/toolgate"));
	ASSERT(!credpath_flat(CD "/a/b"));
}

static void
test_flat(void)
{
	char		 buf[256];
	const char	*why = NULL;
	const char *const key[] = { "checkpoint.key" };
	const char *const tool_[] = { "acme", "prod", "kb_read" };

	setenv("CREDENTIALS_DIRECTORY", CD, 1);
	/* LoadCredential=toolgate:/etc/toolgate/credentials */
	ASSERT(credpath_flat(CD "/toolgate"));
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/toolgate", three, 3,
	    &why), 0);
	ASSERT_EQ_STR(buf, CD "/toolgate_acme_prod_kb.read");
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/toolgate", key, 1,
	    &why), 0);
	ASSERT_EQ_STR(buf, CD "/toolgate_checkpoint.key");
	/* One LoadCredential= per file, named acme_prod_kb.read. */
	ASSERT(credpath_flat(CD));
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/", three, 3, &why), 0);
	ASSERT_EQ_STR(buf, CD "/acme_prod_kb.read");
	/* The last name may have '_': nothing follows it. */
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/toolgate", tool_, 3,
	    &why), 0);
	ASSERT_EQ_STR(buf, CD "/toolgate_acme_prod_kb_read");
}

static void
test_flat_ambiguous(void)
{
	char		 buf[256];
	const char	*why = NULL;
	const char *const t[] = { "a_b", "c", "tool" };
	const char *const e[] = { "a", "b_c", "tool" };

	setenv("CREDENTIALS_DIRECTORY", CD, 1);
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/toolgate", t, 3, &why),
	    -1);
	ASSERT(why != NULL && strstr(why, "told apart") != NULL);
	why = NULL;
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), CD "/toolgate", e, 3, &why),
	    -1);
	ASSERT(why != NULL);
}

static void
test_too_long(void)
{
	char		 buf[32];
	const char	*why = NULL;

	unsetenv("CREDENTIALS_DIRECTORY");
	ASSERT_EQ_INT(credpath(buf, sizeof(buf), "/etc/toolgate/credentials",
	    three, 3, &why), -1);
	ASSERT_EQ_STR(why, "credential path too long");
}

static void
test_expand(void)
{
	char		*p;
	const char	*why = NULL;

	setenv("CREDENTIALS_DIRECTORY", CD, 1);
	p = credpath_expand("$CREDENTIALS_DIRECTORY/toolgate", &why);
	ASSERT_EQ_STR(p, CD "/toolgate");
	free(p);
	p = credpath_expand("$CREDENTIALS_DIRECTORY", &why);
	ASSERT_EQ_STR(p, CD);
	free(p);
	/* Only the whole name, and only at the start. */
	p = credpath_expand("$CREDENTIALS_DIRECTORYX/a", &why);
	ASSERT_EQ_STR(p, "$CREDENTIALS_DIRECTORYX/a");
	free(p);
	p = credpath_expand("/etc/$CREDENTIALS_DIRECTORY", &why);
	ASSERT_EQ_STR(p, "/etc/$CREDENTIALS_DIRECTORY");
	free(p);
	unsetenv("CREDENTIALS_DIRECTORY");
	ASSERT(credpath_expand("$CREDENTIALS_DIRECTORY/x", &why) == NULL);
	ASSERT(why != NULL && strstr(why, "not set") != NULL);
	/* A relative value is no directory of systemd's. */
	setenv("CREDENTIALS_DIRECTORY", "relative", 1);
	why = NULL;
	ASSERT(credpath_expand("$CREDENTIALS_DIRECTORY/x", &why) == NULL);
	ASSERT(why != NULL);
}

int
main(void)
{
	RUN(test_tree);
	RUN(test_flat);
	RUN(test_flat_ambiguous);
	RUN(test_too_long);
	RUN(test_expand);
	return tests_failed != 0;
}
