/*
 * gatewayd's seccomp filter, OpenSSH's sandbox-seccomp-filter.c in spirit:
 * loaded once everything that needs more is done (the agent and metrics
 * sockets bound, the notify socket connected, the executor started, the
 * drop to the unprivileged user and the chroot, the event base and its
 * signal plumbing made), it lets the loop do what it does and kills the
 * whole process on anything else.  Failing to load it is fatal.
 *
 * The table below is every system call the loop makes, found by reading
 * the code paths (agent.c, exec_wrap.c, metricsd.c, sdnotify.c, the
 * teardown in gatewayd.c) and by strace over the regression suite.  A few
 * calls are refused with an error instead of a kill, where library code
 * tries them and copes (see sandbox_init).  The sanitizer build needs
 * more for ASan's allocator and its reports: TG_SANITIZERS, set by the
 * Makefile for SAN=1 only, adds them; the normal build never has them.
 *
 * TOOLGATE_DEBUG_SECCOMP_PROBE=1 in the environment makes gatewayd try a
 * forbidden call (socket(AF_INET)) from the loop once it is ready, so a
 * test can prove the filter kills it with SIGSYS.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#include "common/log.h"
#include "gatewayd/gatewayd.h"

#define SANDBOX_PROBE_ENV	"TOOLGATE_DEBUG_SECCOMP_PROBE"

/* Allowed with no condition on their arguments. */
static const int sandbox_allow[] = {
	/*
	 * The event loop (libevent's epoll backend); and, once it is done,
	 * the wait for room to hand the executor its last messages
	 * (exec_wrap.c, link_drain: poll, ppoll where libc uses that).
	 */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* Agents, the executor's socketpairs, metrics, log lines on stderr. */
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(sendmsg), SCMP_SYS(close), SCMP_SYS(shutdown),
	/*
	 * Accepting on the sockets bound before the drop; SO_PEERCRED for
	 * every agent; evhttp's and the listener's socket options.
	 */
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(listen),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	/* Non-blocking descriptors, and fdlimit_open's scan of open ones. */
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	/* Clocks (vDSO first, the system call as its fallback), sleeps. */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	/* Signals: libevent's signal events, SIGUSR1's handler. */
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
	/* Who we are, for the log and the checks of peers. */
	SCMP_SYS(getpid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getgid), SCMP_SYS(getegid),
	/* The heap (brk), stdio's locks, random ids. */
	SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(getrandom),
	/* Reaping the executor at the end, and ending. */
	SCMP_SYS(wait4), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

#ifdef TG_SANITIZERS
/*
 * ASan and UBSan only: shadow memory and quarantine (madvise, mprotect
 * with any protection), the alternate signal stack and the reports
 * (sigaltstack, readlink, sched_yield), and the abort that ends a
 * report.  Not open(): it is refused below in both builds.
 */
static const int sandbox_allow_san[] = {
	SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(sigaltstack),
	SCMP_SYS(readlink), SCMP_SYS(sched_yield), SCMP_SYS(prctl), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(gettid), SCMP_SYS(tgkill),
	SCMP_SYS(getppid), SCMP_SYS(sched_getaffinity), SCMP_SYS(uname),
	SCMP_SYS(lseek), SCMP_SYS(pread64), SCMP_SYS(mmap), SCMP_SYS(munmap),
	SCMP_SYS(mremap), SCMP_SYS(dup), SCMP_SYS(pipe2), SCMP_SYS(rt_sigtimedwait),
};
#endif

static int	probe;

static void
allow(scmp_filter_ctx ctx, int nr, unsigned int n, const struct scmp_arg_cmp *c)
{
	int	r;

	if ((r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, c)) < 0)
		fatalx("seccomp: rule for syscall %d: %s", nr, strerror(-r));
}

static void
refuse(scmp_filter_ctx ctx, int nr, int err, unsigned int n,
    const struct scmp_arg_cmp *c)
{
	int	r;

	if ((r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(err), nr, n,
	    c)) < 0)
		fatalx("seccomp: rule for syscall %d: %s", nr, strerror(-r));
}

void
sandbox_init(pid_t executor)
{
	scmp_filter_ctx		ctx;
	struct scmp_arg_cmp	c[2];
	size_t			i;
	int			r;

	probe = getenv(SANDBOX_PROBE_ENV) != NULL;
	unsetenv(SANDBOX_PROBE_ENV);
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("seccomp_init failed");
	for (i = 0; i < sizeof(sandbox_allow) / sizeof(sandbox_allow[0]); i++)
		allow(ctx, sandbox_allow[i], 0, NULL);
#ifdef TG_SANITIZERS
	for (i = 0; i < sizeof(sandbox_allow_san) /
	    sizeof(sandbox_allow_san[0]); i++)
		allow(ctx, sandbox_allow_san[i], 0, NULL);
#else
	/*
	 * malloc's large blocks and libevent's buffers: memory, never
	 * executable memory.
	 */
	c[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	allow(ctx, SCMP_SYS(mmap), 1, c);
	allow(ctx, SCMP_SYS(mprotect), 1, c);
	allow(ctx, SCMP_SYS(munmap), 0, NULL);
	allow(ctx, SCMP_SYS(mremap), 0, NULL);
	/* fdlimit_get(): reading RLIMIT_NOFILE, never setting a limit. */
	c[0] = SCMP_A2(SCMP_CMP_EQ, 0);
	allow(ctx, SCMP_SYS(prlimit64), 1, c);
#endif
	/*
	 * fdlimit_open() tries /proc/self/fd (absent in the chroot, there
	 * in development mode) and scans with fcntl() instead: an error,
	 * not a kill, and never a directory to read.
	 */
	refuse(ctx, SCMP_SYS(openat), EACCES, 0, NULL);
	refuse(ctx, SCMP_SYS(open), EACCES, 0, NULL);
	/* How many bytes wait on a socket (evbuffer_read), and FIONBIO. */
	c[0] = SCMP_A1(SCMP_CMP_EQ, FIONREAD);
	allow(ctx, SCMP_SYS(ioctl), 1, c);
	c[0] = SCMP_A1(SCMP_CMP_EQ, FIONBIO);
	allow(ctx, SCMP_SYS(ioctl), 1, c);
	/*
	 * The executor alone may be signalled, and only to be killed when it
	 * outlives the shutdown (reap_executor; development mode).
	 */
	c[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)executor);
	c[1] = SCMP_A1(SCMP_CMP_EQ, SIGKILL);
	allow(ctx, SCMP_SYS(kill), 2, c);
	/*
	 * syslog(3) reconnects to /dev/log when its socket broke: let that
	 * fail (no /dev/log in the chroot anyway).  Any other socket is a
	 * kill: gatewayd never opens one after the start.
	 */
	c[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	refuse(ctx, SCMP_SYS(socket), EACCES, 1, c);

	if ((r = seccomp_load(ctx)) < 0)
		fatalx("seccomp: cannot load the filter: %s", strerror(-r));
	seccomp_release(ctx);
	log_info("seccomp: filter loaded (kill by default)%s",
	    probe ? "; " SANDBOX_PROBE_ENV " is set: gatewayd will try a"
	    " forbidden system call once ready" : "");
}

/* From the loop, once ready: a call the filter must answer with SIGSYS. */
void
sandbox_probe(void)
{
	int	fd;

	if (!probe)
		return;
	log_warnx("seccomp probe: socket(AF_INET), which the filter forbids");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	fatalx("seccomp probe: socket(AF_INET) returned %d: the filter did"
	    " not stop it", fd);
}
