/*
 * The agent socket: connections, frames, and the ops of CONTRACT.md.
 *
 * An agent is an external peer: whatever it sends costs it at most its own
 * connection.  A frame that breaks the rules gets one error and the
 * connection is closed after it is flushed; a well-formed frame holding a
 * bad request gets an error and the connection goes on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <msgpack.h>

#include "common/canon.h"
#include "common/fdlimit.h"
#include "common/frame.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/runs.h"
#include "proto/proto.h"

#define MAX_ID_BYTES		256
#define MAX_RUN_ID		256
#define MAX_STEP_ID		256
#define MAX_TOOL_NAME		128
#define MAX_CHECKPOINT		2048

struct req;

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 qentry;	/* in 'unpassed' */
	struct bufferevent	*bev;
	uint64_t		 id;		/* the executor knows its socket by it */
	int			 passed;	/* its socket went to the executor */
	int			 queued;	/* waits for room to pass it */
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	const struct principal	*pr;		/* NULL: unknown principal */
	uint32_t		 inflight;
	int			 closing;	/* flush, then close */
	/*
	 * A frame begun and not completed, a stranger's whole stay, a
	 * closing connection's flush: each is given frame_timeout_s.
	 */
	struct event		*timer;
	LIST_HEAD(, req)	 reqs;
};

/* A request the executor is working on. */
struct req {
	LIST_ENTRY(req)		 entry;
	struct conn		*conn;
	uint64_t		 exec_id;
	char			*id;		/* the agent's id, packed */
	size_t			 idlen;
	char			*run_id;
	char			*wtool;		/* a write: its tool and args hash */
	char			 whash[ARGS_HASH_LEN + 1];
};

static TAILQ_HEAD(, conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);
/* Accepted, waiting (unread, in order) for room on the peer channel. */
static TAILQ_HEAD(, conn)	 unpassed = TAILQ_HEAD_INITIALIZER(unpassed);
static uint64_t			 next_conn_id = 1;
static size_t			 nconns;
static size_t			 nstrangers;	/* of them, with no principal */
static struct listener		*listener;

static void	conn_read(struct bufferevent *, void *);
static void	conn_event(struct bufferevent *, short, void *);

/* Replies. */

/* A reply: one map, its size counted as it is packed. */
struct reply {
	struct msgbuf	 mb;
	struct mpmap	 map;
};

/* The agent's id (its msgpack bytes, or nil) first. */
static void
reply_open(struct reply *rp, const char *id, size_t idlen)
{
	msgbuf_init(&rp->mb);
	mpmap_begin(&rp->map, &rp->mb);
	(void)mpmap_key(&rp->map, "id");
	if (idlen == 0)
		msgpack_pack_nil(&rp->mb.pk);
	else
		msgpack_sbuffer_write(&rp->mb.sbuf, id, idlen);
}

static void
reply_begin(struct reply *rp, const char *id, size_t idlen,
    const char *status)
{
	reply_open(rp, id, idlen);
	mpmap_str(&rp->map, "status", status);
}

/* The whole frame, the map closed. */
static const char *
reply_finish(struct reply *rp, size_t *len)
{
	mpmap_end(&rp->map);
	return msgbuf_finish(&rp->mb, len);
}

static void
reply_send(struct conn *c, struct reply *rp)
{
	const char	*p;
	size_t		 len;

	p = reply_finish(rp, &len);
	bufferevent_write(c->bev, p, len);
	msgbuf_free(&rp->mb);
}

/* status "error" with error code, or "denied"/"stopped" with stop_reason. */
static void
reply_refuse(struct conn *c, const char *id, size_t idlen, const char *status,
    const char *reason, const char *message)
{
	struct reply	rp;

	reply_begin(&rp, id, idlen, status);
	mpmap_str(&rp.map, strcmp(status, ST_ERROR) == 0 ? "error" :
	    "stop_reason", reason);
	mpmap_str(&rp.map, "message", message);
	reply_send(c, &rp);
}

