/*
 * executor: started by gatewayd with its end of the socketpair on fd 3.
 * Keeps its privileges; owns the store, the audit log, the control socket
 * and the tool processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <lmdb.h>
#include <sodium.h>

#include "common/config.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/admit.h"
#include "executor/approval.h"
#include "executor/budget.h"
#include "executor/call.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/peers.h"
#include "executor/statedir.h"
#include "executor/store.h"
#include "executor/toolrun.h"
#include "proto/proto.h"

struct executor	*ex;

static void	dispatch_hello(const struct proto_msg *);
static void	dispatch_call(const struct proto_msg *);
static void	dispatch_resume(const struct proto_msg *);
static void	dispatch_wait(const struct proto_msg *);
static void	dispatch_writes_off(const struct proto_msg *);
static void	dispatch_audit(const struct proto_msg *);
static void	dispatch_conn_gone(const struct proto_msg *);
static void	dispatch_audit_summary(const struct proto_msg *);

/*
 * What gatewayd may send, and when.  Anything else, or a message before
 * HELLO, is fatal for the peer: a gatewayd that speaks out of turn is not
 * one we can trust to speak for agents.
 */
static const struct {
	uint32_t	 type;
	void		(*fn)(const struct proto_msg *);
	int		 before_hello;
} dispatch[] = {
	{ MSG_HELLO,		dispatch_hello,		1 },
	{ MSG_CALL,		dispatch_call,		0 },
	{ MSG_RESUME,		dispatch_resume,	0 },
	{ MSG_WAIT,		dispatch_wait,		0 },
	{ MSG_WRITES_OFF,	dispatch_writes_off,	0 },
	{ MSG_AUDIT,		dispatch_audit,		0 },
	{ MSG_CONN_GONE,	dispatch_conn_gone,	0 },
	{ MSG_AUDIT_SUMMARY,	dispatch_audit_summary,	0 },
};

static int	hello_done;
/* Refusals of peers with no principal gatewayd reported, one by one or summed. */
static uint64_t	stranger_refusals;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: executor -c CONFIG [-fv] [--agent-socket PATH]"
	    " [--control-socket PATH]\n"
	    "                [--state-dir DIR]\n");
	exit(2);
}

int
ex_writes_on(void)
{
	return ex->conf->writes_enabled && !ex->writes_off;
}

void
ex_send(struct msgbuf *mb)
{
	const char	*p;
	size_t		 len;

	p = msgbuf_finish(mb, &len);
	if (ex->gw != NULL)
		bufferevent_write(ex->gw, p, len);
}

static void
send_writes_state(void)
{
	struct msgbuf	mb;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_WRITES_STATE, 0, 1);
	pk_kv_bool(&mb.pk, "writes_enabled", ex_writes_on());
	ex_send(&mb);
	msgbuf_free(&mb);
}

int
ex_set_writes_off(int off, const char *who)
{
	struct audit_rec	ar = { .event = "writes", .uid = -1 };
	int			rc;

	/* Disabling takes effect in memory first, whatever the disk says. */
	if (off)
		ex->writes_off = 1;
	if ((rc = store_set_writes_off(ex->store, off)) != 0) {
		log_warnx("kill switch: cannot store the state: %s",
		    mdb_strerror(rc));
		if (!off)
			return -1;
	}
	ex->writes_off = off;
	log_info("writes %s by %s", off ? "disabled" : "enabled", who);
	ar.decision = off ? "disabled" : "enabled";
	ar.approver = who;
	(void)audit_write(&ar, 1);
	send_writes_state();
	return rc == 0 ? 0 : -1;
}

static void
dispatch_hello(const struct proto_msg *m)
{
	struct msgbuf	mb;
	uint64_t	v = mp_get(m->body, "version")->via.u64;

	if (hello_done)
		fatalx("gatewayd sent HELLO twice");
	if (v != PROTO_VERSION)
		fatalx("gatewayd speaks protocol %llu, we speak %d",
		    (unsigned long long)v, PROTO_VERSION);
	hello_done = 1;
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_HELLO_ANS, m->id, 3);
	pk_kv_uint(&mb.pk, "version", PROTO_VERSION);
	pk_kv_bool(&mb.pk, "writes_enabled", ex_writes_on());
	pk_kv_str(&mb.pk, "config_hash", ex->config_hash);
	ex_send(&mb);
	msgbuf_free(&mb);
}

