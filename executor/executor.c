/*
 * executor: started by gatewayd with its end of the socketpair on fd 3.
 * Keeps its privileges; owns the store, the audit log, the control socket
 * and the tool processes.
 *
 * The layers, each calling only the ones below it:
 *
 *   executor.c    the entry function and the socketpair monitor: reads
 *                 gatewayd's frames (gw_read), checks them against the
 *                 protocol table and dispatches them; owns shutdown, the
 *                 job count's idle event and the agents' hang-ups.
 *        |
 *   handlers      call.c (CALL), approval.c (RESUME, WAIT, and the
 *                 request for an operator), control.c (the operators'
 *                 socket).  A call is made and checked again in
 *                 request.c, which says where it goes (enum route).
 *        |
 *   paths         read.c (a read: run, answer) and write.c (a write:
 *                 ledger intent, run, outcome, answer, exactly once).
 *        |
 *   below         backend.h (how a tool runs: exec in toolrun.c), ledger.c
 *                 and store.c, response.c (the answer, packed once for the
 *                 ledger and once for the wire), gwout.c (gw_send, held
 *                 behind the turn's audit records), jobs.c (counted,
 *                 so nothing calls back up), killswitch.c, budget.c
 *                 (says why a run may not go on; the caller answers),
 *                 admit.c, peers.c (an agent's hang-up goes to the handler
 *                 the entry function gave it), fds.c (told what is held,
 *                 asks no one), audit.c.
 *
 * A call, from the agent's frame to the tool and back: gatewayd sends
 * CALL; gw_read -> gw_dispatch -> dispatch_call -> call_handle (call.c)
 * -> call_new, call_check (request.c) -> write_start (write.c) -> intent
 * committed (flush_cb) -> backend_start -> toolrun (the child runs) ->
 * write_done: the outcome as a struct response, packed for the ledger ->
 * committed -> answer() (response.c) -> gw_send (gwout.c) -> gatewayd ->
 * the agent.
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
#include <sodium.h>

#include "common/config.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/sigevents.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/caps.h"
#include "executor/syncer.h"
#include "executor/admit.h"
#include "executor/approval.h"
#include "executor/backend.h"
#include "executor/breaker.h"
#include "executor/budget.h"
#include "executor/call.h"
#include "executor/fds.h"
#include "executor/jobs.h"
#include "executor/killswitch.h"
#include "executor/metrics.h"
#include "executor/peers.h"
#include "executor/pgstore.h"
#include "executor/ratelimit.h"
#include "executor/read.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/statedir.h"
#include "executor/store.h"
#include "executor/tenants.h"
#include "executor/toolsop.h"
#include "executor/write.h"
#include "executor/executor.h"

struct executor	*ex;

static void	dispatch_hello(const struct proto_msg *);
static void	dispatch_call(const struct proto_msg *);
static void	dispatch_resume(const struct proto_msg *);
static void	dispatch_wait(const struct proto_msg *);
static void	dispatch_tools(const struct proto_msg *);
static void	dispatch_metrics(const struct proto_msg *);
static void	dispatch_writes_off(const struct proto_msg *);
static void	dispatch_audit(const struct proto_msg *);
static void	dispatch_conn_gone(const struct proto_msg *);
static void	dispatch_audit_summary(const struct proto_msg *);
static void	dispatch_ping(const struct proto_msg *);
static void	dispatch_audit_reopen(const struct proto_msg *);

/*
 * What gatewayd may send; when it may send it (before HELLO, once) is the
 * protocol table's word (proto.c).  Anything else, a message before
 * HELLO or a second of a once-only type, is fatal: a
 * gatewayd that speaks out of turn is not one we can trust to speak for
 * agents.
 */
static const struct {
	uint32_t	 type;
	void		(*fn)(const struct proto_msg *);
} dispatch[] = {
	{ MSG_HELLO,		dispatch_hello },
	{ MSG_CALL,		dispatch_call },
	{ MSG_RESUME,		dispatch_resume },
	{ MSG_WAIT,		dispatch_wait },
	{ MSG_TOOLS,		dispatch_tools },
	{ MSG_METRICS,		dispatch_metrics },
	{ MSG_WRITES_OFF,	dispatch_writes_off },
	{ MSG_AUDIT,		dispatch_audit },
	{ MSG_CONN_GONE,	dispatch_conn_gone },
	{ MSG_AUDIT_SUMMARY,	dispatch_audit_summary },
	{ MSG_PING,		dispatch_ping },
	{ MSG_AUDIT_REOPEN,	dispatch_audit_reopen },
};

