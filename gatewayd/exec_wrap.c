/*
 * The socketpair to the executor, from gatewayd's side (monitor_wrap.c in
 * OpenSSH's terms).  Requests are numbered; answers may come in any order
 * and are matched to their waiting callers by id, and each must be of the
 * type the protocol table says answers the request (as
 * mm_request_receive_expect() insists): anything else is fatal.  The
 * wrappers (exec_call, exec_resume, exec_wait, exec_audit, ...) are the
 * only place a message is packed.  The executor is the
 * trusted peer here: a message from it we cannot decode is fatal, and so
 * is its going away (systemd restarts the pair; all state is on disk).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/gatewayd.h"

/*
 * Waiting callers live in a slot array; an id is the slot index in the low
 * 32 bits and a generation in the high ones, so a stale id never finds a
 * reused slot.
 */
struct pending {
	uint64_t	 id;		/* 0 when free */
	uint32_t	 expect;	/* the answer's type */
	exec_cb		 cb;
	void		*arg;
};

static struct bufferevent	*link_bev;	/* reads the answers */
/*
 * What goes to the executor is ours to write: the messages of a loop turn
 * (a turn's refusals for the audit log, its calls) are queued and written
 * with one write(2) once the turn's callbacks are done; only a short
 * write arms the write event.
 */
static struct evbuffer		*link_out;
static struct event		*link_flush_ev;	/* made active: the turn's end */
static struct event		*link_wev;	/* added after a short write */
static int			 peer_fd = -1;	/* the peer channel */
static struct event		*peer_room_ev;	/* waits for room on it */
static void			(*peer_room_cb)(void);
static struct pending		*slots;
static uint32_t			 nslots, nused, free_hint;
static uint64_t			 generation = 1;
static void			(*hello_ready)(void);
static void			(*ping_pong)(void);

static struct pending *
slot_find(uint64_t id)
{
	uint32_t	i = (uint32_t)id;

	if (i >= nslots || slots[i].id != id || id == 0)
		return NULL;
	return &slots[i];
}

static uint64_t
slot_alloc(void)
{
	uint32_t	i, n;

	if (nused == nslots) {
		n = nslots ? nslots * 2 : 256;
		slots = xreallocarray(slots, n, sizeof(*slots));
		memset(slots + nslots, 0, (n - nslots) * sizeof(*slots));
		free_hint = nslots;
		nslots = n;
	}
	for (i = free_hint; slots[i % nslots].id != 0; i++)
		;
	i %= nslots;
	free_hint = i + 1;
	slots[i].id = (generation++ << 32) | i;
	nused++;
	return slots[i].id;
}

static void
slot_release(struct pending *p)
{
	p->id = 0;
	p->cb = NULL;
	p->arg = NULL;
	nused--;
}

/* A message of 'type': begins mb and its body; id 0 for no answer. */
static void
msg_begin(struct msgbuf *mb, struct mpmap *body, uint32_t type, uint64_t id)
{
	msgbuf_init(mb);
	msgbuf_begin_msg(mb, type, id, body);
}

/* Close the body and send. */
static void
msg_send(struct msgbuf *mb, struct mpmap *body)
{
	const char	*buf;
	size_t		 len;

	mpmap_end(body);
	buf = msgbuf_finish(mb, &len);
	if (evbuffer_add(link_out, buf, len) == -1)
		fatalx("evbuffer_add");
	msgbuf_free(mb);
	if (!event_pending(link_wev, EV_WRITE, NULL))
		event_active(link_flush_ev, EV_TIMEOUT, 0);
}

/* Write what is queued for the executor; a short write waits for room. */
static void
link_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (evbuffer_get_length(link_out) > 0) {
		if (evbuffer_write(link_out, bufferevent_getfd(link_bev)) >= 0 ||
		    errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			event_add(link_wev, NULL);
			return;
		}
		fatalx("the executor went away");
	}
	event_del(link_wev);
}

/* A request: a slot waits for the answer the table names for 'type'. */
static uint64_t
request_begin(struct msgbuf *mb, struct mpmap *body, uint32_t type,
    exec_cb cb, void *arg)
{
	uint64_t	 id = slot_alloc();
	struct pending	*p = slot_find(id);

	if ((p->expect = msg_answer_type(type)) == MSG_NONE)
		fatalx("%s is not a request", msg_type_str(type));
	p->cb = cb;
	p->arg = arg;
	msg_begin(mb, body, type, id);
	return id;
}

