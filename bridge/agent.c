/*
 * The agent socket, as any agent speaks it (CONTRACT.md, "Agent
 * socket"): frames of one msgpack map each.  Every tools/call gets a
 * connection of its own and one request on it at a time (call, then
 * wait and resume on the same connection), and the tools op one too:
 *
 *  - the executor cancels a read when its agent hangs up, so closing a
 *    read's connection cancels that read and nothing else
 *    (notifications/cancelled, calls.c);
 *  - a connection that fails (gatewayd restarted) takes only the calls
 *    that were on it, and the next call connects afresh.
 *
 * Connecting is cheap on a Unix socket; the cost is one descriptor per
 * call in flight, which BRIDGE_MAX_CALLS bounds (gatewayd allows a uid
 * limits.max_connections_per_uid, 256 by default).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>

#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

/*
 * The largest answer we read: a tool's result (limits.max_output, up to
 * 64 MiB) and a few fields, as gatewayctl allows.
 */
#define MAX_ANSWER	((64u << 20) + (1u << 20))

struct aconn {
	struct bufferevent	*bev;
	aconn_cb		 cb;
	void			*arg;
	uint64_t		 want;		/* id of the request out, 0: none */
};

static uint64_t	next_id = 1;

/* The connection is of no more use: tell its owner once. */
static void
failed(struct aconn *ac, const char *why)
{
	aconn_cb	 cb = ac->cb;

	if (ac->want == 0 || cb == NULL)
		return;
	ac->want = 0;
	bufferevent_disable(ac->bev, EV_READ | EV_WRITE);
	cb(ac->arg, NULL, why);
}

static void
readable(struct bufferevent *bev, void *arg)
{
	struct aconn		*ac = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	const msgpack_object	*id;
	msgpack_unpacked	 u;
	const char		*why;
	char			*body;
	uint32_t		 len;

	switch (frame_peek(in, MAX_ANSWER, &len)) {
	case FRAME_MORE:
		return;
	case FRAME_READY:
		break;
	default:
		failed(ac, "the gate sent a bad frame");
		return;
	}
	evbuffer_drain(in, FRAME_HDR);
	body = xmalloc(len);
	evbuffer_remove(in, body, len);
	if (frame_unpack_map(body, len, &u, &why) == -1) {
		free(body);
		failed(ac, "the gate sent a bad frame");
		return;
	}
	id = mp_get(&u.data, "id");
	if (id == NULL || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    id->via.u64 != ac->want) {
		/*
		 * An answer with no id of ours: the gate refusing the
		 * connection (a cap at accept, a frame too large), which
		 * it explains.
		 */
		static char	 text[300];
		char		*msg = ans_str(&u.data, "message");
		char		*e = ans_str(&u.data, "error");

		snprintf(text, sizeof(text), "the gate refused the"
		    " connection: %s: %s", e != NULL ? e : "?",
		    msg != NULL ? msg : "an answer to no request of ours");
		log_warnx("agent socket: %s", text);
		free(msg);
		free(e);
		msgpack_unpacked_destroy(&u);
		free(body);
		failed(ac, text);
		return;
	}
	ac->want = 0;
	/* The owner may free ac, or send the next request on it. */
	ac->cb(ac->arg, &u.data, NULL);
	msgpack_unpacked_destroy(&u);
	free(body);
}

/*
 * What the socket still holds, read into the input buffer: 1 when a whole
 * frame is there.  A request written as the gate refused the connection
 * at accept fails with EPIPE before the refusal it sent is read.  The
 * bufferevent keeps its input's end frozen outside its own read
 * callback, so the end is thawed for these reads and frozen again.
 */
static int
salvage(struct bufferevent *bev)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint32_t	 len;
	int		 fd = bufferevent_getfd(bev);

	evbuffer_unfreeze(in, 0);
	while (fd != -1 && evbuffer_get_length(in) < MAX_ANSWER &&
	    evbuffer_read(in, fd, 65536) > 0)
		;
	evbuffer_freeze(in, 0);
	return frame_peek(in, MAX_ANSWER, &len) != FRAME_MORE;
}

