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
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "common/sigevents.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "gatewayd/runs.h"
#include "gatewayd/gatewayd.h"

/*
 * How long past limits.shutdown_s we wait for the executor to exit: more
 * than its own last resort (SHUTDOWN_ALARM_S, executor.h), so it ends
 * itself first whenever it can.
 */
#define GW_REAP_MARGIN_S	15

struct gateway	*gw;

static int	 agent_fd = -1;
static pid_t	 executor_pid;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: gatewayd -c CONFIG [-fnv] [--agent-socket PATH]"
	    " [--control-socket PATH]\n"
	    "                [--state-dir DIR] [--executor PATH]\n");
	exit(2);
}

/*
 * Where the executor is: --executor, else for an installed
 * gatewayd the path make install compiled in (EXECUTOR_PATH, from
 * libexecdir), and nothing else: never an "executor" that happens to
 * sit beside it in sbin.  The build tree's gatewayd, built without it,
 * runs the executor next to itself, so the tests, the demo and the bench
 * run the pair they just built.
 */
static const char *
executor_path(const char *opt, char *out, size_t len)
{
#ifndef EXECUTOR_PATH
	char	self[PATH_MAX];
	ssize_t	n;
#endif

	if (opt != NULL)
		return opt;
#ifdef EXECUTOR_PATH
	snprintf(out, len, "%s", EXECUTOR_PATH);
#else
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	self[n] = '\0';
	snprintf(out, len, "%s/executor", dirname(self));
#endif
	return out;
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
	metrics_start();
	/* Both processes are up and the executor has answered. */
	sd_notify_send("READY=1");
	sd_watchdog_start(gw->base);
	log_info("ready: agent socket %s, writes %s", gw->conf->agent_socket,
	    gw->conf->writes_enabled && gw->writes_on ? "enabled" :
	    "disabled");
	sandbox_probe();
}

/*
 * SIGUSR1 has a handler of our own, not libevent's: it notes the signal
 * at once, and the write gate (agent.c) looks at the note before every
 * write.  A libevent signal event runs only when the loop comes back to
 * it, after the callback that was running when the signal came, which may
 * read and admit writes sent after kill(2) returned.  The pipe wakes the
 * loop to tell the executor even when no write comes.
 */
static volatile sig_atomic_t	usr1_seen;
static int			usr1_pipe[2] = { -1, -1 };
static struct event		*usr1_ev;

static void
usr1_handler(int sig)
{
	int	saved = errno;
	ssize_t	n;

	(void)sig;
	usr1_seen = 1;
	/* Its result does not matter: a full pipe has a wake-up already. */
	n = write(usr1_pipe[1], "", 1);
	(void)n;
	errno = saved;
}

void
killswitch_check(void)
{
	if (!usr1_seen)
		return;
	usr1_seen = 0;
	/* Off here at once; the executor stores it and turns it off too. */
	gw->writes_on = 0;
	exec_writes_off();
	log_info("SIGUSR1: writes disabled");
}

static void
on_usr1_pipe(evutil_socket_t fd, short what, void *arg)
{
	char	buf[64];

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	killswitch_check();
}

static void
usr1_init(void)
{
	struct sigaction	sa;

	if (pipe2(usr1_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	usr1_ev = event_new(gw->base, usr1_pipe[0], EV_READ | EV_PERSIST,
	    on_usr1_pipe, NULL);
	if (usr1_ev == NULL || event_priority_set(usr1_ev, 0) == -1 ||
	    event_add(usr1_ev, NULL) == -1)
		fatalx("cannot watch SIGUSR1");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) == -1)
		fatal("sigaction SIGUSR1");
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: shutting down", (int)sig);
	sd_notify_send("STOPPING=1");
	sd_watchdog_stop();
	event_base_loopexit(gw->base, NULL);
}

/*
 * SIGHUP: nothing of ours to reopen or reload (the config is read at start
 * and we log to stderr or syslog); the audit log is the executor's, so
 * that either process's SIGHUP reopens it (logrotate may signal either).
 */
