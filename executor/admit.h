/*
 * Admission of tool runs: at most limits.max_tools run at once, and at
 * most limits.max_tools_per_tenant of one tenant, so one tenant's slow
 * tools cannot starve the others or the descriptor table (fds.h).  A run
 * holds its slot from admission (for a write: before its intent is
 * recorded) until its outcome is known.
 */
#ifndef TG_ADMIT_H
#define TG_ADMIT_H

#include <stddef.h>

/* 0 with a slot taken for tenant, or -1 with why (for the agent) in msg. */
int	admit_tool(const char *tenant, char *msg, size_t msglen);
/* The run admitted for tenant is over. */
void	admit_done(const char *tenant);
void	admit_shutdown(void);

#endif