/*
 * A request from an agent that has hung up is refused before anything
 * runs: gatewayd could otherwise go on acting for an agent that is gone,
 * under the id it had or under a new one.  1 when answered so.
 */
static int
refuse_hung_up(const struct proto_msg *m, uint32_t ans_type)
{
	struct call	*c;
	uint64_t	 conn = mp_get(m->body, "conn")->via.u64;

	/* Never passed (-1): the request's own checks make that fatal. */
	if (peers_hung_up(conn) != 1)
		return 0;
	log_info("connection %llu: the agent has hung up: %s refused",
	    (unsigned long long)conn, msg_type_str(m->type));
	if ((c = call_new(m, ans_type)) == NULL)
		return 1;
	c->run_id = mp_strdup(mp_get(m->body, "run_id"));
	c->tool = mp_strdup(mp_get(m->body, "tool"));
	call_refuse(c, ST_ERROR, E_UNAVAILABLE, "the agent has hung up");
	call_free(c);
	return 1;
}

/*
 * A request on a connection whose socket we had no descriptor for: we do
 * not know who it is, so it is answered unavailable and nothing more
 * (gatewayd was told to close the connection).  1 when answered so.
 */
static int
refuse_refused(const struct proto_msg *m, uint32_t ans_type)
{
	if (!peers_refused(mp_get(m->body, "conn")->via.u64))
		return 0;
	call_unavailable(m->id, ans_type, "the gateway is out of file"
	    " descriptors: try again later");
	return 1;
}

static void
dispatch_call(const struct proto_msg *m)
{
	if (!refuse_refused(m, MSG_CALL_ANS) &&
	    !refuse_hung_up(m, MSG_CALL_ANS))
		call_handle(m);
}

static void
dispatch_resume(const struct proto_msg *m)
{
	if (!refuse_refused(m, MSG_RESUME_ANS) &&
	    !refuse_hung_up(m, MSG_RESUME_ANS))
		approval_resume(m);
}

static void
dispatch_wait(const struct proto_msg *m)
{
	if (!refuse_refused(m, MSG_WAIT_ANS) &&
	    !refuse_hung_up(m, MSG_WAIT_ANS))
		approval_wait(m);
}

static void
dispatch_writes_off(const struct proto_msg *m)
{
	(void)m;
	if (!ex->writes_off)
		ex_set_writes_off(1, "SIGUSR1 to gatewayd");
}

/*
 * gatewayd's claims about who it refused, checked against the peer of
 * the connection it names.  0 when they agree; else -1, and 'note' says
 * what it claimed.
 */
static int
audit_claims(const msgpack_object *body, uid_t uid, gid_t gid,
    const struct principal *p, char *note, size_t len)
{
	const msgpack_object	*t = mp_get(body, "tenant");
	const msgpack_object	*e = mp_get(body, "env");
	uint64_t		 cuid = mp_get(body, "uid")->via.u64;
	uint64_t		 cgid = mp_get(body, "gid")->via.u64;

	if (cuid == uid && cgid == gid &&
	    (p == NULL ? t == NULL && e == NULL :
	    mp_streq(t, p->tenant) && mp_streq(e, p->env)))
		return 0;
	snprintf(note, len, "gatewayd claimed uid %llu gid %llu tenant %.*s"
	    " env %.*s", (unsigned long long)cuid, (unsigned long long)cgid,
	    t ? (int)(t->via.str.size > 64 ? 64 : t->via.str.size) : 1,
	    t ? t->via.str.ptr : "-",
	    e ? (int)(e->via.str.size > 64 ? 64 : e->via.str.size) : 1,
	    e ? e->via.str.ptr : "-");
	return -1;
}

/*
 * gatewayd answers a peer with no principal once and closes it, so it
 * cannot have refused strangers more often than it passed us their
 * connections: a count past that is a lie.
 */
static void
stranger_refused(uint64_t n)
{
	uint64_t	passed = peers_strangers();

	if (n > passed || stranger_refusals > passed - n)
		fatalx("gatewayd reported %llu more refusals of peers with no"
		    " principal: %llu in all, for %llu connections",
		    (unsigned long long)n,
		    (unsigned long long)(stranger_refusals + n),
		    (unsigned long long)passed);
	stranger_refusals += n;
}

/*
 * A refusal gatewayd made on its own: recorded as its word (event
 * "gatewayd", reported_by), with the uid, tenant and env we read from
 * the connection it names, never the ones it claims.  A stop it reports
 * (tokens, cost: budgets only it sees) stops the run for our writes too.
 * Nothing ran, so nothing is synced for it.
 */
