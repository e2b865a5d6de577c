/*
 * The socketpair to the executor, from gatewayd's side (monitor_wrap.c in
 * OpenSSH's terms).  Requests are numbered; answers may come in any order
 * and are matched to their waiting callers by id.  The executor is the
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
#include "common/xmalloc.h"
#include "gatewayd/gatewayd.h"
#include "proto/proto.h"

/*
 * Waiting callers live in a slot array; an id is the slot index in the low
 * 32 bits and a generation in the high ones, so a stale id never finds a
 * reused slot.
 */
struct pending {
	uint64_t	 id;		/* 0 when free */
	exec_cb		 cb;
	void		*arg;
};

static struct bufferevent	*link_bev;
static int			 peer_fd = -1;	/* the peer channel */
static struct event		*peer_room_ev;	/* waits for room on it */
static void			(*peer_room_cb)(void);
static struct pending		*slots;
static uint32_t			 nslots, nused, free_hint;
static uint64_t			 generation = 1;
static void			(*hello_ready)(void);
static uint64_t			 hello_id;

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

uint64_t
exec_begin(struct msgbuf *mb, uint32_t type, uint32_t nfields)
{
	uint64_t	id = slot_alloc();

	msgbuf_init(mb);
	msgbuf_begin_msg(mb, type, id, nfields);
	return id;
}

void
exec_send(uint64_t id, struct msgbuf *mb, exec_cb cb, void *arg)
{
	struct pending	*p = slot_find(id);
	const char	*buf;
	size_t		 len;

	p->cb = cb;
	p->arg = arg;
	buf = msgbuf_finish(mb, &len);
	bufferevent_write(link_bev, buf, len);
	msgbuf_free(mb);
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
	cb = p->cb;
	arg = p->arg;
	slot_release(p);
	if (cb != NULL)
		cb(m->body, arg);
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
	case MSG_HELLO_ANS:
		if (m.id != hello_id || hello_ready == NULL)
			fatalx("unexpected HELLO_ANS");
		if (mp_get(m.body, "version")->via.u64 != PROTO_VERSION)
			fatalx("executor speaks protocol %llu, we speak %d",
			    (unsigned long long)
			    mp_get(m.body, "version")->via.u64, PROTO_VERSION);
		/* Both must have loaded the same file. */
		if (!mp_streq(mp_get(m.body, "config_hash"), gw->config_hash))
			fatalx("the config changed between gatewayd and the"
			    " executor loading it: restart");
		gw->writes_on = mp_get(m.body, "writes_enabled")->via.boolean;
		slot_release(slot_find(m.id));
		hello_ready();
		hello_ready = NULL;
		break;
	case MSG_CONN_REFUSED: {
		char	*msg = mp_strdup(mp_get(m.body, "message"));

		agent_conn_refused(mp_get(m.body, "conn")->via.u64,
		    msg != NULL ? msg : "unavailable");
		free(msg);
		break;
	}
	case MSG_WRITES_STATE:
		gw->writes_on = mp_get(m.body, "writes_enabled")->via.boolean;
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
	int		 i;

	for (i = 0; i < 8; i++)
		idb[i] = (unsigned char)(conn >> (56 - 8 * i));
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
	struct msgbuf	 mb;
	const char	*buf;
	size_t		 len;

	if (link_bev == NULL)
		return;
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_CONN_GONE, 0, 1);
	pk_kv_uint(&mb.pk, "conn", conn);
	buf = msgbuf_finish(&mb, &len);
	bufferevent_write(link_bev, buf, len);
	msgbuf_free(&mb);
}

void
exec_link_init(int fd, int peerfd)
{
	peer_fd = peerfd;
	evutil_make_socket_nonblocking(fd);
	link_bev = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (link_bev == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(link_bev, link_read, NULL, link_event, NULL);
	bufferevent_enable(link_bev, EV_READ | EV_WRITE);
}

void
exec_hello(void (*ready)(void))
{
	struct msgbuf	mb;

	hello_ready = ready;
	hello_id = exec_begin(&mb, MSG_HELLO, 1);
	pk_kv_uint(&mb.pk, "version", PROTO_VERSION);
	exec_send(hello_id, &mb, NULL, NULL);
}

void
exec_writes_off(void)
{
	struct msgbuf	mb;
	const char	*buf;
	size_t		 len;

	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_WRITES_OFF, 0, 0);
	buf = msgbuf_finish(&mb, &len);
	bufferevent_write(link_bev, buf, len);
	msgbuf_free(&mb);
}

static void
pk_opt(msgpack_packer *pk, const char *key, const char *val)
{
	if (val != NULL)
		pk_kv_str(pk, key, val);
}

void
exec_audit(const struct refusal *r)
{
	struct msgbuf	 mb;
	const char	*buf;
	size_t		 len;
	uint32_t	 n = 6;

	n += (r->tenant != NULL) + (r->env != NULL) + (r->run_id != NULL) +
	    (r->step_id != NULL) + (r->tool != NULL) + (r->args_hash != NULL);
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_AUDIT, 0, n);
	pk_kv_uint(&mb.pk, "conn", r->conn);
	pk_kv_uint(&mb.pk, "uid", r->uid);
	pk_kv_uint(&mb.pk, "gid", r->gid);
	pk_opt(&mb.pk, "tenant", r->tenant);
	pk_opt(&mb.pk, "env", r->env);
	pk_opt(&mb.pk, "run_id", r->run_id);
	pk_opt(&mb.pk, "step_id", r->step_id);
	pk_opt(&mb.pk, "tool", r->tool);
	pk_opt(&mb.pk, "args_hash", r->args_hash);
	pk_kv_str(&mb.pk, "decision", r->decision);
	pk_kv_str(&mb.pk, "reason", r->reason);
	pk_kv_str(&mb.pk, "message", r->message);
	buf = msgbuf_finish(&mb, &len);
	bufferevent_write(link_bev, buf, len);
	msgbuf_free(&mb);
}

void
exec_audit_summary(int has_uid, uid_t uid, gid_t gid, uint64_t count,
    uint64_t first_ms, uint64_t last_ms)
{
	struct msgbuf	 mb;
	const char	*buf;
	size_t		 len;

	if (link_bev == NULL)
		return;
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_AUDIT_SUMMARY, 0, has_uid ? 5 : 3);
	if (has_uid) {
		pk_kv_uint(&mb.pk, "uid", uid);
		pk_kv_uint(&mb.pk, "gid", gid);
	}
	pk_kv_uint(&mb.pk, "count", count);
	pk_kv_uint(&mb.pk, "first_ms", first_ms);
	pk_kv_uint(&mb.pk, "last_ms", last_ms);
	buf = msgbuf_finish(&mb, &len);
	bufferevent_write(link_bev, buf, len);
	msgbuf_free(&mb);
}

/*
 * What is still queued for the executor (the last summaries of refusals)
 * goes out before we hang up: the loop is done, so write it ourselves,
 * giving a stuck executor a second at most.
 */
static void
link_drain(void)
{
	struct evbuffer		*out = bufferevent_get_output(link_bev);
	size_t			 len = evbuffer_get_length(out), off = 0;
	const unsigned char	*p;
	struct pollfd		 pfd;
	ssize_t			 n;

	if (len == 0)
		return;
	/* The bufferevent keeps its output's front frozen: read it whole. */
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
	bufferevent_free(link_bev);
	link_bev = NULL;
	if (peer_room_ev != NULL)
		event_free(peer_room_ev);
	peer_room_ev = NULL;
	close(peer_fd);
	peer_fd = -1;
	link_bev = NULL;
}
