/*
 * The connection to PostgreSQL on the executor's loop (pg.h).
 *
 * States: DOWN (a timer until the next try), CONNECTING (PQconnectPoll
 * asks for readable or writable, an event waits for it), SETUP (the
 * schema migrations and LISTENs, then the owner's on_up queries) and UP.
 * The socket can change while connecting, so its event is set again after
 * each poll; once connected it is one persistent read event, and a write
 * event only while libpq has output it could not flush.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/pg.h"

#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define CONNECT_TIMEOUT_S	10
#define MAX_LISTEN		8

struct pgq {
	TAILQ_ENTRY(pgq)	 entry;
	char			*sql;
	int			 nparams;
	char			**vals;
	int			*lens;
	int			*fmts;
	int			 multi;		/* PQsendQuery: several statements */
	pg_result_fn		 fn;
	void			*arg;
};
TAILQ_HEAD(pgqq, pgq);

static enum { PG_DOWN, PG_CONNECTING, PG_SETUP, PG_UP } state;
static struct event_base	*base;
static const struct config	*conf;
static PGconn			*conn;
static struct event		*sock_ev, *timer_ev, *flush_ev;
static struct pgqq		 queue = TAILQ_HEAD_INITIALIZER(queue);
static struct pgq		*inflight;
static PGresult			*kept;		/* the in-flight query's result */
static int			 sent;		/* inflight is on the wire */
static char			 instance[33];
static char			 appname[64];
static char			 lasterr[256];
static char			 schema_err[256];
static uint64_t			 backoff_ms, next_try_ms, losses;
static void			(*up_fn)(void);
static void			(*down_fn)(void);
static void			(*notify_fn)(const char *, const char *);
static char			*channels[MAX_LISTEN];
static size_t			 nchannels;

static void	pg_connect(void);
static void	pg_lost(const char *why);
static void	pg_kick(void);
static void	flush_cb(evutil_socket_t, short, void *);

const char *
pg_instance(void)
{
	return instance;
}

int
pg_up(void)
{
	return state == PG_UP;
}

uint64_t
pg_losses(void)
{
	return losses;
}

