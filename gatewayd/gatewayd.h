/*
 * gatewayd: the unprivileged process that serves agents.  It decides what
 * it can on its own (identity, policy, runs, budgets) and asks the
 * executor, over the socketpair, for everything that runs.
 */
#ifndef TG_GATEWAYD_H
#define TG_GATEWAYD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#include "common/config.h"

struct event_base;
struct conn;

struct gateway {
	struct config		*conf;
	struct event_base	*base;
	int			 writes_on;	/* the executor's view, or off at once on SIGUSR1 */
	char			 config_hash[65];
};

extern struct gateway	*gw;

/*
 * sdnotify.c: systemd's socket activation and notification, by hand.
 * sd_agent_socket: the agent socket passed as fd 3, checked to be a
 * listening Unix stream socket at 'path', or -1 when none was passed.
 * sd_notify_open and sd_watchdog_init run before the drop and before the
 * executor starts (it inherits none of it).  sd_watchdog_start: WATCHDOG=1
 * each time the executor answers a PING, when systemd asked for it.
 */
struct event_base;
int	sd_agent_socket(const char *path);
void	sd_notify_open(void);
void	sd_notify_send(const char *state);
void	sd_watchdog_init(void);
void	sd_watchdog_start(struct event_base *);
void	sd_watchdog_stop(void);

/*
 * sandbox.c: sandbox_init() loads the seccomp filter once the drop and
 * everything before the loop are done (kill by default; only the
 * executor may be signalled); sandbox_probe(), from the loop, tries a
 * forbidden call when TOOLGATE_DEBUG_SECCOMP_PROBE was set (tests).
 */
void	sandbox_init(pid_t executor);
void	sandbox_probe(void);

/* privdrop.c */
void	privdrop(const char *user, const char *chroot_dir);

/* agent.c: the agent socket */
void	agent_init(int listen_fd);
void	agent_shutdown(void);
/* The end of a loop turn: the answers queued for agents go out. */
void	agent_flush(void);
/* The executor could not keep connection id: answer unavailable, close. */
void	agent_conn_refused(uint64_t id, const char *message);

/*
 * exec_wrap.c: the socketpair to the executor, seen from gatewayd.  Each
 * request carries an id and waits for the one answer type the protocol
 * table names for it (any other is fatal); the answer comes back to 'cb'
 * (m->ans: the response the executor built and, for a resume, its run).
 */
struct proto_msg;
typedef void	(*exec_cb)(const struct proto_msg *m, void *arg);

/* Who a request is from, as gatewayd knows it: the wrappers pack it. */
struct exec_who {
	uint64_t	 conn;		/* the executor reads who it is */
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	const char	*tenant;
	const char	*env;
};

void	exec_link_init(int fd, int peerfd);
/*
 * Hand an agent connection's socket to the executor under 'conn', so it
 * reads SO_PEERCRED itself; 0, 1 when the peer channel is full (try again
 * after exec_peer_room's callback), -1 when it cannot be sent.
 */
int	exec_pass_peer(uint64_t conn, int fd);
void	exec_peer_room(void (*cb)(void));
void	exec_conn_gone(uint64_t conn);
void	exec_link_close(void);
/* Send HELLO; 'ready' runs once the executor answered. */
void	exec_hello(void (*ready)(void));
void	exec_writes_off(void);
void	exec_audit_reopen(void);
/* PING the executor; 'answered' runs when its PONG comes. */
void	exec_ping(void (*answered)(void));
/* gatewayd.c: writes off now if SIGUSR1 came since the last look. */
void	killswitch_check(void);

/* A refusal decided here, for the executor's audit log. */
struct refusal {
	uint64_t	 conn;		/* the executor reads who it is */
	uid_t		 uid;
	gid_t		 gid;
	const char	*tenant;	/* NULL: no principal */
	const char	*env;
	const char	*run_id;
	const char	*step_id;
	const char	*tool;
	const char	*args_hash;
	const char	*decision;	/* denied, stopped */
	const char	*reason;
	const char	*message;
	const char	*traceparent;	/* the agent's, checked; or NULL */
};
void	exec_audit(const struct refusal *);
/*
 * Refusals of strangers counted since first_ms: of uid/gid, or with
 * has_uid 0 of the uids past limits.stranger_uids.
 */
void	exec_audit_summary(int has_uid, uid_t uid, gid_t gid, uint64_t count,
	    uint64_t first_ms, uint64_t last_ms);

/*
 * strangers.c: refusals of peers with no principal, one record per uid
 * and limits.stranger_summary_s, with a count.
 */
void	strangers_init(void);
void	strangers_shutdown(void);
/* r was answered to a peer with no principal: reported or counted. */
void	strangers_refused(const struct refusal *r);
/*
 * The requests: each returns its id; 'cb' gets the answer.  step_id may
 * be NULL; checkpoint and approval_id are the agent's strings, checked.
 */
uint64_t exec_call(const struct exec_who *, const char *run_id,
	    const char *step_id, const char *tool, const msgpack_object *args,
	    const char *traceparent, exec_cb cb, void *arg);
uint64_t exec_resume(const struct exec_who *,
	    const msgpack_object *checkpoint, exec_cb cb, void *arg);
uint64_t exec_wait(const struct exec_who *,
	    const msgpack_object *approval_id, uint64_t timeout_ms,
	    exec_cb cb, void *arg);
/* The tools the principal of w may call (the tools op). */
uint64_t exec_tools(const struct exec_who *, exec_cb cb, void *arg);
/* The executor's metric families, as text (m->metrics_ans). */
uint64_t exec_metrics(exec_cb cb, void *arg);
/* The caller no longer wants the answer (its connection closed). */
void	exec_forget(uint64_t id);

/*
 * metricsd.c: metrics.listen.  metrics_bind() before the drop binds it
 * (and sets the counters up, served or not); metrics_start() once the
 * executor answered HELLO serves it; metrics_stop() at the end.
 */
void	metrics_bind(void);
void	metrics_start(void);
void	metrics_stop(void);
/*
 * metrics.c: gatewayd's counters.  metrics_render() writes its families
 * and toolgate_executor_up.
 */
void	metrics_init(void);
void	metrics_free(void);
void	metrics_render(FILE *, int executor_up);
/* A monotonic clock in microseconds, for metrics_call's started_us. */
uint64_t metrics_clock(void);
/* A call op answered with 'status'; t: its catalog tool, or NULL. */
struct tool;
void	metrics_call(const struct tool *t, const char *status,
	    uint64_t started_us);
/* An answer carried this stop_reason. */
void	metrics_stop_reason(const char *reason);
/* A run finished: stopped (for this reason), or forgotten (NULL). */
void	metrics_run_done(uint64_t ncalls, uint64_t tokens,
	    const char *stopped);

/*
 * runs.c: per-run state, keyed by (tenant, run_id).  The record,
 * run_stopped() and run_stop_message() are common/runtab.h's.
 */
struct run;
struct run	*run_get(const char *tenant, const char *run_id, int create);
void		 run_stop(struct run *, const char *reason, const char *message);
void		 runs_init(void);
size_t		 runs_count(void);

#endif