/* Connections. */

static void
conn_free(struct conn *c)
{
	struct req	*r;

	while ((r = LIST_FIRST(&c->reqs)) != NULL) {
		exec_forget(r->exec_id);
		LIST_REMOVE(r, entry);
		free(r->id);
		free(r->run_id);
		free(r->wtool);
		free(r);
	}
	/* After every request of it: the socketpair keeps the order. */
	if (c->passed)
		exec_conn_gone(c->id);
	if (c->queued)
		TAILQ_REMOVE(&unpassed, c, qentry);
	TAILQ_REMOVE(&conns, c, entry);
	bufferevent_free(c->bev);
	event_free(c->timer);
	if (c->pr == NULL)
		nstrangers--;
	free(c);
	nconns--;
	if (listener != NULL && nconns == gw->conf->max_connections - 1)
		log_info("agent: below max_connections again");
}

static void
conn_flushed(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (c->closing)
		conn_free(c);
}

static void
conn_timer_arm(struct conn *c)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)gw->conf->frame_timeout_s;
	tv.tv_usec = 0;
	evtimer_add(c->timer, &tv);
}

/*
 * Read no more; the connection goes once its output is flushed, or after
 * frame_timeout_s if the peer does not read it.  Never freed here: the
 * caller may still hold the connection's buffers.
 */
static void
conn_close(struct conn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	/* The write callback fires once the output is flushed. */
	bufferevent_setcb(c->bev, NULL, conn_flushed, conn_event, c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_active(c->timer, EV_TIMEOUT, 0);
	else
		conn_timer_arm(c);
}

/* A bad frame: one error, then the connection goes once it is flushed. */
static void
conn_bad_frame(struct conn *c, const char *error, const char *message)
{
	char	sample[80];
	size_t	n = evbuffer_get_length(bufferevent_get_input(c->bev));
	char	head[32];

	n = evbuffer_copyout(bufferevent_get_input(c->bev), head,
	    n < sizeof(head) ? n : sizeof(head));
	log_sanitize(sample, sizeof(sample), head, n);
	log_warnx("agent uid %u pid %d: %s (%s): closing; it sent: %s",
	    (unsigned)c->uid, (int)c->pid, error, message, sample);
	reply_refuse(c, NULL, 0, ST_ERROR, error, message);
	conn_close(c);
}

/*
 * frame_timeout_s is up: a closing connection goes, flushed or not; a
 * frame begun is never finished (slowloris); a stranger never asked.
 */
static void
conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->closing) {
		log_debug("agent uid %u pid %d: closed", (unsigned)c->uid,
		    (int)c->pid);
		conn_free(c);
	} else if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_bad_frame(c, E_BAD_FRAME, "frame not completed in time");
	else if (c->pr == NULL) {
		log_debug("agent uid %u pid %d: no principal and no request in"
		    " %llus: closed", (unsigned)c->uid, (int)c->pid,
		    (unsigned long long)gw->conf->frame_timeout_s);
		conn_free(c);
	}
}

/*
 * An agent's clock runs while part of a frame waits in its input, and
 * starts again with each frame ('fresh': one was just taken).  A
 * stranger's runs from accept: it gets no more time by trickling bytes.
 */
static void
frame_clock(struct conn *c, int fresh)
{
	if (c->pr == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		evtimer_del(c->timer);
	else if (fresh || !evtimer_pending(c->timer, NULL))
		conn_timer_arm(c);
}

static size_t
out_limit(void)
{
	return gw->conf->max_output + gw->conf->max_frame + 65536;
}

/* May this connection take another request now? */
static int
conn_can_read(struct conn *c)
{
	return !c->closing && c->inflight < gw->conf->max_inflight &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) < out_limit();
}

