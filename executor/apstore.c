/*
 * The approval store: approval records in DB_APPROVALS, keyed by id, their
 * codec (record.c), and the reads and writes the handlers (approval.c),
 * the write path and the control socket make.  A new record is counted
 * against its tenant's quota (apquota.c) and indexed for the sweeper
 * (sweep.c) in the transaction that stores it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/apquota.h"
#include "executor/executor.h"
#include "executor/ledger.h"
#include "executor/record.h"
#include "executor/store.h"
#include "executor/sweep.h"
#include "executor/apstore.h"

#define APPROVAL_VERSION	1

static const char *state_names[] = {
	[A_PENDING] = "pending",
	[A_APPROVED] = "approved",
	[A_DENIED] = "denied",
	[A_EXPIRED] = "expired",
};

const char *
approval_state_str(enum approval_state s)
{
	if (s < A_PENDING || s > A_EXPIRED)
		return "unknown";
	return state_names[s];
}

enum approval_state
approval_effective_state(const struct approval *a)
{
	if (a->state == A_PENDING && (uint64_t)time(NULL) >= a->expires_at)
		return A_EXPIRED;
	return a->state;
}

_Static_assert(sizeof(enum approval_state) == sizeof(int),
    "record.c stores an enum as an int");

#define STR(k, m, fl)	{ k, RF_STR, fl, offsetof(struct approval, m), \
			  0, 0, NULL, 0, 0, 0 }
#define UINT(k, m)	{ k, RF_UINT, 0, offsetof(struct approval, m), \
			  0, 0, NULL, 0, 0, 0 }
/* In the order they are packed: the stored bytes stay the same. */
static const struct rec_field approval_fields[] = {
	{ "v", RF_VERSION, RF_REQUIRED, 0, 0, 0, NULL, 0, 0, 0 },
	{ "id", RF_FIXED, RF_REQUIRED, offsetof(struct approval, id), 0,
	  APPROVAL_ID_LEN, NULL, 0, 0, 0 },
	{ "state", RF_ENUM, RF_REQUIRED, offsetof(struct approval, state),
	  0, 0, state_names, sizeof(state_names) / sizeof(state_names[0]),
	  A_PENDING, A_DENIED },	/* expired is never stored */
	STR("tenant", tenant, RF_REQUIRED),
	STR("env", env, RF_REQUIRED),
	STR("run_id", run_id, RF_REQUIRED),
	STR("step_id", step_id, 0),
	STR("tool", tool, RF_REQUIRED),
	STR("args_hash", args_hash, RF_REQUIRED),
	{ "args_sha256", RF_FIXED, RF_REQUIRED,
	  offsetof(struct approval, args_sha256), 0, 64, NULL, 0, 0, 0 },
	/* A denied approval's are empty. */
	{ "args", RF_BIN, RF_REQUIRED, offsetof(struct approval, args),
	  offsetof(struct approval, argslen), 0, NULL, 0, 0, 0 },
	UINT("uid", uid),
	UINT("created_ms", created_ms),
	UINT("expires_at", expires_at),
	UINT("decided_ms", decided_ms),
	UINT("started_ms", started_ms),
	STR("approver", approver, 0),
	STR("note", note, 0),
	/*
	 * Left out when the call had none, so such records are as before;
	 * an executor older than this field refuses a record that has it
	 * (unknown keys are): its approval reads as absent, nothing runs.
	 */
	STR("traceparent", traceparent, 0),
};
#undef STR
#undef UINT

static const struct rec_schema approval_schema = {
	"approval", APPROVAL_VERSION, approval_fields,
	sizeof(approval_fields) / sizeof(approval_fields[0]),
	sizeof(struct approval), NULL
};

void
approval_free(struct approval *a)
{
	rec_free(&approval_schema, a);
}

char *
approval_encode(const struct approval *a, size_t *len)
{
	return rec_encode(&approval_schema, a, len);
}

int
approval_decode(const char *buf, size_t len, struct approval *a)
{
	return rec_decode(&approval_schema, buf, len, a);
}

struct rec_arg {
	const char	*id;
	struct approval	*a;
	int		 found;
	int		 created;	/* a new record: index its expiry */
	int		 decided;	/* pending no more: off the quota */
	int		 copy;		/* another host's: index, no quota */
};

static int
get_txn(struct store_txn *txn, void *arg)
{
	struct rec_arg		*ra = arg;
	struct store_val	 k = { strlen(ra->id), (void *)ra->id }, v;
	int			 rc;

	ra->found = 0;
	rc = stx_get(txn, DB_APPROVALS, &k, &v);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (approval_decode(v.data, v.size, ra->a) == -1) {
		log_warnx("approval %s: the record does not decode", ra->id);
		return 0;	/* treated as absent: nothing runs */
	}
	ra->found = 1;
	return 0;
}

