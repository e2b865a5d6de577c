/*
 * The socketpair messages (proto/proto.c): every type built with msgbuf
 * and decoded again, then every way a body can break the schema (a field
 * missing, extra, twice, of every wrong type) and every way the envelope
 * can (not an array, wrong length, bad type or id, trailing bytes, cut
 * short).  The schema table here restates the one in proto.c on purpose:
 * a change there must show up here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/frame.h"
#include "proto/proto.h"
#include "tests/unit/test.h"

enum ftype { T_UINT, T_STR, T_MAP, T_BOOL };

struct tfield {
	const char	*key;
	enum ftype	 type;
	int		 optional;
};

struct tmsg {
	uint32_t		 type;
	const char		*name;
	int			 from;
	struct tfield		 fields[14];	/* ends with a NULL key */
};

static const struct tmsg msgs[] = {
	{ MSG_HELLO, "HELLO", MSG_FROM_GATEWAYD, {
		{ "version", T_UINT, 0 }, { NULL, 0, 0 } } },
	{ MSG_HELLO_ANS, "HELLO_ANS", MSG_FROM_EXECUTOR, {
		{ "version", T_UINT, 0 }, { "writes_enabled", T_BOOL, 0 },
		{ "config_hash", T_STR, 0 }, { NULL, 0, 0 } } },
	{ MSG_CALL, "CALL", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { "uid", T_UINT, 0 }, { "gid", T_UINT, 0 },
		{ "pid", T_UINT, 0 }, { "tenant", T_STR, 0 },
		{ "env", T_STR, 0 }, { "run_id", T_STR, 0 },
		{ "step_id", T_STR, 1 }, { "tool", T_STR, 0 },
		{ "args", T_MAP, 0 }, { NULL, 0, 0 } } },
	{ MSG_CALL_ANS, "CALL_ANS", MSG_FROM_EXECUTOR, {
		{ "response", T_MAP, 0 }, { NULL, 0, 0 } } },
	{ MSG_RESUME, "RESUME", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { "uid", T_UINT, 0 }, { "gid", T_UINT, 0 },
		{ "pid", T_UINT, 0 }, { "tenant", T_STR, 0 },
		{ "env", T_STR, 0 }, { "checkpoint", T_STR, 0 },
		{ NULL, 0, 0 } } },
	{ MSG_RESUME_ANS, "RESUME_ANS", MSG_FROM_EXECUTOR, {
		{ "response", T_MAP, 0 }, { NULL, 0, 0 } } },
	{ MSG_WAIT, "WAIT", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { "uid", T_UINT, 0 }, { "gid", T_UINT, 0 },
		{ "tenant", T_STR, 0 }, { "env", T_STR, 0 },
		{ "approval_id", T_STR, 0 }, { "timeout_ms", T_UINT, 0 },
		{ NULL, 0, 0 } } },
	{ MSG_WAIT_ANS, "WAIT_ANS", MSG_FROM_EXECUTOR, {
		{ "response", T_MAP, 0 }, { NULL, 0, 0 } } },
	{ MSG_WRITES_OFF, "WRITES_OFF", MSG_FROM_GATEWAYD, {
		{ NULL, 0, 0 } } },
	{ MSG_WRITES_STATE, "WRITES_STATE", MSG_FROM_EXECUTOR, {
		{ "writes_enabled", T_BOOL, 0 }, { NULL, 0, 0 } } },
	{ MSG_AUDIT, "AUDIT", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { "uid", T_UINT, 0 }, { "gid", T_UINT, 0 },
		{ "tenant", T_STR, 1 }, { "env", T_STR, 1 },
		{ "run_id", T_STR, 1 }, { "step_id", T_STR, 1 },
		{ "tool", T_STR, 1 }, { "args_hash", T_STR, 1 },
		{ "decision", T_STR, 0 }, { "reason", T_STR, 0 },
		{ "message", T_STR, 0 }, { "traceparent", T_STR, 1 },
		{ NULL, 0, 0 } } },
	{ MSG_CONN_GONE, "CONN_GONE", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { NULL, 0, 0 } } },
	{ MSG_AUDIT_SUMMARY, "AUDIT_SUMMARY", MSG_FROM_GATEWAYD, {
		{ "uid", T_UINT, 1 }, { "gid", T_UINT, 1 },
		{ "count", T_UINT, 0 }, { "first_ms", T_UINT, 0 },
		{ "last_ms", T_UINT, 0 }, { NULL, 0, 0 } } },
	{ MSG_CONN_REFUSED, "CONN_REFUSED", MSG_FROM_EXECUTOR, {
		{ "conn", T_UINT, 0 }, { "message", T_STR, 0 },
		{ NULL, 0, 0 } } },
	{ MSG_TOOLS, "TOOLS", MSG_FROM_GATEWAYD, {
		{ "conn", T_UINT, 0 }, { "uid", T_UINT, 0 }, { "gid", T_UINT, 0 },
		{ "tenant", T_STR, 0 }, { "env", T_STR, 0 },
		{ NULL, 0, 0 } } },
	{ MSG_TOOLS_ANS, "TOOLS_ANS", MSG_FROM_EXECUTOR, {
		{ "response", T_MAP, 0 }, { NULL, 0, 0 } } },
	{ MSG_METRICS, "METRICS", MSG_FROM_GATEWAYD, {
		{ NULL, 0, 0 } } },
	{ MSG_METRICS_ANS, "METRICS_ANS", MSG_FROM_EXECUTOR, {
		{ "text", T_STR, 0 }, { NULL, 0, 0 } } },
	{ MSG_PING, "PING", MSG_FROM_GATEWAYD, { { NULL, 0, 0 } } },
	{ MSG_PONG, "PONG", MSG_FROM_EXECUTOR, { { NULL, 0, 0 } } },
	{ MSG_AUDIT_REOPEN, "AUDIT_REOPEN", MSG_FROM_GATEWAYD,
	    { { NULL, 0, 0 } } },
};
#define NMSGS	(sizeof(msgs) / sizeof(msgs[0]))