static void
conn_wake(struct conn *c)
{
	if (!conn_can_read(c))
		return;
	bufferevent_enable(c->bev, EV_READ);
	/* Frames may be waiting in the input already. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_read(c->bev, c);
}

/* Ops. */

static void
op_hello(struct conn *c, const char *id, size_t idlen,
    const msgpack_object *reqm)
{
	struct reply	rp;

	(void)reqm;
	reply_begin(&rp, id, idlen, ST_OK);
	mpmap_uint(&rp.map, "v", AGENT_PROTO_VERSION);
	mpmap_str(&rp.map, "tenant", c->pr->tenant);
	mpmap_str(&rp.map, "env", c->pr->env);
	mpmap_bool(&rp.map, "writes_enabled", gw->conf->writes_enabled &&
	    gw->writes_on);
	reply_send(c, &rp);
}

/*
 * A string field of at most max bytes of UTF-8 without NUL, as a new
 * string.  Invalid UTF-8 would reach the audit log as nothing at all.
 */
static char *
req_str(const msgpack_object *o, size_t max)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size == 0 || o->via.str.size > max ||
	    !utf8_valid(o->via.str.ptr, o->via.str.size))
		return NULL;
	return mp_strdup(o);
}

/* step_id may be an integer or a string; we carry it as a string. */
static int
req_step_id(const msgpack_object *o, char **out)
{
	*out = NULL;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		xasprintf(out, "%llu", (unsigned long long)o->via.u64);
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		xasprintf(out, "%lld", (long long)o->via.i64);
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size <= MAX_STEP_ID &&
	    utf8_valid(o->via.str.ptr, o->via.str.size) &&
	    (*out = mp_strdup(o)) != NULL)
		return 0;
	return -1;
}

static void
call_answered(const struct proto_msg *m, void *arg)
{
	const msgpack_object *resp = m->ans.response;
	struct req	*r = arg;
	struct conn	*c = r->conn;
	struct reply	 rp;
	struct run	*run;
	const msgpack_object *status, *reason, *message;
	uint32_t	 i;

	LIST_REMOVE(r, entry);
	c->inflight--;
	/* A resume's run is the checkpoint's, which the executor names. */
	if (r->run_id == NULL && m->ans.run_id != NULL)
		r->run_id = xstrdup(m->ans.run_id);
	status = mp_get(resp, "status");
	if (status == NULL)
		fatalx("executor answered without a status");
	/* Unavailable: it never started, and may be retried in its run. */
	if (r->wtool != NULL && mp_streq(status, ST_ERROR) &&
	    mp_streq(mp_get(resp, "error"), E_UNAVAILABLE) &&
	    (run = run_get(c->pr->tenant, r->run_id, 0)) != NULL)
		run_unwrite(run, r->wtool, r->whash);
	if (mp_streq(status, ST_STOPPED) && r->run_id != NULL &&
	    (run = run_get(c->pr->tenant, r->run_id, 1)) != NULL) {
		char	*rs, *msg;

		reason = mp_get(resp, "stop_reason");
		message = mp_get(resp, "message");
		rs = mp_strdup(reason);
		msg = mp_strdup(message);
		run_stop(run, rs ? rs : "stopped", msg);
		free(rs);
		free(msg);
	}
	/* The executor's response, with the agent's id in front. */
	reply_open(&rp, r->id, r->idlen);
	for (i = 0; i < resp->via.map.size; i++) {
		if (mp_streq(&resp->via.map.ptr[i].key, "id"))
			continue;
		msgpack_pack_object(mpmap_key_obj(&rp.map,
		    &resp->via.map.ptr[i].key), resp->via.map.ptr[i].val);
	}
	reply_send(c, &rp);
	free(r->id);
	free(r->run_id);
	free(r->wtool);
	free(r);
	conn_wake(c);
}

/*
 * A denial or a stop decided here: answered, and told to the executor for
 * the audit log (only the executor writes it).
 */