int
approval_get(const char *id, struct approval *a)
{
	struct rec_arg	ra;

	memset(a, 0, sizeof(*a));
	ra.id = id;
	ra.a = a;
	ra.found = 0;
	ra.created = 0;
	ra.decided = 0;
	ra.copy = 0;
	if (strlen(id) != APPROVAL_ID_LEN)
		return 0;
	if (store_read(ex->store, get_txn, &ra) != 0)
		return -1;
	return ra.found;
}

static int
put_txn(struct store_txn *txn, void *arg)
{
	struct rec_arg		*ra = arg;
	struct store_val	 k = { strlen(ra->a->id), ra->a->id }, v;
	char			*buf;
	int			 rc;

	/* Counted against the quota in the transaction that stores it. */
	if (ra->created && (rc = apquota_add(txn, ra->a->tenant,
	    ra->a->id, ra->a->expires_at, ra->a->argslen,
	    ex->conf->max_pending_per_tenant,
	    ex->conf->max_pending_bytes_per_tenant)) != 0)
		return rc;
	if (ra->decided && (rc = apquota_drop(txn, ra->a->id,
	    ra->a->expires_at)) != 0)
		return rc;
	buf = approval_encode(ra->a, &v.size);
	v.data = buf;
	rc = stx_put(txn, DB_APPROVALS, &k, &v);
	free(buf);
	if (rc == 0 && (ra->created || ra->copy))
		rc = ledger_expire_approval(txn, ex->store, ra->a->id,
		    ra->a->expires_at * 1000);
	return rc;
}

/*
 * A new record, or a decision.  A request is an ordinary write that must
 * leave the store's reserve free; a denial may use the reserve (it drops
 * the args, so it frees more than it takes), an approval may not (it keeps
 * them).
 */
int
approval_put(struct approval *a, int created)
{
	struct rec_arg	ra = { a->id, a, 0, created, !created, 0 };

	if (!created && a->state == A_DENIED)
		return store_write_reserve(ex->store, put_txn, &ra);
	return store_write_need(ex->store, a->argslen + 4096, put_txn, &ra);
}

int
approval_put_copy(struct approval *a)
{
	struct rec_arg	ra = { a->id, a, 0, 0, 0, 1 };

	return store_write_need(ex->store, a->argslen + 4096, put_txn, &ra);
}

/* The record of 'id' inside a transaction: 1 found, 0 absent, or an error. */
static int
approval_get_txn(struct store_txn *txn, const char *id, struct approval *a)
{
	struct rec_arg	ra;
	int		rc;

	memset(a, 0, sizeof(*a));
	ra.id = id;
	ra.a = a;
	ra.found = 0;
	ra.created = 0;
	ra.decided = 0;
	ra.copy = 0;
	if ((rc = get_txn(txn, &ra)) != 0)
		return rc;
	return ra.found;
}

int
approval_check_txn(struct store_txn *txn, const char *id, int st)
{
	struct approval	a;
	int		rc;

	memset(&a, 0, sizeof(a));
	if ((rc = approval_get_txn(txn, id, &a)) < 0 || rc > 1)
		return rc;
	/* Gone, or not approved (cannot be: fail closed all the same). */
	if (rc == 0 || a.state != A_APPROVED)
		rc = APPROVAL_USED;
	/* Used, and its write's record swept: never a second run. */
	else if (a.started_ms != 0 && st == L_NONE)
		rc = APPROVAL_USED;
	else
		rc = 0;
	approval_free(&a);
	return rc;
}

int
approval_start_txn(struct store_txn *txn, const char *id)
{
	struct approval	a;
	struct rec_arg	ra = { id, &a, 0, 0, 0, 0 };
	int		rc;

	memset(&a, 0, sizeof(a));
	if ((rc = approval_get_txn(txn, id, &a)) != 1)
		return rc == 0 ? STORE_NOTFOUND : rc;
	rc = 0;
	if (a.started_ms == 0) {
		a.started_ms = now_ms();
		rc = put_txn(txn, &ra);
	}
	approval_free(&a);
	return rc;
}

/*
 * Each record of DB_APPROVALS, in id order, from the one after 'after'
 * (NULL: the first), decoded, to fn: fn keeps it (returns 1: it frees it
 * later) or not (0), or stops the scan (-1: not kept).  Records that do
 * not decode are passed over.  0, or a store error.
 */
