/*
 * toolgate-mcp: an MCP server on its own stdin/stdout that an MCP client
 * starts as an ordinary stdio server, as the agent's user.  Every
 * tools/call becomes a call on the agent socket, so the gate sees the
 * agent's uid; the bridge holds no privilege and no secret.
 *
 * One process, one libevent loop, one file per concern:
 *	toolgate-mcp.c	options, stdin and stdout, the loop
 *	rpcread.c	lines and JSON-RPC messages of the client (pure)
 *	rpcout.c	JSON-RPC answers and notifications to the client
 *	methods.c	the MCP methods, one small handler each
 *	agent.c		agent socket connections and their frames
 *	tools.c		the tools op, and the shown names (names.c)
 *	names.c		gate names to names model APIs accept (pure)
 *	calls.c		tools/call: call, approval wait, resume, cancel
 *	held.c		approvals this session is waiting for
 */
#ifndef TG_BRIDGE_H
#define TG_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/jsonrpc.h"

struct event_base;

#define BRIDGE_NAME		"toolgate-mcp"
#define BRIDGE_VERSION		"1"
/* Longest line taken from the client; a longer one is skipped. */
#define BRIDGE_LINE_MAX		(4u << 20)
/* A name model APIs accept: ^[a-zA-Z0-9_-]{1,64}$. */
#define SHOWN_NAME_MAX		64
/* Calls with an agent connection of their own at once; more wait. */
#define BRIDGE_MAX_CALLS	64
/* One wait on the agent socket lasts at most this; progress between. */
#define WAIT_SLICE_MS		1000
/* Approvals the session remembers (the oldest is forgotten first). */
#define HELD_MAX		1024

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR		(-32700)
#define RPC_INVALID_REQUEST	(-32600)
#define RPC_METHOD_NOT_FOUND	(-32601)
#define RPC_INVALID_PARAMS	(-32602)
#define RPC_INTERNAL_ERROR	(-32603)

/* What the options said. */
struct options {
	const char	*socket;
	char		 run_id[257];
	uint64_t	 approval_wait_ms;
	int		 raw_names;
};
extern struct options	 opts;
extern struct event_base *base;

/* rpcread.c: bytes to lines, lines to messages; no I/O, fuzzed. */
struct linebuf {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	size_t		 max;
	int		 skipping;	/* inside a line past max */
};

/* Called for each line: too_long set (once, len 0) for a skipped one. */
typedef void	(*line_fn)(void *arg, const char *line, size_t len,
		    int too_long);

void	linebuf_init(struct linebuf *, size_t max);
void	linebuf_free(struct linebuf *);
void	linebuf_feed(struct linebuf *, const char *p, size_t n, line_fn fn,
	    void *arg);
/* End of input: a last line without its newline is still a line. */
void	linebuf_eof(struct linebuf *, line_fn fn, void *arg);

enum rpc_kind {
	RPC_REQUEST,		/* method and id: answer it */
	RPC_NOTIFICATION,	/* method, no id: never answered */
	RPC_RESPONSE,		/* an answer, but we ask the client nothing */
	RPC_BAD_JSON,		/* -32700, id null */
	RPC_INVALID,		/* -32600, with the id when there is one */
	RPC_BLANK,		/* an empty line: skipped without a word */
};

struct rpc_msg {
	enum rpc_kind	 kind;
	struct jr_msg	 jr;		/* owns everything below */
	json_t		*id;		/* string or integer, or NULL */
	const char	*method;	/* REQUEST, NOTIFICATION */
	json_t		*params;	/* or NULL */
	char		 why[128];	/* BAD_JSON, INVALID */
};

void	rpc_read(const char *line, size_t len, struct rpc_msg *m);
void	rpc_msg_free(struct rpc_msg *m);

