/*
 * A call in flight in the executor, shared by call.c (checks, reads) and
 * write.c (the write path: ledger, group commit, replay).
 */
#ifndef TG_CALL_H
#define TG_CALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "common/canon.h"

struct tool;
struct toolrun_result;

struct call {
	/* A write's waiters (write.c), or the reads running (call.c). */
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
	char			*tool;
	char			 args_hash[ARGS_HASH_LEN + 1];
	char			*idem_key;	/* writes only */
	struct canon_buf	 json;		/* canonical args, for the tool */
	char			*approver;	/* set when an approval let it run */
	char			*approval_id;	/* ... and which one: a resume,
						   whose repeats replay */
};

TAILQ_HEAD(callq, call);

void	call_free(struct call *);
/* Answer with a refusal: denied/stopped carry stop_reason, error error. */
void	call_refuse(struct call *, const char *status, const char *reason,
	    const char *message);
/* Answer error/unavailable, unrecorded: the connection has no socket here. */
void	call_unavailable(uint64_t id, uint32_t ans_type, const char *message);
/* Answer with a stored or fresh response map (packed msgpack). */
void	call_respond(struct call *, const char *resp, size_t resplen,
	    int replayed);
/* Start the tool for a read, or for a write whose intent is durable. */
void	call_run_tool(struct call *, const struct tool *,
	    void (*done)(const struct toolrun_result *, void *), void *arg);

struct proto_msg;
struct msgpack_object;

struct principal;
/*
 * The principal of the connection a request names (body: conn, uid, gid,
 * tenant, env), from the peer's own credentials; NULL when it has none or
 * gatewayd's claims disagree.  *uid gets the peer's uid.
 */
const struct principal *peer_principal(const struct msgpack_object *body,
	    uid_t *uid);
/* A call for the principal gatewayd names, re-mapped; NULL if refused. */
struct call *call_new(const struct proto_msg *, uint32_t ans_type);
/* Policy, args, catalog, then the read or write path.  Owns c. */
void	call_dispatch(struct call *, const struct msgpack_object *args,
	    int approved);

/*
 * The agent of connection 'conn' hung up: its reads still running are
 * cancelled (their tools killed; audited and answered when reaped).
 * Returns how many.
 */
size_t	call_conn_gone(uint64_t conn);

/* approval.c: a write that needs an operator first.  Owns c. */
void	approval_request(struct call *, const struct msgpack_object *args);

/* write.c */
void	write_init(void);
void	write_shutdown(void);
void	write_start(struct call *, const struct tool *);
size_t	write_active(void);
/*
 * The agent of 'conn' hung up: its calls joined to an identical running
 * write, and its writes whose intent is not recorded yet, are refused
 * (answered; gatewayd drops the answer).  A write whose intent is
 * recorded runs on and its outcome is recorded.  Returns how many.
 */
size_t	write_conn_gone(uint64_t conn);
/* gatewayctl resolve: settle a write in doubt; -1 with a reason. */
int	write_resolve(const char *key, int done, const char *who, char *err,
	    size_t errlen);

#endif