/* Values a field can be given; the first four are the right ones. */
enum val {
	V_UINT, V_STR, V_MAP, V_BOOL,
	V_NEG, V_FLOAT, V_NIL, V_ARRAY, V_BIN, V_STR_NUL, V_EXT,
	V_COUNT
};

static const char *const val_names[V_COUNT] = {
	"uint", "str", "map", "bool", "negative int", "float", "nil",
	"array", "bin", "str with NUL", "ext",
};

/* How to deviate from the valid body. */
struct change {
	int		 omit;		/* field index left out, or -1 */
	int		 twice;		/* field index given twice, or -1 */
	int		 retype;	/* field index given 'as', or -1 */
	enum val	 as;
	int		 extra;		/* add an unknown field */
	int		 int_key;	/* add a field with an integer key */
};

static const struct change no_change = { -1, -1, -1, V_UINT, 0, 0 };

static size_t
nfields(const struct tmsg *m)
{
	size_t	n = 0;

	while (m->fields[n].key != NULL)
		n++;
	return n;
}

/* The value of field i in a valid message: distinct per field. */
static void
pack_val(msgpack_packer *pk, enum val v, size_t i)
{
	char	str[32];

	switch (v) {
	case V_UINT:
		msgpack_pack_uint64(pk, 1000 + i);
		break;
	case V_STR:
		snprintf(str, sizeof(str), "value-%zu", i);
		pk_str(pk, str);
		break;
	case V_MAP:
		msgpack_pack_map(pk, 1);
		pk_str(pk, "k");
		msgpack_pack_uint64(pk, i);
		break;
	case V_BOOL:
		if (i % 2)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case V_NEG:
		msgpack_pack_int64(pk, -1 - (int64_t)i);
		break;
	case V_FLOAT:
		msgpack_pack_double(pk, 1.5);
		break;
	case V_NIL:
		msgpack_pack_nil(pk);
		break;
	case V_ARRAY:
		msgpack_pack_array(pk, 1);
		msgpack_pack_uint64(pk, 1);
		break;
	case V_BIN:
		msgpack_pack_bin_with_body(pk, "value", 5);
		break;
	case V_STR_NUL:
		pk_strn(pk, "val\0ue", 6);
		break;
	case V_EXT:
		msgpack_pack_ext_with_body(pk, "x", 1, 1);
		break;
	case V_COUNT:
		break;
	}
}

