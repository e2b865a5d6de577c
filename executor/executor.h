/*
 * The executor: the privileged process.  It alone holds the credentials,
 * the LMDB store, the audit log and the control socket, and it alone runs
 * tools.  It re-checks everything gatewayd asks of it.
 */
#ifndef TG_EXECUTOR_H
#define TG_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "proto/proto.h"

struct event;
struct event_base;
struct bufferevent;
struct store;

struct executor {
	struct config		*conf;
	struct event_base	*base;
	struct bufferevent	*gw;		/* the socketpair; NULL once gatewayd is gone */
	struct store		*store;
	int			 writes_off;	/* the kill switch, as stored */
	int			 shutting_down;
	struct event		*ev_deadline;	/* limits.shutdown_s, once shutting down */
	char			 config_hash[65];
};

extern struct executor	*ex;

/*
 * SIGALRM ends the executor this long after the shutdown deadline, should
 * its loop be stuck: killing tools, recording them and exiting take far
 * less.  gatewayd waits longer than that (GW_REAP_MARGIN_S).
 */
#define SHUTDOWN_ALARM_S	10

/* control.c: the operators' socket. */
#define CONTROL_MAX_CONNS	64	/* operators' connections only */
void	control_init(void);
void	control_shutdown(void);

/*
 * audit.c: the append-only audit log, one JSON object a line.  NULL
 * fields and uid -1 are left out.
 */
struct audit_rec {
	const char	*event;		/* "call", "writes", ... */
	const char	*tenant;
	const char	*env;
	long long	 uid;
	const char	*run_id;
	const char	*step_id;
	const char	*traceparent;	/* the agent's, when it sent one */
	const char	*tool;
	const char	*mode;		/* "read" or "write", once known */
	const char	*backend;	/* "exec", "mcp", "http", once known */
	const char	*args_hash;
	/* The canonical JSON of the args (audit.args), redacted as asked. */
	const char	*args;
	size_t		 argslen;
	const char	*idempotency_key;
	const char	*decision;	/* a status: ok, denied, stopped, error */
	/* Written as "error" when decision is error, else "stop_reason". */
	const char	*reason;
	const char	*approval_id;
	const char	*approver;
	/* Whether a write's answer was a replay: 0 unsaid, 1 no, 2 yes. */
	int		 replayed;
	const char	*outcome;	/* a call's: ok, failed, not_run */
	int		 has_duration;
	uint64_t	 duration_ms;	/* from the call's arrival to its record */
	const char	*note;
	const char	*reported_by;	/* "gatewayd": its word, checked */
	const char	*compensates;	/* the key of the write it undoes */
	/* A summary of refusals (count > 0): how many, from when to when. */
	uint64_t	 count;
	uint64_t	 first_ms;
	uint64_t	 last_ms;
};

#define AUDIT_DOWN_MSG	"the audit log cannot be written: the call was not run"

void	audit_open(const char *state_dir, struct event_base *);
/*
 * Records that matter (sync=1) reach the disk within this loop turn.
 * Returns 0, or -1 when the record is not in the log (it is down).
 */
int	audit_write(const struct audit_rec *, int sync);
/* Records wait for the loop turn's one write (gwout.c holds answers). */
int	audit_queued(void);
/* A ledger batch's records in one append: 0, or -1 if not all are in. */
void	audit_hold(void);
int	audit_release(void);
/* Sync what was written now: 0, or -1 when it may not be on disk. */
/*
 * The same, in two halves around a ledger commit: the fdatasync runs on
 * the sync thread meanwhile (syncer.h).  end: 0, or -1 if they may not be
 * on disk.
 */
void	audit_sync_begin(void);
int	audit_sync_end(void);
int	audit_sync(void);
int	audit_flush(void);
/* The last record was written: calls may run. */
int	audit_up(void);
/* "ok" or "failing: why", for gatewayctl status. */
const char *audit_state(char *, size_t);
/* "ok", or "broken: WHERE AND HOW" when the log did not verify at start. */
const char *audit_chain_state(void);
/* pgstore.c: the head the shared store keeps for this host, or NULL. */
void	audit_shared_head(const char *text, size_t len);
void	audit_reopen(void);
/* gatewayd's SIGHUP: audit_reopen(), at most once a second. */
void	audit_reopen_asked(void);
struct canon_buf;
/* r's args from the call's canonical JSON, as audit.args and .redact say. */
void	audit_args(struct audit_rec *, const struct canon_buf *);
/* The keyed hash of a value's canonical JSON (audit.redact): 77 bytes. */
void	audit_hash(const char *json, size_t len, char *out);
void	audit_close(void);

#endif
