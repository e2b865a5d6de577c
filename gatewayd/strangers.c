/*
 * Refusals of peers with no principal, summed.  A stranger costs the
 * audit log at most two records per uid and limits.stranger_summary_s:
 * its first refusal is reported at once (the executor checks it against
 * the connection), the rest are counted and reported as one summary
 * (MSG_AUDIT_SUMMARY) when the interval ends.  A stranger controls
 * nothing but its uid, and there are many uids: past limits.stranger_uids
 * of them in one interval, refusals are counted together, without a uid,
 * rather than the table growing.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "gatewayd/gatewayd.h"

struct tally {
	uid_t		 uid;
	gid_t		 gid;
	uint64_t	 count;		/* refusals after the first, unreported */
	uint64_t	 first_ms;	/* of those */
	uint64_t	 last_ms;
};

static struct tally	*tallies;	/* this interval's uids */
static size_t		 ntallies;
static struct tally	 others;	/* uids past the table, together */
static struct event	*flush_ev;

static void
tally_count(struct tally *t, uint64_t now)
{
	if (t->count++ == 0)
		t->first_ms = now;
	t->last_ms = now;
}

/* The interval is over: every count goes out, and the table empties. */
static void
strangers_flush(evutil_socket_t fd, short what, void *arg)
{
	size_t	i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < ntallies; i++)
		if (tallies[i].count > 0)
			exec_audit_summary(1, tallies[i].uid, tallies[i].gid,
			    tallies[i].count, tallies[i].first_ms,
			    tallies[i].last_ms);
	if (others.count > 0) {
		log_warnx("agent: %llu refusals of peers with no principal"
		    " past limits.stranger_uids (%llu uids) in %llus",
		    (unsigned long long)others.count,
		    (unsigned long long)gw->conf->stranger_uids,
		    (unsigned long long)gw->conf->stranger_summary_s);
		exec_audit_summary(0, 0, 0, others.count, others.first_ms,
		    others.last_ms);
	}
	memset(&others, 0, sizeof(others));
	ntallies = 0;
}

/*
 * r refused a peer with no principal, and was answered.  Linear in the
 * table (limits.stranger_uids at most): each refusal has cost the
 * stranger a whole connection, accept and all.
 */
void
strangers_refused(const struct refusal *r)
{
	struct timeval	 tv;
	uint64_t	 now = now_ms();
	size_t		 i;

	/* An interval begins with the first refusal after a quiet one. */
	if (!evtimer_pending(flush_ev, NULL)) {
		tv.tv_sec = (time_t)gw->conf->stranger_summary_s;
		tv.tv_usec = 0;
		evtimer_add(flush_ev, &tv);
	}
	for (i = 0; i < ntallies; i++) {
		if (tallies[i].uid == r->uid && tallies[i].gid == r->gid) {
			tally_count(&tallies[i], now);
			return;
		}
	}
	if (ntallies == gw->conf->stranger_uids) {
		tally_count(&others, now);
		return;
	}
	memset(&tallies[ntallies], 0, sizeof(tallies[ntallies]));
	tallies[ntallies].uid = r->uid;
	tallies[ntallies].gid = r->gid;
	ntallies++;
	exec_audit(r);
}

void
strangers_init(void)
{
	tallies = xcalloc(gw->conf->stranger_uids, sizeof(*tallies));
	if ((flush_ev = evtimer_new(gw->base, strangers_flush, NULL)) == NULL)
		fatalx("evtimer_new");
}

/* Counts not reported yet go now: exec_link_close() sends them. */
void
strangers_shutdown(void)
{
	if (tallies != NULL)
		strangers_flush(-1, 0, NULL);
	free(tallies);
	tallies = NULL;
	ntallies = 0;
	if (flush_ev != NULL)
		event_free(flush_ev);
	flush_ev = NULL;
}