/* Who asks, as every request of an agent's says it. */
static void
pk_who(struct mpmap *body, const struct exec_who *w, int with_pid)
{
	mpmap_uint(body, "conn", w->conn);
	mpmap_uint(body, "uid", w->uid);
	mpmap_uint(body, "gid", w->gid);
	if (with_pid)
		mpmap_uint(body, "pid", (uint64_t)w->pid);
	mpmap_str(body, "tenant", w->tenant);
	mpmap_str(body, "env", w->env);
}

uint64_t
exec_call(const struct exec_who *w, const char *run_id, const char *step_id,
    const char *tool, const msgpack_object *args, const char *traceparent,
    exec_cb cb, void *arg)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	id;

	id = request_begin(&mb, &body, MSG_CALL, cb, arg);
	pk_who(&body, w, 1);
	mpmap_str(&body, "run_id", run_id);
	mpmap_str_opt(&body, "step_id", step_id);
	mpmap_str(&body, "tool", tool);
	mpmap_obj(&body, "args", args);
	mpmap_str_opt(&body, "traceparent", traceparent);
	msg_send(&mb, &body);
	return id;
}

uint64_t
exec_resume(const struct exec_who *w, const msgpack_object *checkpoint,
    exec_cb cb, void *arg)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	id;

	id = request_begin(&mb, &body, MSG_RESUME, cb, arg);
	pk_who(&body, w, 1);
	mpmap_obj(&body, "checkpoint", checkpoint);
	msg_send(&mb, &body);
	return id;
}

uint64_t
exec_wait(const struct exec_who *w, const msgpack_object *approval_id,
    uint64_t timeout_ms, exec_cb cb, void *arg)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	id;

	id = request_begin(&mb, &body, MSG_WAIT, cb, arg);
	pk_who(&body, w, 0);
	mpmap_obj(&body, "approval_id", approval_id);
	mpmap_uint(&body, "timeout_ms", timeout_ms);
	msg_send(&mb, &body);
	return id;
}

uint64_t
exec_tools(const struct exec_who *w, exec_cb cb, void *arg)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	id;

	id = request_begin(&mb, &body, MSG_TOOLS, cb, arg);
	pk_who(&body, w, 0);
	msg_send(&mb, &body);
	return id;
}

uint64_t
exec_metrics(exec_cb cb, void *arg)
{
	struct msgbuf	mb;
	struct mpmap	body;
	uint64_t	id;

	id = request_begin(&mb, &body, MSG_METRICS, cb, arg);
	msg_send(&mb, &body);
	return id;
}

void
exec_forget(uint64_t id)
{
	struct pending	*p = slot_find(id);

	/* The answer will still come; it is dropped when it does. */
	if (p != NULL) {
		p->cb = NULL;
		p->arg = NULL;
	}
}

static void
link_answer(const struct proto_msg *m)
{
	struct pending	*p = slot_find(m->id);
	exec_cb		 cb;
	void		*arg;

	if (p == NULL)
		fatalx("executor answered %s to unknown id %llu",
		    msg_type_str(m->type), (unsigned long long)m->id);
	if (m->type != p->expect)
		fatalx("executor answered %s to id %llu, which waits for %s",
		    msg_type_str(m->type), (unsigned long long)m->id,
		    msg_type_str(p->expect));
	cb = p->cb;
	arg = p->arg;
	slot_release(p);
	if (cb != NULL)
		cb(m, arg);
}

static void
hello_answered(const struct proto_msg *m, void *arg)
{
	void	(*ready)(void) = hello_ready;

	(void)arg;
	if (m->hello_ans.version != PROTO_VERSION)
		fatalx("executor speaks protocol %llu, we speak %d",
		    (unsigned long long)m->hello_ans.version, PROTO_VERSION);
	/* Both must have loaded the same file. */
	if (strcmp(m->hello_ans.config_hash, gw->config_hash) != 0)
		fatalx("the config changed between gatewayd and the"
		    " executor loading it: restart");
	gw->writes_on = m->hello_ans.writes_enabled;
	hello_ready = NULL;
	ready();
}