static void
event(struct bufferevent *bev, short what, void *arg)
{
	struct aconn	*ac = arg;
	int		 err = EVUTIL_SOCKET_ERROR();

	/* The gate's last word first: readable() ends the request. */
	if (ac->want != 0 && salvage(bev)) {
		readable(bev, ac);
		return;
	}
	if (what & BEV_EVENT_EOF)
		failed(ac, "the gate closed the connection");
	else if (what & BEV_EVENT_ERROR)
		failed(ac, strerror(err));
}

struct aconn *
aconn_open(aconn_cb cb, void *arg, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct aconn		*ac;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(opts.socket) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", opts.socket);
		return NULL;
	}
	memcpy(sun.sun_path, opts.socket, strlen(opts.socket));
	/*
	 * Non-blocking: a listener whose backlog is full says EAGAIN
	 * at once instead of holding the loop.
	 */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "cannot reach the gate at %s: %s",
		    opts.socket, strerror(errno));
		close(fd);
		return NULL;
	}
	ac = xcalloc(1, sizeof(*ac));
	if ((ac->bev = bufferevent_socket_new(base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("aconn_open: out of memory");
	ac->cb = cb;
	ac->arg = arg;
	bufferevent_setcb(ac->bev, readable, NULL, event, ac);
	bufferevent_enable(ac->bev, EV_READ);
	return ac;
}

void
aconn_free(struct aconn *ac)
{
	if (ac == NULL)
		return;
	bufferevent_free(ac->bev);
	free(ac);
}

/* Begin a request: its map's first field is a fresh id. */
static void
begin(struct aconn *ac, struct msgbuf *mb, struct mpmap *m, const char *op)
{
	msgbuf_init(mb);
	mpmap_begin(m, mb);
	ac->want = next_id++;
	mpmap_uint(m, "id", ac->want);
	mpmap_str(m, "op", op);
}

static void
send_req(struct aconn *ac, struct msgbuf *mb, struct mpmap *m)
{
	const char	*frame;
	size_t		 len;

	mpmap_end(m);
	frame = msgbuf_finish(mb, &len);
	if (bufferevent_write(ac->bev, frame, len) == -1)
		fatalx("send_req: out of memory");
	msgbuf_free(mb);
}

void
aconn_tools(struct aconn *ac)
{
	struct msgbuf	mb;
	struct mpmap	m;

	begin(ac, &mb, &m, "tools");
	send_req(ac, &mb, &m);
}

int
aconn_call(struct aconn *ac, const char *tool, json_t *args, char *err,
    size_t errlen)
{
	struct msgbuf	mb;
	struct mpmap	m;

	begin(ac, &mb, &m, "call");
	mpmap_str(&m, "run_id", opts.run_id);
	mpmap_str(&m, "tool", tool);
	if (json_value_to_msgpack(args, mpmap_key(&m, "args"), err,
	    errlen) == -1) {
		msgbuf_free(&mb);
		ac->want = 0;
		return -1;
	}
	send_req(ac, &mb, &m);
	return 0;
}

void
aconn_wait(struct aconn *ac, const char *approval_id, uint64_t timeout_ms)
{
	struct msgbuf	mb;
	struct mpmap	m;

	begin(ac, &mb, &m, "wait");
	mpmap_str(&m, "approval_id", approval_id);
	mpmap_uint(&m, "timeout_ms", timeout_ms);
	send_req(ac, &mb, &m);
}

void
aconn_resume(struct aconn *ac, const char *checkpoint)
{
	struct msgbuf	mb;
	struct mpmap	m;

	begin(ac, &mb, &m, "resume");
	mpmap_str(&m, "checkpoint", checkpoint);
	send_req(ac, &mb, &m);
}

char *
ans_str(const msgpack_object *ans, const char *key)
{
	const msgpack_object	*v = mp_get(ans, key);

	return v == NULL ? NULL : mp_strdup(v);
}

int
ans_is(const msgpack_object *ans, const char *key, const char *val)
{
	const msgpack_object	*v = mp_get(ans, key);

	return v != NULL && mp_streq(v, val);
}
