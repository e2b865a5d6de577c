/*
 * gatewayd: the entry point.  Loads the config, binds the agent socket,
 * starts the executor on a socketpair, drops privileges, and serves
 * agents.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "gatewayd/gatewayd.h"
#include "gatewayd/runs.h"
#include "proto/proto.h"

#define SD_LISTEN_FDS_START	3

struct gateway	*gw;

static int	 agent_fd = -1;
static int	 notify_fd = -1;
static pid_t	 executor_pid;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: gatewayd -c CONFIG [-fv] [--agent-socket PATH]"
	    " [--control-socket PATH]\n"
	    "                [--state-dir DIR] [--executor PATH]\n");
	exit(2);
}

/* systemd socket activation: the agent socket may come as fd 3. */
static int
listen_fd_from_systemd(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		return -1;
	if (atoi(fds) != 1)
		fatalx("systemd passed %s sockets; expected the agent socket"
		    " alone", fds);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	evutil_make_socket_nonblocking(SD_LISTEN_FDS_START);
	/* Keep fd 3 free for the executor's end of the socketpair. */
	return fcntl(SD_LISTEN_FDS_START, F_DUPFD_CLOEXEC, 10);
}

/*
 * Type=notify: connect to systemd's socket now, while the path is still
 * reachable; READY=1 is sent once the executor has answered.
 */
static void
notify_open(void)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;

	if (path == NULL || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd != -1 && connect(notify_fd, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + strlen(path)) == -1) {
		log_warn("NOTIFY_SOCKET %s", path);
		close(notify_fd);
		notify_fd = -1;
	}
}

static void
notify_ready(void)
{
	if (notify_fd != -1 && send(notify_fd, "READY=1", 7, 0) == -1)
		log_warn("sd_notify");
}

static void
default_executor(char *out, size_t len)
{
	char	self[PATH_MAX];
	ssize_t	n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	self[n] = '\0';
	snprintf(out, len, "%s/executor", dirname(self));
}

static void
spawn_executor(const char *path, char **argv, int fd, int peerfd)
{
	pid_t	pid;
	int	a, b;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		/*
		 * Both ends go above 3 and 4 first, so neither dup2() can
		 * land on the other; dup2() clears close-on-exec.
		 */
		if ((a = fcntl(fd, F_DUPFD_CLOEXEC, 10)) == -1 ||
		    (b = fcntl(peerfd, F_DUPFD_CLOEXEC, 10)) == -1 ||
		    dup2(a, EXECUTOR_FD) == -1 ||
		    dup2(b, EXECUTOR_PEER_FD) == -1)
			_exit(127);
		execv(path, argv);
		fprintf(stderr, "gatewayd: cannot execute %s: %s\n", path,
		    strerror(errno));
		_exit(127);
	}
	executor_pid = pid;
}

/*
 * Create the state dir and the chroot in it.  Never shape someone else's
 * dir: one that is not ours, or that others may write to, is refused, and
 * the chroot is changed only through a descriptor that is not a link.
 * The executor checks everything under the state dir again (statedir.c).
 */