static void
link_dispatch(const char *buf, size_t len)
{
	struct proto_msg	m;
	char			err[128];

	if (proto_decode(buf, len, &m, err, sizeof(err)) == -1)
		fatalx("executor sent a bad message: %s", err);
	if (msg_direction(m.type) != MSG_FROM_EXECUTOR)
		fatalx("executor sent %s", msg_type_str(m.type));
	switch (m.type) {
	case MSG_CONN_REFUSED:
		agent_conn_refused(m.conn_refused.conn,
		    m.conn_refused.message);
		break;
	case MSG_WRITES_STATE:
		gw->writes_on = m.writes_state.writes_enabled;
		log_info("writes %s (told by the executor)",
		    gw->writes_on ? "enabled" : "disabled");
		break;
	default:
		link_answer(&m);
	}
	proto_msg_free(&m);
}

static void
link_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint32_t	 len, max;

	(void)arg;
	/* An answer holds a result of up to max_output, and a little more. */
	max = (uint32_t)(gw->conf->max_output + gw->conf->max_frame + 65536);
	for (;;) {
		switch (frame_peek(in, max, &len)) {
		case FRAME_MORE:
			/* The answers of this turn go to the agents at once. */
			agent_flush();
			return;
		case FRAME_EMPTY:
		case FRAME_TOO_LARGE:
			fatalx("executor sent a bad frame (%u bytes)", len);
		case FRAME_READY:
			break;
		}
		link_dispatch((const char *)evbuffer_pullup(in,
		    len + FRAME_HDR) + FRAME_HDR, len);
		evbuffer_drain(in, len + FRAME_HDR);
	}
}

static void
link_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fatalx("the executor went away");
}

