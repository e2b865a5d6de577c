/*
 * The policy gate (common/policy.c) on configs loaded from YAML: default
 * deny, reads always, writes only with writes.enabled and the kill switch
 * off, and a tool nobody described is a write.  The reference safe default
 * must not let a single write through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/policy.h"
#include "proto/proto.h"
#include "tests/unit/test.h"

/*
 * kb.read:      allowed, mode read
 * ticket.close: allowed, mode write
 * nomode.tool:  allowed, in the catalog without a mode
 * other.read:   in the catalog as a read, not allowed
 * (A tool allowed but not in the catalog needs a config without a
 * catalog: NOCAT_BODY.)
 */
#define CONF_BODY							\
	"tools:\n"							\
	"  default_mode: read_only\n"					\
	"  allow: [kb.read, ticket.close, nomode.tool]\n"		\
	"catalog:\n"							\
	"  kb.read: { mode: read, exec: [/bin/true] }\n"		\
	"  ticket.close: { mode: write, exec: [/bin/true] }\n"		\
	"  nomode.tool: { exec: [/bin/true] }\n"			\
	"  other.read: { mode: read, exec: [/bin/true] }\n"

/* nocat.tool: allowed, and no catalog at all (a policy template). */
#define NOCAT_BODY							\
	"tools:\n"							\
	"  allow: [nocat.tool]\n"