/* Build the frame for message m with id and change c; returns mb's frame. */
static const char *
build(struct msgbuf *mb, const struct tmsg *m, uint64_t id,
    const struct change *c, int with_optional, size_t *len)
{
	size_t	i, n = nfields(m), count = 0;

	for (i = 0; i < n; i++) {
		if ((int)i == c->omit ||
		    (m->fields[i].optional && !with_optional))
			continue;
		count += (int)i == c->twice ? 2 : 1;
	}
	count += c->extra + c->int_key;
	msgbuf_init(mb);
	msgbuf_begin_envelope(mb, m->type, id);
	msgpack_pack_map(&mb->pk, (uint32_t)count);
	for (i = 0; i < n; i++) {
		if ((int)i == c->omit ||
		    (m->fields[i].optional && !with_optional))
			continue;
		pk_str(&mb->pk, m->fields[i].key);
		pack_val(&mb->pk, (int)i == c->retype ? c->as :
		    (enum val)m->fields[i].type, i);
		if ((int)i == c->twice) {
			pk_str(&mb->pk, m->fields[i].key);
			pack_val(&mb->pk, (enum val)m->fields[i].type, i);
		}
	}
	if (c->extra)
		pk_kv_uint(&mb->pk, "surplus", 1);
	if (c->int_key) {
		msgpack_pack_uint64(&mb->pk, 7);
		msgpack_pack_uint64(&mb->pk, 7);
	}
	return msgbuf_finish(mb, len);
}

/* Decode the body of a frame; 0 or -1, with the message freed. */
static int
decode_frame(const char *frame, size_t len, char *err, size_t errlen)
{
	struct proto_msg	m;

	err[0] = '\0';
	if (proto_decode(frame + FRAME_HDR, len - FRAME_HDR, &m, err,
	    errlen) == -1)
		return -1;
	proto_msg_free(&m);
	return 0;
}

/* Every field of a decoded body holds what build() put there. */
static int
body_matches(const struct tmsg *t, const struct proto_msg *m,
    int with_optional)
{
	const msgpack_object	*o;
	char			 want[32];
	size_t			 i, n = nfields(t), present;

	if (m->body == NULL || m->body->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (i = 0; i < n; i++) {
		o = mp_get(m->body, t->fields[i].key);
		if (t->fields[i].optional && !with_optional) {
			if (o != NULL)
				return 0;
			continue;
		}
		if (o == NULL)
			return 0;
		switch (t->fields[i].type) {
		case T_UINT:
			if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
			    o->via.u64 != 1000 + i)
				return 0;
			break;
		case T_STR:
			snprintf(want, sizeof(want), "value-%zu", i);
			if (!mp_streq(o, want))
				return 0;
			break;
		case T_MAP:
			if (o->type != MSGPACK_OBJECT_MAP ||
			    o->via.map.size != 1 ||
			    mp_get(o, "k") == NULL ||
			    mp_get(o, "k")->via.u64 != i)
				return 0;
			break;
		case T_BOOL:
			if (o->type != MSGPACK_OBJECT_BOOLEAN ||
			    o->via.boolean != (i % 2 == 1))
				return 0;
			break;
		}
	}
	for (i = 0, present = 0; i < n; i++)
		if (with_optional || !t->fields[i].optional)
			present++;
	return m->body->via.map.size == present;
}

static void
test_roundtrip(void)
{
	static const uint64_t	 ids[] = { 0, 1, 127, 128, 65536,
	    UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX };
	struct msgbuf		 mb;
	struct proto_msg	 m;
	const char		*frame;
	char			 err[256];
	size_t			 i, j, len;
	int			 opt, ok;
	uint32_t		 hdr;

	for (i = 0; i < NMSGS; i++) {
		for (j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
			for (opt = 0; opt <= 1; opt++) {
				frame = build(&mb, &msgs[i], ids[j],
				    &no_change, opt, &len);
				hdr = (uint32_t)(unsigned char)frame[0] << 24 |
				    (uint32_t)(unsigned char)frame[1] << 16 |
				    (uint32_t)(unsigned char)frame[2] << 8 |
				    (unsigned char)frame[3];
				if (hdr != len - FRAME_HDR) {
					msgbuf_free(&mb);
					ASSERT(0);
				}
				if (proto_decode(frame + FRAME_HDR,
				    len - FRAME_HDR, &m, err,
				    sizeof(err)) == -1) {
					fprintf(stderr, "%s: %s\n",
					    msgs[i].name, err);
					msgbuf_free(&mb);
					ASSERT(0);
				}
				ok = m.type == msgs[i].type &&
				    m.id == ids[j] &&
				    body_matches(&msgs[i], &m, opt);
				proto_msg_free(&m);
				msgbuf_free(&mb);
				if (!ok)
					fprintf(stderr, "%s id %llu\n",
					    msgs[i].name,
					    (unsigned long long)ids[j]);
				ASSERT(ok);
				ASSERT(m.body == NULL);	/* freed, cleared */
			}
		}
	}
}

