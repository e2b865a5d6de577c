/*
 * The executor's connection to PostgreSQL (store.backend: postgresql),
 * driven by its libevent loop: libpq in non-blocking mode, connected with
 * PQconnectStartParams/PQconnectPoll, queries sent with PQsendQueryParams
 * and their results read with PQconsumeInput/PQgetResult when PQsocket is
 * readable.  No call here waits for the server, and no thread is used.
 *
 * One connection, one query on the wire at a time, the others queued in
 * order: a query's callback runs before the next one's, so what the write
 * path commits is committed in the order it was asked.  Losing the
 * connection fails every query in flight or queued (their callbacks get
 * NULL: the outcome of the one in flight is unknown), and a new connection
 * is tried with a backoff; until it is up and its schema checked, pg_up()
 * is 0 and pg_query() refuses.
 */
#ifndef TG_PG_H
#define TG_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct config;
struct event_base;

/*
 * res: the query's result (the callback must not PQclear it), or NULL
 * when the connection was lost before it came.
 */
typedef void	(*pg_result_fn)(const PGresult *res, void *arg);

/*
 * Connect to conf->store_dsn, as application_name "toolgate INSTANCE"
 * (pg_instance()).  on_up runs each time a connection is up and its
 * schema migrated, before any other query is accepted (it may queue its
 * own with pg_query_setup); on_notify for each NOTIFY of a channel
 * listened to (pg_listen).
 */
void		 pg_init(struct event_base *, const struct config *,
		    void (*on_up)(void), void (*on_down)(void),
		    void (*on_notify)(const char *channel,
		    const char *payload));
void		 pg_shutdown(void);
/* 1 when queries are accepted. */
int		 pg_up(void);
/*
 * Queue a query with text parameters (vals[i] NULL is SQL NULL; lens
 * and fmts may be NULL: all text).  Returns 0, or -1 when the connection
 * is not up (fn is not called).
 */
int		 pg_query(const char *sql, int nparams, const char *const *vals,
		    const int *lens, const int *fmts, pg_result_fn fn,
		    void *arg);
/* The same while on_up runs (the connection is not up for others yet). */
int		 pg_query_setup(const char *sql, int nparams,
		    const char *const *vals, const int *lens, const int *fmts,
		    pg_result_fn fn, void *arg);
/* on_up is done: queries are accepted from now on. */
void		 pg_ready(void);
/* LISTEN on channel, now and on every reconnection. */
void		 pg_listen(const char *channel);
/* This executor's instance: random, new at each start. */
const char	*pg_instance(void);
/* "up", "connecting" or "down: why (next try in N ms)". */
const char	*pg_state(char *buf, size_t len);
/* Connections lost since start. */
uint64_t	 pg_losses(void);
/* A query's result was a success (command or rows). */
int		 pg_ok(const PGresult *);

/* pgschema.c: the migrations, applied in order at each connection. */
const char	*pgschema_sql(void);
int		 pgschema_version(void);

#endif
