#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/policy.h"
#include "proto/proto.h"

enum gate
policy_gate(const struct config *conf, const char *tool, int writes_on,
    const char **reason)
{
	/* Default deny: only what the allowlist names. */
	if (!policy_allowed(conf, tool)) {
		*reason = R_NOT_ALLOWED;
		return GATE_DENY;
	}
	if (policy_tool_mode(conf, tool) == TOOL_READ) {
		*reason = NULL;
		return GATE_READ;
	}
	/*
	 * A write, including every tool whose mode nobody declared.  Writes
	 * need the config to enable them and the kill switch to be off.
	 * tools.default_mode: read_only cannot be combined with writes
	 * (config_load refuses read_write without writes.enabled, and
	 * read_only means exactly "unless writes are enabled explicitly").
	 */
	if (!conf->writes_enabled || !writes_on) {
		*reason = R_WRITES_DISABLED;
		return GATE_DENY;
	}
	*reason = NULL;
	return GATE_WRITE;
}

void
policy_message(const struct config *conf, const char *tool,
    const char *reason, int writes_on, char *buf, size_t len)
{
	if (strcmp(reason, R_NOT_ALLOWED) == 0)
		snprintf(buf, len, "tool %s is not allowed (tools.allow)", tool);
	else if (strcmp(reason, R_WRITES_DISABLED) == 0 && !conf->writes_enabled)
		snprintf(buf, len, "tool %s writes and writes are disabled"
		    " (writes.enabled is false)", tool);
	else if (strcmp(reason, R_WRITES_DISABLED) == 0 && !writes_on)
		snprintf(buf, len, "tool %s writes and writes are disabled"
		    " by the kill switch", tool);
	else
		snprintf(buf, len, "tool %s: %s", tool, reason);
}

/* lookups in the config */

const struct tool *
policy_tool(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ncatalog; i++)
		if (strcmp(c->catalog[i].name, name) == 0)
			return &c->catalog[i];
	return NULL;
}

static int
in_list(char *const *list, size_t n, const char *name)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return 1;
	return 0;
}

int
policy_allowed(const struct config *c, const char *name)
{
	return in_list(c->allow, c->nallow, name);
}

enum tool_mode
policy_tool_mode(const struct config *c, const char *name)
{
	const struct tool	*t;

	if ((t = policy_tool(c, name)) == NULL)
		return TOOL_WRITE;
	return t->mode;
}

int
policy_needs_approval(const struct config *c, const char *name)
{
	return c->approval_all ||
	    in_list(c->approval_tools, c->napproval_tools, name);
}

const struct principal *
policy_principal(const struct config *c, uid_t uid, gid_t gid)
{
	size_t	 i;

	for (i = 0; i < c->nprincipals; i++)
		if (c->principals[i].has_uid && c->principals[i].uid == uid)
			return &c->principals[i];
	for (i = 0; i < c->nprincipals; i++)
		if (c->principals[i].has_gid && c->principals[i].gid == gid)
			return &c->principals[i];
	return NULL;
}

int
policy_is_operator(const struct config *c, uid_t uid, gid_t gid)
{
	size_t	 i;

	for (i = 0; i < c->nop_uids; i++)
		if (c->op_uids[i] == uid)
			return 1;
	for (i = 0; i < c->nop_gids; i++)
		if (c->op_gids[i] == gid)
			return 1;
	return 0;
}
