/*
 * Approvals: writes that policy puts before an operator.  The record
 * (DB_APPROVALS, keyed by approval id) holds everything needed to run the
 * write later, so the agent's resume carries only the signed checkpoint.
 */
#ifndef TG_APPROVAL_H
#define TG_APPROVAL_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include <msgpack.h>

#include "executor/checkpoint.h"

struct proto_msg;

enum approval_state {
	A_PENDING = 1,
	A_APPROVED,
	A_DENIED,
	A_EXPIRED,	/* never stored: a pending record past its expiry */
};

struct approval {
	char			 id[APPROVAL_ID_LEN + 1];
	enum approval_state	 state;
	char			*tenant;
	char			*env;
	char			*run_id;
	char			*step_id;	/* may be NULL */
	char			*tool;
	char			*args_hash;
	char			 args_sha256[65];
	char			*args;		/* the args map, packed */
	size_t			 argslen;
	uint64_t		 uid;
	uint64_t		 created_ms;
	uint64_t		 expires_at;	/* seconds */
	uint64_t		 decided_ms;
	uint64_t		 started_ms;	/* its write first started; 0: never */
	char			*approver;
	char			*note;
};

const char	*approval_state_str(enum approval_state);
void		 approval_free(struct approval *);
char		*approval_encode(const struct approval *, size_t *len);
int		 approval_decode(const char *buf, size_t len, struct approval *);

void	approvals_init(void);
/* At exit: waits still parked are dropped (gatewayd is gone). */
void	approvals_shutdown(void);
void	approval_resume(const struct proto_msg *);
void	approval_wait(const struct proto_msg *);
/*
 * The agent of 'conn' hung up: its parked waits end (answered
 * error/unavailable, which gatewayd drops).  Returns how many.
 */
size_t	approval_conn_gone(uint64_t conn);
/* Waits parked now. */
size_t	approvals_waiting(void);

/* For the control socket. */
#define APPROVAL_ARGS_PREVIEW	200	/* bytes of args JSON in a list */
#define APPROVALS_PAGE_MAX	1000	/* items in one answer at most */
size_t	approvals_pending(void);
/*
 * The answer to "approvals": {ok, items, next?}: at most limit pending
 * approvals with ids after 'after' (NULL: from the first), in id order,
 * args cut short; "next" (the last id) when more follow.  -1 when the
 * store cannot be read (nothing packed).
 */
int	approvals_pack_page(msgpack_packer *, const char *after, size_t limit);
/*
 * The answer to "approval ID": {ok, the fields, args in full}.  1 packed,
 * 0 no such approval, -1 the store cannot be read (nothing packed).
 */
int	approval_pack_one(msgpack_packer *, const char *id);
int	approval_decide(const char *id, int approve, const char *who,
	    const char *note, char *err, size_t errlen);

/*
 * Inside the intent transaction of a resumed write (write.c).  An approval
 * is single use: once its write has started, a resume gets that write's
 * stored result, or a retry after a clean failure (L_FAILED), never a new
 * run.  approval_check_txn returns 0 when approval 'id' may start its
 * write, the key's ledger record being in state 'st', APPROVAL_USED when
 * it was used and its result is gone, or an LMDB error;
 * approval_start_txn records that its write started.
 */
#define APPROVAL_USED	(-30101)
int	approval_check_txn(MDB_txn *, const char *id, int st);
int	approval_start_txn(MDB_txn *, const char *id);

#endif
