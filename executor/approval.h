/*
 * Approvals: writes that policy puts before an operator.  The handlers of
 * the agent's resume and wait and of the operator's decision; the records
 * are in the approval store (apstore.h).
 */
#ifndef TG_APPROVAL_H
#define TG_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/mpack.h"

struct approval;
struct call;
struct proto_msg;

void	approvals_init(void);
/* At exit: waits still parked are dropped (gatewayd is gone). */
void	approvals_shutdown(void);
/* A write that needs an operator first: recorded, answered.  Owns c. */
void	approval_request(struct call *, const msgpack_object *args);
/*
 * The same for a compensation (compensate.c), under the id its key gives
 * and with no checkpoint: no agent resumes it, the next gatewayctl
 * compensate of its run does.  Owns c.  Refused, c is answered; else
 * stored(1) once it is recorded (on the shared store: in the database,
 * so that an operator on any host sees it), stored(0) if the database
 * did not take it (this host's copy then expires unused).
 */
void	approval_request_id(struct call *, const msgpack_object *args,
	    const char *id, void (*stored)(int ok, void *), void *arg);
/*
 * Shared: this host's copy of approval a as the database holds it (for a
 * compensation's, compensate.c; a resume does the same here): a decision
 * taken on another host stored, audited and told here; a record this
 * host has not got (have_local 0) copied.  0, or the store's error.
 */
int	approval_bring_copy(struct approval *a, int have_local);
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
/*
 * The answer to "approvals": {ok, items, next?}: at most limit pending
 * approvals with ids after 'after' (NULL: from the first), in id order,
 * args cut short; "next" (the last id) when more follow.  -1 when the
 * store cannot be read (nothing packed).
 */
int	approvals_pack_page(struct msgbuf *, const char *after, size_t limit);
/*
 * The answer to "approval ID": {ok, the fields, args in full}.  1 packed,
 * 0 no such approval, -1 the store cannot be read (nothing packed).
 */
int	approval_pack_one(struct msgbuf *, const char *id);
int	approval_decide(const char *id, int approve, const char *who,
	    const char *note, char *err, size_t errlen);

/*
 * The same on the shared store (PostgreSQL), answered later: fn gets the
 * answer map, or NULL and why not.  -1 when refused at once (a bad id
 * for decide, or the database not up), fn not called; decide: -1 bad
 * id, -2 the database is not up.  In apshared.c.
 */
int	approvals_page_shared(const char *after, size_t limit,
	    void (*fn)(struct msgbuf *, const char *, void *), void *arg);
int	approval_one_shared(const char *id,
	    void (*fn)(struct msgbuf *, const char *, void *), void *arg);
int	approval_decide_shared(const char *id, int approve, const char *who,
	    const char *note, void (*fn)(struct msgbuf *, const char *, void *),
	    void *arg);

#endif