static int	hello_done;
/* The once-only types gatewayd has sent, by bit. */
static uint64_t	seen_once;
/* Refusals of peers with no principal gatewayd reported, one by one or summed. */
static uint64_t	stranger_refusals;
/* Made active by the job count when the last job ends (jobs.h). */
static struct event	*idle_ev;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: executor -c CONFIG [-fv] [--agent-socket PATH]"
	    " [--control-socket PATH]\n"
	    "                [--state-dir DIR]\n"
	    "       executor --dump-proto\n");
	exit(2);
}

static void
dispatch_hello(const struct proto_msg *m)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	v = m->hello.version;
	const char	*why;

	/* A build whose table disagrees with its enum speaks to no one. */
	if ((why = proto_table_check()) != NULL)
		fatalx("the protocol table is broken: %s", why);
	if (v != PROTO_VERSION)
		fatalx("gatewayd speaks protocol %llu, we speak %d",
		    (unsigned long long)v, PROTO_VERSION);
	hello_done = 1;
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_HELLO_ANS, m->id, &body);
	mpmap_uint(&body, "version", PROTO_VERSION);
	mpmap_bool(&body, "writes_enabled", ks_writes_on());
	mpmap_str(&body, "config_hash", ex->config_hash);
	mpmap_end(&body);
	gw_send(&mb);
	msgbuf_free(&mb);
}