int
exec_pass_peer(uint64_t conn, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	unsigned char	 idb[8];
	struct iovec	 iov = { idb, sizeof(idb) };
	struct msghdr	 msg;
	struct cmsghdr	*c;

	be64_put(idb, conn);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	/* Non-blocking: a full channel never stalls us (see exec_peer_room). */
	if (sendmsg(peer_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	    (ssize_t)sizeof(idb))
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 1;
	log_warn("peer channel: cannot pass connection %llu",
	    (unsigned long long)conn);
	return -1;
}

static void
peer_room(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	peer_room_cb();
}

/*
 * 'cb' runs once when the peer channel has room again.  It holds as many
 * sockets as its send buffer takes (a few hundred): a burst of
 * connections, or an executor busy for a moment, fills it.
 */
void
exec_peer_room(void (*cb)(void))
{
	if (peer_room_ev == NULL) {
		peer_room_ev = event_new(gw->base, peer_fd, EV_WRITE,
		    peer_room, NULL);
		if (peer_room_ev == NULL)
			fatalx("event_new");
	}
	peer_room_cb = cb;
	event_add(peer_room_ev, NULL);
}

void
exec_conn_gone(uint64_t conn)
{
	struct msgbuf	mb;
	struct mpmap	body;

	if (link_bev == NULL)
		return;
	msg_begin(&mb, &body, MSG_CONN_GONE, 0);
	mpmap_uint(&body, "conn", conn);
	msg_send(&mb, &body);
}

void
exec_link_init(int fd, int peerfd)
{
	const char	*why;

	/* A build whose table disagrees with its enum speaks to no one. */
	if ((why = proto_table_check()) != NULL)
		fatalx("the protocol table is broken: %s", why);
	peer_fd = peerfd;
	evutil_make_socket_nonblocking(fd);
	link_bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (link_bev == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(link_bev, link_read, NULL, link_event, NULL);
	bufferevent_enable(link_bev, EV_READ);
	link_out = evbuffer_new();
	link_flush_ev = event_new(gw->base, -1, 0, link_flush, NULL);
	link_wev = event_new(gw->base, fd, EV_WRITE | EV_PERSIST, link_flush,
	    NULL);
	if (link_out == NULL || link_flush_ev == NULL || link_wev == NULL)
		fatalx("exec link: event_new");
}

void
exec_hello(void (*ready)(void))
{
	struct msgbuf	mb;
	struct mpmap	body;

	hello_ready = ready;
	(void)request_begin(&mb, &body, MSG_HELLO, hello_answered, NULL);
	mpmap_uint(&body, "version", PROTO_VERSION);
	msg_send(&mb, &body);
}

static void
ping_answered(const struct proto_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	ping_pong();
}

/* The cheapest round trip: the executor's loop turning is all it proves. */
void
exec_ping(void (*answered)(void))
{
	struct msgbuf	mb;
	struct mpmap	body;

	ping_pong = answered;
	(void)request_begin(&mb, &body, MSG_PING, ping_answered, NULL);
	msg_send(&mb, &body);
}

/* SIGHUP reached us: the executor reopens the audit log (logrotate). */
void
exec_audit_reopen(void)
{
	struct msgbuf	mb;
	struct mpmap	body;

	msg_begin(&mb, &body, MSG_AUDIT_REOPEN, 0);
	msg_send(&mb, &body);
}

void
exec_writes_off(void)
{
	struct msgbuf	mb;
	struct mpmap	body;

	msg_begin(&mb, &body, MSG_WRITES_OFF, 0);
	msg_send(&mb, &body);
}

void
exec_audit(const struct refusal *r)
{
	struct msgbuf	mb;
	struct mpmap	body;

	msg_begin(&mb, &body, MSG_AUDIT, 0);
	mpmap_uint(&body, "conn", r->conn);
	mpmap_uint(&body, "uid", r->uid);
	mpmap_uint(&body, "gid", r->gid);
	mpmap_str_opt(&body, "tenant", r->tenant);
	mpmap_str_opt(&body, "env", r->env);
	mpmap_str_opt(&body, "run_id", r->run_id);
	mpmap_str_opt(&body, "step_id", r->step_id);
	mpmap_str_opt(&body, "tool", r->tool);
	mpmap_str_opt(&body, "args_hash", r->args_hash);
	mpmap_str_opt(&body, "traceparent", r->traceparent);
	mpmap_str(&body, "decision", r->decision);
	mpmap_str(&body, "reason", r->reason);
	mpmap_str(&body, "message", r->message);
	msg_send(&mb, &body);
}

void
exec_audit_summary(int has_uid, uid_t uid, gid_t gid, uint64_t count,
    uint64_t first_ms, uint64_t last_ms)
{
	struct msgbuf	mb;
	struct mpmap	body;

	if (link_bev == NULL)
		return;
	msg_begin(&mb, &body, MSG_AUDIT_SUMMARY, 0);
	if (has_uid) {
		mpmap_uint(&body, "uid", uid);
		mpmap_uint(&body, "gid", gid);
	}
	mpmap_uint(&body, "count", count);
	mpmap_uint(&body, "first_ms", first_ms);
	mpmap_uint(&body, "last_ms", last_ms);
	msg_send(&mb, &body);
}

/*
 * What is still queued for the executor (the last summaries of refusals)
 * goes out before we hang up: the loop is done, so write it ourselves,
 * giving a stuck executor a second at most.
 */
static void
link_drain(void)
{
	struct evbuffer		*out = link_out;
	size_t			 len = evbuffer_get_length(out), off = 0;
	const unsigned char	*p;
	struct pollfd		 pfd;
	ssize_t			 n;

	if (len == 0)
		return;
	p = evbuffer_pullup(out, -1);
	pfd.fd = bufferevent_getfd(link_bev);
	pfd.events = POLLOUT;
	while (off < len) {
		if ((n = write(pfd.fd, p + off, len - off)) > 0)
			off += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			return;
		else if (poll(&pfd, 1, 1000) != 1)
			return;
	}
}

void
exec_link_close(void)
{
	if (link_bev == NULL)
		return;
	link_drain();
	/*
	 * bufferevent_free() closes the descriptor only when the loop runs
	 * its finalizers, and the loop is done: shut it down ourselves so the
	 * executor sees EOF now.
	 */
	shutdown(bufferevent_getfd(link_bev), SHUT_RDWR);
	event_free(link_flush_ev);
	event_free(link_wev);
	evbuffer_free(link_out);
	link_flush_ev = link_wev = NULL;
	link_out = NULL;
	bufferevent_free(link_bev);
	link_bev = NULL;
	if (peer_room_ev != NULL)
		event_free(peer_room_ev);
	peer_room_ev = NULL;
	close(peer_fd);
	peer_fd = -1;
	link_bev = NULL;
}
