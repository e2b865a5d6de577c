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
#include "proto/proto.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/agentreq.h"
#include "gatewayd/runs.h"

/* What an idle connection keeps for input; more only for a big frame. */
#define IN_SMALL		4096

struct req;

/*
 * A connection is a nonblocking socket and two buffers of our own: each
 * readable event is one read(2) and every complete frame in it is
 * answered; the answers of a loop turn go out in one write(2), and only
 * a write that comes up short arms the write event.
 */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 qentry;	/* in 'unpassed' */
	TAILQ_ENTRY(conn)	 dirty_entry;	/* output to write this turn */
	int			 fd;
	struct event		*rev;
	struct event		*wev;
	int			 reading;	/* rev is added */
	int			 dirty;		/* on the dirty list */
	char			*in;
	size_t			 inlen, incap;
	char			*out;
	size_t			 outoff, outlen, outcap;
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
	int			 call;		/* a call op: counted when answered */
	const struct tool	*ctool;		/* its catalog tool, or NULL */
	uint64_t		 t0;		/* metrics_clock() when read */
};

static TAILQ_HEAD(, conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);
static TAILQ_HEAD(, conn)	 dirty = TAILQ_HEAD_INITIALIZER(dirty);
/* Accepted, waiting (unread, in order) for room on the peer channel. */
static TAILQ_HEAD(, conn)	 unpassed = TAILQ_HEAD_INITIALIZER(unpassed);
static uint64_t			 next_conn_id = 1;
static size_t			 nconns;
static size_t			 nstrangers;	/* of them, with no principal */
static struct listener		*listener;

static void	conn_frames(struct conn *);
static void	conn_out(struct conn *, const char *, size_t);

/* Replies. */

/* A reply: one map, its size counted as it is packed. */
struct reply {
	struct msgbuf	 mb;
	struct mpmap	 map;
};

/* The agent's id (its msgpack bytes, or nil) first. */
/*
 * Answers that say the tool was never reached: unavailable, a changed
 * definition, a bucket or a breaker that refused it.
 */
static int
never_sent(const msgpack_object *status, const msgpack_object *resp)
{
	const msgpack_object	*why;

	if (mp_streq(status, ST_ERROR))
		return mp_streq(mp_get(resp, "error"), E_UNAVAILABLE);
	if (!mp_streq(status, ST_DENIED))
		return 0;
	why = mp_get(resp, "stop_reason");
	return mp_streq(why, R_TOOL_CHANGED) || mp_streq(why, R_RATE_LIMITED) ||
	    mp_streq(why, R_CIRCUIT_OPEN);
}

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
	conn_out(c, p, len);
	msgbuf_free(&rp->mb);
}

/* status "error" with error code, or "denied"/"stopped" with stop_reason. */
static void
reply_refuse(struct conn *c, const char *id, size_t idlen, const char *status,
    const char *reason, const char *message)
{
	struct reply	rp;

	if (strcmp(status, ST_ERROR) != 0)
		metrics_stop_reason(reason);
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
	if (c->dirty)
		TAILQ_REMOVE(&dirty, c, dirty_entry);
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->timer);
	close(c->fd);
	free(c->in);
	free(c->out);
	if (c->pr == NULL)
		nstrangers--;
	free(c);
	nconns--;
	if (listener != NULL && nconns == gw->conf->max_connections - 1)
		log_info("agent: below max_connections again");
}

static size_t
conn_outlen(const struct conn *c)
{
	return c->outlen - c->outoff;
}

/* Queue bytes for the agent: written at the end of the loop turn. */
static void
conn_out(struct conn *c, const char *p, size_t len)
{
	size_t	need;

	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	need = c->outlen + len;
	if (need > c->outcap) {
		/* Move what is left to the front before growing. */
		if (c->outoff > 0) {
			memmove(c->out, c->out + c->outoff, conn_outlen(c));
			c->outlen -= c->outoff;
			c->outoff = 0;
			need = c->outlen + len;
		}
		if (need > c->outcap) {
			c->outcap = need < 4096 ? 4096 : need * 2;
			c->out = xreallocarray(c->out, 1, c->outcap);
		}
	}
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
	if (!c->dirty) {
		c->dirty = 1;
		TAILQ_INSERT_TAIL(&dirty, c, dirty_entry);
	}
}

