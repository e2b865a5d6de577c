/*
 * Every message toolgate speaks, in one place.
 *
 * 1. The socketpair between gatewayd (unprivileged) and executor
 *    (privileged).  A message is a frame (4-byte big-endian length, then
 *    that many bytes) holding one msgpack array [type, id, body], where body
 *    is a map whose keys are fixed per type by the schema in proto.c.  The
 *    executor treats any deviation (unknown type, type not permitted in
 *    that direction, missing or extra or mistyped field, trailing bytes) as
 *    fatal for the peer, the way OpenSSH's monitor does.
 *
 * 2. The agent socket and the control socket: frames holding one msgpack
 *    map each, as CONTRACT.md and proto/PROTOCOL.md describe.  The names
 *    of ops, statuses and reasons live here so no file spells them twice.
 *
 * PROTO_VERSION is bumped whenever enum msg_type or a schema changes.
 */
#ifndef TG_PROTO_H
#define TG_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define PROTO_VERSION		6
#define AGENT_PROTO_VERSION	1	/* the "v" answered to hello */

/* The executor's end of the socketpair, as gatewayd hands it over. */
#define EXECUTOR_FD		3
/*
 * The executor's end of the peer channel, a SOCK_SEQPACKET socketpair:
 * for every agent connection gatewayd accepts it sends one message of 8
 * bytes (the connection's id, big-endian) carrying the connection's
 * socket (SCM_RIGHTS).  The executor checks that it was accepted on the
 * agent socket, reads SO_PEERCRED from it itself and keeps it until
 * CONN_GONE, so who is calling, and whether it is still there, is never
 * gatewayd's word.
 */
#define EXECUTOR_PEER_FD	4

enum msg_type {
	MSG_NONE = 0,
	MSG_HELLO,		/* gw->ex  first message: versions must agree */
	MSG_HELLO_ANS,		/* ex->gw  writes state, config hash */
	MSG_CALL,		/* gw->ex  run a tool for a principal */
	MSG_CALL_ANS,		/* ex->gw  the agent-facing response */
	MSG_RESUME,		/* gw->ex  resume an approved write */
	MSG_RESUME_ANS,		/* ex->gw  the agent-facing response */
	MSG_WAIT,		/* gw->ex  wait for an approval decision */
	MSG_WAIT_ANS,		/* ex->gw  the agent-facing response */
	MSG_WRITES_OFF,		/* gw->ex  SIGUSR1 reached gatewayd */
	MSG_WRITES_STATE,	/* ex->gw  the kill switch changed */
	MSG_AUDIT,		/* gw->ex  a refusal gatewayd decided alone */
	MSG_CONN_GONE,		/* gw->ex  an agent connection closed */
	MSG_AUDIT_SUMMARY,	/* gw->ex  refusals of strangers, counted */
	MSG_CONN_REFUSED,	/* ex->gw  no room for a connection: close it */
	MSG_MAX
};

/* Which side may send a type. */
#define MSG_FROM_GATEWAYD	1
#define MSG_FROM_EXECUTOR	2

const char	*msg_type_str(uint32_t type);
int		 msg_direction(uint32_t type);

/* A decoded socketpair message; fields point into 'unpacked'. */
struct proto_msg {
	uint32_t		 type;
	uint64_t		 id;
	const msgpack_object	*body;	/* a map, checked against the schema */
	msgpack_unpacked	 unpacked;
};

/*
 * Decode and validate one socketpair message (the bytes after the length).
 * Returns 0, or -1 with a reason in err; on success the caller calls
 * proto_msg_free().
 */
int	proto_decode(const char *buf, size_t len, struct proto_msg *m,
	    char *err, size_t errlen);
void	proto_msg_free(struct proto_msg *m);

/*
 * A frame under construction: room for the length is kept at the front
 * and filled in by msgbuf_finish().
 */
struct msgbuf {
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
};

void	msgbuf_init(struct msgbuf *);
/* Start a socketpair message of 'type' whose body has 'nfields' keys. */
void	msgbuf_begin_msg(struct msgbuf *, uint32_t type, uint64_t id,
	    uint32_t nfields);
/* Fill in the length; returns the whole frame. */
const char *msgbuf_finish(struct msgbuf *, size_t *len);
void	msgbuf_reset(struct msgbuf *);
void	msgbuf_free(struct msgbuf *);

/* Body helpers: each packs one key and its value. */
void	pk_str(msgpack_packer *, const char *s);
void	pk_strn(msgpack_packer *, const char *s, size_t len);
void	pk_kv_str(msgpack_packer *, const char *key, const char *val);
void	pk_kv_uint(msgpack_packer *, const char *key, uint64_t val);
void	pk_kv_int(msgpack_packer *, const char *key, int64_t val);
void	pk_kv_bool(msgpack_packer *, const char *key, int val);
void	pk_kv_nil(msgpack_packer *, const char *key);

/* Reading: a map's value by key, or NULL. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
/* A str object as a NUL-terminated copy; NULL when not a string or it holds NUL. */
char	*mp_strdup(const msgpack_object *o);
int	 mp_streq(const msgpack_object *o, const char *s);
/* Does a str object hold a NUL byte? */
int	 mp_has_nul(const msgpack_object *o);
/* Does a map hold some key twice?  Decoders refuse such maps. */
int	 mp_dup_keys(const msgpack_object *map);

/* Agent ops. */
#define OP_HELLO		"hello"
#define OP_CALL			"call"
#define OP_RESUME		"resume"
#define OP_WAIT			"wait"
#define OP_USAGE		"usage"

/* Agent statuses. */
#define ST_OK			"ok"
#define ST_NEEDS_APPROVAL	"needs_approval"
#define ST_PENDING		"pending"
#define ST_DENIED		"denied"
#define ST_STOPPED		"stopped"
#define ST_ERROR		"error"

/* stop_reason values. */
#define R_NOT_ALLOWED		"not_allowed"
#define R_UNKNOWN_PRINCIPAL	"unknown_principal"
#define R_WRITES_DISABLED	"writes_disabled"
#define R_APPROVAL_REQUIRED	"approval_required"
#define R_APPROVAL_DENIED	"approval_denied"
#define R_APPROVAL_EXPIRED	"approval_expired"
#define R_BAD_SIGNATURE		"bad_checkpoint_signature"
#define R_DUPLICATE_WRITE	"duplicate_write"
#define R_LOOP_DETECTED		"loop_detected"
#define R_BUDGET_EXCEEDED	"budget_exceeded"
#define R_INVALID_OUTPUT	"invalid_tool_output"
#define R_RATE_LIMITED		"rate_limited"
#define R_CIRCUIT_OPEN		"circuit_open"

/* error values. */
#define E_BAD_FRAME		"bad_frame"
#define E_FRAME_TOO_LARGE	"frame_too_large"
#define E_BAD_REQUEST		"bad_request"
#define E_TOOL_FAILED		"tool_failed"
#define E_TOOL_TIMEOUT		"tool_timeout"
#define E_UNAVAILABLE		"unavailable"
#define E_INTERNAL		"internal"

#endif