static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	/*
	 * The log is the executor's, and it is not ours to signal (it runs
	 * as root): it is asked on the socketpair, as for SIGUSR1.
	 */
	log_info("SIGHUP: the executor reopens the audit log (the config is"
	    " read at start: restart to change it)");
	exec_audit_reopen();
}

/* Reap the executor if it has exited by 'deadline' (mono_ms()): 1, else 0. */
static int
reap_by(uint64_t deadline, int *status)
{
	for (;;) {
		if (waitpid(executor_pid, status, WNOHANG) == executor_pid)
			return 1;
		if (mono_ms() >= deadline)
			return 0;
		usleep(100000);
	}
}

/*
 * Closing the socketpair tells the executor to finish and exit: it gives
 * running tools limits.shutdown_s, then kills them, and SIGALRM ends it
 * SHUTDOWN_ALARM_S later should its loop be stuck.  Wait a little longer
 * than that, never blocking; then kill it if we may (development mode:
 * same uid).  After the drop we may not: log and go, and the service
 * manager ends what is left (KillMode=mixed).
 */
static int
reap_executor(void)
{
	uint64_t	wait_s = gw->conf->shutdown_s + GW_REAP_MARGIN_S;
	int		status;

	if (reap_by(mono_ms() + wait_s * 1000, &status))
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	log_warnx("the executor (pid %d) did not exit in %llu s",
	    (int)executor_pid, (unsigned long long)wait_s);
	if (kill(executor_pid, SIGKILL) == -1) {
		log_warn("cannot kill the executor (pid %d): leaving it to the"
		    " service manager", (int)executor_pid);
		return 1;
	}
	/* SIGKILL ends even a stopped process; still, never wait forever. */
	if (!reap_by(mono_ms() + 5000, &status))
		log_warnx("the executor (pid %d) outlived SIGKILL",
		    (int)executor_pid);
	return 1;
}

/* What the command line says; paths given replace the config's. */
struct opts {
	const char	*cfile;
	const char	*asock;
	const char	*csock;
	const char	*sdir;
	const char	*expath;
	int		 foreground;
	int		 configtest;
	int		 verbose;
};

