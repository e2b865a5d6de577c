#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/peers.h"
#include "proto/proto.h"

#define NBUCKETS	4096	/* a power of two */

struct peer {
	struct peer	*next;
	uint64_t	 conn;
	uid_t		 uid;
	gid_t		 gid;
};

static struct peer	*buckets[NBUCKETS];
static struct event	*peer_ev;
static size_t		 npeers;

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

/*
 * One message from the channel: 0 done, 1 nothing waiting.  Anything
 * else than 8 bytes with exactly one socket is fatal: gatewayd is the
 * only one at the other end.
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
	struct peer		*p, **pp;
	uint64_t		 conn = 0;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	ssize_t			 n;
	int			 fd, i;

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
	if (n != 8 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || c == NULL ||
	    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) ||
	    CMSG_NXTHDR(&msg, c) != NULL)
		fatalx("gatewayd sent a bad message on the peer channel");
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	for (i = 0; i < 8; i++)
		conn = conn << 8 | idb[i];
	if (peer_cred(fd, &uid, &gid, &pid) == -1)
		fatal("peer channel: SO_PEERCRED");
	close(fd);
	if (*(pp = slot(conn)) != NULL)
		fatalx("gatewayd passed connection %llu twice",
		    (unsigned long long)conn);
	p = xcalloc(1, sizeof(*p));
	p->conn = conn;
	p->uid = uid;
	p->gid = gid;
	*pp = p;
	npeers++;
	log_debug("peer %llu: uid %u gid %u pid %d", (unsigned long long)conn,
	    (unsigned)uid, (unsigned)gid, (int)pid);
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
peers_init(void)
{
	if (fcntl(EXECUTOR_PEER_FD, F_GETFD) == -1)
		fatalx("fd %d (the peer channel) is not open: the executor is"
		    " started by gatewayd", EXECUTOR_PEER_FD);
	evutil_make_socket_closeonexec(EXECUTOR_PEER_FD);
	peer_ev = event_new(ex->base, EXECUTOR_PEER_FD, EV_READ | EV_PERSIST,
	    peer_read, NULL);
	if (peer_ev == NULL || event_add(peer_ev, NULL) == -1)
		fatalx("peer channel: event");
}

int
peers_lookup(uint64_t conn, uid_t *uid, gid_t *gid)
{
	struct peer	*p;

	/*
	 * gatewayd sends a connection's socket before any request from it,
	 * so one not read yet is already waiting in the channel.
	 */
	if ((p = *slot(conn)) == NULL) {
		while (peer_recv_one() == 0)
			;
		if ((p = *slot(conn)) == NULL)
			return -1;
	}
	*uid = p->uid;
	*gid = p->gid;
	return 0;
}

void
peers_forget(uint64_t conn)
{
	struct peer	**pp = slot(conn), *p = *pp;

	if (p == NULL)
		return;
	*pp = p->next;
	free(p);
	npeers--;
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
			free(p);
		}
	}
	npeers = 0;
	if (peer_ev != NULL)
		event_free(peer_ev);
	peer_ev = NULL;
}
