/*
 * Tool backends: how a catalog tool runs.  The write and read paths start
 * a run, may cancel it, and get its outcome, always later, from the event
 * loop; they do not know how it runs.  exec (toolrun.c, a child process)
 * is the first backend; another (mcp, http) is a new file with its own
 * struct backend_ops, named in backend_for().
 *
 * A request (struct tool_req) and an outcome (struct tool_outcome) are
 * the same for every backend; each says in its own words what its
 * statuses mean (exec's, which came first, are beside them here).
 */
#ifndef TG_BACKEND_H
#define TG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct call;
struct config;
struct event_base;
struct tool;

enum tool_status {
	TR_OK,			/* exit 0 and stdout is one JSON value */
	TR_FAILED,		/* non-zero exit, killed by a signal, or could not start */
	TR_TIMEOUT,		/* still running after timeout_ms: group killed */
	TR_BAD_OUTPUT,		/* stdout not one JSON value, or over max_output */
	TR_CANCELLED,		/* cancelled: group killed, output dropped */
	/*
	 * The tool could not be reached and nothing was sent (mcp: the
	 * server is down or starting; http: no connection): error/unavailable,
	 * and a write may run again.
	 */
	TR_UNAVAILABLE,
	/*
	 * mcp: the server's definition of the tool differs from the pinned
	 * one; nothing was sent: denied/tool_changed.
	 */
	TR_CHANGED,
	/*
	 * The tool's circuit breaker is open (breaker.h); nothing was sent:
	 * denied/circuit_open with retry_after_ms.
	 */
	TR_CIRCUIT,
};

struct tool_req {
	const struct tool *tool;
	/* Who runs a tool without a catalog user; NULL: the executor's ids. */
	const char	*default_user;
	const char	*tenant;
	const char	*env;
	const char	*run_id;
	const char	*step_id;	/* NULL: TOOLGATE_STEP_ID is "" */
	const char	*args_hash;
	const char	*idempotency_key;	/* NULL for reads */
	const char	*input;		/* canonical JSON; a newline is added */
	size_t		 inputlen;
	const char	*credentials_dir;
	size_t		 max_output;
	/* The agent's W3C traceparent, checked by gatewayd; NULL: none. */
	const char	*traceparent;
};

struct tool_outcome {
	enum tool_status status;
	/* TR_OK: the result, as msgpack (converted from the JSON on stdout) */
	const char	*result;
	size_t		 resultlen;
	/* otherwise: why, for the agent (TR_FAILED: stderr's last line) */
	char		 message[512];
	/*
	 * TR_FAILED: the tool may have acted before it failed (exec: it
	 * was killed by a signal we did not send), so a write is in doubt.
	 */
	int		 may_have_acted;
	/*
	 * TR_FAILED: the tool says a later try may work (http: 429, 5xx);
	 * retry_after_ms from its Retry-After, 0 when none.
	 */
	int		 retryable;
	uint64_t	 retry_after_ms;
	int		 wstatus;	/* exec: from waitpid; -1 if it never started */
	uint64_t	 duration_ms;
};

/* The result is valid only during the callback. */
typedef void	(*tool_done_cb)(const struct tool_outcome *, void *arg);

struct backend_ops {
	const char	*name;
	/* Once per process, before the first start. */
	void		(*init)(struct event_base *, const struct config *);
	/*
	 * Descriptors it keeps open from init on besides its runs' (an
	 * http connection cache); NULL: none.
	 */
	size_t		(*fds_kept)(void);
	/*
	 * Start a run; 'cb' is called exactly once, later, from the loop,
	 * even when it cannot start.
	 */
	void		(*start)(const struct tool_req *, tool_done_cb, void *);
	/* Cancel the run whose callback argument is arg: 1 if found. */
	int		(*cancel)(const void *arg);
	/* The shutdown deadline: end every run as a timeout would. */
	size_t		(*expire)(void);
	/* Runs in flight. */
	size_t		(*active)(void);
	/* At exit, once nothing runs. */
	void		(*shutdown)(void);
	/*
	 * For operators (gatewayctl tools): the state of a catalog tool of
	 * this backend, "ok" or why calls would not reach it ("changed",
	 * "server down", ...).  NULL: always "ok".
	 */
	const char	*(*tool_state)(const struct tool *);
	/*
	 * gatewayctl tools accept: take what the tool's server shows now as
	 * its definition (mcp pinning).  0, or -1 with msg set.  NULL: the
	 * backend pins nothing.
	 */
	int		(*tool_accept)(const struct tool *, char *msg,
			    size_t msglen);
};

extern const struct backend_ops	backend_exec;
extern const struct backend_ops	backend_mcp;	/* mcp.c */
extern const struct backend_ops	backend_http;	/* http.c */

void	backends_init(struct event_base *, const struct config *);
void	backends_shutdown(void);
/*
 * Run c's tool with its canonical args; done(outcome, arg) comes later
 * from the loop.
 */
void	backend_start(const struct call *c, const struct tool *,
	    tool_done_cb done, void *arg);
/* Cancel the run started with arg, whichever backend runs it: 1 if found. */
int	backend_cancel(const void *arg);
/* Every backend's runs ended as timeouts (shutdown deadline): how many. */
size_t	backends_expire(void);
/* Runs in flight, all backends. */
size_t	backends_active(void);
/* The name of the backend that runs tool: "exec", "mcp", "http". */
const char *backend_name(const struct tool *);
/* Its tool_state and tool_accept, as backend_ops says. */
const char *backend_tool_state(const struct tool *);
int	backend_tool_accept(const struct tool *, char *msg, size_t msglen);

#endif