static void
parse_opts(int argc, char *argv[], struct opts *o)
{
	static const struct option longopts[] = {
		{ "agent-socket", required_argument, NULL, 'A' },
		{ "control-socket", required_argument, NULL, 'C' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "executor", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:fnv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->cfile = optarg; break;
		case 'f': o->foreground = 1; break;
		case 'n': o->configtest = 1; break;
		case 'v': o->verbose++; break;
		case 'A': o->asock = optarg; break;
		case 'C': o->csock = optarg; break;
		case 'S': o->sdir = optarg; break;
		case 'E': o->expath = optarg; break;
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

/* The config, by its real path: the executor reads the same file. */
static void
config_read(const struct opts *o, char *cpath)
{
	char	err[4096];

	if (realpath(o->cfile, cpath) == NULL)
		fatal("%s", o->cfile);
	if (file_sha256_hex(cpath, gw->config_hash) == -1)
		fatal("%s", cpath);
	if ((gw->conf = config_load(cpath, err, sizeof(err))) == NULL)
		config_fatal(err);
	if (gw->conf->allow_self_approval)
		log_warnx("WARNING: operators.allow_self_approval is set: "
		    "agents may approve their own writes (development and "
		    "tests only)");
	override(&gw->conf->agent_socket, o->asock);
	override(&gw->conf->control_socket, o->csock);
	override(&gw->conf->state_dir, o->sdir);
}

/* Everything that needs privileges happens before the drop. */
static void
privileged_prepare(char *jail, size_t len)
{
	char	dir[PATH_MAX], err[512];

	if ((agent_fd = sd_agent_socket(gw->conf->agent_socket)) == -1) {
		snprintf(dir, sizeof(dir), "%s", gw->conf->agent_socket);
		if (mkdir_p(dirname(dir), 0755) == -1)
			fatal("%s", gw->conf->agent_socket);
		agent_fd = unix_listen(gw->conf->agent_socket, 0666, err,
		    sizeof(err));
		if (agent_fd == -1)
			fatalx("agent socket: %s", err);
	}
	state_dir_prepare(gw->conf->state_dir, jail, len);
	metrics_bind();
	sd_notify_open();
	sd_watchdog_init();
}

/*
 * The executor on both socketpairs (requests; passed agent connections);
 * our ends come back in sp and pp.
 */
static void
executor_start(const struct opts *o, char *cpath, int *sp, int *pp)
{
	char		 exbuf[PATH_MAX], *xargv[16];
	const char	*expath;
	int		 xargc = 0, s[2], p[2];

	expath = executor_path(o->expath, exbuf, sizeof(exbuf));
	log_debug("executor: %s", expath);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0, p) == -1)
		fatal("socketpair");
	xargv[xargc++] = "executor";
	xargv[xargc++] = "-c";
	xargv[xargc++] = cpath;
	if (o->foreground)
		xargv[xargc++] = "-f";
	if (o->verbose)
		xargv[xargc++] = "-v";
	/* The executor takes only sockets accepted on this path. */
	xargv[xargc++] = "--agent-socket";
	xargv[xargc++] = gw->conf->agent_socket;
	xargv[xargc++] = "--control-socket";
	xargv[xargc++] = gw->conf->control_socket;
	xargv[xargc++] = "--state-dir";
	xargv[xargc++] = gw->conf->state_dir;
	xargv[xargc] = NULL;
	spawn_executor(expath, xargv, s[1], p[1]);
	close(s[1]);
	close(p[1]);
	*sp = s[0];
	*pp = p[0];
}

static const struct sigdef sigtab[] = {
	/* SIGUSR1 is not here: usr1_init(). */
	{ SIGTERM,	on_sigterm,	1 },
	{ SIGINT,	on_sigterm,	1 },
	{ SIGHUP,	on_sighup,	1 },
};
static struct event	*sigev[sizeof(sigtab) / sizeof(sigtab[0])];

static void
events_init(int sp, int pp)
{
	if ((gw->base = event_base_new()) == NULL ||
	    event_base_priority_init(gw->base, 2) == -1)
		fatalx("event_base_new");
	runs_init();
	exec_link_init(sp, pp);
	sigevents_add(gw->base, sigtab, sizeof(sigtab) / sizeof(sigtab[0]),
	    sigev);
	usr1_init();
}

static int
teardown(void)
{
	int	rc;

	sd_watchdog_stop();
	agent_shutdown();
	metrics_stop();
	exec_link_close();
	rc = reap_executor();
	runs_free();
	sigevents_free(sigev, sizeof(sigev) / sizeof(sigev[0]));
	event_free(usr1_ev);
	event_base_free(gw->base);
	config_free(gw->conf);
	return rc;
}

int
main(int argc, char *argv[])
{
	static struct gateway	 gws;
	struct opts		 o;
	char			 cpath[PATH_MAX], jail[PATH_MAX], ex[PATH_MAX];
	int			 sp, pp, rc;

	parse_opts(argc, argv, &o);
	log_init("gatewayd", o.foreground || o.configtest, o.verbose);
	gw = &gws;
	signal(SIGPIPE, SIG_IGN);
	/* Until events_init(): SIGHUP must never kill us. */
	signal(SIGHUP, SIG_IGN);
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	config_read(&o, cpath);
	/* -n: the loader's verdict alone (before a restart, in ExecStartPre). */
	if (o.configtest) {
		fprintf(stderr, "%s: configuration OK; the executor is %s\n",
		    cpath, executor_path(o.expath, ex, sizeof(ex)));
		return 0;
	}
	if (geteuid() != 0)
		log_warnx("WARNING: started as uid %u, not root: gatewayd and"
		    " the executor both run as this user and privileges are"
		    " NOT separated (development mode)", (unsigned)getuid());
	privileged_prepare(jail, sizeof(jail));
	executor_start(&o, cpath, &sp, &pp);

	if (geteuid() == 0)
		privdrop(gw->conf->user, jail);
	else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("PR_SET_NO_NEW_PRIVS");
	log_setproc("gatewayd");

	events_init(sp, pp);
	/* Nothing from here on needs more than the loop does. */
	sandbox_init(executor_pid);
	exec_hello(on_ready);
	event_base_dispatch(gw->base);

	rc = teardown();
	log_info("exiting");
	return rc;
}