/* A reused msgbuf builds the same frame again. */
static void
test_msgbuf_reset(void)
{
	struct msgbuf	 mb;
	const char	*f;
	char		*first, err[256];
	size_t		 len, len2;

	f = build(&mb, &msgs[2], 9, &no_change, 1, &len);
	first = malloc(len);
	memcpy(first, f, len);
	msgbuf_reset(&mb);
	msgbuf_begin_envelope(&mb, MSG_WRITES_OFF, 10);
	msgpack_pack_map(&mb.pk, 0);
	f = msgbuf_finish(&mb, &len2);
	ASSERT(len2 < len);
	ASSERT_EQ_INT(decode_frame(f, len2, err, sizeof(err)), 0);
	msgbuf_free(&mb);
	f = build(&mb, &msgs[2], 9, &no_change, 1, &len2);
	ASSERT_EQ_INT(len2, len);
	ASSERT_EQ_MEM(f, first, len);
	msgbuf_free(&mb);
	free(first);
}

/* Build with change c and expect a refusal; reports the case. */
static int
refused(const struct tmsg *t, const struct change *c, int opt,
    const char *what)
{
	struct msgbuf	 mb;
	const char	*frame;
	char		 err[256];
	size_t		 len;
	int		 r;

	frame = build(&mb, t, 42, c, opt, &len);
	r = decode_frame(frame, len, err, sizeof(err));
	msgbuf_free(&mb);
	if (r != -1) {
		fprintf(stderr, "%s: %s accepted\n", t->name, what);
		return 0;
	}
	if (err[0] == '\0') {
		fprintf(stderr, "%s: %s refused without a reason\n",
		    t->name, what);
		return 0;
	}
	return 1;
}

/* Build with change c and expect it to decode. */
static int
accepted(const struct tmsg *t, const struct change *c, int opt)
{
	struct msgbuf	 mb;
	const char	*frame;
	char		 err[256];
	size_t		 len;
	int		 r;

	frame = build(&mb, t, 42, c, opt, &len);
	r = decode_frame(frame, len, err, sizeof(err));
	msgbuf_free(&mb);
	if (r != 0)
		fprintf(stderr, "%s: %s\n", t->name, err);
	return r == 0;
}

static void
test_missing(void)
{
	struct change	 c = no_change;
	char		 what[128];
	size_t		 i, j;

	for (i = 0; i < NMSGS; i++) {
		for (j = 0; j < nfields(&msgs[i]); j++) {
			c.omit = (int)j;
			if (msgs[i].fields[j].optional) {
				/* An optional field may be left out. */
				ASSERT(accepted(&msgs[i], &c, 1));
				continue;
			}
			snprintf(what, sizeof(what), "without %s",
			    msgs[i].fields[j].key);
			ASSERT(refused(&msgs[i], &c, 1, what));
			ASSERT(refused(&msgs[i], &c, 0, what));
		}
	}
}

static void
test_extra(void)
{
	struct change	c = no_change;
	size_t		i;

	for (i = 0; i < NMSGS; i++) {
		c.extra = 1;
		c.int_key = 0;
		ASSERT(refused(&msgs[i], &c, 1, "an extra field"));
		c.extra = 0;
		c.int_key = 1;
		ASSERT(refused(&msgs[i], &c, 1, "an integer key"));
	}
}

static void
test_twice(void)
{
	struct change	 c = no_change;
	char		 what[128];
	size_t		 i, j;

	for (i = 0; i < NMSGS; i++) {
		for (j = 0; j < nfields(&msgs[i]); j++) {
			c.twice = (int)j;
			snprintf(what, sizeof(what), "%s twice",
			    msgs[i].fields[j].key);
			ASSERT(refused(&msgs[i], &c, 1, what));
		}
	}
}

static void
test_wrong_types(void)
{
	struct change	 c = no_change;
	char		 what[128];
	size_t		 i, j;
	int		 v;

	for (i = 0; i < NMSGS; i++) {
		for (j = 0; j < nfields(&msgs[i]); j++) {
			for (v = 0; v < V_COUNT; v++) {
				if (v == (int)msgs[i].fields[j].type)
					continue;
				c.retype = (int)j;
				c.as = (enum val)v;
				snprintf(what, sizeof(what), "%s as %s",
				    msgs[i].fields[j].key, val_names[v]);
				ASSERT(refused(&msgs[i], &c, 1, what));
			}
		}
	}
}

