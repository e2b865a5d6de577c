/*
 * The policy gate: what a principal may do with a tool, decided from the
 * config and the kill switch alone.  gatewayd asks it to answer agents
 * quickly; the executor asks it again before it runs anything, because it
 * trusts nothing gatewayd decided.
 */
#ifndef TG_POLICY_H
#define TG_POLICY_H

#include "common/config.h"

enum gate {
	GATE_DENY,		/* *reason says why (a stop_reason) */
	GATE_READ,		/* a read: run it */
	GATE_WRITE,		/* a permitted write: it goes through the write path */
};

/*
 * 'writes_on' is the kill switch's view: 0 once SIGUSR1 or an operator
 * disabled writes.  Writes need both writes.enabled and writes_on.
 */
enum gate	policy_gate(const struct config *, const char *tool,
		    int writes_on, const char **reason);

/* A sentence for the agent about a refusal from policy_gate(). */
void		policy_message(const struct config *, const char *tool,
		    const char *reason, int writes_on, char *buf, size_t len);

/* NULL when the tool has no catalog entry. */
const struct tool *policy_tool(const struct config *, const char *name);
int		 policy_allowed(const struct config *, const char *name);
/* A tool without a catalog entry is a write: fail closed. */
enum tool_mode	 policy_tool_mode(const struct config *, const char *name);
int		 policy_needs_approval(const struct config *, const char *name);
/* First principal whose uid matches, else first whose gid matches. */
const struct principal *policy_principal(const struct config *, uid_t, gid_t);
int		 policy_is_operator(const struct config *, uid_t, gid_t);

#endif