/*
 * Write what is queued, once.  A short write arms the write event; a
 * closing connection goes once its output is out.  -1: c is freed.
 */
static int
conn_flush(struct conn *c)
{
	ssize_t	n;

	if (c->dirty) {
		c->dirty = 0;
		TAILQ_REMOVE(&dirty, c, dirty_entry);
	}
	if (conn_outlen(c) > 0) {
		n = send(c->fd, c->out + c->outoff, conn_outlen(c),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			conn_free(c);
			return -1;
		}
		if (n > 0)
			c->outoff += (size_t)n;
	}
	if (conn_outlen(c) > 0) {
		if (!event_pending(c->wev, EV_WRITE, NULL))
			event_add(c->wev, NULL);
		return 0;
	}
	c->outoff = c->outlen = 0;
	if (c->outcap > 65536) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
	event_del(c->wev);
	if (c->closing) {
		conn_free(c);
		return -1;
	}
	return 0;
}

/* The end of a loop turn: every connection answered writes, once. */
void
agent_flush(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&dirty)) != NULL)
		(void)conn_flush(c);
}

static void
conn_timer_arm(struct conn *c)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)gw->conf->frame_timeout_s;
	tv.tv_usec = 0;
	evtimer_add(c->timer, &tv);
}

static void
conn_read_off(struct conn *c)
{
	if (c->reading) {
		event_del(c->rev);
		c->reading = 0;
	}
}

/*
 * Read no more; the connection goes once its output is flushed, or after
 * frame_timeout_s if the peer does not read it.  Never freed here: the
 * caller may still hold the connection's buffers; the flush at the end
 * of the turn frees it.
 */
static void
conn_close(struct conn *c)
{
	c->closing = 1;
	conn_read_off(c);
	conn_timer_arm(c);
	if (!c->dirty) {
		c->dirty = 1;
		TAILQ_INSERT_TAIL(&dirty, c, dirty_entry);
	}
}

/* A bad frame: one error, then the connection goes once it is flushed. */
static void
conn_bad_frame(struct conn *c, const char *head, size_t n, const char *error,
    const char *message)
{
	char	sample[80];

	log_sanitize(sample, sizeof(sample), head, n < 32 ? n : 32);
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
		return;
	} else if (c->inlen > 0)
		conn_bad_frame(c, c->in, c->inlen, E_BAD_FRAME,
		    "frame not completed in time");
	else if (c->pr == NULL) {
		log_debug("agent uid %u pid %d: no principal and no request in"
		    " %llus: closed", (unsigned)c->uid, (int)c->pid,
		    (unsigned long long)gw->conf->frame_timeout_s);
		conn_free(c);
		return;
	}
	(void)conn_flush(c);
}

/*
 * An agent's clock runs while part of a frame waits in its input, and
 * starts again with each frame ('fresh': one was just taken).  A
 * stranger's runs from accept: it gets no more time by trickling bytes.
 */
static void
frame_clock(struct conn *c, size_t left, int fresh)
{
	if (c->pr == NULL)
		return;
	if (left == 0)
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
	    conn_outlen(c) < out_limit();
}

/* Reading again once answers drained; the caller flushes. */
static void
conn_wake(struct conn *c)
{
	if (!conn_can_read(c))
		return;
	if (!c->reading) {
		event_add(c->rev, NULL);
		c->reading = 1;
	}
	/* Frames may be waiting in the input already. */
	if (c->inlen > 0)
		conn_frames(c);
}

/* Ops. */

static void
op_hello(struct conn *c, struct agent_req *q)
{
	struct reply	rp;

	reply_begin(&rp, q->id, q->idlen, ST_OK);
	mpmap_uint(&rp.map, "v", AGENT_PROTO_VERSION);
	mpmap_str(&rp.map, "tenant", c->pr->tenant);
	mpmap_str(&rp.map, "env", c->pr->env);
	mpmap_bool(&rp.map, "writes_enabled", gw->conf->writes_enabled &&
	    gw->writes_on);
	reply_send(c, &rp);
}

/* A short string of the executor's answer, or "" (counted as other). */
static void
mp_word(const msgpack_object *o, char *buf, size_t len)
{
	buf[0] = '\0';
	if (o != NULL && o->type == MSGPACK_OBJECT_STR &&
	    o->via.str.size < len) {
		memcpy(buf, o->via.str.ptr, o->via.str.size);
		buf[o->via.str.size] = '\0';
	}
}