static int
scan_txn(struct store_txn *txn, const char *after,
    int (*fn)(struct approval *, void *), void *arg)
{
	struct approval		 a;
	struct store_cursor	*cur;
	struct store_val	 k, v;
	int			 rc, kept;

	if ((rc = stx_cursor_open(txn, DB_APPROVALS, &cur)) != 0)
		return rc;
	if (after != NULL) {
		k.data = (void *)after;
		k.size = strlen(after);
	}
	for (rc = after != NULL ? stx_cursor_seek(cur, &k, &v) :
	    stx_cursor_first(cur, &k, &v); rc == 0;
	    rc = stx_cursor_next(cur, &k, &v)) {
		if (after != NULL && k.size == strlen(after) &&
		    memcmp(k.data, after, k.size) == 0)
			continue;
		if (approval_decode(v.data, v.size, &a) == -1)
			continue;
		if ((kept = fn(&a, arg)) != 1)
			approval_free(&a);
		if (kept == -1)
			break;
	}
	stx_cursor_close(cur);
	return rc == STORE_NOTFOUND ? 0 : rc;
}

struct page_arg {
	const char	*after;		/* NULL: from the first */
	size_t		 limit;
	char		(*ids)[APPROVAL_ID_LEN + 1];
	size_t		 n;
	int		 more;		/* another one follows the page */
};

static int
page_one(struct approval *a, void *arg)
{
	struct page_arg	*pa = arg;

	if (approval_effective_state(a) != A_PENDING)
		return 0;
	if (pa->n == pa->limit) {
		pa->more = 1;
		return -1;
	}
	memcpy(pa->ids[pa->n++], a->id, sizeof(a->id));
	return 0;
}

/*
 * The ids of one page of pending approvals, in id order, after 'after',
 * and whether more follow.  The args are not converted here: only the
 * page's items are, when packed.
 */
static int
page_txn(struct store_txn *txn, void *arg)
{
	struct page_arg	*pa = arg;

	pa->n = 0;
	pa->more = 0;
	return scan_txn(txn, pa->after, page_one, pa);
}

int
approvals_page(const char *after, size_t limit,
    char (*ids)[APPROVAL_ID_LEN + 1], size_t *n, int *more)
{
	struct page_arg	pa = { after, limit, ids, 0, 0 };
	int		rc;

	rc = store_read(ex->store, page_txn, &pa);
	*n = pa.n;
	*more = pa.more;
	return rc;
}

struct run_arg {
	const char	*tenant;	/* NULL: any */
	const char	*run_id;
	size_t		 max;
	struct approval	*v;
	size_t		 n, cap;
	int		 truncated;
};

static int
run_one(struct approval *a, void *arg)
{
	struct run_arg	*ra = arg;

	if (strcmp(a->run_id, ra->run_id) != 0 ||
	    (ra->tenant != NULL && strcmp(a->tenant, ra->tenant) != 0))
		return 0;
	if (ra->n == ra->max) {
		ra->truncated = 1;
		return -1;
	}
	if (ra->n == ra->cap) {
		ra->cap = ra->cap ? ra->cap * 2 : 16;
		ra->v = xreallocarray(ra->v, ra->cap, sizeof(*ra->v));
	}
	ra->v[ra->n++] = *a;
	return 1;
}

static int
run_txn(struct store_txn *txn, void *arg)
{
	return scan_txn(txn, NULL, run_one, arg);
}

int
approvals_of_run(const char *tenant, const char *run_id, size_t max,
    struct approval **out, size_t *n, int *truncated)
{
	struct run_arg	ra = { tenant, run_id, max, NULL, 0, 0, 0 };
	size_t		i;
	int		rc;

	if ((rc = store_read(ex->store, run_txn, &ra)) != 0) {
		for (i = 0; i < ra.n; i++)
			approval_free(&ra.v[i]);
		free(ra.v);
		ra.v = NULL;
		ra.n = 0;
	}
	*out = ra.v;
	*n = ra.n;
	*truncated = ra.truncated;
	return rc;
}

struct count_arg {
	size_t		 n;
	uint64_t	 oldest_ms;	/* created_ms of the oldest; 0: none */
};

static int
count_one(struct approval *a, void *arg)
{
	struct count_arg	*ca = arg;

	if (approval_effective_state(a) == A_PENDING) {
		ca->n++;
		if (ca->oldest_ms == 0 || a->created_ms < ca->oldest_ms)
			ca->oldest_ms = a->created_ms;
	}
	return 0;
}

static int
count_txn(struct store_txn *txn, void *arg)
{
	struct count_arg	*ca = arg;

	ca->n = 0;
	ca->oldest_ms = 0;
	return scan_txn(txn, NULL, count_one, ca);
}

size_t
approvals_pending(void)
{
	return approvals_pending_oldest(NULL);
}

size_t
approvals_pending_oldest(uint64_t *oldest_ms)
{
	struct count_arg	ca = { 0, 0 };

	if (oldest_ms != NULL)
		*oldest_ms = 0;
	if (store_read(ex->store, count_txn, &ca) != 0)
		return 0;
	if (oldest_ms != NULL)
		*oldest_ms = ca.oldest_ms;
	return ca.n;
}
