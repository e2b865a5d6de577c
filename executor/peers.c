#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/policy.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/response.h"
#include "executor/peers.h"

#define NBUCKETS	4096	/* a power of two */

/* One agent connection: its socket stays open here until CONN_GONE. */
struct peer {
	struct peer	*next;		/* by conn */
	struct peer	*inext;		/* by inode */
	uint64_t	 conn;
	dev_t		 dev;
	ino_t		 ino;
	int		 fd;
	uid_t		 uid;
	gid_t		 gid;
	struct event	*ev_hup;	/* the agent hanging up (EV_CLOSED) */
};

static struct peer	*buckets[NBUCKETS];
static struct peer	*ibuckets[NBUCKETS];
static struct event	*peer_ev;
static size_t		 npeers;		/* with a socket */
static size_t		 nrefused;	/* without: no descriptor left */
static uint64_t		 nstrangers;	/* passed peers with no principal, ever */
static char		*agent_path;
/* The entry function's: ends what a hung-up agent owns. */
static void		(*on_hung_up)(uint64_t);

static struct peer **
slot(uint64_t conn)
{
	struct peer	**pp;

	for (pp = &buckets[(conn * 0x9e3779b97f4a7c15ULL) >> 52 &
	    (NBUCKETS - 1)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->conn == conn)
			break;
	return pp;
}

static struct peer **
islot(dev_t dev, ino_t ino)
{
	struct peer	**pp;
	uint64_t	  h = ((uint64_t)ino ^ (uint64_t)dev << 32) *
			    0x9e3779b97f4a7c15ULL;

	for (pp = &ibuckets[h >> 52 & (NBUCKETS - 1)]; *pp != NULL;
	    pp = &(*pp)->inext)
		if ((*pp)->ino == ino && (*pp)->dev == dev)
			break;
	return pp;
}

/*
 * A socket gatewayd passes must be one it accepted on the agent socket:
 * connected (not the listener itself, whose credentials are gatewayd's
 * own) and bound to the path we know.  Anything else (a socketpair, a
 * socket on another path, an abstract socket of some other process) would
 * lend gatewayd a peer's uid that never connected to us: a lie, so fatal.
 */
static void
check_agent_socket(int fd, uint64_t conn)
{
	struct sockaddr_un	sun;
	socklen_t		len = sizeof(sun), olen;
	size_t			plen = strlen(agent_path), n;
	int			listening = 0;

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1)
		fatalx("gatewayd passed connection %llu, which is not a socket",
		    (unsigned long long)conn);
	n = len > offsetof(struct sockaddr_un, sun_path) ?
	    len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (len > sizeof(sun) || sun.sun_family != AF_UNIX || n == 0 ||
	    sun.sun_path[0] == '\0' || strnlen(sun.sun_path, n) != plen ||
	    memcmp(sun.sun_path, agent_path, plen) != 0)
		fatalx("gatewayd passed connection %llu, which did not come"
		    " through the agent socket %s", (unsigned long long)conn,
		    agent_path);
	olen = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) ==
	    -1 || listening)
		fatalx("gatewayd passed the agent socket %s itself as"
		    " connection %llu", agent_path, (unsigned long long)conn);
}

/*
 * The agent hung up (or shut down its writing half, which gatewayd takes
 * as the end too).  gatewayd says so with CONN_GONE, but only once it
 * reads the connection again, which it stops doing while the agent has
 * max_inflight requests out: so the executor ends what the agent owns as
 * soon as the kernel says it left.  Once: the event is not persistent.
 */
static void
peer_hung_up(evutil_socket_t fd, short what, void *arg)
{
	struct peer	*p = arg;

	(void)fd;
	(void)what;
	log_debug("peer %llu: hung up", (unsigned long long)p->conn);
	on_hung_up(p->conn);
}

/* Watch the socket for the hang-up, where the backend can (epoll can). */
static void
peer_watch(struct peer *p)
{
	if (!(event_base_get_features(ex->base) & EV_FEATURE_EARLY_CLOSE))
		return;
	p->ev_hup = event_new(ex->base, p->fd, EV_CLOSED, peer_hung_up, p);
	if (p->ev_hup == NULL || event_add(p->ev_hup, NULL) == -1)
		fatalx("peer %llu: cannot watch for its hang-up",
		    (unsigned long long)p->conn);
}

