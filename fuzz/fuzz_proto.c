/*
 * libFuzzer target for proto_decode(), the strict decoder of the
 * gatewayd <-> executor socketpair: the input is the bytes after the
 * 4-byte length.  Properties, each an abort() when broken:
 *
 *  - on failure: a reason in err, and the message zeroed;
 *  - on success: the input is exactly one msgpack value (mp_check spans
 *    all of it), an array [type, id, body]; type is in 1..MSG_MAX-1,
 *    msg_direction(type) is MSG_FROM_GATEWAYD or MSG_FROM_EXECUTOR and
 *    msg_type_str(type) a name; id is the array's second element; body
 *    is a map;
 *  - the body matches the schema, checked against a copy of the schema
 *    kept here (so a change to proto.c's table without a change here is
 *    noticed): every key known, none twice, every required key present,
 *    each value of its type (strings without NUL);
 *  - re-encoding with msgbuf_begin_envelope() and msgpack_pack_object() for
 *    each field, then decoding the frame's body, gives the same type, id
 *    and an equal body.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "proto/proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The schema, restated.  u: positive int, s: string, m: map, b: bool. */
struct want {
	const char	*key;
	char		 type;
	int		 optional;
};

static const struct want w_hello[] = { { "version", 'u', 0 }, { 0 } };
static const struct want w_hello_ans[] = { { "version", 'u', 0 },
	{ "writes_enabled", 'b', 0 }, { "config_hash", 's', 0 }, { 0 } };
static const struct want w_call[] = { { "conn", 'u', 0 },
	{ "uid", 'u', 0 }, { "gid", 'u', 0 },
	{ "pid", 'u', 0 }, { "tenant", 's', 0 }, { "env", 's', 0 },
	{ "run_id", 's', 0 }, { "step_id", 's', 1 }, { "tool", 's', 0 },
	{ "args", 'm', 0 }, { 0 } };
static const struct want w_response[] = { { "response", 'm', 0 },
	{ "run_id", 's', 1 }, { 0 } };
static const struct want w_resume[] = { { "conn", 'u', 0 },
	{ "uid", 'u', 0 },
	{ "gid", 'u', 0 }, { "pid", 'u', 0 }, { "tenant", 's', 0 },
	{ "env", 's', 0 }, { "checkpoint", 's', 0 }, { 0 } };
static const struct want w_wait[] = { { "conn", 'u', 0 },
	{ "uid", 'u', 0 }, { "gid", 'u', 0 },
	{ "tenant", 's', 0 }, { "env", 's', 0 }, { "approval_id", 's', 0 },
	{ "timeout_ms", 'u', 0 }, { 0 } };
static const struct want w_audit[] = { { "conn", 'u', 0 },
	{ "uid", 'u', 0 }, { "gid", 'u', 0 },
	{ "tenant", 's', 1 }, { "env", 's', 1 }, { "run_id", 's', 1 },
	{ "step_id", 's', 1 }, { "tool", 's', 1 }, { "args_hash", 's', 1 },
	{ "decision", 's', 0 }, { "reason", 's', 0 }, { "message", 's', 0 },
	{ "traceparent", 's', 1 }, { 0 } };
static const struct want w_conn_gone[] = { { "conn", 'u', 0 }, { 0 } };
static const struct want w_audit_summary[] = { { "uid", 'u', 1 },
	{ "gid", 'u', 1 }, { "count", 'u', 0 }, { "first_ms", 'u', 0 },
	{ "last_ms", 'u', 0 }, { 0 } };
static const struct want w_conn_refused[] = { { "conn", 'u', 0 },
	{ "message", 's', 0 }, { 0 } };
static const struct want w_tools[] = { { "conn", 'u', 0 },
	{ "uid", 'u', 0 }, { "gid", 'u', 0 },
	{ "tenant", 's', 0 }, { "env", 's', 0 }, { 0 } };
static const struct want w_metrics_ans[] = { { "text", 's', 0 }, { 0 } };
static const struct want w_none[] = { { 0 } };
static const struct want w_writes_state[] = { { "writes_enabled", 'b', 0 },
	{ 0 } };