/* Raw envelopes: [type, id, body] in every wrong shape. */
static int
raw_refused(void (*fn)(msgpack_packer *), const char *what)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	struct proto_msg	 m;
	char			 err[256];
	int			 r;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fn(&pk);
	err[0] = '\0';
	r = proto_decode(sb.data, sb.size, &m, err, sizeof(err));
	if (r == 0)
		proto_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);
	if (r != -1 || err[0] == '\0') {
		fprintf(stderr, "%s: accepted\n", what);
		return 0;
	}
	return m.body == NULL && m.type == 0;
}

static void
writes_off(msgpack_packer *pk, uint64_t type)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, type);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_map(pk, 0);
}

static void
env_ok(msgpack_packer *pk)
{
	writes_off(pk, MSG_WRITES_OFF);
}

static void
env_type0(msgpack_packer *pk)
{
	writes_off(pk, MSG_NONE);
}

static void
env_typemax(msgpack_packer *pk)
{
	writes_off(pk, MSG_MAX);
}

static void
env_typemax1(msgpack_packer *pk)
{
	writes_off(pk, MSG_MAX + 1);
}

static void
env_type255(msgpack_packer *pk)
{
	writes_off(pk, 255);
}

static void
env_type_u32(msgpack_packer *pk)
{
	writes_off(pk, UINT32_MAX);
}

static void
env_type_u64(msgpack_packer *pk)
{
	writes_off(pk, UINT64_MAX);
}

/* MSG_WRITES_OFF plus 2^32: must not wrap into a valid type. */
static void
env_type_wrap(msgpack_packer *pk)
{
	writes_off(pk, ((uint64_t)1 << 32) + MSG_WRITES_OFF);
}

static void
env_map(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 0);
}

static void
env_int(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
}

static void
env_len2(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_uint64(pk, 1);
}

static void
env_len4(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_map(pk, 0);
	msgpack_pack_nil(pk);
}

static void
env_len0(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 0);
}

static void
env_id_neg(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_int64(pk, -1);
	msgpack_pack_map(pk, 0);
}

static void
env_id_str(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	pk_str(pk, "1");
	msgpack_pack_map(pk, 0);
}

static void
env_id_float(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_double(pk, 1.0);
	msgpack_pack_map(pk, 0);
}

static void
env_id_nil(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_nil(pk);
	msgpack_pack_map(pk, 0);
}

static void
env_type_str(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	pk_str(pk, "WRITES_OFF");
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_map(pk, 0);
}

static void
env_type_neg(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_int64(pk, -(int64_t)MSG_WRITES_OFF);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_map(pk, 0);
}

static void
env_body_array(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_array(pk, 0);
}

static void
env_body_nil(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, MSG_WRITES_OFF);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_nil(pk);
}

static void
env_trailing(msgpack_packer *pk)
{
	env_ok(pk);
	msgpack_pack_nil(pk);
}

static void
env_two(msgpack_packer *pk)
{
	env_ok(pk);
	env_ok(pk);
}

static void
test_envelope(void)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	struct proto_msg	 m;
	char			 err[256];
	size_t			 cut;

	/* The good one first, so the others fail for their own reason. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	env_ok(&pk);
	ASSERT_EQ_INT(proto_decode(sb.data, sb.size, &m, err, sizeof(err)), 0);
	ASSERT_EQ_INT(m.type, MSG_WRITES_OFF);
	ASSERT_EQ_INT(m.id, 1);
	proto_msg_free(&m);
	/* Every cut of it is refused. */
	for (cut = 0; cut < sb.size; cut++) {
		if (proto_decode(sb.data, cut, &m, err, sizeof(err)) != -1) {
			proto_msg_free(&m);
			msgpack_sbuffer_destroy(&sb);
			ASSERT(0);
		}
	}
	msgpack_sbuffer_destroy(&sb);

	ASSERT(raw_refused(env_type0, "type 0"));
	ASSERT(raw_refused(env_typemax, "type MSG_MAX"));
	ASSERT(raw_refused(env_typemax1, "type MSG_MAX + 1"));
	ASSERT(raw_refused(env_type255, "type 255"));
	ASSERT(raw_refused(env_type_u32, "type 2^32-1"));
	ASSERT(raw_refused(env_type_u64, "type 2^64-1"));
	ASSERT(raw_refused(env_type_wrap, "type 2^32 + WRITES_OFF"));
	ASSERT(raw_refused(env_type_str, "type as a string"));
	ASSERT(raw_refused(env_type_neg, "negative type"));
	ASSERT(raw_refused(env_map, "a map"));
	ASSERT(raw_refused(env_int, "an integer"));
	ASSERT(raw_refused(env_len0, "an empty array"));
	ASSERT(raw_refused(env_len2, "an array of 2"));
	ASSERT(raw_refused(env_len4, "an array of 4"));
	ASSERT(raw_refused(env_id_neg, "a negative id"));
	ASSERT(raw_refused(env_id_str, "a string id"));
	ASSERT(raw_refused(env_id_float, "a float id"));
	ASSERT(raw_refused(env_id_nil, "a nil id"));
	ASSERT(raw_refused(env_body_array, "an array body"));
	ASSERT(raw_refused(env_body_nil, "a nil body"));
	ASSERT(raw_refused(env_trailing, "a trailing nil"));
	ASSERT(raw_refused(env_two, "two messages"));
}