static void
reply_decided(struct conn *c, const char *id, size_t idlen,
    const char *status, const char *reason, const char *message,
    const char *run_id, const char *step_id, const char *tool,
    const char *hash)
{
	struct refusal	r = {
		.conn = c->id, .uid = c->uid, .gid = c->gid,
		.tenant = c->pr ? c->pr->tenant : NULL,
		.env = c->pr ? c->pr->env : NULL,
		.run_id = run_id, .step_id = step_id, .tool = tool,
		.args_hash = hash, .decision = status, .reason = reason,
		.message = message,
	};

	reply_refuse(c, id, idlen, status, reason, message);
	exec_audit(&r);
}

/*
 * The caller's run, going on; or NULL once the refusal is answered (too
 * many runs, or the run is stopped: its first reason, every time).
 */
static struct run *
req_run(struct conn *c, const char *id, size_t idlen, const char *run_id,
    const char *tool)
{
	struct run	*run;
	char		 msg[128];

	if ((run = run_get(c->pr->tenant, run_id, 1)) == NULL) {
		reply_refuse(c, id, idlen, ST_ERROR, E_UNAVAILABLE,
		    runs_full_message(msg, sizeof(msg)));
		return NULL;
	}
	if (run_stopped(run) != NULL) {
		reply_decided(c, id, idlen, ST_STOPPED, run_stopped(run),
		    run_stop_message(run), run_id, NULL, tool, NULL);
		return NULL;
	}
	return run;
}

/* Who the executor is told asks: packed by the exec_* wrappers. */
static void
conn_who(const struct conn *c, struct exec_who *w)
{
	w->conn = c->id;
	w->uid = c->uid;
	w->gid = c->gid;
	w->pid = c->pid;
	w->tenant = c->pr->tenant;
	w->env = c->pr->env;
}

/*
 * Park a request until the executor answers it; the caller sends it and
 * sets exec_id.
 */
static struct req *
req_park(struct conn *c, const char *id, size_t idlen, char *run_id)
{
	struct req	*r;

	r = xcalloc(1, sizeof(*r));
	r->conn = c;
	r->id = idlen ? xmalloc(idlen) : NULL;
	if (idlen)
		memcpy(r->id, id, idlen);
	r->idlen = idlen;
	r->run_id = run_id;
	LIST_INSERT_HEAD(&c->reqs, r, entry);
	c->inflight++;
	return r;
}

static void
op_call(struct conn *c, const char *id, size_t idlen,
    const msgpack_object *reqm)
{
	const msgpack_object	*args = mp_get(reqm, "args");
	const char		*reason;
	char			*run_id = NULL, *tool = NULL, *step_id = NULL;
	char			 hash[ARGS_HASH_LEN + 1], msg[512];
	struct run		*run;
	struct req		*r;
	struct exec_who		 who;
	enum gate		 g;

	if ((run_id = req_str(mp_get(reqm, "run_id"), MAX_RUN_ID)) == NULL) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "run_id must be a non-empty string of at most 256 bytes");
		goto out;
	}
	if ((tool = req_str(mp_get(reqm, "tool"), MAX_TOOL_NAME)) == NULL) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "tool must be a non-empty string of at most 128 bytes");
		goto out;
	}
	if (req_step_id(mp_get(reqm, "step_id"), &step_id) == -1) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "step_id must be an integer or a string");
		goto out;
	}
	if (args == NULL || args->type != MSGPACK_OBJECT_MAP) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "args must be a map");
		goto out;
	}
	if ((run = req_run(c, id, idlen, run_id, tool)) == NULL)
		goto out;
	g = policy_gate(gw->conf, tool, gw->writes_on, &reason);
	if (g == GATE_DENY) {
		policy_message(gw->conf, tool, reason, gw->writes_on, msg,
		    sizeof(msg));
		reply_decided(c, id, idlen, ST_DENIED, reason, msg, run_id,
		    step_id, tool, NULL);
		goto out;
	}
	if (args_hash(args, hash, NULL, msg, sizeof(msg)) == -1) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST, msg);
		goto out;
	}
	if ((reason = run_account(run, tool, hash, g == GATE_WRITE, msg,
	    sizeof(msg))) != NULL) {
		run_stop(run, reason, msg);
		reply_decided(c, id, idlen, ST_STOPPED, reason, msg, run_id,
		    step_id, tool, hash);
		goto out;
	}

	conn_who(c, &who);
	r = req_park(c, id, idlen, run_id);
	r->exec_id = exec_call(&who, run_id, step_id, tool, args,
	    call_answered, r);
	run_id = NULL;
	if (g == GATE_WRITE) {
		r->wtool = tool;
		tool = NULL;
		memcpy(r->whash, hash, sizeof(r->whash));
	}
