/*
 * The executor's descriptor budget (fds.h).  What we hold is counted, not
 * asked of the kernel on every request: the fixed set once at start, the
 * rest as the modules that hold them say (fds_hold, fds_release): fds.c
 * asks none of them.  The reserves cover what is open
 * only for a moment (a spawn's pipes and credential, /proc reads, the
 * audit log reopened, syslog's socket) and the operators' connections.
 */
#include <stdint.h>

#include "common/config.h"
#include "common/fdlimit.h"
#include "common/log.h"
#include "executor/executor.h"
#include "executor/fds.h"

/* A spawn: 4 pipes and a credential; /proc, syslog, the audit log. */
#define FDS_TRANSIENT		16
/* Left to operators when agents and tools have taken the rest. */
#define FDS_OPERATORS		8

static size_t	fixed, limit;
/* Held now, by use (enum fds_use), in descriptors. */
static size_t	held[FDS_CACHE + 1];
static size_t	tools_aside;	/* agents' sockets leave tools this much */

void
fds_raise(void)
{
	limit = fdlimit_raise();
}

/* MCP server processes at most: one shared, or one per principal. */
static size_t
servers_max(void)
{
	const struct config	*c = ex->conf;
	size_t			 i, n = 0;

	for (i = 0; i < c->nmcp_servers; i++)
		n += c->mcp_servers[i].scope == MCP_SHARED ? 1 :
		    c->nprincipals;
	return n;
}

void
fds_init(void)
{
	uint64_t	need;
	size_t		free_fds;

	/* Nothing of agents, tools or operators is open yet. */
	fixed = fdlimit_open(limit);
	need = fixed + ex->conf->max_connections +
	    (ex->conf->max_tools + servers_max()) * FDS_PER_TOOL +
	    held[FDS_CACHE] + CONTROL_MAX_CONNS + FDS_TRANSIENT;
	/*
	 * A flood of connections must not leave the tools of the agents
	 * already there without pipes: max_tools' worth is set aside from
	 * agents, but never more than half of what is free.
	 */
	free_fds = limit > fixed + FDS_TRANSIENT + FDS_OPERATORS ?
	    limit - fixed - FDS_TRANSIENT - FDS_OPERATORS : 0;
	tools_aside = ex->conf->max_tools * FDS_PER_TOOL < free_fds / 2 ?
	    ex->conf->max_tools * FDS_PER_TOOL : free_fds / 2;
	log_info("descriptors: %zu in use, limit %zu; the caps can need %llu",
	    fixed, limit, (unsigned long long)need);
	if (need > limit)
		log_warnx("RLIMIT_NOFILE (%zu) is below what limits.max_"
		    "connections, limits.max_tools and the control socket can"
		    " need (%llu): past it agents and tools are refused"
		    " unavailable", limit, (unsigned long long)need);
}

size_t
fds_held(void)
{
	return fixed + held[FDS_PEER] + held[FDS_TOOL] + held[FDS_CONTROL] +
	    held[FDS_SERVER] + held[FDS_CACHE];
}

size_t
fds_limit(void)
{
	return limit;
}

int
fds_room(enum fds_use use)
{
	size_t	want = FDS_TRANSIENT, tools = held[FDS_TOOL];

	switch (use) {
	case FDS_PEER:
		want += 1 + FDS_OPERATORS;
		if (tools < tools_aside)
			want += tools_aside - tools;
		break;
	case FDS_TOOL:
	case FDS_SERVER:
		want += FDS_PER_TOOL + FDS_OPERATORS;
		break;
	case FDS_CONTROL:
	case FDS_CACHE:
		want += 1;
		break;
	}
	return fds_held() + want <= limit;
}

/* What one of 'use' holds. */
static size_t
fds_of(enum fds_use use)
{
	return use == FDS_TOOL || use == FDS_SERVER ? FDS_PER_TOOL : 1;
}

void
fds_hold(enum fds_use use)
{
	held[use] += fds_of(use);
}

void
fds_release(enum fds_use use)
{
	if (held[use] < fds_of(use))
		fatalx("fds_release: nothing of use %d is held", (int)use);
	held[use] -= fds_of(use);
}