static const char *const allowed[] = {
	"kb.read", "ticket.close", "nomode.tool",
};
static const char *const writers[] = {
	"ticket.close", "nomode.tool",
};
static const char *const refused_names[] = {
	"other.read", "unknown.tool", "", "KB.read", "kb.read ", "kb",
	"kb.read.x", "ticket.close\n", "*",
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static struct config *
load_text(const char *text)
{
	struct config	*c;
	const char	*dir;
	char		 path[1024], err[1024];
	int		 fd;
	size_t		 len = strlen(text);

	if ((dir = getenv("TMPDIR")) == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/test_policy.XXXXXX", dir);
	if ((fd = mkstemp(path)) == -1)
		return NULL;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	c = config_load(path, err, sizeof(err));
	unlink(path);
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	return c;
}

static struct config *
load_writes(int enabled)
{
	return load_text(enabled ? CONF_BODY "writes:\n  enabled: true\n" :
	    CONF_BODY "writes:\n  enabled: false\n");
}

static const char *
shared_dir(void)
{
	const char	*s;

	if ((s = getenv("TG_SHARED")) != NULL && *s != '\0')
		return s;
	return "../shared";
}

static void
test_not_allowed(void)
{
	struct config	*c[2];
	const char	*reason;
	size_t		 i;
	int		 e, on;

	c[0] = load_writes(0);
	c[1] = load_writes(1);
	ASSERT(c[0] != NULL && c[1] != NULL);
	for (e = 0; e < 2; e++) {
		for (on = 0; on < 2; on++) {
			for (i = 0; i < NELEM(refused_names); i++) {
				reason = NULL;
				if (policy_gate(c[e], refused_names[i], on,
				    &reason) != GATE_DENY)
					fprintf(stderr, "'%s' passed\n",
					    refused_names[i]);
				ASSERT(policy_gate(c[e], refused_names[i], on,
				    &reason) == GATE_DENY);
				ASSERT_EQ_STR(reason, R_NOT_ALLOWED);
			}
		}
	}
	config_free(c[0]);
	config_free(c[1]);
}

/* A read is a read whatever the writes settings. */
static void
test_read(void)
{
	struct config	*c[2];
	const char	*reason;
	int		 e, on;

	c[0] = load_writes(0);
	c[1] = load_writes(1);
	ASSERT(c[0] != NULL && c[1] != NULL);
	for (e = 0; e < 2; e++) {
		for (on = 0; on < 2; on++) {
			reason = "unchanged";
			ASSERT(policy_gate(c[e], "kb.read", on, &reason) ==
			    GATE_READ);
			ASSERT(reason == NULL);
		}
	}
	config_free(c[0]);
	config_free(c[1]);
}

static void
test_writes_disabled(void)
{
	struct config	*c;
	const char	*reason;
	size_t		 i;
	int		 on;

	c = load_writes(0);
	ASSERT(c != NULL);
	ASSERT(!c->writes_enabled);
	for (i = 0; i < NELEM(writers); i++) {
		for (on = 0; on < 2; on++) {
			reason = NULL;
			ASSERT(policy_gate(c, writers[i], on, &reason) ==
			    GATE_DENY);
			ASSERT_EQ_STR(reason, R_WRITES_DISABLED);
		}
	}
	config_free(c);
}

/* writes.enabled, but the kill switch is on: still no write. */
static void
test_kill_switch(void)
{
	struct config	*c;
	const char	*reason;
	size_t		 i;

	c = load_writes(1);
	ASSERT(c != NULL);
	ASSERT(c->writes_enabled);
	for (i = 0; i < NELEM(writers); i++) {
		reason = NULL;
		ASSERT_EQ_INT(policy_gate(c, writers[i], 0, &reason), GATE_DENY);
		ASSERT_EQ_STR(reason, R_WRITES_DISABLED);
	}
	config_free(c);
}

static void
test_write(void)
{
	struct config	*c;
	const char	*reason;
	size_t		 i;

	c = load_writes(1);
	ASSERT(c != NULL);
	for (i = 0; i < NELEM(writers); i++) {
		reason = "unchanged";
		ASSERT_EQ_INT(policy_gate(c, writers[i], 1, &reason), GATE_WRITE);
		ASSERT(reason == NULL);
	}
	/* With everything on, nothing allowed is denied. */
	for (i = 0; i < NELEM(allowed); i++)
		ASSERT(policy_gate(c, allowed[i], 1, &reason) != GATE_DENY);
	/* writes_on is a flag: any non-zero value is on. */
	ASSERT_EQ_INT(policy_gate(c, "ticket.close", 2, &reason), GATE_WRITE);
	config_free(c);
}

/* Fail closed: no catalog entry, or no mode, means a write. */
static void
test_undescribed_is_write(void)
{
	struct config	*c;
	const char	*reason;

	c = load_writes(1);
	ASSERT(c != NULL);
	ASSERT(policy_tool(c, "nomode.tool") != NULL);
	ASSERT_EQ_INT(policy_tool(c, "nomode.tool")->mode, TOOL_WRITE);
	ASSERT_EQ_INT(policy_gate(c, "nomode.tool", 1, &reason), GATE_WRITE);
	ASSERT_EQ_INT(policy_gate(c, "nomode.tool", 0, &reason), GATE_DENY);
	ASSERT_EQ_STR(reason, R_WRITES_DISABLED);
	config_free(c);

	c = load_text(NOCAT_BODY "writes:\n  enabled: true\n");
	ASSERT(c != NULL);
	ASSERT(policy_tool(c, "nocat.tool") == NULL);
	ASSERT_EQ_INT(policy_tool_mode(c, "nocat.tool"), TOOL_WRITE);
	ASSERT_EQ_INT(policy_gate(c, "nocat.tool", 1, &reason), GATE_WRITE);
	ASSERT_EQ_INT(policy_gate(c, "nocat.tool", 0, &reason), GATE_DENY);
	ASSERT_EQ_STR(reason, R_WRITES_DISABLED);
	config_free(c);
}

/* Only the allowlist counts: being in the catalog allows nothing. */
static void
test_empty_allow(void)
{
	struct config	*c;
	const char	*reason;

	c = load_text("catalog:\n"
	    "  kb.read: { mode: read, exec: [/bin/true] }\n"
	    "writes:\n  enabled: true\n");
	ASSERT(c != NULL);
	ASSERT_EQ_INT(c->nallow, 0);
	ASSERT_EQ_INT(policy_gate(c, "kb.read", 1, &reason), GATE_DENY);
	ASSERT_EQ_STR(reason, R_NOT_ALLOWED);
	config_free(c);
}

static void
test_safe_default(void)
{
	struct config	*c;
	const char	*reason;
	char		 path[1024], err[1024];
	size_t		 i;
	int		 on;

	snprintf(path, sizeof(path), "%s/spec/safe-default.yaml",
	    shared_dir());
	c = config_load(path, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "%s\n", err);
	ASSERT(c != NULL);
	ASSERT(c->nallow > 0);
	for (i = 0; i < c->nallow; i++) {
		for (on = 0; on < 2; on++) {
			reason = NULL;
			if (policy_gate(c, c->allow[i], on, &reason) !=
			    GATE_DENY)
				fprintf(stderr, "%s passes\n", c->allow[i]);
			ASSERT(policy_gate(c, c->allow[i], on, &reason) ==
			    GATE_DENY);
			ASSERT_EQ_STR(reason, R_WRITES_DISABLED);
		}
	}
	for (i = 0; i < NELEM(refused_names); i++) {
		ASSERT(policy_gate(c, refused_names[i], 1, &reason) ==
		    GATE_DENY);
		ASSERT_EQ_STR(reason, R_NOT_ALLOWED);
	}
	config_free(c);
}

static void
test_messages(void)
{
	struct config	*off, *on;
	char		 m[4][256], tiny[8];
	int		 i, j;

	off = load_writes(0);
	on = load_writes(1);
	ASSERT(off != NULL && on != NULL);
	policy_message(off, "x.tool", R_NOT_ALLOWED, 1, m[0], sizeof(m[0]));
	policy_message(off, "x.tool", R_WRITES_DISABLED, 1, m[1],
	    sizeof(m[1]));
	policy_message(on, "x.tool", R_WRITES_DISABLED, 0, m[2],
	    sizeof(m[2]));
	policy_message(on, "x.tool", R_BUDGET_EXCEEDED, 1, m[3],
	    sizeof(m[3]));
	for (i = 0; i < 4; i++) {
		ASSERT(strstr(m[i], "x.tool") != NULL);
		for (j = 0; j < i; j++)
			ASSERT(strcmp(m[i], m[j]) != 0);
	}
	ASSERT(strstr(m[0], "not allowed") != NULL);
	ASSERT(strstr(m[1], "writes.enabled") != NULL);
	ASSERT(strstr(m[2], "kill switch") != NULL);
	ASSERT(strstr(m[3], R_BUDGET_EXCEEDED) != NULL);
	/* writes.enabled false is named even with the kill switch on too. */
	policy_message(off, "x.tool", R_WRITES_DISABLED, 0, m[1],
	    sizeof(m[1]));
	ASSERT(strstr(m[1], "writes.enabled") != NULL);
	/* A short buffer is cut and terminated. */
	memset(tiny, 'z', sizeof(tiny));
	policy_message(off, "x.tool", R_NOT_ALLOWED, 1, tiny, sizeof(tiny));
	ASSERT_EQ_INT(strlen(tiny), sizeof(tiny) - 1);
	config_free(off);
	config_free(on);
}

int
main(void)
{
	RUN(test_not_allowed);
	RUN(test_read);
	RUN(test_writes_disabled);
	RUN(test_kill_switch);
	RUN(test_write);
	RUN(test_undescribed_is_write);
	RUN(test_empty_allow);
	RUN(test_safe_default);
	RUN(test_messages);
	return tests_failed != 0;
}
