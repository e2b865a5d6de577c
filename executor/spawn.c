/*
 * Starting a child program (spawn.h): moved out of toolrun.c so that an
 * MCP server starts exactly as an exec tool does.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/spawn.h"

static pid_t	*kept;
static size_t	 nkept, kept_cap;
/* The uids children were started as, for spawn_kill(). */
static uid_t	*run_uids;
static size_t	 nrun_uids;

static void	spawn_exec(const struct runas *, const char *, char *const [],
		    char *const [], int [4], int) __attribute__((noreturn));
static void	spawn_closefrom(int, int);
static int	spawn_exec_status(pid_t, int);

static void
uid_note(uid_t uid)
{
	size_t	i;

	for (i = 0; i < nrun_uids; i++)
		if (run_uids[i] == uid)
			return;
	run_uids = xreallocarray(run_uids, nrun_uids + 1, sizeof(*run_uids));
	run_uids[nrun_uids++] = uid;
}

/*
 * kill(2) with this thread's effective uid set to 'uid' for the call:
 * the kernel lets a sender whose effective uid is the target's real uid
 * signal it, without CAP_KILL.  The raw system call changes this thread
 * alone (glibc's setresuid() would change every thread's, for a moment
 * in which another could open a file as 'uid'); our real and saved uids
 * are still the old one, so it comes back, and with it the capabilities
 * the kernel took away while the effective uid was not 0.
 */
static int
kill_as(pid_t target, uid_t uid, int sig)
{
	uid_t	self = geteuid();
	int	r, saved;

	if (syscall(SYS_setresuid, (uid_t)-1, uid, (uid_t)-1) == -1)
		return -1;
	r = kill(target, sig);
	saved = errno;
	if (syscall(SYS_setresuid, (uid_t)-1, self, (uid_t)-1) == -1)
		fatal("%s: cannot take uid %u back", __func__, (unsigned)self);
	errno = saved;
	return r;
}

/*
 * Systemd's unit gives the executor no CAP_KILL (systemd/toolgate.service),
 * so a child started as another user is signalled as that user: the
 * plain kill(2) first (our own children, or CAP_KILL when we have it),
 * then as each uid a child was started as until one is allowed.  A
 * process group holds one tool's processes, all of its uid
 * (NoNewPrivileges: none can change it).
 */
int
spawn_kill(pid_t target, int sig)
{
	size_t	i;

	if (kill(target, sig) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	for (i = 0; i < nrun_uids; i++) {
		if (kill_as(target, run_uids[i], sig) == 0)
			return 0;
		if (errno == ESRCH)
			return -1;
	}
	errno = EPERM;
	return -1;
}

int
spawn_runas(const char *user, const char *what, struct runas *ras,
    char *msg, size_t msglen)
{
	struct passwd	*pw;

	memset(ras, 0, sizeof(*ras));
	if (user == NULL)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(msg, msglen, "cannot start %s: no user %s", what, user);
		return -1;
	}
	ras->set = 1;
	ras->uid = pw->pw_uid;
	ras->gid = pw->pw_gid;
	return 0;
}

static void
spawn_close_pair(int p[2])
{
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
	p[0] = p[1] = -1;
}

int
spawn_child(const char *label, const struct runas *ras, char *const argv[],
    char *const envp[], int credfd, struct spawned *sp, char *msg,
    size_t msglen)
{
	int		 in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int		 err[2] = { -1, -1 }, st[2] = { -1, -1 };
	int		 childfds[4], e, saved;
	const char	*path = argv[0];
	sigset_t	 all, old;
	pid_t		 pid;

	sp->pid = -1;
	sp->fd_in = sp->fd_out = sp->fd_err = -1;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1 || pipe2(st, O_CLOEXEC) == -1) {
		saved = errno;
		log_warn("%s: pipe", label);
		snprintf(msg, msglen, "cannot start %s: %s", path,
		    strerror(saved));
		goto fail;
	}

	/*
	 * With every signal blocked, no handler of ours (libevent's SIGCHLD
	 * handler writes to its socketpair) can run in the child before it
	 * has reset the dispositions.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	if (ras->set)
		uid_note(ras->uid);
	pid = fork();
	if (pid == 0) {
		childfds[0] = in[0];
		childfds[1] = out[1];
		childfds[2] = err[1];
		childfds[3] = credfd;
		spawn_exec(ras, path, argv, envp, childfds, st[1]);
	}
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		errno = saved;
		log_warn("%s: fork", label);
		snprintf(msg, msglen, "cannot start %s: %s", path,
		    strerror(saved));
		goto fail;
	}

	/*
	 * The child does this too; whichever runs first wins, so the group
	 * exists before we may have to kill it.  After the child's execve()
	 * this fails with EACCES, which is fine: the child did it.
	 */
	(void)setpgid(pid, pid);

	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(st[1]);
	in[0] = out[1] = err[1] = st[1] = -1;

	if ((e = spawn_exec_status(pid, st[0])) != 0) {
		snprintf(msg, msglen, "cannot execute %s: %s", path,
		    strerror(e));
		goto fail;
	}
	close(st[0]);
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(out[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(err[0], F_SETFL, O_NONBLOCK) == -1)
		fatal("%s: fcntl", __func__);
	sp->pid = pid;
	sp->fd_in = in[1];
	sp->fd_out = out[0];
	sp->fd_err = err[0];
	return 0;

 fail:
	spawn_close_pair(in);
	spawn_close_pair(out);
	spawn_close_pair(err);
	spawn_close_pair(st);
	return -1;
}

