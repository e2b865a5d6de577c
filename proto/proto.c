/*
 * The socketpair messages: names, directions and body schemas, and the
 * strict decoder both processes use.
 */
#include <string.h>

#include <msgpack.h>

#include "common/canon.h"
#include "common/frame.h"
#include "common/xmalloc.h"
#include "proto/proto.h"

/* Field types beyond msgpack's own. */
#define F_UINT		1	/* a positive integer */
#define F_STR		2
#define F_MAP		3
#define F_BOOL		4

struct field {
	const char	*key;
	int		 type;
	int		 optional;
};

struct msg_schema {
	const char		*name;
	int			 from;
	const struct field	*fields;	/* ends with a NULL key */
};

static const struct field f_hello[] = {
	{ "version", F_UINT, 0 },
	{ NULL, 0, 0 }
};
static const struct field f_hello_ans[] = {
	{ "version", F_UINT, 0 },
	{ "writes_enabled", F_BOOL, 0 },
	{ "config_hash", F_STR, 0 },
	{ NULL, 0, 0 }
};
/* Who asks is named by uid and gid: the executor maps them itself. */
static const struct field f_call[] = {
	{ "conn", F_UINT, 0 },		/* whose socket came on the peer channel */
	{ "uid", F_UINT, 0 },
	{ "gid", F_UINT, 0 },
	{ "pid", F_UINT, 0 },
	{ "tenant", F_STR, 0 },
	{ "env", F_STR, 0 },
	{ "run_id", F_STR, 0 },
	{ "step_id", F_STR, 1 },
	{ "tool", F_STR, 0 },
	{ "args", F_MAP, 0 },
	{ NULL, 0, 0 }
};
/*
 * run_id: the run a resumed write belongs to (gatewayd cannot read it
 * from the checkpoint), so a stop in a resume stops gatewayd's run too.
 */
static const struct field f_response[] = {
	{ "response", F_MAP, 0 },
	{ "run_id", F_STR, 1 },
	{ NULL, 0, 0 }
};
static const struct field f_resume[] = {
	{ "conn", F_UINT, 0 },
	{ "uid", F_UINT, 0 },
	{ "gid", F_UINT, 0 },
	{ "pid", F_UINT, 0 },
	{ "tenant", F_STR, 0 },
	{ "env", F_STR, 0 },
	{ "checkpoint", F_STR, 0 },
	{ NULL, 0, 0 }
};
static const struct field f_wait[] = {
	{ "conn", F_UINT, 0 },
	{ "uid", F_UINT, 0 },
	{ "gid", F_UINT, 0 },
	{ "tenant", F_STR, 0 },
	{ "env", F_STR, 0 },
	{ "approval_id", F_STR, 0 },
	{ "timeout_ms", F_UINT, 0 },
	{ NULL, 0, 0 }
};
/*
 * gatewayd's own refusals, for the audit log (no answer).  The executor
 * records the uid, tenant and env of conn's peer, not the claimed ones.
 */
static const struct field f_audit[] = {
	{ "conn", F_UINT, 0 },
	{ "uid", F_UINT, 0 },
	{ "gid", F_UINT, 0 },
	{ "tenant", F_STR, 1 },		/* absent: no principal */
	{ "env", F_STR, 1 },
	{ "run_id", F_STR, 1 },
	{ "step_id", F_STR, 1 },
	{ "tool", F_STR, 1 },
	{ "args_hash", F_STR, 1 },
	{ "decision", F_STR, 0 },	/* denied or stopped */
	{ "reason", F_STR, 0 },
	{ "message", F_STR, 0 },
	{ NULL, 0, 0 }
};
/*
 * Refusals of peers with no principal that gatewayd counted instead of
 * reporting one by one (their connections are gone).  No uid and gid:
 * the uids gatewayd had no room left to tell apart.
 */
static const struct field f_audit_summary[] = {
	{ "uid", F_UINT, 1 },
	{ "gid", F_UINT, 1 },
	{ "count", F_UINT, 0 },
	{ "first_ms", F_UINT, 0 },	/* the first and last refusal counted */
	{ "last_ms", F_UINT, 0 },
	{ NULL, 0, 0 }
};
static const struct field f_conn_gone[] = {
	{ "conn", F_UINT, 0 },
	{ NULL, 0, 0 }
};
/* The executor could not keep conn's socket (its descriptors ran out). */
static const struct field f_conn_refused[] = {
	{ "conn", F_UINT, 0 },
	{ "message", F_STR, 0 },
	{ NULL, 0, 0 }
};
static const struct field f_none[] = {
	{ NULL, 0, 0 }
};
static const struct field f_writes_state[] = {
	{ "writes_enabled", F_BOOL, 0 },
	{ NULL, 0, 0 }
};