/* rpcout.c: everything written to stdout goes through here. */
void	out_init(void);
void	out_result(json_t *id, json_t *result);		/* takes result */
void	out_error(json_t *id, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	out_notify(const char *method, json_t *params);	/* takes params */
/* Bytes not yet written: the reader stops while this is large. */
size_t	out_pending(void);

/* methods.c */
void	methods_line(void *arg, const char *line, size_t len, int too_long);

/*
 * An async request of the client: tools/list or tools/call.  Kept in a
 * list so notifications/cancelled can find it by its id.
 */
struct inreq {
	TAILQ_ENTRY(inreq) entry;
	json_t		*id;
	int		 cancelled;
	void		(*cancel)(struct inreq *);	/* or NULL */
	void		*owner;
};
TAILQ_HEAD(inreqs, inreq);
extern struct inreqs	 inflight;

struct inreq *inreq_new(json_t *id, void *owner, void (*cancel)(struct inreq *));
void	inreq_done(struct inreq *);
/*
 * After output drained or a request ended: read stdin again when it was
 * paused, or exit when stdin ended and nothing is left to do.
 */
void	bridge_check(void);

/* agent.c: one request at a time on a connection of its own. */
struct aconn;
/*
 * The answer (a msgpack map, valid during the call), or NULL with why
 * when the connection failed.  The callback may free the connection.
 */
typedef void	(*aconn_cb)(void *arg, const msgpack_object *ans,
		    const char *why);

struct aconn *aconn_open(aconn_cb cb, void *arg, char *err, size_t errlen);
void	aconn_free(struct aconn *);
/* Requests; each sends one frame and arms the callback for its answer. */
void	aconn_tools(struct aconn *);
int	aconn_call(struct aconn *, const char *tool, json_t *args,
	    char *err, size_t errlen);
void	aconn_wait(struct aconn *, const char *approval_id,
	    uint64_t timeout_ms);
void	aconn_resume(struct aconn *, const char *checkpoint);

/* Reading answers. */
char	*ans_str(const msgpack_object *ans, const char *key);	/* or NULL */
int	 ans_is(const msgpack_object *ans, const char *key, const char *val);

/* names.c: pure. */
struct tool {
	char		*gate;		/* the gate's name */
	char		*shown;		/* the name the client sees */
	int		 write;		/* anything not "read" is a write */
	int		 mcp;		/* backend mcp: 1, other: 0, unsaid: -1 */
	json_t		*description;	/* string or NULL */
	json_t		*schema;	/* object */
};

struct toolset {
	struct tool	*v;
	size_t		 n;
};

/* The shown name of a gate name (a new string). */
char	*name_show(const char *gate, int raw);
/*
 * Fill in every tool's shown name: 0, or -1 with err naming the tools
 * that would show the same name or a name over SHOWN_NAME_MAX.
 */
int	names_assign(struct toolset *, int raw, char *err, size_t errlen);
const struct tool *names_find(const struct toolset *, const char *shown);
void	toolset_free(struct toolset *);

/* tools.c */
extern struct toolset	 tools;
typedef void	(*tools_cb)(void *arg, const char *err);
/* Ask the gate for its tools again; cb when done (err NULL: tools set). */
void	tools_fetch(tools_cb cb, void *arg);
/* tools/list's result for the current set. */
json_t	*tools_list_result(void);
/* The set an answer of the tools op gives, names assigned: 0 or -1. */
int	tools_from_answer(const msgpack_object *ans, int raw,
	    struct toolset *out, char *err, size_t errlen);

/* calls.c */
void	calls_start(json_t *id, const char *name, json_t *args,
	    json_t *progress_token);

/* held.c: (tool, canonical args) -> the approval this session asked for. */
struct held {
	TAILQ_ENTRY(held) entry;
	char		*key;
	char		*approval_id;
	char		*checkpoint;
	int64_t		 expires_at;
};

/* The key of a call, or NULL when its args have no canonical form. */
char	*held_key(const char *gate, json_t *args);
struct held *held_find(const char *key);
struct held *held_put(const char *key, const char *approval_id,
	    const char *checkpoint, int64_t expires_at);
void	held_drop(const char *key);

#endif
