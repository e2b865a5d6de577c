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
	if (!config_allowed(conf, tool)) {
		*reason = R_NOT_ALLOWED;
		return GATE_DENY;
	}
	if (config_tool_mode(conf, tool) == TOOL_READ) {
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
