/*
 * The socketpair messages: one table of names, directions, answers,
 * permits and fields, and the strict decoder both processes use, which
 * checks a body against its row and fills in the message's struct.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "proto/proto.h"

/* Field types beyond msgpack's own. */
#define F_UINT		1	/* a positive integer */
#define F_STR		2
#define F_MAP		3
#define F_BOOL		4

/*
 * One field of a body: where its value goes in the message's struct
 * (offset from the union in struct proto_msg) and, for an optional
 * integer, where its has_ flag goes.
 */
struct field {
	const char	*key;
	int		 type;
	int		 optional;
	size_t		 off;
	size_t		 has;
};

/*
 * One socketpair message: its number (the enum's), name, who sends it,
 * the type that answers it, when it may come, and its fields.
 */
struct msg_def {
	uint32_t		 type;
	const char		*name;
	int			 from;
	uint32_t		 answer;
	int			 permits;
	const struct field	*fields;	/* ends with a NULL key */
};

#define FLD(s, f)	offsetof(struct s, f)

static const struct field f_hello[] = {
	{ "version", F_UINT, 0, FLD(msg_hello, version), 0 },
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_hello_ans[] = {
	{ "version", F_UINT, 0, FLD(msg_hello_ans, version), 0 },
	{ "writes_enabled", F_BOOL, 0, FLD(msg_hello_ans, writes_enabled), 0 },
	{ "config_hash", F_STR, 0, FLD(msg_hello_ans, config_hash), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/* conn: whose socket came on the peer channel. */
static const struct field f_call[] = {
	{ "conn", F_UINT, 0, FLD(msg_call, conn), 0 },
	{ "uid", F_UINT, 0, FLD(msg_call, uid), 0 },
	{ "gid", F_UINT, 0, FLD(msg_call, gid), 0 },
	{ "pid", F_UINT, 0, FLD(msg_call, pid), 0 },
	{ "tenant", F_STR, 0, FLD(msg_call, tenant), 0 },
	{ "env", F_STR, 0, FLD(msg_call, env), 0 },
	{ "run_id", F_STR, 0, FLD(msg_call, run_id), 0 },
	{ "step_id", F_STR, 1, FLD(msg_call, step_id), 0 },
	{ "tool", F_STR, 0, FLD(msg_call, tool), 0 },
	{ "args", F_MAP, 0, FLD(msg_call, args), 0 },
	{ "traceparent", F_STR, 1, FLD(msg_call, traceparent), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/*
 * run_id: the run a resumed write belongs to (gatewayd cannot read it
 * from the checkpoint), so a stop in a resume stops gatewayd's run too.
 */
static const struct field f_answer[] = {
	{ "response", F_MAP, 0, FLD(msg_answer, response), 0 },
	{ "run_id", F_STR, 1, FLD(msg_answer, run_id), 0 },
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_resume[] = {
	{ "conn", F_UINT, 0, FLD(msg_resume, conn), 0 },
	{ "uid", F_UINT, 0, FLD(msg_resume, uid), 0 },
	{ "gid", F_UINT, 0, FLD(msg_resume, gid), 0 },
	{ "pid", F_UINT, 0, FLD(msg_resume, pid), 0 },
	{ "tenant", F_STR, 0, FLD(msg_resume, tenant), 0 },
	{ "env", F_STR, 0, FLD(msg_resume, env), 0 },
	{ "checkpoint", F_STR, 0, FLD(msg_resume, checkpoint), 0 },
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_wait[] = {
	{ "conn", F_UINT, 0, FLD(msg_wait, conn), 0 },
	{ "uid", F_UINT, 0, FLD(msg_wait, uid), 0 },
	{ "gid", F_UINT, 0, FLD(msg_wait, gid), 0 },
	{ "tenant", F_STR, 0, FLD(msg_wait, tenant), 0 },
	{ "env", F_STR, 0, FLD(msg_wait, env), 0 },
	{ "approval_id", F_STR, 0, FLD(msg_wait, approval_id), 0 },
	{ "timeout_ms", F_UINT, 0, FLD(msg_wait, timeout_ms), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/*
 * The tools op: who asks, nothing else.  The executor works out the list
 * from its own config and its MCP servers' definitions (toolsop.c).
 */
static const struct field f_tools[] = {
	{ "conn", F_UINT, 0, FLD(msg_tools, conn), 0 },
	{ "uid", F_UINT, 0, FLD(msg_tools, uid), 0 },
	{ "gid", F_UINT, 0, FLD(msg_tools, gid), 0 },
	{ "tenant", F_STR, 0, FLD(msg_tools, tenant), 0 },
	{ "env", F_STR, 0, FLD(msg_tools, env), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/*
 * gatewayd's own refusals, for the audit log (no answer).  The executor
 * records the uid, tenant and env of conn's peer, not the claimed ones.
 * tenant and env are absent when there is no principal; decision is
 * denied or stopped.
 */
static const struct field f_audit[] = {
	{ "conn", F_UINT, 0, FLD(msg_audit, conn), 0 },
	{ "uid", F_UINT, 0, FLD(msg_audit, uid), 0 },
	{ "gid", F_UINT, 0, FLD(msg_audit, gid), 0 },
	{ "tenant", F_STR, 1, FLD(msg_audit, tenant), 0 },
	{ "env", F_STR, 1, FLD(msg_audit, env), 0 },
	{ "run_id", F_STR, 1, FLD(msg_audit, run_id), 0 },
	{ "step_id", F_STR, 1, FLD(msg_audit, step_id), 0 },
	{ "tool", F_STR, 1, FLD(msg_audit, tool), 0 },
	{ "args_hash", F_STR, 1, FLD(msg_audit, args_hash), 0 },
	{ "decision", F_STR, 0, FLD(msg_audit, decision), 0 },
	{ "reason", F_STR, 0, FLD(msg_audit, reason), 0 },
	{ "message", F_STR, 0, FLD(msg_audit, message), 0 },
	{ "traceparent", F_STR, 1, FLD(msg_audit, traceparent), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/*
 * Refusals of peers with no principal that gatewayd counted instead of
 * reporting one by one (their connections are gone).  No uid and gid:
 * the uids gatewayd had no room left to tell apart.  first_ms and
 * last_ms: the first and last refusal counted.
 */
static const struct field f_audit_summary[] = {
	{ "uid", F_UINT, 1, FLD(msg_audit_summary, uid),
	    FLD(msg_audit_summary, has_uid) },
	{ "gid", F_UINT, 1, FLD(msg_audit_summary, gid),
	    FLD(msg_audit_summary, has_gid) },
	{ "count", F_UINT, 0, FLD(msg_audit_summary, count), 0 },
	{ "first_ms", F_UINT, 0, FLD(msg_audit_summary, first_ms), 0 },
	{ "last_ms", F_UINT, 0, FLD(msg_audit_summary, last_ms), 0 },
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_conn_gone[] = {
	{ "conn", F_UINT, 0, FLD(msg_conn_gone, conn), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/* The executor could not keep conn's socket (its descriptors ran out). */
static const struct field f_conn_refused[] = {
	{ "conn", F_UINT, 0, FLD(msg_conn_refused, conn), 0 },
	{ "message", F_STR, 0, FLD(msg_conn_refused, message), 0 },
	{ NULL, 0, 0, 0, 0 }
};
/*
 * A scrape: the executor's own families (tool outcomes, writes, tool
 * latency, approvals, breakers) rendered by it as Prometheus text, which
 * gatewayd serves after its own.  Counters only: no agent's words.
 */
static const struct field f_metrics_ans[] = {
	{ "text", F_STR, 0, FLD(msg_metrics_ans, text), 0 },
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_none[] = {
	{ NULL, 0, 0, 0, 0 }
};
static const struct field f_writes_state[] = {
	{ "writes_enabled", F_BOOL, 0, FLD(msg_writes_state, writes_enabled),
	    0 },
	{ NULL, 0, 0, 0, 0 }
};

#define GW	MSG_FROM_GATEWAYD
#define EX	MSG_FROM_EXECUTOR

/*
 * The protocol: one row per message.  To add one, add its number to enum
 * msg_type, its struct to struct proto_msg, its fields and its row here,
 * and bump PROTO_VERSION (proto/PROTOCOL.md).
 */
static const struct msg_def table[MSG_MAX] = {
	[MSG_HELLO] = { MSG_HELLO, "HELLO", GW, MSG_HELLO_ANS,
	    MSG_BEFORE_HELLO | MSG_ONCE, f_hello },
	[MSG_HELLO_ANS] = { MSG_HELLO_ANS, "HELLO_ANS", EX, MSG_NONE,
	    MSG_ONCE, f_hello_ans },
	[MSG_CALL] = { MSG_CALL, "CALL", GW, MSG_CALL_ANS, 0, f_call },
	[MSG_CALL_ANS] = { MSG_CALL_ANS, "CALL_ANS", EX, MSG_NONE, 0,
	    f_answer },
	[MSG_RESUME] = { MSG_RESUME, "RESUME", GW, MSG_RESUME_ANS, 0,
	    f_resume },
	[MSG_RESUME_ANS] = { MSG_RESUME_ANS, "RESUME_ANS", EX, MSG_NONE, 0,
	    f_answer },
	[MSG_WAIT] = { MSG_WAIT, "WAIT", GW, MSG_WAIT_ANS, 0, f_wait },
	[MSG_WAIT_ANS] = { MSG_WAIT_ANS, "WAIT_ANS", EX, MSG_NONE, 0,
	    f_answer },
	[MSG_WRITES_OFF] = { MSG_WRITES_OFF, "WRITES_OFF", GW, MSG_NONE, 0,
	    f_none },
	[MSG_WRITES_STATE] = { MSG_WRITES_STATE, "WRITES_STATE", EX, MSG_NONE,
	    0, f_writes_state },
	[MSG_AUDIT] = { MSG_AUDIT, "AUDIT", GW, MSG_NONE, 0, f_audit },
	[MSG_CONN_GONE] = { MSG_CONN_GONE, "CONN_GONE", GW, MSG_NONE, 0,
	    f_conn_gone },
	[MSG_AUDIT_SUMMARY] = { MSG_AUDIT_SUMMARY, "AUDIT_SUMMARY", GW,
	    MSG_NONE, 0, f_audit_summary },
	[MSG_CONN_REFUSED] = { MSG_CONN_REFUSED, "CONN_REFUSED", EX, MSG_NONE,
	    0, f_conn_refused },
	[MSG_TOOLS] = { MSG_TOOLS, "TOOLS", GW, MSG_TOOLS_ANS, 0, f_tools },
	[MSG_TOOLS_ANS] = { MSG_TOOLS_ANS, "TOOLS_ANS", EX, MSG_NONE, 0,
	    f_answer },
	[MSG_METRICS] = { MSG_METRICS, "METRICS", GW, MSG_METRICS_ANS, 0,
	    f_none },
	[MSG_METRICS_ANS] = { MSG_METRICS_ANS, "METRICS_ANS", EX, MSG_NONE, 0,
	    f_metrics_ans },
	[MSG_PING] = { MSG_PING, "PING", GW, MSG_PONG, 0, f_none },
	[MSG_PONG] = { MSG_PONG, "PONG", EX, MSG_NONE, 0, f_none },
	[MSG_AUDIT_REOPEN] = { MSG_AUDIT_REOPEN, "AUDIT_REOPEN", GW, MSG_NONE,
	    0, f_none },
};

static const struct msg_def *
def(uint32_t type)
{
	if (type == MSG_NONE || type >= MSG_MAX || table[type].name == NULL)
		return NULL;
	return &table[type];
}

const char *
msg_type_str(uint32_t type)
{
	return def(type) ? def(type)->name : "UNKNOWN";
}

int
msg_direction(uint32_t type)
{
	return def(type) ? def(type)->from : 0;
}

uint32_t
msg_answer_type(uint32_t type)
{
	return def(type) ? def(type)->answer : MSG_NONE;
}

int
msg_permits(uint32_t type)
{
	return def(type) ? def(type)->permits : 0;
}

/*
 * Every row sits at its own number, every number has a row, an answer is
 * sent the other way, and a body has room in the seen-mask of check_body().
 */
const char *
proto_table_check(void)
{
	uint32_t	t;
	int		f;

	for (t = MSG_NONE + 1; t < MSG_MAX; t++) {
		if (table[t].name == NULL || table[t].type != t)
			return "a type without its row";
		if (table[t].from != GW && table[t].from != EX)
			return "a row without a direction";
		if (table[t].answer != MSG_NONE &&
		    (def(table[t].answer) == NULL ||
		    table[table[t].answer].from == table[t].from))
			return "an answer that is not sent back";
		for (f = 0; table[t].fields[f].key != NULL; f++)
			if (f >= 63)
				return "a body with too many fields";
	}
	return NULL;
}

static const char *
field_type_str(int type)
{
	switch (type) {
	case F_UINT:
		return "uint";
	case F_STR:
		return "str";
	case F_MAP:
		return "map";
	case F_BOOL:
		return "bool";
	}
	return "?";
}

static const char *
dir_str(int from)
{
	return from == GW ? "gatewayd" : "executor";
}

/* Names and keys are plain identifiers: no JSON escaping needed. */
int
proto_dump(FILE *fp)
{
	const struct field	*f;
	uint32_t		 t;

	if (proto_table_check() != NULL)
		return -1;
	fprintf(fp, "{\"version\": %d, \"types\": [", PROTO_VERSION);
	for (t = MSG_NONE + 1; t < MSG_MAX; t++) {
		fprintf(fp, "%s\n {\"name\": \"MSG_%s\", \"type\": %u,"
		    " \"from\": \"%s\", \"answer\": %s%s%s,"
		    " \"before_hello\": %s, \"once\": %s, \"fields\": [",
		    t > 1 ? "," : "", table[t].name, t, dir_str(table[t].from),
		    table[t].answer ? "\"MSG_" : "",
		    table[t].answer ? table[table[t].answer].name : "null",
		    table[t].answer ? "\"" : "",
		    table[t].permits & MSG_BEFORE_HELLO ? "true" : "false",
		    table[t].permits & MSG_ONCE ? "true" : "false");
		for (f = table[t].fields; f->key != NULL; f++)
			fprintf(fp, "%s{\"key\": \"%s\", \"type\": \"%s\","
			    " \"optional\": %s}", f == table[t].fields ? "" :
			    ", ", f->key, field_type_str(f->type),
			    f->optional ? "true" : "false");
		fprintf(fp, "]}");
	}
	fprintf(fp, "\n]}\n");
	return ferror(fp) ? -1 : 0;
}

static int
field_type_ok(const msgpack_object *o, int type)
{
	switch (type) {
	case F_UINT:
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
	case F_STR:
		/* gatewayd refuses invalid UTF-8 from agents: none may pass. */
		return o->type == MSGPACK_OBJECT_STR &&
		    !mp_has_nul(o) &&
		    utf8_valid(o->via.str.ptr, o->via.str.size);
	case F_MAP:
		return o->type == MSGPACK_OBJECT_MAP;
	case F_BOOL:
		return o->type == MSGPACK_OBJECT_BOOLEAN;
	}
	return 0;
}

/* Every key known, of its type, once; every required key there. */
static int
check_body(const msgpack_object *body, const struct field *fields,
    char *err, size_t errlen)
{
	const msgpack_object_kv	*kv;
	uint64_t		 seen = 0;
	uint32_t		 i;
	int			 f;

	for (i = 0; i < body->via.map.size; i++) {
		kv = &body->via.map.ptr[i];
		for (f = 0; fields[f].key != NULL; f++)
			if (mp_streq(&kv->key, fields[f].key))
				break;
		if (fields[f].key == NULL) {
			snprintf(err, errlen, "unknown field");
			return -1;
		}
		if (seen & (1ULL << f)) {
			snprintf(err, errlen, "field %s twice", fields[f].key);
			return -1;
		}
		seen |= 1ULL << f;
		if (!field_type_ok(&kv->val, fields[f].type)) {
			snprintf(err, errlen, "field %s has the wrong type",
			    fields[f].key);
			return -1;
		}
	}
	for (f = 0; fields[f].key != NULL; f++) {
		if (!fields[f].optional && !(seen & (1ULL << f))) {
			snprintf(err, errlen, "field %s missing", fields[f].key);
			return -1;
		}
	}
	return 0;
}

/*
 * A checked value into the message's struct.  Strings are copied into
 * the message's own zone, NUL-terminated (check_body() refused a NUL).
 */
static int
store_field(struct proto_msg *m, const struct field *f,
    const msgpack_object *o)
{
	char	*base = (char *)&m->hello, *s;

	switch (f->type) {
	case F_UINT:
		memcpy(base + f->off, &o->via.u64, sizeof(uint64_t));
		if (f->optional)
			*(int *)(void *)(base + f->has) = 1;
		break;
	case F_BOOL:
		*(int *)(void *)(base + f->off) = o->via.boolean ? 1 : 0;
		break;
	case F_STR:
		s = msgpack_zone_malloc(m->unpacked.zone, o->via.str.size + 1);
		if (s == NULL)
			return -1;
		if (o->via.str.size > 0)
			memcpy(s, o->via.str.ptr, o->via.str.size);
		s[o->via.str.size] = '\0';
		memcpy(base + f->off, &s, sizeof(s));
		break;
	case F_MAP:
		memcpy(base + f->off, &o, sizeof(o));
		break;
	}
	return 0;
}

static int
decode_body(struct proto_msg *m, const struct field *fields, char *err,
    size_t errlen)
{
	const msgpack_object_kv	*kv;
	uint32_t		 i;
	int			 f;

	for (i = 0; i < m->body->via.map.size; i++) {
		kv = &m->body->via.map.ptr[i];
		for (f = 0; fields[f].key != NULL; f++)
			if (mp_streq(&kv->key, fields[f].key))
				break;
		if (store_field(m, &fields[f], &kv->val) == -1) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

int
proto_decode(const char *buf, size_t len, struct proto_msg *m, char *err,
    size_t errlen)
{
	const msgpack_object	*a;
	size_t			 off = 0;
	long			 span;

	memset(m, 0, sizeof(*m));
	span = mp_check(buf, len);
	if (span < 0 || (size_t)span != len) {
		snprintf(err, errlen, "not exactly one msgpack value");
		return -1;
	}
	msgpack_unpacked_init(&m->unpacked);
	if (msgpack_unpack_next(&m->unpacked, buf, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != len) {
		snprintf(err, errlen, "not exactly one msgpack value");
		goto bad;
	}
	a = &m->unpacked.data;
	if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3 ||
	    a->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a->via.array.ptr[2].type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "not a [type, id, body] array");
		goto bad;
	}
	if (a->via.array.ptr[0].via.u64 >= MSG_MAX ||
	    def((uint32_t)a->via.array.ptr[0].via.u64) == NULL) {
		snprintf(err, errlen, "unknown message type %llu",
		    (unsigned long long)a->via.array.ptr[0].via.u64);
		goto bad;
	}
	m->type = (uint32_t)a->via.array.ptr[0].via.u64;
	m->id = a->via.array.ptr[1].via.u64;
	m->body = &a->via.array.ptr[2];
	if (check_body(m->body, table[m->type].fields, err, errlen) == -1 ||
	    decode_body(m, table[m->type].fields, err, errlen) == -1)
		goto bad;
	return 0;
bad:
	msgpack_unpacked_destroy(&m->unpacked);
	memset(m, 0, sizeof(*m));
	return -1;
}

void
proto_msg_free(struct proto_msg *m)
{
	msgpack_unpacked_destroy(&m->unpacked);
	memset(m, 0, sizeof(*m));
}

void
msgbuf_begin_envelope(struct msgbuf *mb, uint32_t type, uint64_t id)
{
	msgpack_pack_array(&mb->pk, 3);
	msgpack_pack_uint32(&mb->pk, type);
	msgpack_pack_uint64(&mb->pk, id);
}

void
msgbuf_begin_msg(struct msgbuf *mb, uint32_t type, uint64_t id,
    struct mpmap *body)
{
	msgbuf_begin_envelope(mb, type, id);
	mpmap_begin(body, mb);
}
