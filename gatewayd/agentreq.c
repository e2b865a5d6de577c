/*
 * An agent's request, from a frame body to a struct agent_req: the id,
 * the op and each op's fields, checked in the order the answers have
 * always named them.  Nothing here knows the connection it came on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/mpack.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/agentreq.h"

static int	parse_call(struct agent_req *, const msgpack_object *,
		    struct agent_reason *);
static int	parse_resume(struct agent_req *, const msgpack_object *,
		    struct agent_reason *);
static int	parse_wait(struct agent_req *, const msgpack_object *,
		    struct agent_reason *);
static int	parse_usage(struct agent_req *, const msgpack_object *,
		    struct agent_reason *);

static const struct {
	const char	*name;
	enum agent_op	 op;
	int		(*parse)(struct agent_req *, const msgpack_object *,
			    struct agent_reason *);
} ops[] = {
	{ OP_HELLO,	AOP_HELLO,	NULL },
	{ OP_CALL,	AOP_CALL,	parse_call },
	{ OP_RESUME,	AOP_RESUME,	parse_resume },
	{ OP_WAIT,	AOP_WAIT,	parse_wait },
	{ OP_USAGE,	AOP_USAGE,	parse_usage },
	{ OP_TOOLS,	AOP_TOOLS,	NULL },
};

const char *
agentreq_op_name(enum agent_op op)
{
	size_t	i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].op == op)
			return ops[i].name;
	return "?";
}

static int
refuse(struct agent_reason *why, const char *message)
{
	why->error = E_BAD_REQUEST;
	why->message = message;
	return -1;
}

/*
 * A string field of at most max bytes of UTF-8 without NUL, as a new
 * string.  Invalid UTF-8 would reach the audit log as nothing at all.
 */
static char *
req_str(const msgpack_object *o, size_t max)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size == 0 || o->via.str.size > max ||
	    !utf8_valid(o->via.str.ptr, o->via.str.size))
		return NULL;
	return mp_strdup(o);
}

/* A token the executor gave out: a string of at most max, no NUL. */
static int
req_token(const msgpack_object *o, size_t max)
{
	return o != NULL && o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size > 0 && o->via.str.size <= max && !mp_has_nul(o) &&
	    utf8_valid(o->via.str.ptr, o->via.str.size);
}

/* step_id may be an integer or a string; we carry it as a string. */
static int
req_step_id(const msgpack_object *o, char **out)
{
	*out = NULL;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		xasprintf(out, "%llu", (unsigned long long)o->via.u64);
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		xasprintf(out, "%lld", (long long)o->via.i64);
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size <= AREQ_MAX_STEP_ID &&
	    utf8_valid(o->via.str.ptr, o->via.str.size) &&
	    (*out = mp_strdup(o)) != NULL)
		return 0;
	return -1;
}

static int
parse_call(struct agent_req *req, const msgpack_object *m,
    struct agent_reason *why)
{
	const msgpack_object	*tp;

	if ((req->run_id = req_str(mp_get(m, "run_id"),
	    AREQ_MAX_RUN_ID)) == NULL)
		return refuse(why, "run_id must be a non-empty string of at"
		    " most 256 bytes");
	if ((req->tool = req_str(mp_get(m, "tool"),
	    AREQ_MAX_TOOL_NAME)) == NULL)
		return refuse(why, "tool must be a non-empty string of at most"
		    " 128 bytes");
	if (req_step_id(mp_get(m, "step_id"), &req->step_id) == -1)
		return refuse(why, "step_id must be an integer or a string");
	if ((tp = mp_get(m, "traceparent")) != NULL) {
		if (tp->type != MSGPACK_OBJECT_STR ||
		    !traceparent_valid(tp->via.str.ptr, tp->via.str.size))
			return refuse(why, "traceparent must be a W3C "
			    "traceparent: 00-<32 hex>-<16 hex>-<2 hex>, "
			    "lowercase");
		req->traceparent = mp_strdup(tp);
	}
	req->args = mp_get(m, "args");
	if (req->args == NULL || req->args->type != MSGPACK_OBJECT_MAP)
		return refuse(why, "args must be a map");
	return 0;
}