static const struct {
	const char		*name;
	int			 from;
	const struct want	*fields;
} schema[] = {
	[MSG_HELLO] = { "HELLO", MSG_FROM_GATEWAYD, w_hello },
	[MSG_HELLO_ANS] = { "HELLO_ANS", MSG_FROM_EXECUTOR, w_hello_ans },
	[MSG_CALL] = { "CALL", MSG_FROM_GATEWAYD, w_call },
	[MSG_CALL_ANS] = { "CALL_ANS", MSG_FROM_EXECUTOR, w_response },
	[MSG_RESUME] = { "RESUME", MSG_FROM_GATEWAYD, w_resume },
	[MSG_RESUME_ANS] = { "RESUME_ANS", MSG_FROM_EXECUTOR, w_response },
	[MSG_WAIT] = { "WAIT", MSG_FROM_GATEWAYD, w_wait },
	[MSG_WAIT_ANS] = { "WAIT_ANS", MSG_FROM_EXECUTOR, w_response },
	[MSG_WRITES_OFF] = { "WRITES_OFF", MSG_FROM_GATEWAYD, w_none },
	[MSG_WRITES_STATE] = { "WRITES_STATE", MSG_FROM_EXECUTOR,
	    w_writes_state },
	[MSG_AUDIT] = { "AUDIT", MSG_FROM_GATEWAYD, w_audit },
	[MSG_CONN_GONE] = { "CONN_GONE", MSG_FROM_GATEWAYD, w_conn_gone },
	[MSG_AUDIT_SUMMARY] = { "AUDIT_SUMMARY", MSG_FROM_GATEWAYD,
	    w_audit_summary },
	[MSG_CONN_REFUSED] = { "CONN_REFUSED", MSG_FROM_EXECUTOR,
	    w_conn_refused },
	[MSG_TOOLS] = { "TOOLS", MSG_FROM_GATEWAYD, w_tools },
	[MSG_TOOLS_ANS] = { "TOOLS_ANS", MSG_FROM_EXECUTOR, w_response },
	[MSG_METRICS] = { "METRICS", MSG_FROM_GATEWAYD, w_none },
	[MSG_METRICS_ANS] = { "METRICS_ANS", MSG_FROM_EXECUTOR,
	    w_metrics_ans },
	[MSG_PING] = { "PING", MSG_FROM_GATEWAYD, w_none },
	[MSG_PONG] = { "PONG", MSG_FROM_EXECUTOR, w_none },
	[MSG_AUDIT_REOPEN] = { "AUDIT_REOPEN", MSG_FROM_GATEWAYD, w_none },
};

_Static_assert(sizeof(schema) / sizeof(schema[0]) == MSG_MAX,
    "proto.h has a message type this fuzz target does not know");

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_proto: %s\n", what);
	abort();
}

static int
type_ok(const msgpack_object *o, char t)
{
	switch (t) {
	case 'u':
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
	case 's':
		return o->type == MSGPACK_OBJECT_STR &&
		    memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL;
	case 'm':
		return o->type == MSGPACK_OBJECT_MAP;
	case 'b':
		return o->type == MSGPACK_OBJECT_BOOLEAN;
	}
	return 0;
}

static void
check_schema(uint32_t type, const msgpack_object *body)
{
	const struct want	*f = schema[type].fields;
	const msgpack_object_kv	*kv;
	uint32_t		 i, j, count;
	int			 k;

	for (i = 0; i < body->via.map.size; i++) {
		kv = &body->via.map.ptr[i];
		for (k = 0; f[k].key != NULL; k++)
			if (mp_streq(&kv->key, f[k].key))
				break;
		if (f[k].key == NULL)
			fail("accepted an unknown field");
		if (!type_ok(&kv->val, f[k].type))
			fail("accepted a field of the wrong type");
	}
	for (k = 0; f[k].key != NULL; k++) {
		count = 0;
		for (j = 0; j < body->via.map.size; j++)
			if (mp_streq(&body->via.map.ptr[j].key, f[k].key))
				count++;
		if (count > 1)
			fail("accepted a field twice");
		if (count == 0 && !f[k].optional)
			fail("accepted a message without a required field");
	}
}

static void
check_reencode(const struct proto_msg *m)
{
	struct proto_msg	 m2;
	struct msgbuf		 mb;
	const char		*frame;
	char			 err[256];
	size_t			 len;
	uint32_t		 i;

	msgbuf_init(&mb);
	msgbuf_begin_envelope(&mb, m->type, m->id);
	msgpack_pack_map(&mb.pk, m->body->via.map.size);
	for (i = 0; i < m->body->via.map.size; i++) {
		msgpack_pack_object(&mb.pk, m->body->via.map.ptr[i].key);
		msgpack_pack_object(&mb.pk, m->body->via.map.ptr[i].val);
	}
	frame = msgbuf_finish(&mb, &len);
	if (len < FRAME_HDR ||
	    ((uint32_t)(unsigned char)frame[0] << 24 |
	    (uint32_t)(unsigned char)frame[1] << 16 |
	    (uint32_t)(unsigned char)frame[2] << 8 |
	    (unsigned char)frame[3]) != len - FRAME_HDR)
		fail("msgbuf_finish wrote a wrong length");
	if (proto_decode(frame + FRAME_HDR, len - FRAME_HDR, &m2, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "re-encoded: %s\n", err);
		fail("a re-encoded message does not decode");
	}
	if (m2.type != m->type || m2.id != m->id)
		fail("the re-encoded message has another type or id");
	/* No floats in any schema field, but args/response may hold NaN. */
	if (!msgpack_object_equal(*m2.body, *m->body)) {
		msgpack_sbuffer	 a, b;
		msgpack_packer	 pk;

		msgpack_sbuffer_init(&a);
		msgpack_sbuffer_init(&b);
		msgpack_packer_init(&pk, &a, msgpack_sbuffer_write);
		msgpack_pack_object(&pk, *m->body);
		msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
		msgpack_pack_object(&pk, *m2.body);
		if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0)
			fail("the re-encoded body differs");
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
	}
	proto_msg_free(&m2);
	msgbuf_free(&mb);
}