static void
dispatch_audit(const struct proto_msg *m)
{
	struct audit_rec	 ar = { .event = "gatewayd",
				    .reported_by = "gatewayd" };
	const struct principal	*p;
	uint64_t		 conn = mp_get(m->body, "conn")->via.u64;
	char			*f[6], *msg, claim[256], *note = NULL;
	static const char	*keys[6] = { "run_id", "step_id", "tool",
				    "args_hash", "decision", "reason" };
	uid_t			 uid;
	gid_t			 gid;
	size_t			 i;

	switch (peers_lookup(conn, &uid, &gid)) {
	case -1:
		fatalx("gatewayd named connection %llu, which it never passed",
		    (unsigned long long)conn);
	case -2:
		/* Refused for want of a descriptor: no identity to record. */
		log_debug("connection %llu (refused): gatewayd's refusal not"
		    " recorded", (unsigned long long)conn);
		return;
	}
	p = policy_principal(ex->conf, uid, gid);
	for (i = 0; i < 6; i++)
		f[i] = mp_strdup(mp_get(m->body, keys[i]));
	msg = mp_strdup(mp_get(m->body, "message"));
	if (audit_claims(m->body, uid, gid, p, claim, sizeof(claim)) == -1) {
		log_warnx("connection %llu is uid %u gid %u (%s): %s",
		    (unsigned long long)conn, (unsigned)uid, (unsigned)gid,
		    p ? p->tenant : "no principal", claim);
		xasprintf(&note, "%s (%s)", msg, claim);
	}
	if (p == NULL)
		stranger_refused(1);
	ar.uid = (long long)uid;
	ar.tenant = p ? p->tenant : NULL;
	ar.env = p ? p->env : NULL;
	ar.run_id = f[0];
	ar.step_id = f[1];
	ar.tool = f[2];
	ar.args_hash = f[3];
	ar.decision = f[4];
	ar.reason = f[5];
	ar.note = note ? note : msg;
	(void)audit_write(&ar, 0);
	if (p != NULL && f[0] != NULL && strcmp(f[4], ST_STOPPED) == 0)
		budget_stop(p->tenant, f[0], f[5], msg);
	for (i = 0; i < 6; i++)
		free(f[i]);
	free(msg);
	free(note);
}

/*
 * Refusals of strangers gatewayd counted rather than reported one by one
 * (their connections are gone, so the uid is its word): one record,
 * checked for what can be checked.  The ids must have no principal here
 * too, and the count must fit in the strangers' connections.
 */
static void
dispatch_audit_summary(const struct proto_msg *m)
{
	struct audit_rec	 ar = { .event = "gatewayd", .uid = -1,
				    .reported_by = "gatewayd",
				    .decision = ST_DENIED,
				    .reason = R_UNKNOWN_PRINCIPAL };
	const msgpack_object	*u = mp_get(m->body, "uid");
	const msgpack_object	*g = mp_get(m->body, "gid");
	char			 note[160];

	ar.count = mp_get(m->body, "count")->via.u64;
	ar.first_ms = mp_get(m->body, "first_ms")->via.u64;
	ar.last_ms = mp_get(m->body, "last_ms")->via.u64;
	if ((u == NULL) != (g == NULL) || ar.count == 0 ||
	    ar.first_ms > ar.last_ms || ar.last_ms > INT64_MAX ||
	    (u != NULL && (u->via.u64 > UINT32_MAX || g->via.u64 > UINT32_MAX)))
		fatalx("gatewayd sent a summary of refusals that cannot be");
	if (u != NULL && policy_principal(ex->conf, (uid_t)u->via.u64,
	    (gid_t)g->via.u64) != NULL)
		fatalx("gatewayd summed refusals of uid %llu gid %llu, which"
		    " has a principal", (unsigned long long)u->via.u64,
		    (unsigned long long)g->via.u64);
	stranger_refused(ar.count);
	if (u != NULL) {
		ar.uid = (long long)u->via.u64;
		snprintf(note, sizeof(note), "gid %llu: %llu more refusals"
		    " of this peer with no principal, counted by gatewayd",
		    (unsigned long long)g->via.u64,
		    (unsigned long long)ar.count);
	} else
		snprintf(note, sizeof(note), "%llu refusals of peers with no"
		    " principal whose uids gatewayd had no room to tell apart"
		    " (limits.stranger_uids)", (unsigned long long)ar.count);
	ar.note = note;
	(void)audit_write(&ar, 0);
}

