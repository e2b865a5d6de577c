/*
 * The two halves of systemd's protocol gatewayd speaks, written out here
 * rather than linking libsystemd for two small things:
 *
 * - socket activation: the agent socket may come as fd 3 (LISTEN_FDS=1,
 *   LISTEN_PID ours, LISTEN_FDNAMES "agent" when the socket unit names
 *   it), and must be what we would have bound ourselves: a listening
 *   AF_UNIX stream socket at the config's path, which is where the
 *   executor checks that every agent connection was accepted;
 * - notification: one datagram per state to $NOTIFY_SOCKET (a path, or
 *   '@' for an abstract name): READY=1, STOPPING=1, WATCHDOG=1.
 *
 * The notify socket is connected before the drop, while its path is
 * still reachable: the chroot and the network namespace of our own hide
 * it afterwards, and a connected socket keeps working.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "gatewayd/gatewayd.h"

#define SD_LISTEN_FDS_START	3
/* FileDescriptorName= in systemd/toolgate.socket. */
#define SD_AGENT_FD_NAME	"agent"

static int		 notify_fd = -1;
static uint64_t		 watchdog_usec;
static struct event	*watchdog_ev;
static int		 ping_out;	/* a PING waits for its PONG */

/* A decimal number, whole, or -1: atol() would take "12x" for 12. */
static long long
env_number(const char *name)
{
	const char	*s = getenv(name);
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return -1;
	return v;
}

/* Is 'fd' a listening Unix stream socket bound at 'path'?  NULL, or why not. */
static const char *
agent_socket_check(int fd, const char *path)
{
	struct sockaddr_un	sun;
	socklen_t		len = sizeof(sun);
	int			v;
	socklen_t		vlen = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vlen) == -1)
		return "not a socket";
	if (v != AF_UNIX)
		return "not an AF_UNIX socket";
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) == -1 ||
	    v != SOCK_STREAM)
		return "not a stream socket (ListenStream=)";
	vlen = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) == -1 ||
	    v == 0)
		return "not listening (Accept=yes is not supported)";
	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1)
		return "no address";
	/* The executor accepts only connections made on this path. */
	if (len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(sun.sun_path, path, sizeof(sun.sun_path)) != 0)
		return "bound elsewhere than paths.agent_socket";
	return NULL;
}

int
sd_agent_socket(const char *path)
{
	const char	*names = getenv("LISTEN_FDNAMES"), *why;
	long long	 pid = env_number("LISTEN_PID"), n;
	int		 fd;

	if (getenv("LISTEN_FDS") == NULL || pid != (long long)getpid())
		return -1;
	if ((n = env_number("LISTEN_FDS")) != 1)
		fatalx("socket activation: LISTEN_FDS=%s; expected 1, the agent"
		    " socket alone", getenv("LISTEN_FDS"));
	if (names != NULL && strcmp(names, SD_AGENT_FD_NAME) != 0)
		fatalx("socket activation: LISTEN_FDNAMES=%s; expected \"%s\"",
		    names, SD_AGENT_FD_NAME);
	/* Not for the executor or anything it starts. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if ((why = agent_socket_check(SD_LISTEN_FDS_START, path)) != NULL)
		fatalx("socket activation: fd %d is %s (paths.agent_socket %s)",
		    SD_LISTEN_FDS_START, why, path);
	/* Keep fd 3 free for the executor's end of the socketpair. */
	if ((fd = fcntl(SD_LISTEN_FDS_START, F_DUPFD_CLOEXEC, 10)) == -1)
		fatal("socket activation: dup");
	close(SD_LISTEN_FDS_START);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		fatal("socket activation: O_NONBLOCK");
	log_info("agent socket %s from the service manager", path);
	return fd;
}

void
sd_notify_open(void)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	size_t			 len;

	if (path == NULL)
		return;
	/* The executor never speaks for us: NotifyAccess=main. */
	unsetenv("NOTIFY_SOCKET");
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET %s: not a Unix socket path", path);
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd == -1 || connect(notify_fd, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + len) == -1) {
		log_warn("NOTIFY_SOCKET %s", path);
		if (notify_fd != -1)
			close(notify_fd);
		notify_fd = -1;
	}
}

void
sd_notify_send(const char *state)
{
	if (notify_fd == -1)
		return;
	/* Never block the loop on systemd: a lost datagram is a lost ping. */
	if (send(notify_fd, state, strlen(state), MSG_DONTWAIT |
	    MSG_NOSIGNAL) == -1)
		log_warn("sd_notify %s", state);
}

void
sd_watchdog_init(void)
{
	long long	usec = env_number("WATCHDOG_USEC");
	long long	pid = env_number("WATCHDOG_PID");

	/* WATCHDOG_PID, when set, says whose watchdog it is. */
	if (getenv("WATCHDOG_PID") != NULL && pid != (long long)getpid())
		usec = -1;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (usec > 0 && notify_fd != -1)
		watchdog_usec = (uint64_t)usec;
}

static void
pong(void)
{
	ping_out = 0;
	sd_notify_send("WATCHDOG=1");
}

/*
 * WATCHDOG=1 says both processes still work, so it goes out only when
 * the executor has answered a PING sent since the last one: an executor
 * stuck in its loop, or a gatewayd stuck in its own, stops the pings and
 * systemd restarts the pair after WatchdogSec.  One PING at a time: a
 * slow executor is not sent more of them.
 */
static void
watchdog_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (ping_out)
		return;
	ping_out = 1;
	exec_ping(pong);
}

void
sd_watchdog_start(struct event_base *base)
{
	struct timeval	tv;
	uint64_t	every = watchdog_usec / 4;

	if (watchdog_usec == 0)
		return;
	/* Four chances per interval: one late answer is not a restart. */
	tv.tv_sec = (time_t)(every / 1000000);
	tv.tv_usec = (suseconds_t)(every % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_tick, NULL);
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) == -1)
		fatalx("cannot start the watchdog");
	log_info("watchdog: a PING to the executor every %llu ms",
	    (unsigned long long)(every / 1000));
	watchdog_tick(-1, 0, NULL);
}

void
sd_watchdog_stop(void)
{
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	watchdog_ev = NULL;
}
