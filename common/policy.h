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

#endif