int
pg_ok(const PGresult *r)
{
	ExecStatusType	s;

	if (r == NULL)
		return 0;
	s = PQresultStatus(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

const char *
pg_state(char *buf, size_t len)
{
	uint64_t	now = now_ms();

	switch (state) {
	case PG_UP:
		snprintf(buf, len, "up");
		break;
	case PG_CONNECTING:
	case PG_SETUP:
		snprintf(buf, len, "connecting");
		break;
	case PG_DOWN:
		snprintf(buf, len, "down: %s (next try in %llu ms)",
		    lasterr[0] ? lasterr : "not connected",
		    (unsigned long long)(next_try_ms > now ?
		    next_try_ms - now : 0));
		break;
	}
	return buf;
}

static void
pgq_free(struct pgq *q)
{
	int	i;

	for (i = 0; i < q->nparams; i++)
		free(q->vals[i]);
	free(q->vals);
	free(q->lens);
	free(q->fmts);
	free(q->sql);
	free(q);
}

/* The last words of libpq's message, on one line, for pg_state. */
static void
set_error(const char *msg)
{
	size_t	i;

	snprintf(lasterr, sizeof(lasterr), "%s", msg ? msg : "unknown error");
	for (i = 0; lasterr[i] != '\0'; i++)
		if (lasterr[i] == '\n' || lasterr[i] == '\r')
			lasterr[i] = ' ';
	while (i > 0 && lasterr[i - 1] == ' ')
		lasterr[--i] = '\0';
}

static void
done_inflight(const PGresult *res)
{
	struct pgq	*q = inflight;

	inflight = NULL;
	sent = 0;
	if (q->fn != NULL)
		q->fn(res, q->arg);
	pgq_free(q);
}

/* Every query in flight or queued fails: the connection is gone. */
static void
fail_all(void)
{
	struct pgq	*q;

	if (kept != NULL) {
		PQclear(kept);
		kept = NULL;
	}
	if (inflight != NULL)
		done_inflight(NULL);
	while ((q = TAILQ_FIRST(&queue)) != NULL) {
		TAILQ_REMOVE(&queue, q, entry);
		if (q->fn != NULL)
			q->fn(NULL, q->arg);
		pgq_free(q);
	}
}

static void
schedule_retry(void)
{
	struct timeval	tv;

	backoff_ms = backoff_ms == 0 ? BACKOFF_MIN_MS : backoff_ms * 2;
	if (backoff_ms > BACKOFF_MAX_MS)
		backoff_ms = BACKOFF_MAX_MS;
	next_try_ms = now_ms() + backoff_ms;
	tv.tv_sec = backoff_ms / 1000;
	tv.tv_usec = (backoff_ms % 1000) * 1000;
	evtimer_add(timer_ev, &tv);
}

static void
pg_lost(const char *why)
{
	char	before[sizeof(lasterr)];
	int	was = state;

	snprintf(before, sizeof(before), "%s", lasterr);
	if (why != lasterr)
		set_error(why);
	if (was == PG_UP) {
		losses++;
		log_warnx("store: PostgreSQL connection lost: %s: writes are"
		    " refused until it is back", lasterr);
	} else if (strcmp(before, lasterr) != 0)
		/* Each new reason once, not at every try. */
		log_warnx("store: PostgreSQL: %s: writes are refused, trying"
		    " again", lasterr);
	event_del(sock_ev);
	event_del(flush_ev);
	event_del(timer_ev);
	if (conn != NULL)
		PQfinish(conn);
	conn = NULL;
	state = PG_DOWN;
	fail_all();
	if (was == PG_UP && down_fn != NULL)
		down_fn();
	schedule_retry();
}

/* Send the next queued query when none is on the wire. */
static void
send_next(void)
{
	struct pgq	*q;
	int		 ok;

	if (inflight != NULL || conn == NULL ||
	    (q = TAILQ_FIRST(&queue)) == NULL)
		return;
	TAILQ_REMOVE(&queue, q, entry);
	inflight = q;
	if (q->multi)
		ok = PQsendQuery(conn, q->sql);
	else
		ok = PQsendQueryParams(conn, q->sql, q->nparams, NULL,
		    (const char *const *)q->vals, q->lens, q->fmts, 0);
	if (!ok) {
		pg_lost(PQerrorMessage(conn));
		return;
	}
	sent = 1;
	pg_kick();
}

/* Flush what libpq holds; wait for writability while it cannot. */
static void
pg_kick(void)
{
	int	rc;

	if (conn == NULL)
		return;
	if ((rc = PQflush(conn)) == -1) {
		pg_lost(PQerrorMessage(conn));
		return;
	}
	if (rc == 1) {
		event_del(flush_ev);
		event_assign(flush_ev, base, PQsocket(conn), EV_WRITE,
		    flush_cb, NULL);
		event_add(flush_ev, NULL);
	}
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pg_kick();
}

static void
read_results(void)
{
	PGresult	*r;
	PGnotify	*n;

	while (conn != NULL && inflight != NULL && sent && !PQisBusy(conn)) {
		if ((r = PQgetResult(conn)) == NULL) {
			/* The end of the query's results. */
			r = kept;
			kept = NULL;
			done_inflight(r);
			if (r != NULL)
				PQclear(r);
			if (conn == NULL)
				return;
			send_next();
			continue;
		}
		/* Several statements: the first error, else the last. */
		if (kept != NULL && pg_ok(kept)) {
			PQclear(kept);
			kept = r;
		} else if (kept == NULL)
			kept = r;
		else
			PQclear(r);
	}
	while (conn != NULL && (n = PQnotifies(conn)) != NULL) {
		if (notify_fn != NULL)
			notify_fn(n->relname, n->extra);
		PQfreemem(n);
	}
}

static void
sock_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (state == PG_CONNECTING) {
		pg_connect();
		return;
	}
	if (!PQconsumeInput(conn) || PQstatus(conn) == CONNECTION_BAD) {
		pg_lost(PQerrorMessage(conn));
		return;
	}
	read_results();
}

static int
enqueue(const char *sql, int nparams, const char *const *vals,
    const int *lens, const int *fmts, int multi, pg_result_fn fn, void *arg)
{
	struct pgq	*q;
	int		 i;

	q = xcalloc(1, sizeof(*q));
	q->sql = xstrdup(sql);
	q->nparams = nparams;
	q->multi = multi;
	q->fn = fn;
	q->arg = arg;
	if (nparams > 0) {
		q->vals = xcalloc((size_t)nparams, sizeof(*q->vals));
		q->lens = xcalloc((size_t)nparams, sizeof(*q->lens));
		q->fmts = xcalloc((size_t)nparams, sizeof(*q->fmts));
		for (i = 0; i < nparams; i++) {
			q->fmts[i] = fmts != NULL ? fmts[i] : 0;
			if (vals[i] == NULL)
				continue;
			q->lens[i] = lens != NULL && q->fmts[i] ? lens[i] :
			    (int)strlen(vals[i]);
			/* One byte more: a text parameter ends in NUL. */
			q->vals[i] = xmalloc((size_t)q->lens[i] + 1);
			memcpy(q->vals[i], vals[i], (size_t)q->lens[i]);
			q->vals[i][q->lens[i]] = '\0';
		}
	}
	TAILQ_INSERT_TAIL(&queue, q, entry);
	send_next();
	return 0;
}

int
pg_query(const char *sql, int nparams, const char *const *vals,
    const int *lens, const int *fmts, pg_result_fn fn, void *arg)
{
	if (state != PG_UP)
		return -1;
	return enqueue(sql, nparams, vals, lens, fmts, 0, fn, arg);
}

int
pg_query_setup(const char *sql, int nparams, const char *const *vals,
    const int *lens, const int *fmts, pg_result_fn fn, void *arg)
{
	if (state != PG_SETUP && state != PG_UP)
		return -1;
	return enqueue(sql, nparams, vals, lens, fmts, 0, fn, arg);
}

void
pg_ready(void)
{
	if (state != PG_SETUP)
		return;
	state = PG_UP;
	backoff_ms = 0;
	lasterr[0] = '\0';
	log_info("store: PostgreSQL connection up (schema version %d)",
	    pgschema_version());
}

static void
migrated(const PGresult *res, void *arg)
{
	(void)arg;
	if (res == NULL)
		return;		/* lost: pg_lost tries again */
	if (!pg_ok(res)) {
		/*
		 * A schema we cannot migrate is no store to write to: say
		 * why (once, not at every try), and try again later (an
		 * operator may fix it).
		 */
		if (strcmp(schema_err, PQresultErrorMessage(res)) != 0)
			log_warnx("store: PostgreSQL schema: %s",
			    PQresultErrorMessage(res));
		snprintf(schema_err, sizeof(schema_err), "%s",
		    PQresultErrorMessage(res));
		set_error(PQresultErrorMessage(res));
		return;
	}
	schema_err[0] = '\0';
}

static void
setup_done(const PGresult *res, void *arg)
{
	(void)arg;
	if (res == NULL)
		return;
	if (!pg_ok(res) || lasterr[0] != '\0') {
		/* The migration failed: not up; the next try in a while. */
		pg_lost(lasterr[0] ? lasterr : PQresultErrorMessage(res));
		return;
	}
	if (up_fn != NULL)
		up_fn();
	else
		pg_ready();
}

/* The server's notices (NOTICE, WARNING) are for the debug log only. */
static void
notice_cb(void *arg, const char *msg)
{
	(void)arg;
	log_debug("store: PostgreSQL: %s", msg);
}

/* Connected: migrate the schema, listen, then the owner's setup. */
static void
pg_connected(void)
{
	char	sql[256];
	size_t	i;

	if (PQsetnonblocking(conn, 1) == -1) {
		pg_lost(PQerrorMessage(conn));
		return;
	}
	PQsetNoticeProcessor(conn, notice_cb, NULL);
	state = PG_SETUP;
	lasterr[0] = '\0';
	event_del(sock_ev);
	event_assign(sock_ev, base, PQsocket(conn), EV_READ | EV_PERSIST,
	    sock_cb, NULL);
	event_add(sock_ev, NULL);
	(void)enqueue(pgschema_sql(), 0, NULL, NULL, NULL, 1, migrated, NULL);
	for (i = 0; i < nchannels; i++) {
		snprintf(sql, sizeof(sql), "LISTEN %s", channels[i]);
		(void)enqueue(sql, 0, NULL, NULL, NULL, 0, NULL, NULL);
	}
	(void)enqueue("SELECT 1", 0, NULL, NULL, NULL, 0, setup_done, NULL);
}

/* One step of PQconnectPoll; the next when the socket is ready. */
static void
pg_connect(void)
{
	PostgresPollingStatusType	ps;
	short				ev;

	ps = PQconnectPoll(conn);
	switch (ps) {
	case PGRES_POLLING_OK:
		event_del(timer_ev);
		pg_connected();
		return;
	case PGRES_POLLING_FAILED:
		pg_lost(PQerrorMessage(conn));
		return;
	case PGRES_POLLING_READING:
		ev = EV_READ;
		break;
	default:
		ev = EV_WRITE;
		break;
	}
	event_del(sock_ev);
	event_assign(sock_ev, base, PQsocket(conn), ev, sock_cb, NULL);
	event_add(sock_ev, NULL);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	static const char	*keys[] = { "dbname", "application_name", NULL };
	const char		*vals[3];
	struct timeval		 tv = { CONNECT_TIMEOUT_S, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	if (state == PG_CONNECTING) {
		/* PQconnectPoll has no deadline of its own. */
		pg_lost("the connection timed out");
		return;
	}
	/* The DSN, expanded, then our name over any it gives. */
	vals[0] = conf->store_dsn;
	vals[1] = appname;
	vals[2] = NULL;
	if ((conn = PQconnectStartParams(keys, vals, 1)) == NULL)
		fatalx("store: PQconnectStartParams: out of memory");
	if (PQstatus(conn) == CONNECTION_BAD) {
		pg_lost(PQerrorMessage(conn));
		return;
	}
	state = PG_CONNECTING;
	evtimer_add(timer_ev, &tv);
	pg_connect();
}

void
pg_listen(const char *channel)
{
	char	sql[256];

	if (nchannels == MAX_LISTEN)
		fatalx("pg_listen: too many channels");
	channels[nchannels++] = xstrdup(channel);
	if (state == PG_UP || state == PG_SETUP) {
		snprintf(sql, sizeof(sql), "LISTEN %s", channel);
		(void)enqueue(sql, 0, NULL, NULL, NULL, 0, NULL, NULL);
	}
}

void
pg_init(struct event_base *b, const struct config *c, void (*on_up)(void),
    void (*on_down)(void),
    void (*on_notify)(const char *, const char *))
{
	unsigned char	rnd[16];
	struct timeval	now = { 0, 0 };

	base = b;
	conf = c;
	up_fn = on_up;
	down_fn = on_down;
	notify_fn = on_notify;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(instance, sizeof(instance), rnd, sizeof(rnd));
	snprintf(appname, sizeof(appname), "toolgate %s", instance);
	sock_ev = event_new(base, -1, 0, sock_cb, NULL);
	flush_ev = event_new(base, -1, 0, flush_cb, NULL);
	timer_ev = evtimer_new(base, timer_cb, NULL);
	if (sock_ev == NULL || flush_ev == NULL || timer_ev == NULL)
		fatalx("pg_init: event_new");
	state = PG_DOWN;
	snprintf(lasterr, sizeof(lasterr), "not connected yet");
	evtimer_add(timer_ev, &now);
}

void
pg_shutdown(void)
{
	size_t	i;

	if (base == NULL)
		return;
	event_free(sock_ev);
	event_free(flush_ev);
	event_free(timer_ev);
	sock_ev = flush_ev = timer_ev = NULL;
	down_fn = NULL;
	if (conn != NULL)
		PQfinish(conn);
	conn = NULL;
	state = PG_DOWN;
	fail_all();
	for (i = 0; i < nchannels; i++)
		free(channels[i]);
	nchannels = 0;
	base = NULL;
}