/* gatewayd's watchdog: answering proves our loop turns (sdnotify.c). */
static void
dispatch_ping(const struct proto_msg *m)
{
	struct msgbuf	mb;
	struct mpmap	body;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_PONG, m->id, &body);
	mpmap_end(&body);
	gw_send(&mb);
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
	struct claim	 cl;

	request_claim(m, &cl);
	/* Never passed (-1): the request's own checks make that fatal. */
	if (peers_hung_up(cl.conn) != 1)
		return 0;
	log_info("connection %llu: the agent has hung up: %s refused",
	    (unsigned long long)cl.conn, msg_type_str(m->type));
	if ((c = call_new(m, ans_type)) == NULL)
		return 1;
	if (m->type == MSG_CALL) {
		c->run_id = xstrdup(m->call.run_id);
		c->tool = xstrdup(m->call.tool);
	}
	answer_refuse(c, ST_ERROR, E_UNAVAILABLE, "the agent has hung up");
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
	struct claim	cl;

	request_claim(m, &cl);
	if (!peers_refused(cl.conn))
		return 0;
	answer_unavailable(m->id, ans_type, "the gateway is out of file"
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

/*
 * Listing tools runs nothing and changes nothing: an agent that hung up
 * meanwhile gets its answer dropped by gatewayd, as for any other.
 */
static void
dispatch_tools(const struct proto_msg *m)
{
	if (!refuse_refused(m, MSG_TOOLS_ANS))
		tools_answer(m);
}

/* A scrape of /metrics: our counters, for gatewayd to serve. */
static void
dispatch_metrics(const struct proto_msg *m)
{
	metrics_answer(m);
}

static void
dispatch_writes_off(const struct proto_msg *m)
{
	(void)m;
	if (!ex->writes_off)
		ks_set_writes_off(1, "SIGUSR1 to gatewayd");
}

/* SIGHUP reached gatewayd: reopen the audit log, as at our own SIGHUP. */
static void
dispatch_audit_reopen(const struct proto_msg *m)
{
	(void)m;
	audit_reopen_asked();
}

/*
 * gatewayd's claims about who it refused, checked against the peer of
 * the connection it names.  0 when they agree; else -1, and 'note' says
 * what it claimed.
 */
static int
audit_claims(const struct msg_audit *au, uid_t uid, gid_t gid,
    const struct principal *p, char *note, size_t len)
{
	const char	*t = au->tenant, *e = au->env;

	if (au->uid == uid && au->gid == gid &&
	    (p == NULL ? t == NULL && e == NULL :
	    t != NULL && e != NULL && strcmp(t, p->tenant) == 0 &&
	    strcmp(e, p->env) == 0))
		return 0;
	snprintf(note, len, "gatewayd claimed uid %llu gid %llu tenant %.64s"
	    " env %.64s", (unsigned long long)au->uid,
	    (unsigned long long)au->gid, t ? t : "-", e ? e : "-");
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
	const struct msg_audit	*au = &m->audit;
	const struct principal	*p;
	uint64_t		 conn = au->conn;
	char			 claim[256], *note = NULL;
	uid_t			 uid;
	gid_t			 gid;

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
	if (audit_claims(au, uid, gid, p, claim, sizeof(claim)) == -1) {
		log_warnx("connection %llu is uid %u gid %u (%s): %s",
		    (unsigned long long)conn, (unsigned)uid, (unsigned)gid,
		    p ? p->tenant : "no principal", claim);
		xasprintf(&note, "%s (%s)", au->message, claim);
	}
	if (p == NULL)
		stranger_refused(1);
	ar.uid = (long long)uid;
	ar.tenant = p ? p->tenant : NULL;
	ar.env = p ? p->env : NULL;
	ar.run_id = au->run_id;
	ar.step_id = au->step_id;
	ar.tool = au->tool;
	ar.args_hash = au->args_hash;
	ar.decision = au->decision;
	ar.reason = au->reason;
	ar.note = note ? note : au->message;
	/* gatewayd checked it; what we record we check ourselves. */
	if (au->traceparent != NULL) {
		if (traceparent_valid(au->traceparent,
		    strlen(au->traceparent)))
			ar.traceparent = au->traceparent;
		else
			log_warnx("audit: gatewayd reported a traceparent that"
			    " is not one: dropped");
	}
	(void)audit_write(&ar, 0);
	if (p != NULL && au->run_id != NULL &&
	    strcmp(au->decision, ST_STOPPED) == 0)
		budget_stop(p->tenant, au->run_id, au->reason, au->message);
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
	const struct msg_audit_summary *s = &m->audit_summary;
	char			 note[160];

	ar.count = s->count;
	ar.first_ms = s->first_ms;
	ar.last_ms = s->last_ms;
	if (s->has_uid != s->has_gid || ar.count == 0 ||
	    ar.first_ms > ar.last_ms || ar.last_ms > INT64_MAX ||
	    (s->has_uid && (s->uid > UINT32_MAX || s->gid > UINT32_MAX)))
		fatalx("gatewayd sent a summary of refusals that cannot be");
	if (s->has_uid && policy_principal(ex->conf, (uid_t)s->uid,
	    (gid_t)s->gid) != NULL)
		fatalx("gatewayd summed refusals of uid %llu gid %llu, which"
		    " has a principal", (unsigned long long)s->uid,
		    (unsigned long long)s->gid);
	stranger_refused(ar.count);
	if (s->has_uid) {
		ar.uid = (long long)s->uid;
		snprintf(note, sizeof(note), "gid %llu: %llu more refusals"
		    " of this peer with no principal, counted by gatewayd",
		    (unsigned long long)s->gid,
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
static void
conn_hung_up(uint64_t conn)
{
	size_t	waits, reads, writes;

	waits = approval_conn_gone(conn);
	reads = read_conn_gone(conn);
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
	uint64_t	conn = m->conn_gone.conn;

	conn_hung_up(conn);
	peers_forget(conn);
}

static void
gw_dispatch(const char *buf, size_t len)
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
	if (!hello_done && !(msg_permits(m.type) & MSG_BEFORE_HELLO))
		fatalx("gatewayd sent %s before HELLO", msg_type_str(m.type));
	if (msg_permits(m.type) & MSG_ONCE) {
		if (seen_once & (1ULL << m.type))
			fatalx("gatewayd sent %s twice", msg_type_str(m.type));
		seen_once |= 1ULL << m.type;
	}
	log_debug("<- %s id %llu", msg_type_str(m.type),
	    (unsigned long long)m.id);
	dispatch[i].fn(&m);
	proto_msg_free(&m);
}

static uint32_t
gw_max_frame(void)
{
	/* A CALL holds args (one agent frame) and a little more. */
	return (uint32_t)(ex->conf->max_frame + 65536);
}

static void
maybe_exit(void)
{
	if (ex->gw == NULL && backends_active() == 0 && jobs_active() == 0)
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
	if ((n = backends_expire()) > 0)
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
		gw_close();
		bufferevent_free(ex->gw);
		ex->gw = NULL;
	}
	control_shutdown();
	write_drop_waits();
	log_info("%s: finishing %zu running tools, for %llu s at most", why,
	    backends_active(), (unsigned long long)ex->conf->shutdown_s);
	tv.tv_sec = (time_t)ex->conf->shutdown_s;
	tv.tv_usec = 0;
	ex->ev_deadline = evtimer_new(ex->base, shutdown_deadline_cb, NULL);
	if (ex->ev_deadline == NULL || evtimer_add(ex->ev_deadline, &tv) == -1)
		fatalx("cannot arm the shutdown deadline");
	alarm((unsigned)ex->conf->shutdown_s + SHUTDOWN_ALARM_S);
	maybe_exit();
}

static void
gw_gone(void)
{
	shutdown_begin("gatewayd went away");
}

static void
gw_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint32_t	 len;

	(void)arg;
	for (;;) {
		switch (frame_peek(in, gw_max_frame(), &len)) {
		case FRAME_MORE:
			return;
		case FRAME_EMPTY:
			fatalx("gatewayd sent an empty frame");
		case FRAME_TOO_LARGE:
			fatalx("gatewayd sent a frame of %u bytes", len);
		case FRAME_READY:
			break;
		}
		gw_dispatch((const char *)evbuffer_pullup(in, len + FRAME_HDR) +
		    FRAME_HDR, len);
		evbuffer_drain(in, len + FRAME_HDR);
		if (ex->gw == NULL)
			return;
	}
}

static void
gw_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		gw_gone();
}

