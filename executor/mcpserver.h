/*
 * The inside of the mcp backend: mcpserver.c keeps the server processes
 * (start, stdio, restart, reaping), mcpmsg.c reads what they say (the
 * handshake, tools/list, their requests and notifications), mcp.c runs
 * calls on them.  Not for other modules: they use mcp.h and backend.h.
 */
#ifndef TG_MCPSERVER_H
#define TG_MCPSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <jansson.h>
#include <msgpack.h>

#include "executor/backend.h"
#include "executor/pins.h"

struct event;
struct event_base;
struct evbuffer;
struct jr_msg;
struct mcp_server;

/* One tools/call, from backend start to its callback. */
struct mcp_call {
	TAILQ_ENTRY(mcp_call)	 entry;		/* its process's queue or flight */
	TAILQ_ENTRY(mcp_call)	 all;
	struct mcp_proc		*proc;		/* NULL: never reached one */
	const struct tool	*tool;
	tool_done_cb		 cb;
	void			*arg;
	int			 write;
	json_t			*req;		/* the request until sent, without its id */
	int64_t			 id;		/* 0: not sent */
	enum { C_QUEUED, C_SENT, C_DONE } state;
	int			 cancelled;
	/* The timeout; once done, the deferred callback. */
	struct event		*ev;
	uint32_t		 timeout_ms;
	uint64_t		 start_ms;
	struct tool_outcome	 res;
	msgpack_sbuffer		 sb;		/* res.result points here */
};

TAILQ_HEAD(mcp_callq, mcp_call);

/*
 * A catalog tool's definition in a process's last tools/list, and the hash
 * of what is pinned of it: worked out once per listing, not per call.
 */
struct mcp_def {
	json_t		*def;		/* in tools; NULL: not offered */
	uint8_t		 hash[PIN_HASH_LEN];
};

enum proc_state {
	P_DOWN,			/* not running: a restart is due */
	P_INIT,			/* initialize sent */
	P_LISTING,		/* initialized, first tools/list under way */
	P_READY,		/* calls go */
};

/*
 * What a server writes goes to the log at most MCP_LOG_PER_S lines a
 * second each; the lines not logged are counted, and the count logged.
 */
struct ratelim {
	const char	*what;		/* "lines of stderr" */
	uint64_t	 window_ms;
	unsigned	 n;
	unsigned long	 dropped;
};

/* One running server: shared, or one of a tenant_env server's. */
struct mcp_proc {
	TAILQ_ENTRY(mcp_proc)	 entry;
	const struct mcp_server	*srv;
	size_t			 srv_idx;
	char			*tenant;	/* tenant_env: whose; else NULL */
	char			*env;
	char			 label[256];	/* for the log */
	enum proc_state		 state;

	pid_t			 pid;		/* -1: none to reap */
	int			 fd_in, fd_out, fd_err;
	int			 holds_fds;	/* its pipes: FDS_SERVER */
	struct event		*ev_in, *ev_out, *ev_err;
	struct evbuffer		*outq;		/* what its stdin still takes */

	char			*line;		/* a stdout line so far */
	size_t			 linelen;
	int			 discarding;	/* over-long: until its newline */
	char			 errline[1024];	/* a stderr line so far */
	size_t			 errlen;
	int			 errdiscard;
	struct ratelim		 err_rl;	/* stderr lines logged */
	struct ratelim		 junk_rl;	/* dropped stdout lines logged */
	struct ratelim		 req_rl;	/* refused requests logged */

	int64_t			 next_id;
	int64_t			 init_id, list_id;
	json_t			*tools_acc;	/* tools/list pages so far */
	unsigned		 pages;
	int			 relist;	/* list_changed during a listing */
	json_t			*tools;		/* the last complete list */
	struct mcp_def		*defs;		/* by catalog index (mcp.c) */

	struct mcp_callq	 queue;		/* waiting for a slot */
	size_t			 nqueue;
	struct mcp_callq	 flight;	/* sent, not answered */
	size_t			 nflight;
	unsigned		 strikes;	/* timeouts in a row */

	struct event		*ev_timer;	/* init timeout, restart */
	uint32_t		 backoff_ms;
	uint64_t		 ready_ms;	/* when it became ready */
};

TAILQ_HEAD(mcp_procq, mcp_proc);
extern struct mcp_procq	mcp_procs;

/* mcpserver.c */
void	mcpserver_init(struct event_base *);
void	mcpserver_shutdown(void);
/* Send one message (a JSON object, stolen); -1 when the pipe is gone. */
int	mcpserver_send(struct mcp_proc *, json_t *msg);
/* It misbehaved or hangs: kill it, fail its calls, restart later. */
void	mcpserver_restart(struct mcp_proc *, const char *why);
/* 1: log this line of p's; 0: it is counted instead. */
int	mcpserver_log_ok(struct mcp_proc *, struct ratelim *);
/* Log the count of lines not logged, if any. */
void	mcpserver_log_flush(struct mcp_proc *, struct ratelim *);
/* Its timer: restart, or the handshake's and tools/list's timeout. */
void	mcpserver_timer(struct mcp_proc *, uint32_t ms);
uint32_t mcpserver_init_timeout(const struct mcp_proc *);
/* The process for a call of srv by tenant/env; NULL if none. */
struct mcp_proc *mcpserver_find(size_t srv_idx, const char *tenant,
	    const char *env);

/* mcpmsg.c: what a server says */
/* Send initialize: the first thing a new process hears. */
void	mcpmsg_initialize(struct mcp_proc *);
/* One line of its stdout (at most max bytes are a message). */
void	mcpmsg_line(struct mcp_proc *, const char *, size_t, size_t max);

/* mcp.c, called by mcpserver.c */
void	mcp_proc_answer(struct mcp_proc *, struct jr_msg *);
/* Its calls end: sent ones as lost with the process, queued ones unsent. */
void	mcp_proc_lost(struct mcp_proc *, const char *why);
/* Ready (again): queued calls go. */
void	mcp_proc_ready(struct mcp_proc *);
/* A complete tools/list: record first definitions, log changed ones. */
void	mcp_proc_listed(struct mcp_proc *);

#endif
