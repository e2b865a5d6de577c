/*
 * The control socket's handlers (control.c dispatches): what a handler in
 * another file needs to answer an operator.  Each handler gets the
 * request map and the operator who sent it, and answers exactly once with
 * ctl_send() or ctl_error().
 */
#ifndef TG_CONTROL_H
#define TG_CONTROL_H

#include <sys/types.h>
#include <stdint.h>

struct ctl_conn;
struct msgbuf;
struct msgpack_object;

/* The operator who sent a command: uid and user name, for the records. */
struct operator {
	uid_t	uid;
	gid_t	gid;
	char	name[64];
	char	who[96];	/* "uid 0 (root)" */
};

typedef void (*ctl_fn)(struct ctl_conn *, const struct msgpack_object *,
    const struct operator *);

/*
 * An answer that comes later (the shared store's) finds its operator by
 * the connection's id: NULL when the operator has hung up meanwhile.
 */
uint64_t	 ctl_id(const struct ctl_conn *);
struct ctl_conn	*ctl_by_id(uint64_t);

/* A finished answer map (its "ok" first). */
void	ctl_send(struct ctl_conn *, struct msgbuf *);
/* {ok: false, error: SENTENCE} */
void	ctl_error(struct ctl_conn *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* ctltools.c: the catalog and its backends. */
void	ctl_tools(struct ctl_conn *, const struct msgpack_object *,
	    const struct operator *);
void	ctl_tools_accept(struct ctl_conn *, const struct msgpack_object *,
	    const struct operator *);
void	ctl_mcp_tools(struct ctl_conn *, const struct msgpack_object *,
	    const struct operator *);

/* forensics.c, compensate.c: what a run wrote, and undoing it. */
void	ctl_forensics(struct ctl_conn *, const struct msgpack_object *,
	    const struct operator *);
void	ctl_compensate(struct ctl_conn *, const struct msgpack_object *,
	    const struct operator *);
/* run_id (required) and tenant of a request: 0, or -1 refused. */
int	ctl_run_args(struct ctl_conn *, const struct msgpack_object *,
	    char **run_id, char **tenant);
/* An operator hung up: compensations still running answer nobody. */
void	compensate_conn_gone(struct ctl_conn *);

#endif