/* The last job ended: during shutdown, that ends the process. */
static void
jobs_idle(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
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
		ks_set_writes_off(1, "SIGUSR1 to executor");
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
		{ "dump-proto", no_argument, NULL, 'P' },
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
		case 'P': exit(proto_dump(stdout) == 0 ? 0 : 1);
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
		    store_strerror(rc));
}

/* Our end of the socketpair, which gatewayd left on EXECUTOR_FD. */
static void
gw_open(void)
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
	bufferevent_setcb(ex->gw, gw_read, NULL, gw_event, NULL);
	bufferevent_enable(ex->gw, EV_READ | EV_WRITE);
}

/* The modules, in the order they depend on one another. */
static void
modules_init(void)
{
	/* One descriptor per agent connection, besides tools' pipes. */
	fds_raise();
	peers_init(ex->conf->agent_socket, conn_hung_up);
	/*
	 * What a tool leaves behind (a setsid'd daemon) becomes our child
	 * when its parent dies, and toolrun kills and reaps it: no tool
	 * process outlives its run, its timeout or the executor.
	 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1)
		fatal("PR_SET_CHILD_SUBREAPER");
	budget_init();
	tenants_init(ex->conf);
	ratelimit_init(ex->conf);
	breaker_init(ex->conf);
	metrics_init(ex->conf);
	if ((idle_ev = event_new(ex->base, -1, 0, jobs_idle, NULL)) == NULL)
		fatalx("modules_init: event_new");
	jobs_init(idle_ev);
	backends_init(ex->base, ex->conf);
	/* The shared store: connected on the loop, writes refused until up. */
	if (pgstore_on())
		pgstore_init();
	write_init();
	approvals_init();
	control_init();
}

static const struct sigdef sigtab[] = {
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
	sigevents_add(ex->base, sigtab, sizeof(sigtab) / sizeof(sigtab[0]),
	    sigev);
}

static void
teardown(void)
{
	control_shutdown();
	approvals_shutdown();
	admit_shutdown();
	if (pgstore_on())
		pgstore_shutdown();
	write_shutdown();
	peers_shutdown();
	budget_shutdown();
	backends_shutdown();
	breaker_shutdown();
	metrics_shutdown();
	ratelimit_shutdown();
	tenants_shutdown();
	syncer_shutdown();
	audit_close();
	gw_shutdown();
	store_close(ex->store);
	sigevents_free(sigev, sizeof(sigev) / sizeof(sigev[0]));
	if (ex->ev_deadline != NULL)
		event_free(ex->ev_deadline);
	jobs_init(NULL);
	if (idle_ev != NULL)
		event_free(idle_ev);
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
	syncer_init();
	gw_open();
	modules_init();
	signals_init();

	fds_init();
	/* Everything that opens or binds as root is done. */
	caps_drop(ex->conf);
	log_info("ready: writes %s%s, control socket %s",
	    ks_writes_on() ? "enabled" : "disabled",
	    ex->writes_off ? " (kill switch)" : "", ex->conf->control_socket);
	event_base_dispatch(ex->base);

	teardown();
	log_info("exiting");
	return 0;
}