/* A full CALL, cut at every length and given a trailing byte. */
static void
test_call_cuts(void)
{
	static const unsigned char	 tails[] = { 0xc0, 0x00, 0x90, 0xc1 };
	struct msgbuf			 mb;
	struct proto_msg		 m;
	const char			*frame;
	char				 err[256], *copy;
	size_t				 len, cut, body, i;
	int				 r;

	frame = build(&mb, &msgs[2], 77, &no_change, 1, &len);
	body = len - FRAME_HDR;
	copy = malloc(body + 1);
	memcpy(copy, frame + FRAME_HDR, body);
	msgbuf_free(&mb);
	for (cut = 0; cut < body; cut++) {
		if ((r = proto_decode(copy, cut, &m, err, sizeof(err))) == 0)
			proto_msg_free(&m);
		if (r != -1) {
			fprintf(stderr, "cut at %zu of %zu\n", cut, body);
			free(copy);
			ASSERT(0);
		}
	}
	for (i = 0; i < sizeof(tails); i++) {
		copy[body] = (char)tails[i];
		if ((r = proto_decode(copy, body + 1, &m, err,
		    sizeof(err))) == 0)
			proto_msg_free(&m);
		if (r != -1) {
			fprintf(stderr, "tail %02x accepted\n", tails[i]);
			free(copy);
			ASSERT(0);
		}
	}
	free(copy);
}

static void
test_type_names(void)
{
	size_t		i, j;
	uint32_t	t;

	ASSERT_EQ_INT(NMSGS, MSG_MAX - 1);
	for (t = 1; t < MSG_MAX; t++) {
		ASSERT(strcmp(msg_type_str(t), "UNKNOWN") != 0);
		for (j = 1; j < t; j++)
			ASSERT(strcmp(msg_type_str(t),
			    msg_type_str((uint32_t)j)) != 0);
	}
	for (i = 0; i < NMSGS; i++)
		ASSERT_EQ_STR(msg_type_str(msgs[i].type), msgs[i].name);
	ASSERT_EQ_STR(msg_type_str(MSG_NONE), "UNKNOWN");
	ASSERT_EQ_STR(msg_type_str(MSG_MAX), "UNKNOWN");
	ASSERT_EQ_STR(msg_type_str(MSG_MAX + 1), "UNKNOWN");
	ASSERT_EQ_STR(msg_type_str(UINT32_MAX), "UNKNOWN");
}

static void
test_direction(void)
{
	size_t	i;

	for (i = 0; i < NMSGS; i++)
		ASSERT_EQ_INT(msg_direction(msgs[i].type), msgs[i].from);
	ASSERT_EQ_INT(msg_direction(MSG_NONE), 0);
	ASSERT_EQ_INT(msg_direction(MSG_MAX), 0);
	ASSERT_EQ_INT(msg_direction(UINT32_MAX), 0);
}

