/*
 * The executor's descriptors: one per agent connection (its copy of the
 * socket), three per running tool (its pipes) and per MCP server process,
 * one per control connection, and a fixed set (store, audit log, lock, sockets, libevent)
 * counted once at start.  Room is checked against RLIMIT_NOFILE before
 * an agent connection is kept, a tool is admitted or a control
 * connection is served, so a full table refuses that one request or
 * connection and never fails a system call in the middle of something.
 */
#ifndef TG_FDS_H
#define TG_FDS_H

#include <stddef.h>

/* Held while a tool runs: its stdin, stdout and stderr pipes. */
#define FDS_PER_TOOL		3

enum fds_use {
	FDS_PEER,		/* an agent connection's socket */
	FDS_TOOL,		/* a tool run: FDS_PER_TOOL */
	FDS_CONTROL,		/* an operator's control connection */
	FDS_SERVER,		/* an MCP server process: FDS_PER_TOOL */
	FDS_CACHE,		/* an idle HTTP connection kept for reuse */
};

/* Raise the soft limit to the hard one (before anything is opened). */
void	fds_raise(void);
/* Once everything fixed is open: count it, and say what the caps need. */
void	fds_init(void);
/*
 * Whether one more of 'use' fits, beside what is held now.  Agents and
 * tools leave a reserve that only transient descriptors and operators may
 * use, so an operator can still connect when agents filled the table.
 */
int	fds_room(enum fds_use use);
size_t	fds_limit(void);
/* What we hold by our count: fixed + agents + tools + control. */
size_t	fds_held(void);
/* One of 'use' is now held, or no longer (by the module holding it). */
void	fds_hold(enum fds_use use);
void	fds_release(enum fds_use use);

#endif