/* A decoded string field says what the body's str says, or is NULL. */
static void
check_str(const msgpack_object *body, const char *key, const char *s)
{
	const msgpack_object	*o = mp_get(body, key);

	if (o == NULL ? s != NULL : s == NULL ||
	    strlen(s) != o->via.str.size ||
	    memcmp(s, o->via.str.ptr, o->via.str.size) != 0)
		fail("a decoded string is not the body's");
}

static void
check_uint(const msgpack_object *body, const char *key, int has, uint64_t v)
{
	const msgpack_object	*o = mp_get(body, key);

	if (o == NULL ? has : !has || o->via.u64 != v)
		fail("a decoded integer is not the body's");
}

/* The struct the decoder filled in holds the body's values. */
static void
check_struct(const struct proto_msg *m)
{
	const msgpack_object	*b = m->body;

	switch (m->type) {
	case MSG_CALL:
		check_uint(b, "conn", 1, m->call.conn);
		check_uint(b, "uid", 1, m->call.uid);
		check_uint(b, "gid", 1, m->call.gid);
		check_uint(b, "pid", 1, m->call.pid);
		check_str(b, "tenant", m->call.tenant);
		check_str(b, "env", m->call.env);
		check_str(b, "run_id", m->call.run_id);
		check_str(b, "step_id", m->call.step_id);
		check_str(b, "tool", m->call.tool);
		if (m->call.args != mp_get(b, "args"))
			fail("args is not the body's");
		break;
	case MSG_TOOLS:
		check_uint(b, "conn", 1, m->tools.conn);
		check_uint(b, "uid", 1, m->tools.uid);
		check_uint(b, "gid", 1, m->tools.gid);
		check_str(b, "tenant", m->tools.tenant);
		check_str(b, "env", m->tools.env);
		break;
	case MSG_AUDIT:
		check_str(b, "tenant", m->audit.tenant);
		check_str(b, "args_hash", m->audit.args_hash);
		check_str(b, "message", m->audit.message);
		break;
	case MSG_METRICS_ANS:
		check_str(b, "text", m->metrics_ans.text);
		break;
	case MSG_AUDIT_SUMMARY:
		check_uint(b, "uid", m->audit_summary.has_uid,
		    m->audit_summary.uid);
		check_uint(b, "gid", m->audit_summary.has_gid,
		    m->audit_summary.gid);
		check_uint(b, "count", 1, m->audit_summary.count);
		break;
	case MSG_CALL_ANS:
	case MSG_RESUME_ANS:
	case MSG_WAIT_ANS:
	case MSG_TOOLS_ANS:
		check_str(b, "run_id", m->ans.run_id);
		if (m->ans.response != mp_get(b, "response"))
			fail("response is not the body's");
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct proto_msg	 zero;
	struct proto_msg		 m;
	const msgpack_object		*a;
	char				 err[256];
	long				 span;

	err[0] = '\0';
	if (proto_decode((const char *)data, size, &m, err, sizeof(err)) ==
	    -1) {
		if (err[0] == '\0')
			fail("refused without a reason");
		if (memcmp(&m, &zero, sizeof(m)) != 0)
			fail("refused but left the message filled in");
		return 0;
	}
	span = mp_check((const char *)data, size);
	if (span < 0 || (size_t)span != size)
		fail("accepted more or less than one msgpack value");
	if (m.type == MSG_NONE || m.type >= MSG_MAX)
		fail("accepted a type out of range");
	if (msg_direction(m.type) != MSG_FROM_GATEWAYD &&
	    msg_direction(m.type) != MSG_FROM_EXECUTOR)
		fail("accepted a type without a direction");
	if (msg_direction(m.type) != schema[m.type].from ||
	    strcmp(msg_type_str(m.type), schema[m.type].name) != 0)
		fail("the type's direction or name changed");
	a = &m.unpacked.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3 ||
	    a->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a->via.array.ptr[0].via.u64 != m.type ||
	    a->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a->via.array.ptr[1].via.u64 != m.id ||
	    m.body != &a->via.array.ptr[2])
		fail("the message is not the [type, id, body] it came from");
	if (m.body == NULL || m.body->type != MSGPACK_OBJECT_MAP)
		fail("the body is not a map");
	check_schema(m.type, m.body);
	check_struct(&m);
	check_reencode(&m);
	proto_msg_free(&m);
	return 0;
}
