/*
 * The approval store: the records of writes that policy puts before an
 * operator (DB_APPROVALS, keyed by approval id).  A record holds
 * everything needed to run the write later, so the agent's resume carries
 * only the signed checkpoint.  The handlers are in approval.c.
 */
#ifndef TG_APSTORE_H
#define TG_APSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "executor/checkpoint.h"

struct store_txn;

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
	char			*traceparent;	/* the asking call's; may be NULL */
};

const char	*approval_state_str(enum approval_state);
/* The state now: a pending approval past its expiry is A_EXPIRED. */
enum approval_state approval_effective_state(const struct approval *);
void		 approval_free(struct approval *);
char		*approval_encode(const struct approval *, size_t *len);
int		 approval_decode(const char *buf, size_t len, struct approval *);

/*
 * The record of 'id': 1 found, 0 absent (or it does not decode: nothing
 * runs), -1 when the store cannot be read.
 */
int	approval_get(const char *id, struct approval *);
/*
 * Store a new record ('created': counted against the tenant's quota and
 * indexed for the sweeper) or a decision (off the quota).  0 or an error:
 * APQUOTA_COUNT, APQUOTA_BYTES, or a store error (STORE_*).
 */
int	approval_put(struct approval *, int created);
/*
 * The shared store: this host's copy of another host's record, so that a
 * resume here goes the same way (not on this host's quota; swept as ours).
 */
int	approval_put_copy(struct approval *);

/*
 * Inside the intent transaction of a resumed write (write.c).  An approval
 * is single use: once its write has started, a resume gets that write's
 * stored result, or a retry after a clean failure (L_FAILED), never a new
 * run.  approval_check_txn returns 0 when approval 'id' may start its
 * write, the key's ledger record being in state 'st', APPROVAL_USED when
 * it was used and its result is gone, or a store error (STORE_*);
 * approval_start_txn records that its write started.
 */
#define APPROVAL_USED	(-30101)
int	approval_check_txn(struct store_txn *, const char *id, int st);
int	approval_start_txn(struct store_txn *, const char *id);

/*
 * The approvals of run_id (of tenant's; NULL: any tenant's), at most max,
 * in id order, as this host holds them: *out (malloc'ed, NULL for none;
 * each record to approval_free), *n of them, *truncated when there were
 * more.  0, or a store error (STORE_*), with nothing in *out.
 */
int	approvals_of_run(const char *tenant, const char *run_id, size_t max,
	    struct approval **out, size_t *n, int *truncated);

/* Pending approvals now (0 when the store cannot be read). */
size_t	approvals_pending(void);
/* The same, and the created_ms of the oldest of them (0: none). */
size_t	approvals_pending_oldest(uint64_t *oldest_ms);
/*
 * The ids of at most limit pending approvals after 'after' (NULL: from
 * the first), in id order, into ids (room for limit); *more when another
 * follows.  0, or a store error (STORE_*).
 */
int	approvals_page(const char *after, size_t limit,
	    char (*ids)[APPROVAL_ID_LEN + 1], size_t *n, int *more);

#endif
