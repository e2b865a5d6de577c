/*
 * Approvals on the shared store (store.backend: postgresql): the
 * operator's commands decided, listed and shown from any host, and the
 * tg_approval notice that an approval was decided on some host, which
 * brings this host's copy along.
 *
 * Apart from approval.c because none of it is the agent's: each command
 * asks the database (pgstore.h) and is answered later, from its
 * callback, where approval.c answers the same command at once from this
 * host's LMDB store.  What a decision does here once the database took
 * it (the local copy, the audit record, the waits woken) and how an
 * approval is packed are approval.c's, shared through apshared.h so that
 * both stores answer alike.  The shared halves of request, resume and
 * wait stay in approval.c: each is a step of the agent's call between
 * two local ones.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common/log.h"
#include "common/mpack.h"
#include "common/xmalloc.h"
#include "executor/apstore.h"
#include "executor/executor.h"
#include "executor/pgstore.h"
#include "executor/approval.h"
#include "executor/apshared.h"

struct shared_ctl {
	void	(*fn)(struct msgbuf *, const char *, void *);
	void	*arg;
	char	 id[APPROVAL_ID_LEN + 1];
	int	 approve;
	char	*who;
	char	*note;
	struct approval a;		/* decide: the record as decided */
	int	 have_a;
};

static void
shared_ctl_free(struct shared_ctl *sc)
{
	if (sc->have_a)
		approval_free(&sc->a);
	free(sc->who);
	free(sc->note);
	free(sc);
}

static void __attribute__((format(printf, 2, 3)))
shared_ctl_error(struct shared_ctl *sc, const char *fmt, ...)
{
	char	err[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	sc->fn(NULL, err, sc->arg);
	shared_ctl_free(sc);
}

static void
shared_decided(int rc, void *arg)
{
	struct shared_ctl	*sc = arg;
	struct msgbuf		 mb;
	struct mpmap		 m;

	if (rc == -1) {
		shared_ctl_error(sc, "the decision on %s cannot be stored in"
		    " the shared store", sc->id);
		return;
	}
	if (rc == 0) {
		shared_ctl_error(sc, "approval %s was decided meanwhile",
		    sc->id);
		return;
	}
	/* Requested here: the local copy now; else audited here. */
	if (!approval_decision_local(&sc->a)) {
		(void)approval_audit("decision", &sc->a, sc->approve ?
		    "approved" : "denied", sc->who, sc->note);
		log_info("approval %s %s by %s (shared)", sc->id,
		    sc->approve ? "approved" : "denied", sc->who);
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	mpmap_str(&m, "approval_id", sc->id);
	mpmap_str(&m, "state", sc->approve ? "approved" : "denied");
	mpmap_str(&m, "approver", sc->who);
	mpmap_end(&m);
	sc->fn(&mb, NULL, sc->arg);
	shared_ctl_free(sc);
}

/*
 * A lookup in the database found no record (rc 0) or failed (-1): the
 * operator is told which and sc is done; 1 when so.
 */
static int
shared_missing(struct shared_ctl *sc, int rc)
{
	if (rc == 1)
		return 0;
	if (rc == 0)
		shared_ctl_error(sc, "no approval %s", sc->id);
	else
		shared_ctl_error(sc, "the approvals cannot be read"
		    " (shared store): %s", sc->id);
	return 1;
}

static void
shared_decide_got(int rc, struct approval *a, const char *host, void *arg)
{
	struct shared_ctl	*sc = arg;

	(void)host;
	if (shared_missing(sc, rc))
		return;
	if (approval_effective_state(a) != A_PENDING) {
		shared_ctl_error(sc, "approval %s is %s already", sc->id,
		    approval_state_str(approval_effective_state(a)));
		return;
	}
	if (!audit_up()) {
		shared_ctl_error(sc, "the audit log cannot be written: the"
		    " decision on %s is not taken", sc->id);
		return;
	}
	/* The record is the fn's: ours is a copy to decide. */
	sc->a = *a;
	memset(a, 0, sizeof(*a));
	sc->have_a = 1;
	approval_decide_rec(&sc->a, sc->approve, sc->who, sc->note);
	if (pgstore_approval_decide(&sc->a, shared_decided, sc) == -1)
		shared_decided(-1, sc);
}

int
approval_decide_shared(const char *id, int approve, const char *who,
    const char *note, void (*fn)(struct msgbuf *, const char *, void *),
    void *arg)
{
	struct shared_ctl	*sc;

	if (strlen(id) != APPROVAL_ID_LEN)
		return -1;
	sc = xcalloc(1, sizeof(*sc));
	sc->fn = fn;
	sc->arg = arg;
	memcpy(sc->id, id, APPROVAL_ID_LEN);
	sc->approve = approve;
	sc->who = xstrdup(who);
	sc->note = note ? xstrdup(note) : NULL;
	if (pgstore_approval_get(id, shared_decide_got, sc) == -1) {
		shared_ctl_free(sc);
		return -2;
	}
	return 0;
}

/* tg_approval: decided on some host; this host's copy follows. */
static void
mirror_got(int rc, struct approval *a, const char *host, void *arg)
{
	(void)host;
	(void)arg;
	if (rc == 1 && a != NULL && a->state != A_PENDING)
		(void)approval_decision_local(a);
}

void
approval_shared_decided(const char *id)
{
	(void)pgstore_approval_get(id, mirror_got, NULL);
}

static void
shared_paged(int ok, size_t n, struct approval *as, int more, void *arg)
{
	struct shared_ctl	*sc = arg;
	struct msgbuf		 mb;
	struct mpmap		 m;
	size_t			 i;

	if (!ok) {
		shared_ctl_error(sc, "the approvals cannot be read"
		    " (shared store)");
		return;
	}
	msgbuf_init(&mb);
	mpmap_begin(&m, &mb);
	mpmap_bool(&m, "ok", 1);
	msgpack_pack_array(mpmap_key(&m, "items"), n);
	for (i = 0; i < n; i++)
		approval_pack_item(&mb, &as[i]);
	if (more && n > 0)
		mpmap_str(&m, "next", as[n - 1].id);
	mpmap_end(&m);
	sc->fn(&mb, NULL, sc->arg);
	shared_ctl_free(sc);
}

int
approvals_page_shared(const char *after, size_t limit,
    void (*fn)(struct msgbuf *, const char *, void *), void *arg)
{
	struct shared_ctl	*sc;

	sc = xcalloc(1, sizeof(*sc));
	sc->fn = fn;
	sc->arg = arg;
	if (pgstore_approvals_page(after, limit, shared_paged, sc) == -1) {
		shared_ctl_free(sc);
		return -1;
	}
	return 0;
}

static void
shared_one(int rc, struct approval *a, const char *host, void *arg)
{
	struct shared_ctl	*sc = arg;
	struct msgbuf		 mb;

	(void)host;
	if (shared_missing(sc, rc))
		return;
	msgbuf_init(&mb);
	approval_pack_full(&mb, a);
	sc->fn(&mb, NULL, sc->arg);
	shared_ctl_free(sc);
}

int
approval_one_shared(const char *id,
    void (*fn)(struct msgbuf *, const char *, void *), void *arg)
{
	struct shared_ctl	*sc;

	sc = xcalloc(1, sizeof(*sc));
	sc->fn = fn;
	sc->arg = arg;
	snprintf(sc->id, sizeof(sc->id), "%s", id);
	if (pgstore_approval_get(id, shared_one, sc) == -1) {
		shared_ctl_free(sc);
		return -1;
	}
	return 0;
}
