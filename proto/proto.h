/*
 * Every message toolgate speaks, in one place.
 *
 * 1. The socketpair between gatewayd (unprivileged) and executor
 *    (privileged).  A message is a frame (4-byte big-endian length, then
 *    that many bytes) holding one msgpack array [type, id, body], where body
 *    is a map whose keys are fixed per type by the table in proto.c.  The
 *    executor treats any deviation (unknown type, type not permitted in
 *    that direction, missing or extra or mistyped field, trailing bytes) as
 *    fatal for the peer, the way OpenSSH's monitor does.
 *
 * 2. The agent socket and the control socket: frames holding one msgpack
 *    map each, as CONTRACT.md and proto/PROTOCOL.md describe.  The names
 *    of ops, statuses and reasons live here so no file spells them twice.
 *
 * PROTO_VERSION is bumped whenever enum msg_type or the table changes.
 */
#ifndef TG_PROTO_H
#define TG_PROTO_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/mpack.h"

#define PROTO_VERSION		10
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
	MSG_TOOLS,		/* gw->ex  the tools a principal may call */
	MSG_TOOLS_ANS,		/* ex->gw  the agent-facing response */
	MSG_METRICS,		/* gw->ex  a scrape of /metrics: your counters */
	MSG_METRICS_ANS,	/* ex->gw  the executor's families, as text */
	MSG_PING,		/* gw->ex  is the loop turning? (the watchdog) */
	MSG_PONG,		/* ex->gw  it is */
	MSG_AUDIT_REOPEN,	/* gw->ex  SIGHUP reached gatewayd */
	MSG_MAX
};

/* Which side may send a type. */
#define MSG_FROM_GATEWAYD	1
#define MSG_FROM_EXECUTOR	2

/* When a type may come (permit flags of the table in proto.c). */
#define MSG_BEFORE_HELLO	0x1	/* may precede HELLO */
#define MSG_ONCE		0x2	/* at most once per socketpair */

/*
 * The decoded bodies, one struct per message.  A string is a
 * NUL-terminated copy that lives as long as the message; an optional one
 * is NULL when absent, an optional integer has a has_ flag.  Maps stay
 * msgpack objects (args and response are checked by who reads them).
 */
struct msg_hello {
	uint64_t		 version;
};
struct msg_hello_ans {
	uint64_t		 version;
	int			 writes_enabled;
	const char		*config_hash;
};
/* Who asks is named by uid and gid: the executor maps them itself. */
struct msg_call {
	uint64_t		 conn, uid, gid, pid;
	const char		*tenant, *env, *run_id;
	const char		*step_id;	/* optional */
	const char		*tool;
	const msgpack_object	*args;
	const char		*traceparent;	/* optional, W3C */
};
/* CALL_ANS, RESUME_ANS, WAIT_ANS, TOOLS_ANS: the agent-facing response. */
struct msg_answer {
	const msgpack_object	*response;
	const char		*run_id;	/* optional: a resume's run */
};
struct msg_resume {
	uint64_t		 conn, uid, gid, pid;
	const char		*tenant, *env, *checkpoint;
};
struct msg_wait {
	uint64_t		 conn, uid, gid;
	const char		*tenant, *env, *approval_id;
	uint64_t		 timeout_ms;
};
struct msg_tools {
	uint64_t		 conn, uid, gid;
	const char		*tenant, *env;
};
struct msg_writes_state {
	int			 writes_enabled;
};
struct msg_audit {
	uint64_t		 conn, uid, gid;
	const char		*tenant, *env;		/* optional */
	const char		*run_id, *step_id;	/* optional */
	const char		*tool, *args_hash;	/* optional */
	const char		*decision, *reason, *message;
	const char		*traceparent;		/* optional */
};
struct msg_conn_gone {
	uint64_t		 conn;
};
struct msg_audit_summary {
	int			 has_uid, has_gid;
	uint64_t		 uid, gid;		/* optional */
	uint64_t		 count, first_ms, last_ms;
};
/* The executor's metric families, Prometheus text (PROTOCOL.md). */
struct msg_metrics_ans {
	const char		*text;
};
struct msg_conn_refused {
	uint64_t		 conn;
	const char		*message;
};

/* A decoded socketpair message; everything lives in 'unpacked'. */
struct proto_msg {
	uint32_t		 type;
	uint64_t		 id;
	const msgpack_object	*body;	/* a map, checked against the table */
	union {				/* the member 'type' names */
		struct msg_hello		hello;
		struct msg_hello_ans		hello_ans;
		struct msg_call			call;
		struct msg_answer		ans;	/* every *_ANS */
		struct msg_resume		resume;
		struct msg_wait			wait;
		struct msg_tools		tools;
		struct msg_writes_state		writes_state;
		struct msg_audit		audit;
		struct msg_conn_gone		conn_gone;
		struct msg_audit_summary	audit_summary;
		struct msg_conn_refused		conn_refused;
		struct msg_metrics_ans		metrics_ans;
	};
	msgpack_unpacked	 unpacked;
};

const char	*msg_type_str(uint32_t type);
int		 msg_direction(uint32_t type);
/* The type that answers 'type', or MSG_NONE when none does. */
uint32_t	 msg_answer_type(uint32_t type);
/* MSG_BEFORE_HELLO, MSG_ONCE. */
int		 msg_permits(uint32_t type);

/*
 * Decode and validate one socketpair message (the bytes after the length).
 * Returns 0, or -1 with a reason in err; on success the caller calls
 * proto_msg_free().  The strings of the structs are copies in the
 * message's zone, but msgpack objects (args, response) point into buf:
 * buf must outlive m.
 */
int	proto_decode(const char *buf, size_t len, struct proto_msg *m,
	    char *err, size_t errlen);
void	proto_msg_free(struct proto_msg *m);

/*
 * Print the table as JSON (version, then per type: name, number,
 * direction, answer, permits, fields), for the tests to learn it from the
 * program.  0, or -1 when the table disagrees with enum msg_type.
 */
int	proto_dump(FILE *);
/* Does the table agree with enum msg_type?  NULL, or what is wrong. */
const char *proto_table_check(void);

/*
 * Start a socketpair message: [type, id, body] with the body's map begun
 * in 'body'; pack its fields, then mpmap_end() it.
 */
void	msgbuf_begin_msg(struct msgbuf *, uint32_t type, uint64_t id,
	    struct mpmap *body);
/* Only [type, id, ...: the caller packs a body (tests craft bad ones). */
void	msgbuf_begin_envelope(struct msgbuf *, uint32_t type, uint64_t id);

/* Agent ops. */
#define OP_HELLO		"hello"
#define OP_CALL			"call"
#define OP_RESUME		"resume"
#define OP_WAIT			"wait"
#define OP_USAGE		"usage"
#define OP_TOOLS		"tools"

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
#define R_TOOL_CHANGED		"tool_changed"

/* error values. */
#define E_BAD_FRAME		"bad_frame"
#define E_FRAME_TOO_LARGE	"frame_too_large"
#define E_BAD_REQUEST		"bad_request"
#define E_TOOL_FAILED		"tool_failed"
#define E_TOOL_TIMEOUT		"tool_timeout"
#define E_UNAVAILABLE		"unavailable"
#define E_INTERNAL		"internal"

#endif