out:
	free(run_id);
	free(tool);
	free(step_id);
}

static void
op_usage(struct conn *c, const char *id, size_t idlen,
    const msgpack_object *reqm)
{
	const msgpack_object	*tokens = mp_get(reqm, "tokens");
	const msgpack_object	*cost = mp_get(reqm, "cost");
	const char		*reason;
	char			*run_id, msg[256];
	struct run		*run;
	struct reply		 rp;
	double			 dcost = 0;

	if ((run_id = req_str(mp_get(reqm, "run_id"), MAX_RUN_ID)) == NULL) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "run_id must be a non-empty string of at most 256 bytes");
		return;
	}
	if (tokens == NULL || tokens->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "tokens must be a non-negative integer");
		goto out;
	}
	if (cost != NULL) {
		if (cost->type == MSGPACK_OBJECT_FLOAT64 ||
		    cost->type == MSGPACK_OBJECT_FLOAT32)
			dcost = cost->via.f64;
		else if (cost->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			dcost = (double)cost->via.u64;
		else
			dcost = -1;
		if (!(dcost >= 0 && dcost < 1e300)) {
			reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
			    "cost must be a non-negative number");
			goto out;
		}
	}
	if ((run = req_run(c, id, idlen, run_id, NULL)) == NULL)
		goto out;
	if ((reason = run_usage(run, tokens->via.u64, dcost, msg,
	    sizeof(msg))) != NULL) {
		run_stop(run, reason, msg);
		reply_decided(c, id, idlen, ST_STOPPED, reason, msg, run_id,
		    NULL, NULL, NULL);
		goto out;
	}
	reply_begin(&rp, id, idlen, ST_OK);
	reply_send(c, &rp);
out:
	free(run_id);
}

static void
op_resume(struct conn *c, const char *id, size_t idlen,
    const msgpack_object *reqm)
{
	const msgpack_object	*cp = mp_get(reqm, "checkpoint");
	struct exec_who		 who;
	struct req		*r;

	if (cp == NULL || cp->type != MSGPACK_OBJECT_STR ||
	    cp->via.str.size == 0 || cp->via.str.size > MAX_CHECKPOINT ||
	    mp_has_nul(cp) || !utf8_valid(cp->via.str.ptr, cp->via.str.size)) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "checkpoint must be the string needs_approval returned");
		return;
	}
	/* Only the executor can verify it: gatewayd holds no key. */
	conn_who(c, &who);
	r = req_park(c, id, idlen, NULL);
	r->exec_id = exec_resume(&who, cp, call_answered, r);
}