static void
state_dir_prepare(const char *dir, char *jail, size_t len)
{
	struct stat	st;
	int		fd;

	if (mkdir_p(dir, 0700) == -1)
		fatal("%s", dir);
	if (lstat(dir, &st) == -1)
		fatal("%s", dir);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s: not a directory: refusing the state dir", dir);
	if (st.st_uid != geteuid())
		fatalx("%s: owned by uid %u, not %u: refusing the state dir",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		fatalx("%s: writable by group or others: refusing the state"
		    " dir", dir);
	snprintf(jail, len, "%s/empty", dir);
	if (mkdir(jail, 0755) == -1 && errno != EEXIST)
		fatal("%s", jail);
	fd = open(jail, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		fatal("%s", jail);
	if (fstat(fd, &st) == -1)
		fatal("%s", jail);
	if (st.st_uid != geteuid())
		fatalx("%s: owned by uid %u, not %u", jail,
		    (unsigned)st.st_uid, (unsigned)geteuid());
	if (fchmod(fd, 0755) == -1)
		fatal("%s", jail);
	close(fd);
}

static void
on_ready(void)
{
	agent_init(agent_fd);
	notify_ready();
	log_info("ready: agent socket %s, writes %s", gw->conf->agent_socket,
	    gw->conf->writes_enabled && gw->writes_on ? "enabled" :
	    "disabled");
}

static void
on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	/* Off here at once; the executor stores it and turns it off too. */
	gw->writes_on = 0;
	exec_writes_off();
	log_info("SIGUSR1: writes disabled");
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopexit(gw->base, NULL);
}

/* Closing the socketpair tells the executor to finish and exit. */
static int
reap_executor(void)
{
	int	status, i;

	for (i = 0; i < 300; i++) {
		if (waitpid(executor_pid, &status, WNOHANG) == executor_pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		usleep(100000);
	}
	log_warnx("the executor did not exit in 30 s");
	kill(executor_pid, SIGKILL);
	waitpid(executor_pid, &status, 0);
	return 1;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "agent-socket", required_argument, NULL, 'A' },
		{ "control-socket", required_argument, NULL, 'C' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "executor", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 }
	};
	static struct gateway	 gws;
	const char		*cfile = NULL, *asock = NULL, *csock = NULL;
	const char		*sdir = NULL, *expath = NULL;
	char			 err[4096], cpath[PATH_MAX], exbuf[PATH_MAX];
	char			 jail[PATH_MAX], *xargv[16];
	struct event		*ev_usr1, *ev_term, *ev_int;
	int			 ch, foreground = 0, verbose = 0, sp[2], pp[2];
	int			 xargc;
	int			 privileged, rc;

	while ((ch = getopt_long(argc, argv, "c:fv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfile = optarg; break;
		case 'f': foreground = 1; break;
		case 'v': verbose++; break;
		case 'A': asock = optarg; break;
		case 'C': csock = optarg; break;
		case 'S': sdir = optarg; break;
		case 'E': expath = optarg; break;
		default: usage();
		}
	}
	if (cfile == NULL || optind != argc)
		usage();
	log_init("gatewayd", foreground, verbose);
	gw = &gws;
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	if (realpath(cfile, cpath) == NULL)
		fatal("%s", cfile);
	if (file_sha256_hex(cpath, gw->config_hash) == -1)
		fatal("%s", cpath);
	if ((gw->conf = config_load(cpath, err, sizeof(err))) == NULL)
		config_fatal(err);
	if (gw->conf->allow_self_approval)
		log_warnx("WARNING: operators.allow_self_approval is set: "
		    "agents may approve their own writes (development and "
		    "tests only)");
	if (asock != NULL) {
		free(gw->conf->agent_socket);
		gw->conf->agent_socket = xstrdup(asock);
	}
	if (csock != NULL) {
		free(gw->conf->control_socket);
		gw->conf->control_socket = xstrdup(csock);
	}
	if (sdir != NULL) {
		free(gw->conf->state_dir);
		gw->conf->state_dir = xstrdup(sdir);
	}
	if (expath == NULL) {
		default_executor(exbuf, sizeof(exbuf));
		expath = exbuf;
	}
	privileged = geteuid() == 0;
	if (!privileged)
		log_warnx("WARNING: started as uid %u, not root: gatewayd and"
		    " the executor both run as this user and privileges are"
		    " NOT separated (development mode)", (unsigned)getuid());

	/* Everything that needs privileges happens before the drop. */
	if ((agent_fd = listen_fd_from_systemd()) == -1) {
		char	dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", gw->conf->agent_socket);
		if (mkdir_p(dirname(dir), 0755) == -1)
			fatal("%s", gw->conf->agent_socket);
		agent_fd = unix_listen(gw->conf->agent_socket, 0666, err,
		    sizeof(err));
		if (agent_fd == -1)
			fatalx("agent socket: %s", err);
	}
	state_dir_prepare(gw->conf->state_dir, jail, sizeof(jail));
	notify_open();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0, pp) == -1)
		fatal("socketpair");
	xargc = 0;
	xargv[xargc++] = "executor";
	xargv[xargc++] = "-c";
	xargv[xargc++] = cpath;
	if (foreground)
		xargv[xargc++] = "-f";
	if (verbose)
		xargv[xargc++] = "-v";
	/* The executor takes only sockets accepted on this path. */
	xargv[xargc++] = "--agent-socket";
	xargv[xargc++] = gw->conf->agent_socket;
	xargv[xargc++] = "--control-socket";
	xargv[xargc++] = gw->conf->control_socket;
	xargv[xargc++] = "--state-dir";
	xargv[xargc++] = gw->conf->state_dir;
	xargv[xargc] = NULL;
	spawn_executor(expath, xargv, sp[1], pp[1]);
	close(sp[1]);
	close(pp[1]);

	if (privileged)
		privdrop(gw->conf->user, jail);
	else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("PR_SET_NO_NEW_PRIVS");
	log_setproc("gatewayd");

	/*
	 * Two priorities: signals first.  SIGUSR1 must be handled before any
	 * agent frame read in the same turn of the loop, so no write admitted
	 * after kill(2) returned gets past the kill switch.
	 */
	if ((gw->base = event_base_new()) == NULL ||
	    event_base_priority_init(gw->base, 2) == -1)
		fatalx("event_base_new");
	runs_init();
	exec_link_init(sp[0], pp[0]);
	ev_usr1 = evsignal_new(gw->base, SIGUSR1, on_sigusr1, NULL);
	ev_term = evsignal_new(gw->base, SIGTERM, on_sigterm, NULL);
	ev_int = evsignal_new(gw->base, SIGINT, on_sigterm, NULL);
	if (ev_usr1 == NULL || ev_term == NULL || ev_int == NULL ||
	    event_priority_set(ev_usr1, 0) == -1 ||
	    evsignal_add(ev_usr1, NULL) == -1 ||
	    evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1)
		fatalx("cannot install signal events");
	exec_hello(on_ready);
	event_base_dispatch(gw->base);

	agent_shutdown();
	exec_link_close();
	rc = reap_executor();
	runs_free();
	event_free(ev_usr1);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(gw->base);
	config_free(gw->conf);
	log_info("exiting");
	return rc;
}