/*
 * The agent of 'conn' hung up: what it waits for ends.  Its parked waits
 * and its joins to an identical running write are dropped, its reads are
 * cancelled (tools killed, reaped as usual), its writes whose intent is
 * not recorded yet are refused; all answered error/unavailable, which
 * gatewayd drops (the answer frees its slot for the request).  Writes
 * whose intent is recorded run on and their outcome is recorded, so a
 * retry replays it.  Called when the executor sees the hang-up itself
 * (peers.c) and again at CONN_GONE: the second time finds nothing.
 */
void
ex_conn_hung_up(uint64_t conn)
{
	size_t	waits, reads, writes;

	waits = approval_conn_gone(conn);
	reads = call_conn_gone(conn);
	writes = write_conn_gone(conn);
	if (waits + reads + writes > 0)
		log_info("connection %llu: the agent hung up: %zu waits ended,"
		    " %zu reads cancelled, %zu write calls refused",
		    (unsigned long long)conn, waits, reads, writes);
}

/*
 * gatewayd closed the connection, after its last request (the socketpair
 * keeps the order): nothing more comes for it.
 */
static void
dispatch_conn_gone(const struct proto_msg *m)
{
	uint64_t	conn = mp_get(m->body, "conn")->via.u64;

	ex_conn_hung_up(conn);
	peers_forget(conn);
}

static void
peer_dispatch(const char *buf, size_t len)
{
	struct proto_msg	m;
	char			err[128], sample[64];
	size_t			i;

	if (proto_decode(buf, len, &m, err, sizeof(err)) == -1) {
		log_sanitize(sample, sizeof(sample), buf, len < 32 ? len : 32);
		fatalx("gatewayd sent a bad message (%s): %s", err, sample);
	}
	for (i = 0; i < sizeof(dispatch) / sizeof(dispatch[0]); i++)
		if (dispatch[i].type == m.type)
			break;
	if (i == sizeof(dispatch) / sizeof(dispatch[0]))
		fatalx("gatewayd sent %s, which it may not send",
		    msg_type_str(m.type));
	if (!hello_done && !dispatch[i].before_hello)
		fatalx("gatewayd sent %s before HELLO", msg_type_str(m.type));
	log_debug("<- %s id %llu", msg_type_str(m.type),
	    (unsigned long long)m.id);
	dispatch[i].fn(&m);
	proto_msg_free(&m);
}

static uint32_t
peer_max_frame(void)
{
	/* A CALL holds args (one agent frame) and a little more. */
	return (uint32_t)(ex->conf->max_frame + 65536);
}

static void
maybe_exit(void)
{
	if (ex->gw == NULL && toolrun_active() == 0 && write_active() == 0)
		event_base_loopexit(ex->base, NULL);
}

/*
 * The shutdown deadline: what still runs is ended as a timeout ends it,
 * so a write killed here is in doubt in the ledger; the last callback
 * ends the loop (maybe_exit()).
 */
static void
shutdown_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	size_t	n;

	(void)fd;
	(void)what;
	(void)arg;
	if ((n = toolrun_expire()) > 0)
		log_warnx("shutdown: %zu tools still running after %llu s"
		    " (limits.shutdown_s): killed, a write among them is in"
		    " doubt", n, (unsigned long long)ex->conf->shutdown_s);
	maybe_exit();
}

/*
 * Shut down, once: gatewayd is gone (end of file on the socketpair) or we
 * got SIGTERM.  Running tools get limits.shutdown_s to finish, then are
 * killed.  Should the loop itself get stuck, SIGALRM (its default action)
 * ends the process a little later; the ledger's intents make any write
 * that was running in doubt at the next start, as after a crash.
 */
static void
shutdown_begin(const char *why)
{
	struct timeval	tv;

	if (ex->shutting_down)
		return;
	ex->shutting_down = 1;
	if (ex->gw != NULL) {
		bufferevent_free(ex->gw);
		ex->gw = NULL;
	}
	control_shutdown();
	log_info("%s: finishing %zu running tools, for %llu s at most", why,
	    toolrun_active(), (unsigned long long)ex->conf->shutdown_s);
	tv.tv_sec = (time_t)ex->conf->shutdown_s;
	tv.tv_usec = 0;
	ex->ev_deadline = evtimer_new(ex->base, shutdown_deadline_cb, NULL);
	if (ex->ev_deadline == NULL || evtimer_add(ex->ev_deadline, &tv) == -1)
		fatalx("cannot arm the shutdown deadline");
	alarm((unsigned)ex->conf->shutdown_s + SHUTDOWN_ALARM_S);
	maybe_exit();
}