static int
parse_usage(struct agent_req *req, const msgpack_object *m,
    struct agent_reason *why)
{
	const msgpack_object	*tokens = mp_get(m, "tokens");
	const msgpack_object	*cost = mp_get(m, "cost");
	double			 dcost = 0;

	if ((req->run_id = req_str(mp_get(m, "run_id"),
	    AREQ_MAX_RUN_ID)) == NULL)
		return refuse(why, "run_id must be a non-empty string of at"
		    " most 256 bytes");
	if (tokens == NULL || tokens->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return refuse(why, "tokens must be a non-negative integer");
	if (cost != NULL) {
		if (cost->type == MSGPACK_OBJECT_FLOAT64 ||
		    cost->type == MSGPACK_OBJECT_FLOAT32)
			dcost = cost->via.f64;
		else if (cost->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			dcost = (double)cost->via.u64;
		else
			dcost = -1;
		if (!(dcost >= 0 && dcost < 1e300))
			return refuse(why, "cost must be a non-negative number");
	}
	req->tokens = tokens->via.u64;
	req->cost = dcost;
	return 0;
}

static int
parse_resume(struct agent_req *req, const msgpack_object *m,
    struct agent_reason *why)
{
	req->checkpoint = mp_get(m, "checkpoint");
	if (!req_token(req->checkpoint, AREQ_MAX_CHECKPOINT))
		return refuse(why, "checkpoint must be the string"
		    " needs_approval returned");
	return 0;
}

static int
parse_wait(struct agent_req *req, const msgpack_object *m,
    struct agent_reason *why)
{
	const msgpack_object	*tmo = mp_get(m, "timeout_ms");

	req->approval_id = mp_get(m, "approval_id");
	if (!req_token(req->approval_id, AREQ_MAX_APPROVAL_ID))
		return refuse(why, "approval_id must be the string"
		    " needs_approval returned");
	if (tmo == NULL || tmo->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return refuse(why, "timeout_ms must be a non-negative integer");
	req->timeout_ms = tmo->via.u64;
	return 0;
}

/* The packer's sink: the id's bytes, which fit by the checks before. */
static int
id_write(void *data, const char *buf, size_t len)
{
	struct agent_req	*req = data;

	if (len > sizeof(req->id) - req->idlen)
		return -1;
	memcpy(req->id + req->idlen, buf, len);
	req->idlen += len;
	return 0;
}

/* The id: an integer, or a string of at most 256 bytes, packed. */
static int
parse_id(struct agent_req *req, const msgpack_object *id)
{
	msgpack_packer	pk;

	if (id == NULL || !(id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    id->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
	    (id->type == MSGPACK_OBJECT_STR &&
	    id->via.str.size <= AREQ_MAX_ID_BYTES)))
		return -1;
	msgpack_packer_init(&pk, req, id_write);
	return msgpack_pack_object(&pk, *id) == 0 ? 0 : -1;
}

int
agentreq_parse(const char *body, size_t len, struct agent_req *req,
    struct agent_reason *why)
{
	const msgpack_object	*m, *op;
	const char		*reason;
	size_t			 i;

	memset(req, 0, sizeof(*req));
	memset(why, 0, sizeof(*why));
	if (frame_unpack_map(body, len, &req->u, &reason) == -1) {
		why->close = 1;
		why->error = E_BAD_FRAME;
		why->message = reason;
		return -1;
	}
	req->unpacked = 1;
	m = &req->u.data;
	if (parse_id(req, mp_get(m, "id")) == -1) {
		req->idlen = 0;
		return refuse(why, "id must be an integer or a string of at"
		    " most 256 bytes");
	}
	why->has_id = 1;
	op = mp_get(m, "op");
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (op == NULL || !mp_streq(op, ops[i].name))
			continue;
		req->op = ops[i].op;
		return ops[i].parse == NULL ? 0 : ops[i].parse(req, m, why);
	}
	return refuse(why, "op must be one of hello, call, resume, wait,"
	    " usage, tools");
}

void
agentreq_free(struct agent_req *req)
{
	free(req->run_id);
	free(req->tool);
	free(req->step_id);
	free(req->traceparent);
	req->run_id = req->tool = req->step_id = req->traceparent = NULL;
	if (req->unpacked)
		msgpack_unpacked_destroy(&req->u);
	req->unpacked = 0;
}