static void
op_wait(struct conn *c, const char *id, size_t idlen,
    const msgpack_object *reqm)
{
	const msgpack_object	*aid = mp_get(reqm, "approval_id");
	const msgpack_object	*tmo = mp_get(reqm, "timeout_ms");
	struct exec_who		 who;
	struct req		*r;

	if (aid == NULL || aid->type != MSGPACK_OBJECT_STR ||
	    aid->via.str.size == 0 || aid->via.str.size > 64 ||
	    mp_has_nul(aid) || !utf8_valid(aid->via.str.ptr, aid->via.str.size)) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "approval_id must be the string needs_approval returned");
		return;
	}
	if (tmo == NULL || tmo->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		reply_refuse(c, id, idlen, ST_ERROR, E_BAD_REQUEST,
		    "timeout_ms must be a non-negative integer");
		return;
	}
	conn_who(c, &who);
	r = req_park(c, id, idlen, NULL);
	r->exec_id = exec_wait(&who, aid, tmo->via.u64, call_answered, r);
}

/*
 * A peer with no principal is denied whatever it asks; its refusals are
 * summed for the audit log (strangers.c), not reported one by one.
 */
static void
reply_stranger(struct conn *c, const char *id, size_t idlen,
    const char *message)
{
	struct refusal	r = {
		.conn = c->id, .uid = c->uid, .gid = c->gid,
		.decision = ST_DENIED, .reason = R_UNKNOWN_PRINCIPAL,
		.message = message,
	};

	reply_refuse(c, id, idlen, ST_DENIED, R_UNKNOWN_PRINCIPAL, message);
	strangers_refused(&r);
}

static const struct {
	const char	*op;
	void		(*fn)(struct conn *, const char *, size_t,
			    const msgpack_object *);
} agent_ops[] = {
	{ OP_HELLO,	op_hello },
	{ OP_CALL,	op_call },
	{ OP_RESUME,	op_resume },
	{ OP_WAIT,	op_wait },
	{ OP_USAGE,	op_usage },
};