/*
 * A connection whose socket we cannot keep: no descriptor was left for
 * it.  It is kept by id, without a socket, so that its requests are
 * answered unavailable (never run, never fatal) until CONN_GONE, and
 * gatewayd is told to close it.  Whose it is we cannot tell, so it may
 * be a stranger's: gatewayd may have answered it one refusal already.
 */
static void
peer_refuse(struct peer **pp, uint64_t conn)
{
	struct peer	*p;
	struct msgbuf	 mb;
	struct mpmap	 body;

	log_warnx("peer %llu: no descriptor left for it (%zu in use, limit"
	    " %zu): refused, with %zu more", (unsigned long long)conn,
	    fds_held(), fds_limit(), nrefused);
	p = xcalloc(1, sizeof(*p));
	p->conn = conn;
	p->fd = -1;
	*pp = p;
	nrefused++;
	nstrangers++;
	msgbuf_init(&mb);
	msgbuf_begin_msg(&mb, MSG_CONN_REFUSED, 0, &body);
	mpmap_uint(&body, "conn", conn);
	mpmap_str(&body, "message", "the gateway is out of file"
	    " descriptors: try again later");
	mpmap_end(&body);
	gw_send(&mb);
	msgbuf_free(&mb);
}

/* Keep fd as conn's socket; fatal unless it is a real agent's. */
static void
peer_keep(struct peer **pp, uint64_t conn, int fd)
{
	struct peer	*p, **ipp;
	struct stat	 st;
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;

	check_agent_socket(fd, conn);
	if (fstat(fd, &st) == -1)
		fatal("peer channel: fstat");
	/* Our copy keeps it open: a socket seen twice is the same agent. */
	if ((p = *(ipp = islot(st.st_dev, st.st_ino))) != NULL)
		fatalx("gatewayd passed one socket twice, as connection %llu"
		    " and %llu", (unsigned long long)p->conn,
		    (unsigned long long)conn);
	if (peer_cred(fd, &uid, &gid, &pid) == -1)
		fatal("peer channel: SO_PEERCRED");
	p = xcalloc(1, sizeof(*p));
	p->conn = conn;
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->fd = fd;
	p->uid = uid;
	p->gid = gid;
	*pp = p;
	*ipp = p;
	npeers++;
	fds_hold(FDS_PEER);
	peer_watch(p);
	if (policy_principal(ex->conf, uid, gid) == NULL)
		nstrangers++;
	log_debug("peer %llu: uid %u gid %u pid %d", (unsigned long long)conn,
	    (unsigned)uid, (unsigned)gid, (int)pid);
}

/*
 * One message from the channel: 0 done, 1 nothing waiting.  gatewayd is
 * the only one at the other end, so anything else than 8 bytes with
 * exactly one socket is fatal, with one exception that is not its doing:
 * MSG_CTRUNC with no socket at all is the kernel telling us our own
 * descriptor table was full, and costs that connection only.  A socket
 * that arrived while agents have used up their share is refused alike.
 */
static int
peer_recv_one(void)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(2 * sizeof(int))];
	}			 cm;
	unsigned char		 idb[9];
	struct iovec		 iov = { idb, sizeof(idb) };
	struct msghdr		 msg;
	struct cmsghdr		*c;
	struct peer		**pp;
	uint64_t		 conn;
	ssize_t			 n;
	int			 fd;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	n = recvmsg(EXECUTOR_PEER_FD, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n == -1)
		fatal("peer channel");
	if (n == 0)
		return 1;	/* gatewayd is gone: the socketpair says so too */
	c = CMSG_FIRSTHDR(&msg);
	conn = be64_get(idb);
	if (n == 8 && c == NULL && (msg.msg_flags & MSG_CTRUNC) &&
	    !(msg.msg_flags & MSG_TRUNC)) {
		if (*(pp = slot(conn)) != NULL)
			fatalx("gatewayd passed connection %llu twice",
			    (unsigned long long)conn);
		peer_refuse(pp, conn);
		return 0;
	}
	if (n != 8 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || c == NULL ||
	    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) ||
	    CMSG_NXTHDR(&msg, c) != NULL)
		fatalx("gatewayd sent a bad message on the peer channel");
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	if (*(pp = slot(conn)) != NULL)
		fatalx("gatewayd passed connection %llu twice",
		    (unsigned long long)conn);
	if (!fds_room(FDS_PEER)) {
		close(fd);
		peer_refuse(pp, conn);
		return 0;
	}
	peer_keep(pp, conn, fd);
	return 0;
}