/* mp_get, mp_strdup, mp_streq on one unpacked map. */
static void
test_mp_helpers(void)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	const msgpack_object	*o;
	msgpack_object		 notmap;
	char			*s;
	size_t			 off = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	pk_kv_str(&pk, "name", "alice");
	pk_kv_str(&pk, "empty", "");
	pk_str(&pk, "nul");
	pk_strn(&pk, "a\0b", 3);
	pk_kv_uint(&pk, "n", 5);
	pk_str(&pk, "bin");
	msgpack_pack_bin_with_body(&pk, "alice", 5);
	pk_kv_str(&pk, "name", "second");	/* mp_get takes the first */
	msgpack_unpacked_init(&u);
	ASSERT(msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS);

	o = mp_get(&u.data, "name");
	ASSERT(o != NULL && mp_streq(o, "alice"));
	ASSERT(!mp_streq(o, "alic"));
	ASSERT(!mp_streq(o, "alice2"));
	ASSERT(!mp_streq(o, "Alice"));
	ASSERT(!mp_streq(o, ""));
	s = mp_strdup(o);
	ASSERT_EQ_STR(s, "alice");
	free(s);

	ASSERT(mp_get(&u.data, "nam") == NULL);
	ASSERT(mp_get(&u.data, "names") == NULL);
	ASSERT(mp_get(&u.data, "") == NULL);
	ASSERT(mp_get(NULL, "name") == NULL);
	ASSERT(mp_get(mp_get(&u.data, "n"), "name") == NULL);
	notmap.type = MSGPACK_OBJECT_NIL;
	ASSERT(mp_get(&notmap, "name") == NULL);

	o = mp_get(&u.data, "empty");
	ASSERT(o != NULL && mp_streq(o, ""));
	s = mp_strdup(o);
	ASSERT_EQ_STR(s, "");
	free(s);

	/* An embedded NUL: no C string, and no match on its prefix. */
	o = mp_get(&u.data, "nul");
	ASSERT(o != NULL);
	ASSERT_EQ_INT(o->via.str.size, 3);
	ASSERT(mp_strdup(o) == NULL);
	ASSERT(!mp_streq(o, "a"));

	/* Not strings. */
	ASSERT(mp_strdup(mp_get(&u.data, "n")) == NULL);
	ASSERT(mp_strdup(mp_get(&u.data, "bin")) == NULL);
	ASSERT(!mp_streq(mp_get(&u.data, "bin"), "alice"));
	ASSERT(mp_strdup(NULL) == NULL);
	ASSERT(!mp_streq(&notmap, ""));

	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* The pk_kv_* helpers produce what they say. */
static void
test_pk_helpers(void)
{
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	const msgpack_object	*o;
	size_t			 off = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	pk_kv_uint(&pk, "u", UINT64_MAX);
	pk_kv_int(&pk, "i", INT64_MIN);
	pk_kv_int(&pk, "p", 3);
	pk_kv_bool(&pk, "t", 7);
	pk_kv_bool(&pk, "f", 0);
	pk_kv_nil(&pk, "z");
	msgpack_unpacked_init(&u);
	ASSERT(msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == sb.size);
	o = mp_get(&u.data, "u");
	ASSERT(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 == UINT64_MAX);
	o = mp_get(&u.data, "i");
	ASSERT(o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
	    o->via.i64 == INT64_MIN);
	o = mp_get(&u.data, "p");
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	ASSERT_EQ_INT(o->via.u64, 3);
	o = mp_get(&u.data, "t");
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_BOOLEAN);
	ASSERT(o->via.boolean);
	o = mp_get(&u.data, "f");
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_BOOLEAN);
	ASSERT(!o->via.boolean);
	o = mp_get(&u.data, "z");
	ASSERT_EQ_INT(o->type, MSGPACK_OBJECT_NIL);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* The table agrees with the enum; answers and permits are as documented. */
static void
test_table(void)
{
	ASSERT(proto_table_check() == NULL);
	ASSERT(msg_answer_type(MSG_HELLO) == MSG_HELLO_ANS);
	ASSERT(msg_answer_type(MSG_CALL) == MSG_CALL_ANS);
	ASSERT(msg_answer_type(MSG_RESUME) == MSG_RESUME_ANS);
	ASSERT(msg_answer_type(MSG_WAIT) == MSG_WAIT_ANS);
	ASSERT(msg_answer_type(MSG_TOOLS) == MSG_TOOLS_ANS);
	ASSERT(msg_answer_type(MSG_TOOLS_ANS) == MSG_NONE);
	ASSERT(msg_permits(MSG_TOOLS) == 0);
	ASSERT(msg_answer_type(MSG_METRICS) == MSG_METRICS_ANS);
	ASSERT(msg_answer_type(MSG_METRICS_ANS) == MSG_NONE);
	ASSERT(msg_permits(MSG_METRICS) == 0);
	ASSERT(msg_answer_type(MSG_AUDIT) == MSG_NONE);
	ASSERT(msg_answer_type(MSG_CALL_ANS) == MSG_NONE);
	ASSERT(msg_answer_type(MSG_MAX) == MSG_NONE);
	ASSERT(msg_permits(MSG_HELLO) == (MSG_BEFORE_HELLO | MSG_ONCE));
	ASSERT(msg_permits(MSG_CALL) == 0);
	ASSERT(msg_permits(MSG_NONE) == 0);
}