/*
 * The status pipe is close-on-exec: end of file means execve() succeeded,
 * an errno means it did not, and then the child is reaped here.  This
 * blocks only for the few system calls between fork() and execve().
 * Returns 0 or the child's errno.
 */
static int
spawn_exec_status(pid_t pid, int fd)
{
	ssize_t	n;
	int	e;

	do {
		n = read(fd, &e, sizeof(e));
	} while (n == -1 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(e)) {
		/* Cannot tell: let SIGCHLD and the timeout deal with it. */
		log_warn("child pid %d: status pipe", (int)pid);
		return 0;
	}
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	return e != 0 ? e : EINVAL;
}

/*
 * In the child, between fork() and execve().  Only system calls here
 * (the user was looked up before the fork): the executor may have threads
 * now (libcurl's resolver, http.c), and after fork() a child may call only
 * what is async-signal-safe.  Any failure is reported on the status pipe
 * like a failed execve().
 */
static void
spawn_exec(const struct runas *ras, const char *path, char *const argv[],
    char *const envp[], int fds[4], int stfd)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 i, e, sfd;

	/*
	 * Ignored signals stay ignored across execve() (the executor ignores
	 * SIGPIPE), and so does the mask: give the program the defaults.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (i = 1; i < NSIG; i++)
		(void)sigaction(i, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	(void)setpgid(0, 0);

	/*
	 * The status pipe goes above 3 too, out of the way of the dup2()s
	 * below.  If that fails, the original is still intact.
	 */
	if ((sfd = fcntl(stfd, F_DUPFD_CLOEXEC, SPAWN_CREDFD + 1)) == -1) {
		sfd = stfd;
		goto fail;
	}
	if (chdir("/") == -1)
		goto fail;
	/*
	 * The user spawn_runas() chose: groups, gid, then uid, so no
	 * privilege is left to undo them.  The credential on fd 3 was opened
	 * by the executor and stays readable.  Failing to switch is failing
	 * to start.
	 */
	if (ras->set && (setgroups(1, &ras->gid) == -1 ||
	    setresgid(ras->gid, ras->gid, ras->gid) == -1 ||
	    setresuid(ras->uid, ras->uid, ras->uid) == -1))
		goto fail;

	/*
	 * Move every descriptor above 3 before putting any in place: one of
	 * them may sit on 0-3 already, and dup2(fd, fd) would leave it
	 * close-on-exec.
	 */
	for (i = 0; i < 4; i++) {
		if (fds[i] != -1 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC,
		    SPAWN_CREDFD + 1)) == -1)
			goto fail;
	}
	for (i = 0; i < 4; i++) {
		if (fds[i] == -1)
			(void)close(i);
		else if (dup2(fds[i], i) == -1)
			goto fail;
	}
	spawn_closefrom(SPAWN_CREDFD + 1, sfd);

	execve(path, argv, envp);
 fail:
	e = errno;
	while (write(sfd, &e, sizeof(e)) == -1 && errno == EINTR)
		;
	_exit(127);
}

/*
 * Close every descriptor from 'lowfd' up except 'keep' (the status pipe,
 * which must stay open until execve() closes it).
 */
static void
spawn_closefrom(int lowfd, int keep)
{
	struct rlimit	rl;
	int		fd, maxfd;

	if ((keep == lowfd || close_range(lowfd, keep - 1, 0) == 0) &&
	    close_range(keep + 1, ~0U, 0) == 0)
		return;

	/* Kernels before 5.9 have no close_range(). */
	maxfd = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX)
		maxfd = (int)rl.rlim_cur;
	for (fd = lowfd; fd < maxfd; fd++)
		if (fd != keep)
			(void)close(fd);
}

void
spawn_env_free(char **envp)
{
	size_t	i;

	for (i = 0; envp[i] != NULL; i++)
		free(envp[i]);
	free(envp);
}

void
spawn_keep(pid_t pid)
{
	if (nkept == kept_cap) {
		kept_cap = kept_cap ? kept_cap * 2 : 16;
		kept = xreallocarray(kept, kept_cap, sizeof(*kept));
	}
	kept[nkept++] = pid;
}

void
spawn_release(pid_t pid)
{
	size_t	i;

	for (i = 0; i < nkept; i++)
		if (kept[i] == pid) {
			kept[i] = kept[--nkept];
			break;
		}
	if (nkept == 0) {
		free(kept);
		kept = NULL;
		kept_cap = 0;
	}
}

int
spawn_is_kept(pid_t pid)
{
	size_t	i;

	for (i = 0; i < nkept; i++)
		if (kept[i] == pid)
			return 1;
	return 0;
}