static void
peer_read(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (peer_recv_one() == 0)
		;
}

void
peers_init(const char *agent_socket, void (*hung_up)(uint64_t))
{
	on_hung_up = hung_up;
	agent_path = xstrdup(agent_socket);
	if (fcntl(EXECUTOR_PEER_FD, F_GETFD) == -1)
		fatalx("fd %d (the peer channel) is not open: the executor is"
		    " started by gatewayd", EXECUTOR_PEER_FD);
	evutil_make_socket_closeonexec(EXECUTOR_PEER_FD);
	peer_ev = event_new(ex->base, EXECUTOR_PEER_FD, EV_READ | EV_PERSIST,
	    peer_read, NULL);
	if (peer_ev == NULL || event_add(peer_ev, NULL) == -1)
		fatalx("peer channel: event");
}

static struct peer *
peer_find(uint64_t conn)
{
	struct peer	*p;

	/*
	 * gatewayd sends a connection's socket before any request from it,
	 * so one not read yet is already waiting in the channel.
	 */
	if ((p = *slot(conn)) == NULL) {
		while (peer_recv_one() == 0)
			;
		p = *slot(conn);
	}
	return p;
}

int
peers_lookup(uint64_t conn, uid_t *uid, gid_t *gid)
{
	struct peer	*p;

	if ((p = peer_find(conn)) == NULL)
		return -1;
	if (p->fd == -1)
		return -2;
	*uid = p->uid;
	*gid = p->gid;
	return 0;
}

int
peers_refused(uint64_t conn)
{
	struct peer	*p = peer_find(conn);

	return p != NULL && p->fd == -1;
}

/*
 * Asked of the kernel, never read from the socket (its bytes are
 * gatewayd's to read): a peer that closed, or shut down its writing
 * half, has hung up.  An error counts as hung up too.
 */
int
peers_hung_up(uint64_t conn)
{
	struct peer	*p;
	struct pollfd	 pfd;
	int		 n;

	if ((p = peer_find(conn)) == NULL)
		return -1;
	if (p->fd == -1)
		return 1;	/* refused: nobody to act for */
	pfd.fd = p->fd;
	pfd.events = POLLRDHUP | POLLHUP;
	pfd.revents = 0;
	while ((n = poll(&pfd, 1, 0)) == -1 && errno == EINTR)
		;
	if (n == -1)
		fatal("poll on connection %llu", (unsigned long long)conn);
	return n == 1 && pfd.revents != 0;
}

static void
peer_free(struct peer *p)
{
	struct peer	**ipp;

	if (p->fd == -1) {
		nrefused--;
		free(p);
		return;
	}
	ipp = islot(p->dev, p->ino);
	*ipp = p->inext;
	if (p->ev_hup != NULL)
		event_free(p->ev_hup);
	close(p->fd);
	free(p);
	npeers--;
	fds_release(FDS_PEER);
}

/*
 * CONN_GONE comes on the socketpair, the socket on the peer channel: a
 * connection that closed at once may not be read from the channel yet.
 */
void
peers_forget(uint64_t conn)
{
	struct peer	**pp, *p;

	if (peer_find(conn) == NULL)
		return;
	pp = slot(conn);
	p = *pp;
	*pp = p->next;
	peer_free(p);
}

uint64_t
peers_strangers(void)
{
	/* What gatewayd accepted before it said so is in the channel. */
	while (peer_recv_one() == 0)
		;
	return nstrangers;
}

size_t
peers_count(void)
{
	return npeers;
}

void
peers_shutdown(void)
{
	struct peer	*p;
	size_t		 i;

	for (i = 0; i < NBUCKETS; i++) {
		while ((p = buckets[i]) != NULL) {
			buckets[i] = p->next;
			peer_free(p);
		}
	}
	free(agent_path);
	agent_path = NULL;
	if (peer_ev != NULL)
		event_free(peer_ev);
	peer_ev = NULL;
}