/* A message built with the map builder, decoded into its struct. */
static int
decode_built(struct msgbuf *mb, struct proto_msg *m)
{
	const char	*frame;
	size_t		 len;
	char		 err[128];

	frame = msgbuf_finish(mb, &len);
	return proto_decode(frame + FRAME_HDR, len - FRAME_HDR, m, err,
	    sizeof(err));
}

static void
test_structs(void)
{
	struct msgbuf		mb;
	struct mpmap		body, args;
	struct proto_msg	m;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_CALL, 77, &body);
	mpmap_uint(&body, "conn", 5);
	mpmap_uint(&body, "uid", 1001);
	mpmap_uint(&body, "gid", 1002);
	mpmap_uint(&body, "pid", 42);
	mpmap_str(&body, "tenant", "acme");
	mpmap_str(&body, "env", "");
	mpmap_str(&body, "run_id", "r1");
	mpmap_str(&body, "tool", "echo");
	mpmap_begin_in(&args, &body, "args");
	mpmap_str(&args, "k", "v");
	mpmap_end(&args);
	mpmap_end(&body);
	ASSERT(decode_built(&mb, &m) == 0);
	ASSERT(m.type == MSG_CALL && m.id == 77);
	ASSERT(m.call.conn == 5 && m.call.uid == 1001 && m.call.gid == 1002 &&
	    m.call.pid == 42);
	ASSERT_EQ_STR(m.call.tenant, "acme");
	ASSERT_EQ_STR(m.call.env, "");
	ASSERT_EQ_STR(m.call.run_id, "r1");
	ASSERT_EQ_STR(m.call.tool, "echo");
	ASSERT(m.call.step_id == NULL);
	ASSERT(m.call.args != NULL && m.call.args->type == MSGPACK_OBJECT_MAP &&
	    mp_streq(mp_get(m.call.args, "k"), "v"));
	/* The args map points into the frame: free it only now. */
	proto_msg_free(&m);
	msgbuf_free(&mb);

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_AUDIT_SUMMARY, 0, &body);
	mpmap_uint(&body, "count", 3);
	mpmap_uint(&body, "first_ms", 10);
	mpmap_uint(&body, "last_ms", 20);
	mpmap_end(&body);
	ASSERT(decode_built(&mb, &m) == 0);
	msgbuf_free(&mb);
	ASSERT(!m.audit_summary.has_uid && !m.audit_summary.has_gid);
	ASSERT(m.audit_summary.count == 3 && m.audit_summary.first_ms == 10 &&
	    m.audit_summary.last_ms == 20);
	proto_msg_free(&m);

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_AUDIT_SUMMARY, 0, &body);
	mpmap_uint(&body, "uid", 0);
	mpmap_uint(&body, "gid", 9);
	mpmap_uint(&body, "count", 1);
	mpmap_uint(&body, "first_ms", 1);
	mpmap_uint(&body, "last_ms", 1);
	mpmap_end(&body);
	ASSERT(decode_built(&mb, &m) == 0);
	msgbuf_free(&mb);
	ASSERT(m.audit_summary.has_uid && m.audit_summary.uid == 0);
	ASSERT(m.audit_summary.has_gid && m.audit_summary.gid == 9);
	proto_msg_free(&m);

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_HELLO_ANS, 1, &body);
	mpmap_uint(&body, "version", PROTO_VERSION);
	mpmap_bool(&body, "writes_enabled", 1);
	mpmap_str(&body, "config_hash", "abc");
	mpmap_end(&body);
	ASSERT(decode_built(&mb, &m) == 0);
	msgbuf_free(&mb);
	ASSERT(m.hello_ans.version == PROTO_VERSION &&
	    m.hello_ans.writes_enabled == 1);
	ASSERT_EQ_STR(m.hello_ans.config_hash, "abc");
	proto_msg_free(&m);
}

int
main(void)
{
	RUN(test_roundtrip);
	RUN(test_msgbuf_reset);
	RUN(test_missing);
	RUN(test_extra);
	RUN(test_twice);
	RUN(test_wrong_types);
	RUN(test_envelope);
	RUN(test_call_cuts);
	RUN(test_type_names);
	RUN(test_direction);
	RUN(test_mp_helpers);
	RUN(test_pk_helpers);
	RUN(test_table);
	RUN(test_structs);
	return tests_failed != 0;
}