static void
peer_gone(void)
{
	shutdown_begin("gatewayd went away");
}

static void
peer_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint32_t	 len;

	(void)arg;
	for (;;) {
		switch (frame_peek(in, peer_max_frame(), &len)) {
		case FRAME_MORE:
			return;
		case FRAME_EMPTY:
			fatalx("gatewayd sent an empty frame");
		case FRAME_TOO_LARGE:
			fatalx("gatewayd sent a frame of %u bytes", len);
		case FRAME_READY:
			break;
		}
		peer_dispatch((const char *)evbuffer_pullup(in, len + FRAME_HDR) +
		    FRAME_HDR, len);
		evbuffer_drain(in, len + FRAME_HDR);
		if (ex->gw == NULL)
			return;
	}
}

static void
peer_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		peer_gone();
}

void
ex_tool_done(void)
{
	if (ex->shutting_down)
		maybe_exit();
}

static void
on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (!ex->writes_off)
		ex_set_writes_off(1, "SIGUSR1 to executor");
}

/* SIGHUP: reopen the audit log (logrotate). */
static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	audit_reopen();
}

/*
 * SIGTERM or SIGINT: shut down (closing the socketpair ends gatewayd too).
 * A second one does not wait for the deadline.
 */
static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (ex->shutting_down) {
		log_info("signal %d again: ending running tools now", (int)sig);
		event_active(ex->ev_deadline, EV_TIMEOUT, 1);
		return;
	}
	shutdown_begin(sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* What the command line says; paths given replace the config's. */
struct opts {
	const char	*cfile;
	const char	*csock;
	const char	*sdir;
	const char	*asock;
	int		 foreground;
	int		 verbose;
};

static void
parse_opts(int argc, char *argv[], struct opts *o)
{
	static const struct option longopts[] = {
		{ "control-socket", required_argument, NULL, 'C' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "agent-socket", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:fv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->cfile = optarg; break;
		case 'f': o->foreground = 1; break;
		case 'v': o->verbose++; break;
		case 'C': o->csock = optarg; break;
		case 'S': o->sdir = optarg; break;
		case 'A': o->asock = optarg; break;
		default: usage();
		}
	}
	if (o->cfile == NULL || optind != argc)
		usage();
}

/* A path the command line gives instead of the config's. */
static void
override(char **path, const char *arg)
{
	if (arg != NULL) {
		free(*path);
		*path = xstrdup(arg);
	}
}

/* Our own copy of the policy: never taken from gatewayd. */
static void
config_read(const struct opts *o)
{
	char	err[4096];

	if (file_sha256_hex(o->cfile, ex->config_hash) == -1)
		fatal("%s", o->cfile);
	if ((ex->conf = config_load(o->cfile, err, sizeof(err))) == NULL)
		config_fatal(err);
	if (ex->conf->allow_self_approval)
		log_warnx("WARNING: operators.allow_self_approval is set: "
		    "agents may approve their own writes (development and "
		    "tests only)");
	/* Where agents connect: every socket gatewayd passes is checked. */
	override(&ex->conf->agent_socket, o->asock);
	override(&ex->conf->control_socket, o->csock);
	override(&ex->conf->state_dir, o->sdir);
	if (geteuid() != 0)
		log_warnx("WARNING: executor is not running as root: privileges"
		    " are NOT separated (development mode)");
}

/*
 * The state dir: checked to be ours alone and locked to this process
 * before anything in it is opened; then the store and the kill switch.
 */
static void
state_open(void)
{
	char	dbdir[4096], err[512];
	int	rc;

	if (mkdir_p(ex->conf->state_dir, 0700) == -1)
		fatal("%s", ex->conf->state_dir);
	statedir_check(ex->conf->state_dir);
	statedir_lock(ex->conf->state_dir);
	snprintf(dbdir, sizeof(dbdir), "%s/db", ex->conf->state_dir);
	ex->store = store_open(dbdir, ex->conf->map_size,
	    ex->conf->max_map_size, err, sizeof(err));
	if (ex->store == NULL)
		fatalx("%s", err);
	store_set_reserve(ex->store, ex->conf->store_reserve);
	if ((rc = store_get_writes_off(ex->store, &ex->writes_off)) != 0)
		fatalx("store: cannot read the kill switch: %s",
		    mdb_strerror(rc));
}

/* Our end of the socketpair, which gatewayd left on EXECUTOR_FD. */
static void
peer_open(void)
{
	if (fcntl(EXECUTOR_FD, F_GETFD) == -1)
		fatalx("fd %d is not open: executor is started by gatewayd",
		    EXECUTOR_FD);
	evutil_make_socket_nonblocking(EXECUTOR_FD);
	evutil_make_socket_closeonexec(EXECUTOR_FD);
	ex->gw = bufferevent_socket_new(ex->base, EXECUTOR_FD,
	    BEV_OPT_CLOSE_ON_FREE);
	if (ex->gw == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(ex->gw, peer_read, NULL, peer_event, NULL);
	bufferevent_enable(ex->gw, EV_READ | EV_WRITE);
}

/* The modules, in the order they depend on one another. */
static void
modules_init(void)
{
	/* One descriptor per agent connection, besides tools' pipes. */
	fds_raise();
	peers_init(ex->conf->agent_socket);
	/*
	 * What a tool leaves behind (a setsid'd daemon) becomes our child
	 * when its parent dies, and toolrun kills and reaps it: no tool
	 * process outlives its run, its timeout or the executor.
	 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1)
		fatal("PR_SET_CHILD_SUBREAPER");
	budget_init();
	toolrun_init(ex->base);
	write_init();
	approvals_init();
	control_init();
}

static const struct {
	int	  sig;
	void	(*fn)(evutil_socket_t, short, void *);
	int	  prio;
} sigtab[] = {
	/* Priority 0: the kill switch before any request of the same turn. */
	{ SIGUSR1,	on_sigusr1,	0 },
	{ SIGTERM,	on_sigterm,	1 },
	{ SIGINT,	on_sigterm,	1 },
	{ SIGHUP,	on_sighup,	1 },
};
static struct event	*sigev[sizeof(sigtab) / sizeof(sigtab[0])];

static void
signals_init(void)
{
	size_t	i;

	for (i = 0; i < sizeof(sigtab) / sizeof(sigtab[0]); i++) {
		sigev[i] = evsignal_new(ex->base, sigtab[i].sig, sigtab[i].fn,
		    NULL);
		if (sigev[i] == NULL ||
		    event_priority_set(sigev[i], sigtab[i].prio) == -1 ||
		    evsignal_add(sigev[i], NULL) == -1)
			fatalx("cannot install signal events");
	}
}

static void
teardown(void)
{
	size_t	i;

	control_shutdown();
	approvals_shutdown();
	admit_shutdown();
	write_shutdown();
	peers_shutdown();
	budget_shutdown();
	toolrun_shutdown();
	audit_close();
	store_close(ex->store);
	for (i = 0; i < sizeof(sigtab) / sizeof(sigtab[0]); i++)
		event_free(sigev[i]);
	if (ex->ev_deadline != NULL)
		event_free(ex->ev_deadline);
	event_base_free(ex->base);
	config_free(ex->conf);
}

int
main(int argc, char *argv[])
{
	static struct executor	 exs;
	struct opts		 o;

	parse_opts(argc, argv, &o);
	log_init("executor", o.foreground, o.verbose);
	ex = &exs;
	signal(SIGPIPE, SIG_IGN);
	/* A file past RLIMIT_FSIZE fails with EFBIG (the audit log fails
	 * closed), never kills us; tools get the default back. */
	signal(SIGXFSZ, SIG_IGN);
	/* Until signals_init(): SIGHUP (logrotate) must never kill us. */
	signal(SIGHUP, SIG_IGN);
	umask(0077);
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	config_read(&o);
	state_open();

	if ((ex->base = event_base_new()) == NULL ||
	    event_base_priority_init(ex->base, 2) == -1)
		fatalx("event_base_new");
	audit_open(ex->conf->state_dir, ex->base);
	peer_open();
	modules_init();
	signals_init();

	fds_init();
	log_info("ready: writes %s%s, control socket %s",
	    ex_writes_on() ? "enabled" : "disabled",
	    ex->writes_off ? " (kill switch)" : "", ex->conf->control_socket);
	event_base_dispatch(ex->base);

	teardown();
	log_info("exiting");
	return 0;
}