static void
handle_request(struct conn *c, const msgpack_object *reqm)
{
	const msgpack_object	*id = mp_get(reqm, "id");
	const msgpack_object	*op = mp_get(reqm, "op");
	msgpack_sbuffer		 idbuf;
	msgpack_packer		 pk;
	char			 msg[160];
	size_t			 i;

	msgpack_sbuffer_init(&idbuf);
	if (id != NULL && (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    id->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
	    (id->type == MSGPACK_OBJECT_STR &&
	    id->via.str.size <= MAX_ID_BYTES))) {
		msgpack_packer_init(&pk, &idbuf, msgpack_sbuffer_write);
		msgpack_pack_object(&pk, *id);
	} else {
		reply_refuse(c, NULL, 0, ST_ERROR, E_BAD_REQUEST,
		    "id must be an integer or a string of at most 256 bytes");
		goto out;
	}
	if (c->pr == NULL) {
		snprintf(msg, sizeof(msg), "uid %u gid %u has no principal",
		    (unsigned)c->uid, (unsigned)c->gid);
		reply_stranger(c, idbuf.data, idbuf.size, msg);
		goto out;
	}
	for (i = 0; i < sizeof(agent_ops) / sizeof(agent_ops[0]); i++) {
		if (op != NULL && mp_streq(op, agent_ops[i].op)) {
			agent_ops[i].fn(c, idbuf.data, idbuf.size, reqm);
			goto out;
		}
	}
	reply_refuse(c, idbuf.data, idbuf.size, ST_ERROR, E_BAD_REQUEST,
	    "op must be one of hello, call, resume, wait, usage");
out:
	msgpack_sbuffer_destroy(&idbuf);
	/* A stranger's first answer is its last: the rest is dropped. */
	if (c->pr == NULL)
		conn_close(c);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	msgpack_unpacked	 u;
	const char		*why;
	char			 msg[128];
	uint32_t		 len;
	int			 fresh = 0;

	while (!c->closing) {
		if (!conn_can_read(c)) {
			/* Resumed by conn_wake once answers drain. */
			bufferevent_disable(bev, EV_READ);
			/* Waiting on us: no time runs out for the agent. */
			if (c->pr != NULL)
				evtimer_del(c->timer);
			return;
		}
		switch (frame_peek(in, (uint32_t)gw->conf->max_frame, &len)) {
		case FRAME_MORE:
			frame_clock(c, fresh);
			return;
		case FRAME_EMPTY:
			conn_bad_frame(c, E_BAD_FRAME, "frame of length 0");
			return;
		case FRAME_TOO_LARGE:
			snprintf(msg, sizeof(msg), "frame of %u bytes is over"
			    " the limit of %llu", len,
			    (unsigned long long)gw->conf->max_frame);
			conn_bad_frame(c, E_FRAME_TOO_LARGE, msg);
			return;
		case FRAME_READY:
			break;
		}
		if (frame_unpack_map((const char *)evbuffer_pullup(in,
		    len + FRAME_HDR) + FRAME_HDR, len, &u, &why) == -1) {
			conn_bad_frame(c, E_BAD_FRAME, why);
			return;
		}
		/* The object points into the buffer: drain only after. */
		handle_request(c, &u.data);
		msgpack_unpacked_destroy(&u);
		evbuffer_drain(in, len + FRAME_HDR);
		fresh = 1;
	}
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_wake(arg);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

/* Listening. */

/* Its socket is the executor's too: read it from now on. */
static void
conn_start(struct conn *c)
{
	c->passed = 1;
	/* Never buffer more than one frame of input per connection. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    gw->conf->max_frame + FRAME_HDR);
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void	pass_queued(void);

/* Waits, unread, behind the others for room on the peer channel. */
static void
conn_queue(struct conn *c)
{
	if (TAILQ_EMPTY(&unpassed)) {
		log_debug("agent: the peer channel is full: connections wait");
		exec_peer_room(pass_queued);
	}
	c->queued = 1;
	TAILQ_INSERT_TAIL(&unpassed, c, qentry);
}

/*
 * Nothing is read from a connection before its socket is passed.  A full
 * channel (a burst of connections, the executor busy) makes it wait its
 * turn, never refuses it: 1 then, and the connection is left as it was.
 */
static int
conn_pass(struct conn *c)
{
	switch (exec_pass_peer(c->id, bufferevent_getfd(c->bev))) {
	case 0:
		conn_start(c);
		return 0;
	case 1:
		return 1;
	default:
		bufferevent_enable(c->bev, EV_WRITE);
		conn_bad_frame(c, E_UNAVAILABLE, "the gateway is busy");
		return 0;
	}
}

/* The peer channel has room: pass the waiting connections, in order. */
static void
pass_queued(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&unpassed)) != NULL) {
		TAILQ_REMOVE(&unpassed, c, qentry);
		c->queued = 0;
		if (conn_pass(c) == 1) {
			c->queued = 1;
			TAILQ_INSERT_HEAD(&unpassed, c, qentry);
			exec_peer_room(pass_queued);
			return;
		}
	}
}

/*
 * Room for one more connection of this peer?  NULL, or why not.  Every
 * uid has its share of max_connections, and the peers with no principal
 * one small share among them all, so neither one agent nor any number
 * of strangers can hold the table that the other agents need.
 */
static const char *
conn_admit(uid_t uid, const struct principal *pr)
{
	struct conn	*c;
	uint64_t	 n = 0;

	if (nconns >= gw->conf->max_connections)
		return "too many connections (limits.max_connections)";
	if (pr == NULL && nstrangers >= gw->conf->max_stranger_conns)
		return "too many connections of peers with no principal"
		    " (limits.max_stranger_connections)";
	TAILQ_FOREACH(c, &conns, entry)
		if (c->uid == uid)
			n++;
	if (n >= gw->conf->max_conns_per_uid)
		return "too many connections of this uid"
		    " (limits.max_connections_per_uid)";
	return NULL;
}

/*
 * Refused at accept: one answer sent without waiting (the socket is new,
 * the frame small: a failed send only loses the sentence), then closed.
 * Logged at most once a second, with how many were not.
 */
