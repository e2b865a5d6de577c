/*
 * Between approval.c and apshared.c, no other file: the pieces of
 * approval.c that the shared store's side of the operator's commands
 * (apshared.c) uses too, so that an approval decided, listed or shown
 * from the database is audited, told and packed exactly as a local one.
 * approval.c calls nothing of apshared.c: apshared.c's entry points are
 * in approval.h (control.c) and pgstore.h (tg_approval).
 */
#ifndef TG_APSHARED_H
#define TG_APSHARED_H

struct approval;
struct msgbuf;

/* An approval's audit record: event, decision, approver, note. */
int	approval_audit(const char *event, const struct approval *,
	    const char *decision, const char *who, const char *note);
/* a, pending, becomes decided by who (a denial drops the args). */
void	approval_decide_rec(struct approval *, int approve, const char *who,
	    const char *note);
/* A decision stored: audited, logged, told to its waits. */
void	approval_told(const struct approval *, const char *who,
	    const char *note);
/*
 * This host's copy of a decided approval: stored, audited and told to
 * the waits here unless decided here already.  1 when it was pending here.
 */
int	approval_decision_local(const struct approval *);
/* An item of a list, args cut short. */
void	approval_pack_item(struct msgbuf *, const struct approval *);
/* {ok, the fields, args in full} */
void	approval_pack_full(struct msgbuf *, const struct approval *);

#endif