/* The executor's answer, counted: its stop reason; a call's decision. */
static void
answer_count(const struct req *r, const msgpack_object *resp,
    const msgpack_object *status)
{
	char	st[32], why[64];

	mp_word(status, st, sizeof(st));
	if (strcmp(st, ST_DENIED) == 0 || strcmp(st, ST_STOPPED) == 0) {
		mp_word(mp_get(resp, "stop_reason"), why, sizeof(why));
		metrics_stop_reason(why);
	}
	if (r->call)
		metrics_call(r->ctool, st, r->t0);
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
	answer_count(r, resp, status);
	/* A write that was never sent may be asked again in its run. */
	if (r->wtool != NULL && never_sent(status, resp) &&
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
    const char *hash, const char *traceparent)
{
	struct refusal	r = {
		.conn = c->id, .uid = c->uid, .gid = c->gid,
		.tenant = c->pr ? c->pr->tenant : NULL,
		.env = c->pr ? c->pr->env : NULL,
		.run_id = run_id, .step_id = step_id, .tool = tool,
		.args_hash = hash, .decision = status, .reason = reason,
		.message = message, .traceparent = traceparent,
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
    const char *tool, const char *traceparent, const char **status)
{
	struct run	*run;
	char		 msg[128];

	if ((run = run_get(c->pr->tenant, run_id, 1)) == NULL) {
		reply_refuse(c, id, idlen, ST_ERROR, E_UNAVAILABLE,
		    runs_full_message(msg, sizeof(msg)));
		*status = ST_ERROR;
		return NULL;
	}
	if (run_stopped(run) != NULL) {
		reply_decided(c, id, idlen, ST_STOPPED, run_stopped(run),
		    run_stop_message(run), run_id, NULL, tool, NULL,
		    traceparent);
		*status = ST_STOPPED;
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

/*
 * A call: answered here (the status, for the metrics), or sent to the
 * executor (NULL; counted when its answer comes).
 */
static const char *
call_decide(struct conn *c, struct agent_req *q, const struct tool *t,
    uint64_t t0)
{
	const char		*reason, *status;
	char			 hash[ARGS_HASH_LEN + 1], msg[512];
	struct run		*run;
	struct req		*r;
	struct exec_who		 who;
	enum gate		 g;

	if ((run = req_run(c, q->id, q->idlen, q->run_id, q->tool,
	    q->traceparent, &status)) == NULL)
		return status;
	/* A SIGUSR1 that came while this callback ran counts already. */
	killswitch_check();
	g = policy_gate(gw->conf, q->tool, gw->writes_on, &reason);
	if (g == GATE_DENY) {
		policy_message(gw->conf, q->tool, reason, gw->writes_on, msg,
		    sizeof(msg));
		reply_decided(c, q->id, q->idlen, ST_DENIED, reason, msg,
		    q->run_id, q->step_id, q->tool, NULL, q->traceparent);
		return ST_DENIED;
	}
	if (args_hash(q->args, hash, NULL, msg, sizeof(msg)) == -1) {
		reply_refuse(c, q->id, q->idlen, ST_ERROR, E_BAD_REQUEST, msg);
		return ST_ERROR;
	}
	if ((reason = run_account(run, q->tool, hash, g == GATE_WRITE, msg,
	    sizeof(msg))) != NULL) {
		run_stop(run, reason, msg);
		reply_decided(c, q->id, q->idlen, ST_STOPPED, reason, msg,
		    q->run_id, q->step_id, q->tool, hash, q->traceparent);
		return ST_STOPPED;
	}

	conn_who(c, &who);
	r = req_park(c, q->id, q->idlen, q->run_id);
	r->call = 1;
	r->ctool = t;
	r->t0 = t0;
	q->run_id = NULL;
	r->exec_id = exec_call(&who, r->run_id, q->step_id, q->tool, q->args,
	    q->traceparent, call_answered, r);
	log_debug("agent uid %u pid %d: run %s tool %s: to the executor",
	    (unsigned)c->uid, (int)c->pid, r->run_id ? r->run_id : "-",
	    q->tool);
	if (g == GATE_WRITE) {
		r->wtool = q->tool;
		q->tool = NULL;
		memcpy(r->whash, hash, sizeof(r->whash));
	}
	return NULL;
}

static void
op_call(struct conn *c, struct agent_req *q)
{
	const struct tool	*t = policy_tool(gw->conf, q->tool);
	uint64_t		 t0 = metrics_clock();
	const char		*status;

	if ((status = call_decide(c, q, t, t0)) != NULL)
		metrics_call(t, status, t0);
}

static void
op_usage(struct conn *c, struct agent_req *q)
{
	const char		*reason, *status;
	char			 msg[256];
	struct run		*run;
	struct reply		 rp;

	if ((run = req_run(c, q->id, q->idlen, q->run_id, NULL,
	    q->traceparent, &status)) == NULL)
		return;
	if ((reason = run_usage(run, q->tokens, q->cost, msg,
	    sizeof(msg))) != NULL) {
		run_stop(run, reason, msg);
		reply_decided(c, q->id, q->idlen, ST_STOPPED, reason, msg,
		    q->run_id, NULL, NULL, NULL, q->traceparent);
		return;
	}
	reply_begin(&rp, q->id, q->idlen, ST_OK);
	reply_send(c, &rp);
}

static void
op_resume(struct conn *c, struct agent_req *q)
{
	struct exec_who		 who;
	struct req		*r;

	/* Only the executor can verify it: gatewayd holds no key. */
	conn_who(c, &who);
	r = req_park(c, q->id, q->idlen, NULL);
	r->exec_id = exec_resume(&who, q->checkpoint, call_answered, r);
}

static void
op_wait(struct conn *c, struct agent_req *q)
{
	struct exec_who		 who;
	struct req		*r;

	conn_who(c, &who);
	r = req_park(c, q->id, q->idlen, NULL);
	r->exec_id = exec_wait(&who, q->approval_id, q->timeout_ms,
	    call_answered, r);
}

/*
 * The tools op is the executor's to answer: the descriptions and input
 * schemas of mcp tools are what its MCP servers show, checked against
 * their pins, and the executor alone keeps those.  The allowlist is
 * asked there of the same policy_allowed() that gates every call.
 */
static void
op_tools(struct conn *c, struct agent_req *q)
{
	struct exec_who		 who;
	struct req		*r;

	conn_who(c, &who);
	r = req_park(c, q->id, q->idlen, NULL);
	r->exec_id = exec_tools(&who, call_answered, r);
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

static void	(*const agent_ops[])(struct conn *, struct agent_req *) = {
	[AOP_HELLO] =	op_hello,
	[AOP_CALL] =	op_call,
	[AOP_RESUME] =	op_resume,
	[AOP_WAIT] =	op_wait,
	[AOP_USAGE] =	op_usage,
	[AOP_TOOLS] =	op_tools,
};

/*
 * One frame body: a request parsed (agentreq.c), then answered by its op.
 * A frame that is no msgpack map costs the connection.
 */
static void
handle_frame(struct conn *c, const char *body, size_t len)
{
	struct agent_req	q;
	struct agent_reason	why;
	char			msg[160];
	int			rv;

	rv = agentreq_parse(body, len, &q, &why);
	if (rv == -1 && why.close) {
		conn_bad_frame(c, body - FRAME_HDR, len + FRAME_HDR, why.error,
		    why.message);
		goto out;
	}
	if (rv == -1 && !why.has_id)
		reply_refuse(c, NULL, 0, ST_ERROR, why.error, why.message);
	else if (c->pr == NULL) {
		snprintf(msg, sizeof(msg), "uid %u gid %u has no principal",
		    (unsigned)c->uid, (unsigned)c->gid);
		reply_stranger(c, q.id, q.idlen, msg);
	} else if (rv == -1)
		reply_refuse(c, q.id, q.idlen, ST_ERROR, why.error,
		    why.message);
	else
		agent_ops[q.op](c, &q);
	/* A stranger's first answer is its last: the rest is dropped. */
	if (c->pr == NULL)
		conn_close(c);
out:
	agentreq_free(&q);
}

/*
 * Answer every complete frame in the input, while the connection may
 * take requests; what is left of a frame waits at the front.
 */
static void
conn_frames(struct conn *c)
{
	char		 msg[128];
	size_t		 off = 0;
	uint32_t	 len;
	int		 fresh = 0;

	while (!c->closing) {
		if (!conn_can_read(c)) {
			/* Resumed by conn_wake once answers drain. */
			conn_read_off(c);
			/* Waiting on us: no time runs out for the agent. */
			if (c->pr != NULL)
				evtimer_del(c->timer);
			break;
		}
		switch (frame_peek_buf(c->in + off, c->inlen - off,
		    (uint32_t)gw->conf->max_frame, &len)) {
		case FRAME_MORE:
			frame_clock(c, c->inlen - off, fresh);
			goto out;
		case FRAME_EMPTY:
			conn_bad_frame(c, c->in + off, c->inlen - off,
			    E_BAD_FRAME, "frame of length 0");
			goto out;
		case FRAME_TOO_LARGE:
			snprintf(msg, sizeof(msg), "frame of %u bytes is over"
			    " the limit of %llu", len,
			    (unsigned long long)gw->conf->max_frame);
			conn_bad_frame(c, c->in + off, c->inlen - off,
			    E_FRAME_TOO_LARGE, msg);
			goto out;
		case FRAME_READY:
			break;
		}
		/* The request points into the input: moved only after. */
		handle_frame(c, c->in + off + FRAME_HDR, len);
		off += len + FRAME_HDR;
		fresh = 1;
	}
out:
	if (off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/*
 * Room for the next read: at most one frame of the largest size is ever
 * held, as the bufferevent's watermark did; small until a frame needs it.
 */
static size_t
conn_in_room(struct conn *c)
{
	size_t		max = gw->conf->max_frame + FRAME_HDR, want = IN_SMALL;
	uint32_t	len;

	if (c->inlen >= FRAME_HDR && frame_peek_buf(c->in, c->inlen,
	    (uint32_t)gw->conf->max_frame, &len) == FRAME_MORE)
		want = (size_t)len + FRAME_HDR;
	if (want > max)
		want = max;
	if (want < c->inlen)
		want = c->inlen;
	if (c->incap < want) {
		c->in = xreallocarray(c->in, 1, want);
		c->incap = want;
	} else if (c->inlen == 0 && c->incap > IN_SMALL && want == IN_SMALL) {
		free(c->in);
		c->in = xmalloc(IN_SMALL);
		c->incap = IN_SMALL;
	}
	return c->incap - c->inlen;
}

/* Readable: one read(2), every complete frame answered, one write. */
static void
conn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	size_t		 room;
	ssize_t		 n;

	(void)what;
	if ((room = conn_in_room(c)) == 0) {
		/* A whole frame waits: only answers can make room. */
		conn_frames(c);
		(void)conn_flush(c);
		return;
	}
	n = read(fd, c->in + c->inlen, room);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR)) {
		conn_free(c);
		return;
	}
	if (n > 0) {
		c->inlen += (size_t)n;
		conn_frames(c);
	}
	(void)conn_flush(c);
}

/* A short write's rest can go now. */
static void
conn_writable(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (conn_flush(c) == -1)
		return;
	if (conn_outlen(c) == 0) {
		conn_wake(c);
		(void)conn_flush(c);
	}
}

/* Listening. */

/* Its socket is the executor's too: read it from now on. */
static void
conn_start(struct conn *c)
{
	c->passed = 1;
	event_add(c->rev, NULL);
	c->reading = 1;
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
	switch (exec_pass_peer(c->id, c->fd)) {
	case 0:
		conn_start(c);
		return 0;
	case 1:
		return 1;
	default:
		/* Answered and closed by the flush at the end of the turn. */
		conn_bad_frame(c, "", 0, E_UNAVAILABLE, "the gateway is busy");
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
			break;
		}
	}
	/* The ones refused are answered now. */
	agent_flush();
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
	c->fd = fd;
	evutil_make_socket_nonblocking(fd);
	c->rev = event_new(gw->base, fd, EV_READ | EV_PERSIST, conn_readable,
	    c);
	c->wev = event_new(gw->base, fd, EV_WRITE | EV_PERSIST, conn_writable,
	    c);
	c->timer = evtimer_new(gw->base, conn_timeout, c);
	if (c->rev == NULL || c->wev == NULL || c->timer == NULL)
		fatalx("agent: event_new");
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
	agent_flush();
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