static void
conn_refuse(int fd, uid_t uid, const char *why)
{
	static uint64_t	 last_ms;
	static uint64_t	 quiet;
	struct reply	 rp;
	const char	*p;
	size_t		 len;
	uint64_t	 now = mono_ms();

	if (last_ms == 0 || now - last_ms >= 1000) {
		log_warnx("agent: uid %u refused: %s (and %llu more refused"
		    " since the last report)", (unsigned)uid, why,
		    (unsigned long long)quiet);
		last_ms = now;
		quiet = 0;
	} else
		quiet++;
	reply_begin(&rp, NULL, 0, ST_ERROR);
	mpmap_str(&rp.map, "error", E_UNAVAILABLE);
	mpmap_str(&rp.map, "message", why);
	p = reply_finish(&rp, &len);
	(void)send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	msgbuf_free(&rp.mb);
	close(fd);
}

static void
agent_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	const struct principal	*pr;
	const char		*why;
	struct conn		*c;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	if (peer_cred(fd, &uid, &gid, &pid) == -1) {
		log_warn("agent: SO_PEERCRED");
		close(fd);
		return;
	}
	pr = policy_principal(gw->conf, uid, gid);
	if ((why = conn_admit(uid, pr)) != NULL) {
		conn_refuse(fd, uid, why);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	c->pid = pid;
	c->pr = pr;
	c->id = next_conn_id++;
	LIST_INIT(&c->reqs);
	c->bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(gw->base, conn_timeout, c);
	if (c->bev == NULL || c->timer == NULL)
		fatalx("agent: bufferevent_socket_new");
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	/* A stranger has frame_timeout_s to ask, and is answered once. */
	if (pr == NULL) {
		nstrangers++;
		conn_timer_arm(c);
	}
	log_debug("agent: uid %u gid %u pid %d connected (%s)", (unsigned)uid,
	    (unsigned)gid, (int)pid, c->pr ? c->pr->tenant : "no principal");
	/*
	 * The executor learns who this is from the socket itself: even one
	 * with no principal, whose refusals it records under the uid it
	 * reads (MSG_AUDIT names the connection).  Behind others waiting
	 * for room on the peer channel, it waits too.
	 */
	if (!TAILQ_EMPTY(&unpassed) || conn_pass(c) == 1)
		conn_queue(c);
}

void
agent_init(int fd)
{
	size_t	limit, fixed;

	strangers_init();
	listener = listener_new(gw->base, fd, agent_accept, NULL, "agent");
	/*
	 * One descriptor per connection and nothing else opened from here
	 * on: past the limit accept(2) fails, and the listener pauses
	 * (common/listen.c) while connections wait in the backlog.
	 */
	limit = fdlimit_get();
	fixed = fdlimit_open(limit);
	if (fixed + gw->conf->max_connections > limit)
		log_warnx("agent: RLIMIT_NOFILE (%zu) is below what"
		    " limits.max_connections (%llu) needs: past %zu"
		    " connections accepting pauses", limit,
		    (unsigned long long)gw->conf->max_connections,
		    limit > fixed ? limit - fixed : 0);
}

/* The executor had no descriptor for c's socket: c cannot be served. */
void
agent_conn_refused(uint64_t id, const char *message)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &conns, entry)
		if (c->id == id)
			break;
	if (c == NULL || c->closing)
		return;		/* gone meanwhile */
	log_warnx("agent uid %u pid %d: the executor refused the connection:"
	    " %s", (unsigned)c->uid, (int)c->pid, message);
	reply_refuse(c, NULL, 0, ST_ERROR, E_UNAVAILABLE, message);
	conn_close(c);
}

void
agent_shutdown(void)
{
	struct conn	*c;

	strangers_shutdown();
	if (listener == NULL)
		return;
	listener_free(listener);
	listener = NULL;
	while ((c = TAILQ_FIRST(&conns)) != NULL)
		conn_free(c);
}
