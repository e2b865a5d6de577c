/*
 * A call in flight in the executor: made from a CALL or RESUME by
 * call_new(), checked again by call_check(), then owned by the read path
 * (read.c), the write path (write.c) or the approval request (approval.c)
 * until it is answered (response.h) and freed.
 */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "common/canon.h"

struct tool;

struct call {
	/* A write's waiters (write.c), or the reads running (read.c). */
	TAILQ_ENTRY(call)	 entry;
	uint32_t		 ans_type;	/* MSG_CALL_ANS or MSG_RESUME_ANS */
	uint64_t		 id;
	uint64_t		 conn;		/* the agent connection asking */
	int			 cancelled;	/* a read whose agent hung up */
	uid_t			 uid;
	char			*tenant;
	char			*env;
	char			*run_id;
	char			*step_id;
	char			*traceparent;	/* the agent's, checked; or NULL */
	char			*tool;
	char			 args_hash[ARGS_HASH_LEN + 1];
	char			*idem_key;	/* writes only */
	struct canon_buf	 json;		/* canonical args, for the tool */
	char			*approver;	/* set when an approval let it run */
	char			*approval_id;	/* ... and which one: a resume,
						   whose repeats replay */
	/* For the audit record: */
	const char		*mode;		/* "read"/"write" once gated */
	const char		*backend;	/* once its catalog entry is found */
	uint64_t		 start_ms;	/* mono_ms() when it came */
	int			 ran;		/* its tool was started */
	/*
	 * The answer's audit record was written ahead (answer_preaudit:
	 * a write's outcome, before the commit it is synced beside) and
	 * audit_rc is what writing it returned.
	 */
	int			 audited;
	int			 audit_rc;
	/*
	 * A compensation (compensate.c): the key of the write it undoes,
	 * for the records, and where its answer goes instead of gatewayd:
	 * the response map, packed, and whether it is a replay.
	 */
	char			*compensates;
	void			(*sink)(struct call *, const char *resp,
				    size_t len, int replayed);
	void			*sink_arg;
};

TAILQ_HEAD(callq, call);

void	call_free(struct call *);

struct proto_msg;
struct msgpack_object;

struct principal;
/* Who gatewayd says a CALL, RESUME, WAIT or TOOLS comes from. */
struct claim {
	uint64_t	 conn, uid, gid;
	const char	*tenant, *env;
};
/* The claim of a CALL, RESUME, WAIT or TOOLS (fatal for any other). */
void	request_claim(const struct proto_msg *, struct claim *);
/*
 * The principal of the connection a request names, from the peer's own
 * credentials; NULL when it has none or gatewayd's claims disagree.
 * *uid gets the peer's uid.
 */
const struct principal *peer_principal(const struct claim *, uid_t *uid);
/* A call for the principal gatewayd names, re-mapped; NULL if refused. */
struct call *call_new(const struct proto_msg *, uint32_t ans_type);
/* Where a checked call goes. */
enum route {
	ROUTE_NONE,		/* refused: answered and freed */
	ROUTE_READ,		/* read_start() */
	ROUTE_WRITE,		/* write_start() */
	ROUTE_APPROVAL,		/* approval_request(): an operator first */
};
/*
 * Policy, args, catalog, a read's slot, the run's budget.  Owns c when it
 * returns ROUTE_NONE; *tool is set otherwise.
 */
enum route call_check(struct call *, const struct msgpack_object *args,
	    int approved, const struct tool **tool);

#endif