static const struct msg_schema schemas[MSG_MAX] = {
	[MSG_HELLO] =		{ "HELLO", MSG_FROM_GATEWAYD, f_hello },
	[MSG_HELLO_ANS] =	{ "HELLO_ANS", MSG_FROM_EXECUTOR, f_hello_ans },
	[MSG_CALL] =		{ "CALL", MSG_FROM_GATEWAYD, f_call },
	[MSG_CALL_ANS] =	{ "CALL_ANS", MSG_FROM_EXECUTOR, f_response },
	[MSG_RESUME] =		{ "RESUME", MSG_FROM_GATEWAYD, f_resume },
	[MSG_RESUME_ANS] =	{ "RESUME_ANS", MSG_FROM_EXECUTOR, f_response },
	[MSG_WAIT] =		{ "WAIT", MSG_FROM_GATEWAYD, f_wait },
	[MSG_WAIT_ANS] =	{ "WAIT_ANS", MSG_FROM_EXECUTOR, f_response },
	[MSG_WRITES_OFF] =	{ "WRITES_OFF", MSG_FROM_GATEWAYD, f_none },
	[MSG_WRITES_STATE] =	{ "WRITES_STATE", MSG_FROM_EXECUTOR, f_writes_state },
	[MSG_AUDIT] =		{ "AUDIT", MSG_FROM_GATEWAYD, f_audit },
	[MSG_CONN_GONE] =	{ "CONN_GONE", MSG_FROM_GATEWAYD, f_conn_gone },
	[MSG_AUDIT_SUMMARY] =	{ "AUDIT_SUMMARY", MSG_FROM_GATEWAYD,
				    f_audit_summary },
	[MSG_CONN_REFUSED] =	{ "CONN_REFUSED", MSG_FROM_EXECUTOR,
				    f_conn_refused },
};

const char *
msg_type_str(uint32_t type)
{
	if (type == MSG_NONE || type >= MSG_MAX)
		return "UNKNOWN";
	return schemas[type].name;
}

int
msg_direction(uint32_t type)
{
	if (type == MSG_NONE || type >= MSG_MAX)
		return 0;
	return schemas[type].from;
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
	if (a->via.array.ptr[0].via.u64 == MSG_NONE ||
	    a->via.array.ptr[0].via.u64 >= MSG_MAX) {
		snprintf(err, errlen, "unknown message type %llu",
		    (unsigned long long)a->via.array.ptr[0].via.u64);
		goto bad;
	}
	m->type = (uint32_t)a->via.array.ptr[0].via.u64;
	m->id = a->via.array.ptr[1].via.u64;
	m->body = &a->via.array.ptr[2];
	if (check_body(m->body, schemas[m->type].fields, err, errlen) == -1)
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
msgbuf_init(struct msgbuf *mb)
{
	msgpack_sbuffer_init(&mb->sbuf);
	msgpack_packer_init(&mb->pk, &mb->sbuf, msgpack_sbuffer_write);
	msgbuf_reset(mb);
}

void
msgbuf_reset(struct msgbuf *mb)
{
	static const char	room[FRAME_HDR];

	mb->sbuf.size = 0;
	msgpack_sbuffer_write(&mb->sbuf, room, sizeof(room));
}

void
msgbuf_begin_msg(struct msgbuf *mb, uint32_t type, uint64_t id,
    uint32_t nfields)
{
	msgpack_pack_array(&mb->pk, 3);
	msgpack_pack_uint32(&mb->pk, type);
	msgpack_pack_uint64(&mb->pk, id);
	msgpack_pack_map(&mb->pk, nfields);
}

const char *
msgbuf_finish(struct msgbuf *mb, size_t *len)
{
	frame_put_len((unsigned char *)mb->sbuf.data,
	    (uint32_t)(mb->sbuf.size - FRAME_HDR));
	*len = mb->sbuf.size;
	return mb->sbuf.data;
}

void
msgbuf_free(struct msgbuf *mb)
{
	msgpack_sbuffer_destroy(&mb->sbuf);
}

void
pk_strn(msgpack_packer *pk, const char *s, size_t len)
{
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

void
pk_str(msgpack_packer *pk, const char *s)
{
	pk_strn(pk, s, strlen(s));
}

void
pk_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
	pk_str(pk, key);
	pk_str(pk, val);
}

void
pk_kv_uint(msgpack_packer *pk, const char *key, uint64_t val)
{
	pk_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

void
pk_kv_int(msgpack_packer *pk, const char *key, int64_t val)
{
	pk_str(pk, key);
	msgpack_pack_int64(pk, val);
}

void
pk_kv_bool(msgpack_packer *pk, const char *key, int val)
{
	pk_str(pk, key);
	if (val)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void
pk_kv_nil(msgpack_packer *pk, const char *key)
{
	pk_str(pk, key);
	msgpack_pack_nil(pk);
}

/*
 * For an empty str msgpack-c may leave ptr NULL (or pointing at the value
 * before): never hand it to memchr.
 */
int
mp_has_nul(const msgpack_object *o)
{
	return o->via.str.size > 0 &&
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL;
}

int
mp_streq(const msgpack_object *o, const char *s)
{
	size_t	n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *
mp_get(const msgpack_object *map, const char *key)
{
	uint32_t	i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++)
		if (mp_streq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

char *
mp_strdup(const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR || mp_has_nul(o))
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

int
mp_dup_keys(const msgpack_object *map)
{
	uint32_t	i, j;

	for (i = 1; i < map->via.map.size; i++)
		for (j = 0; j < i; j++)
			if (msgpack_object_equal(map->via.map.ptr[j].key,
			    map->via.map.ptr[i].key))
				return 1;
	return 0;
}
