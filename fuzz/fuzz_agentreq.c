/*
 * libFuzzer target for gatewayd/agentreq.c: agentreq_parse() on arbitrary
 * frame bodies (the bytes after the 4-byte length).  Properties, each an
 * abort() when broken:
 *
 *  - a reason always has an error code and a message; it closes the
 *    connection exactly when frame_unpack_map() refuses the bytes (then
 *    the error is bad_frame), and otherwise it is bad_request;
 *  - without has_id no id is kept; with it, and on success, the id bytes
 *    are exactly one msgpack value, an integer or a string of at most 256
 *    bytes, equal to the map's "id";
 *  - on success the op is one of the five and its fields are as the
 *    contract says, checked again here against the map itself: a call has
 *    run_id (1..256 bytes of UTF-8), tool (1..128) and a map for args, and
 *    step_id as given (an integer as its decimal text), a traceparent
 *    only when given and then a valid one, as given; a resume's
 *    checkpoint and a wait's approval_id are non-empty strings without
 *    NUL within their limits; a wait's timeout_ms and a usage's tokens are
 *    the map's integers; a usage's cost is finite and not negative;
 *  - agentreq_free() leaves nothing behind (ASan's leak check).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/mpack.h"
#include "common/util.h"
#include "gatewayd/agentreq.h"
#include "proto/proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_agentreq: %s\n", what);
		abort();
	}
}

/* The same value, as bytes (floats too: NaN != NaN). */
static int
obj_same(const msgpack_object *a, const msgpack_object *b)
{
	msgpack_sbuffer	sa, sb;
	msgpack_packer	pa, pb;
	int		same;

	if (a == NULL || b == NULL)
		return 0;
	msgpack_sbuffer_init(&sa);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
	msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pa, *a);
	msgpack_pack_object(&pb, *b);
	same = sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
	msgpack_sbuffer_destroy(&sa);
	msgpack_sbuffer_destroy(&sb);
	return same;
}

static int
str_is(const char *s, const msgpack_object *o)
{
	return s != NULL && o != NULL && o->type == MSGPACK_OBJECT_STR &&
	    strlen(s) == o->via.str.size &&
	    memcmp(s, o->via.str.ptr, o->via.str.size) == 0;
}

static void
check_id(const struct agent_req *q, const msgpack_object *m)
{
	msgpack_unpacked	u;
	const msgpack_object	*id = mp_get(m, "id");
	size_t			off = 0;

	check(q->idlen > 0 && q->idlen <= sizeof(q->id), "id length");
	msgpack_unpacked_init(&u);
	check(msgpack_unpack_next(&u, q->id, q->idlen, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == q->idlen, "id is one value");
	check(obj_same(&u.data, id), "id as sent");
	check(u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
	    (u.data.type == MSGPACK_OBJECT_STR &&
	    u.data.via.str.size <= AREQ_MAX_ID_BYTES), "id type");
	msgpack_unpacked_destroy(&u);
}

static void
check_str(const char *s, const msgpack_object *o, size_t max,
    const char *what)
{
	check(str_is(s, o), what);
	check(o->via.str.size > 0 && o->via.str.size <= max &&
	    utf8_valid(o->via.str.ptr, o->via.str.size), what);
}

static void
check_token(const msgpack_object *got, const msgpack_object *o, size_t max,
    const char *what)
{
	check(obj_same(got, o) &&
	    o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size > 0 && o->via.str.size <= max &&
	    memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL, what);
}

static void
check_step(const struct agent_req *q, const msgpack_object *o)
{
	char	buf[32];

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL) {
		check(q->step_id == NULL, "no step_id");
		return;
	}
	check(q->step_id != NULL, "step_id kept");
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		snprintf(buf, sizeof(buf), "%llu",
		    (unsigned long long)o->via.u64);
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		snprintf(buf, sizeof(buf), "%lld", (long long)o->via.i64);
	else {
		check_str(q->step_id, o, AREQ_MAX_STEP_ID, "step_id string");
		return;
	}
	check(strcmp(buf, q->step_id) == 0, "step_id as text");
}

/* Kept exactly when given, and then a valid one, byte for byte. */
static void
check_trace(const struct agent_req *q, const msgpack_object *o)
{
	if (o == NULL) {
		check(q->traceparent == NULL, "no traceparent");
		return;
	}
	check(q->traceparent != NULL && o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size == TRACEPARENT_LEN &&
	    memcmp(q->traceparent, o->via.str.ptr, TRACEPARENT_LEN) == 0 &&
	    q->traceparent[TRACEPARENT_LEN] == '\0' &&
	    traceparent_valid(q->traceparent, strlen(q->traceparent)),
	    "traceparent");
}

static void
check_ok(const struct agent_req *q, const msgpack_object *m)
{
	const msgpack_object	*o;

	check(mp_streq(mp_get(m, "op"), agentreq_op_name(q->op)), "op");
	switch (q->op) {
	case AOP_HELLO:
	case AOP_TOOLS:
		/* Nothing but the id: what else the map holds is ignored. */
		check(q->run_id == NULL && q->tool == NULL, "tools fields");
		break;
	case AOP_CALL:
		check_str(q->run_id, mp_get(m, "run_id"), AREQ_MAX_RUN_ID,
		    "call run_id");
		check_str(q->tool, mp_get(m, "tool"), AREQ_MAX_TOOL_NAME,
		    "call tool");
		check(obj_same(q->args, mp_get(m, "args")) &&
		    q->args->type == MSGPACK_OBJECT_MAP, "call args");
		check_step(q, mp_get(m, "step_id"));
		check_trace(q, mp_get(m, "traceparent"));
		break;
	case AOP_RESUME:
		check_token(q->checkpoint, mp_get(m, "checkpoint"),
		    AREQ_MAX_CHECKPOINT, "checkpoint");
		break;
	case AOP_WAIT:
		check_token(q->approval_id, mp_get(m, "approval_id"),
		    AREQ_MAX_APPROVAL_ID, "approval_id");
		o = mp_get(m, "timeout_ms");
		check(o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 == q->timeout_ms, "timeout_ms");
		break;
	case AOP_USAGE:
		check_str(q->run_id, mp_get(m, "run_id"), AREQ_MAX_RUN_ID,
		    "usage run_id");
		o = mp_get(m, "tokens");
		check(o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 == q->tokens, "tokens");
		check(q->cost >= 0 && q->cost < 1e300, "cost");
		break;
	default:
		check(0, "op out of range");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_req	q;
	struct agent_reason	why;
	msgpack_unpacked	u;
	const char		*reason;
	int			rv, map_ok;

	msgpack_unpacked_init(&u);
	map_ok = frame_unpack_map((const char *)data, size, &u, &reason) == 0;
	rv = agentreq_parse((const char *)data, size, &q, &why);
	if (rv == -1) {
		check(why.error != NULL && why.message != NULL, "a reason");
		check(why.close == !map_ok, "closes exactly on a bad frame");
		check(strcmp(why.error, why.close ? E_BAD_FRAME :
		    E_BAD_REQUEST) == 0, "error code");
		if (why.has_id)
			check_id(&q, &u.data);
		else
			check(q.idlen == 0, "no id kept");
	} else {
		check(map_ok, "a request from a bad frame");
		check_id(&q, &u.data);
		check_ok(&q, &u.data);
	}
	agentreq_free(&q);
	if (map_ok)
		msgpack_unpacked_destroy(&u);
	return 0;
}
