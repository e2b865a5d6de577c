/*
 * An agent's request, parsed: bytes in, a struct agent_req or a reason
 * out.  Pure: no connection, no event loop, no globals; what a request
 * may hold is CONTRACT.md's and is checked here once, so the op handlers
 * in agent.c start from values they can trust.
 */
#ifndef TG_AGENTREQ_H
#define TG_AGENTREQ_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define AREQ_MAX_ID_BYTES	256
#define AREQ_MAX_RUN_ID		256
#define AREQ_MAX_STEP_ID	256
#define AREQ_MAX_TOOL_NAME	128
#define AREQ_MAX_CHECKPOINT	2048
#define AREQ_MAX_APPROVAL_ID	64
/* The id packed: a str 16 header and 256 bytes at most. */
#define AREQ_ID_PACKED		(AREQ_MAX_ID_BYTES + 3)

enum agent_op {
	AOP_HELLO,
	AOP_CALL,
	AOP_RESUME,
	AOP_WAIT,
	AOP_USAGE,
	AOP_TOOLS,
};

/*
 * Why a frame is no request.  'close': the frame itself is bad, the
 * connection goes after the answer.  Otherwise the request is refused and
 * the connection goes on; has_id says whether req->id is the agent's (and
 * so goes in the answer) or nil.  Strings are static.
 */
struct agent_reason {
	int		 close;
	int		 has_id;
	const char	*error;		/* E_BAD_FRAME, E_BAD_REQUEST */
	const char	*message;
};

struct agent_req {
	enum agent_op		 op;
	char			 id[AREQ_ID_PACKED];	/* msgpack bytes */
	size_t			 idlen;
	/* call, usage */
	char			*run_id;
	/* call */
	char			*tool;
	char			*step_id;	/* NULL: none; an integer as text */
	char			*traceparent;	/* NULL: none; checked */
	const msgpack_object	*args;		/* a map, in 'u' */
	/* resume */
	const msgpack_object	*checkpoint;	/* a string, in 'u' */
	/* wait */
	const msgpack_object	*approval_id;	/* a string, in 'u' */
	uint64_t		 timeout_ms;
	/* usage */
	uint64_t		 tokens;
	double			 cost;		/* 0 when not given */
	msgpack_unpacked	 u;		/* the frame, decoded */
	int			 unpacked;
};

/*
 * Parse one frame body of len bytes (the 4-byte header already taken).
 * 0: *req is a request; -1: *why says why not (req->id may still be set,
 * see has_id).  Either way agentreq_free(req) after.
 */
int	agentreq_parse(const char *body, size_t len, struct agent_req *req,
	    struct agent_reason *why);
void	agentreq_free(struct agent_req *req);
/* The name of the op, as agents spell it. */
const char *agentreq_op_name(enum agent_op);

#endif
