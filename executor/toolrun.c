/*
 * The exec backend (CONTRACT.md, "Tool programs"): run one catalog tool as
 * a child process, driven by the event loop.
 *
 * A run ends when its child has been reaped and its stdout and stderr have
 * reached end of file (or were abandoned after a kill).  The outcome is
 * worked out only then, in toolrun_outcome(), so that the precedence
 * timeout > output too large > exit status > JSON holds whichever of those
 * events came last.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <msgpack.h>

#include "common/frame.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/credential.h"
#include "executor/spawn.h"
#include "executor/toolrun.h"

/*
 * What msgpack may add to JSON that fits limits.max_output: a header of up
 * to 5 bytes where JSON has 2 quotes or brackets.  Output exactly at the
 * limit stays fine; growth beyond (floats) is refused.
 */
#define MSGPACK_SLACK		1024

#define TOOLRUN_NENV		9	/* the most toolrun_env() sets */
#define TOOLRUN_ERRKEEP		4096	/* the tail of stderr that we keep */
#define TOOLRUN_READSZ		65536
#define TOOLRUN_TIMEOUT_MS	10000	/* when the catalog left it at 0 */
#define TOOLRUN_SWEEP_S		1	/* how often strays are looked for */
#define TOOLRUN_EXIT_WAIT_MS	5000	/* for strays to die at exit */

struct toolrun {
	LIST_ENTRY(toolrun)	 entry;
	tool_done_cb		 cb;
	void			*arg;
	struct tool_outcome	 res;
	struct timespec		 start;
	/* Only during the fork: reachable from here, leak checkers agree. */
	char			**envp;

	pid_t			 pid;		/* -1: it never started */
	int			 reaped;
	int			 wstatus;
	int			 timed_out;
	int			 too_big;
	int			 cancelled;	/* toolrun_cancel(): wins over all */
	int			 expired;	/* toolrun_expire(): shutdown */
	uint32_t		 timeout_ms;

	/* The timeout, or the deferred callback when it never started. */
	struct event		*ev_timer;

	int			 fd_in;		/* -1 once done with */
	struct event		*ev_in;
	char			*in;
	size_t			 inlen;
	size_t			 inoff;

	int			 fd_out;
	struct event		*ev_out;
	char			*out;
	size_t			 outlen;
	size_t			 outcap;
	size_t			 max_output;

	int			 fd_err;
	struct event		*ev_err;
	char			 err[TOOLRUN_ERRKEEP];
	size_t			 errlen;
};

static LIST_HEAD(, toolrun)	 toolruns = LIST_HEAD_INITIALIZER(toolruns);
static size_t			 toolrun_count;
static struct event_base	*toolrun_base;
static struct event		*toolrun_sigchld;
static struct event		*toolrun_sweep;
static int			 toolrun_expired;	/* no new runs */

static void	toolrun_sigchld_cb(int, short, void *);
static void	toolrun_sweep_cb(int, short, void *);
static size_t	toolrun_strays(void);
static void	toolrun_later_cb(int, short, void *);
static void	toolrun_timeout_cb(int, short, void *);
static void	toolrun_stdin_cb(int, short, void *);
static void	toolrun_stdout_cb(int, short, void *);
static void	toolrun_stderr_cb(int, short, void *);
static int	toolrun_spawn(struct toolrun *, const struct tool_req *,
		    int);
static void	toolrun_watch(struct toolrun *);
static void	toolrun_kill(struct toolrun *);
static void	toolrun_reap(struct toolrun *);
static void	toolrun_close_stdin(struct toolrun *);
static void	toolrun_close_stdout(struct toolrun *);
static void	toolrun_close_stderr(struct toolrun *);
static void	toolrun_maybe_done(struct toolrun *);
static void	toolrun_outcome(struct toolrun *, msgpack_sbuffer *);
static void	toolrun_failmsg(struct toolrun *);
static void	toolrun_finish(struct toolrun *);

void
toolrun_init(struct event_base *base, const struct config *conf)
{
	struct timeval	sweep = { TOOLRUN_SWEEP_S, 0 };

	(void)conf;

	if (toolrun_base != NULL)
		fatalx("%s: called twice", __func__);
	toolrun_base = base;
	/* A signal is an event in the loop: no work in a handler. */
	toolrun_sigchld = evsignal_new(base, SIGCHLD, toolrun_sigchld_cb, NULL);
	if (toolrun_sigchld == NULL || event_add(toolrun_sigchld, NULL) == -1)
		fatalx("%s: cannot watch SIGCHLD", __func__);
	toolrun_sweep = event_new(base, -1, EV_PERSIST, toolrun_sweep_cb, NULL);
	if (toolrun_sweep == NULL || event_add(toolrun_sweep, &sweep) == -1)
		fatalx("%s: cannot start the stray sweep", __func__);
}

size_t
toolrun_active(void)
{
	/* Counts runs whose callback is still to come, started or not. */
	return toolrun_count;
}

void
toolrun_start(const struct tool_req *req, tool_done_cb cb, void *arg)
{
	struct toolrun	*tr;
	struct timeval	 zero = { 0, 0 };
	int		 credfd, r;

	if (toolrun_base == NULL)
		fatalx("%s: toolrun_init() was not called", __func__);

	tr = xcalloc(1, sizeof(*tr));
	tr->cb = cb;
	tr->arg = arg;
	tr->pid = -1;
	tr->wstatus = -1;
	tr->fd_in = tr->fd_out = tr->fd_err = -1;
	tr->max_output = req->max_output;
	tr->timeout_ms = req->tool->timeout_ms;
	if (tr->timeout_ms == 0)
		tr->timeout_ms = TOOLRUN_TIMEOUT_MS;
	clock_gettime(CLOCK_MONOTONIC, &tr->start);
	LIST_INSERT_HEAD(&toolruns, tr, entry);
	toolrun_count++;

	if (req->tool->argv == NULL || req->tool->argv[0] == NULL) {
		snprintf(tr->res.message, sizeof(tr->res.message),
		    "tool %s has no program", req->tool->name);
		goto fail;
	}
	/* Past the shutdown deadline nothing starts: it never ran. */
	if (toolrun_expired) {
		snprintf(tr->res.message, sizeof(tr->res.message),
		    "not started: the executor is shutting down");
		goto fail;
	}
	/* Before the fork, and fail closed: no credential, no run. */
	if (credential_open(req->credentials_dir, req->tenant, req->env,
	    req->tool->name, &credfd, tr->res.message,
	    sizeof(tr->res.message)) == -1)
		goto fail;
	r = toolrun_spawn(tr, req, credfd);
	/* The child has its own copy now, or never will. */
	if (credfd != -1)
		close(credfd);
	if (r == -1)
		goto fail;
	toolrun_watch(tr);
	return;

 fail:
	/* The callback comes from the loop, never from in here. */
	tr->res.status = TR_FAILED;
	tr->ev_timer = evtimer_new(toolrun_base, toolrun_later_cb, tr);
	if (tr->ev_timer == NULL)
		fatalx("%s: evtimer_new", __func__);
	evtimer_add(tr->ev_timer, &zero);
}

static const char *
toolrun_nz(const char *s)
{
	return s != NULL ? s : "";
}

/* The child's whole environment: nothing is inherited. */
static char **
toolrun_env(const struct tool_req *req, int has_cred)
{
	char	**envp;
	size_t	  n = 0;

	envp = xcalloc(TOOLRUN_NENV + 1, sizeof(*envp));
	xasprintf(&envp[n++], "TOOLGATE_TOOL=%s", req->tool->name);
	xasprintf(&envp[n++], "TOOLGATE_TENANT=%s", toolrun_nz(req->tenant));
	xasprintf(&envp[n++], "TOOLGATE_ENV=%s", toolrun_nz(req->env));
	xasprintf(&envp[n++], "TOOLGATE_RUN_ID=%s", toolrun_nz(req->run_id));
	xasprintf(&envp[n++], "TOOLGATE_STEP_ID=%s",
	    toolrun_nz(req->step_id));
	xasprintf(&envp[n++], "TOOLGATE_ARGS_HASH=%s",
	    toolrun_nz(req->args_hash));
	if (req->idempotency_key != NULL)
		xasprintf(&envp[n++], "TOOLGATE_IDEMPOTENCY_KEY=%s",
		    req->idempotency_key);
	envp[n++] = xstrdup(SPAWN_PATH);
	if (has_cred)
		xasprintf(&envp[n++], "TOOLGATE_CREDENTIAL_FD=%d",
		    SPAWN_CREDFD);
	envp[n] = NULL;
	return envp;
}

/* The child runs the program: keep our ends of its pipes and its input. */
static void
toolrun_started(struct toolrun *tr, const struct tool_req *req,
    const struct spawned *sp)
{
	tr->pid = sp->pid;
	tr->fd_in = sp->fd_in;
	tr->fd_out = sp->fd_out;
	tr->fd_err = sp->fd_err;
	tr->inlen = req->inputlen + 1;
	tr->in = xmalloc(tr->inlen);
	if (req->inputlen > 0)
		memcpy(tr->in, req->input, req->inputlen);
	tr->in[req->inputlen] = '\n';
	log_debug("run %s tool %s: pid %d", toolrun_nz(req->run_id),
	    req->tool->name, (int)sp->pid);
}

/*
 * Fork and exec the tool (spawn.c) as the catalog's user, else the
 * default the caller gives (tool_user when the executor is root).
 * Returns 0 with tr->pid and the parent's pipe ends set, or -1 with a
 * message in tr->res when the program did not start.
 */
static int
toolrun_spawn(struct toolrun *tr, const struct tool_req *req, int credfd)
{
	const char	*user;
	char		 label[300];
	struct runas	 ras;
	struct spawned	 sp;
	int		 r;

	user = req->tool->user != NULL ? req->tool->user : req->default_user;
	if (spawn_runas(user, req->tool->argv[0], &ras, tr->res.message,
	    sizeof(tr->res.message)) == -1)
		return -1;
	snprintf(label, sizeof(label), "tool %s", req->tool->name);
	tr->envp = toolrun_env(req, credfd != -1);
	r = spawn_child(label, &ras, req->tool->argv, tr->envp, credfd, &sp,
	    tr->res.message, sizeof(tr->res.message));
	spawn_env_free(tr->envp);
	tr->envp = NULL;
	if (r == -1)
		return -1;
	toolrun_started(tr, req, &sp);
	return 0;
}

/* Hand the pipes and the timeout to the event loop. */
static void
toolrun_watch(struct toolrun *tr)
{
	struct timeval	tv;

	tr->ev_in = event_new(toolrun_base, tr->fd_in, EV_WRITE | EV_PERSIST,
	    toolrun_stdin_cb, tr);
	tr->ev_out = event_new(toolrun_base, tr->fd_out, EV_READ | EV_PERSIST,
	    toolrun_stdout_cb, tr);
	tr->ev_err = event_new(toolrun_base, tr->fd_err, EV_READ | EV_PERSIST,
	    toolrun_stderr_cb, tr);
	tr->ev_timer = evtimer_new(toolrun_base, toolrun_timeout_cb, tr);
	if (tr->ev_in == NULL || tr->ev_out == NULL || tr->ev_err == NULL ||
	    tr->ev_timer == NULL)
		fatalx("%s: event_new", __func__);

	tv.tv_sec = tr->timeout_ms / 1000;
	tv.tv_usec = (tr->timeout_ms % 1000) * 1000;
	if (event_add(tr->ev_in, NULL) == -1 ||
	    event_add(tr->ev_out, NULL) == -1 ||
	    event_add(tr->ev_err, NULL) == -1 ||
	    evtimer_add(tr->ev_timer, &tv) == -1)
		fatalx("%s: event_add", __func__);
}

/*
 * Kill the whole process group.  Only while the child is not reaped: its
 * pid, and with it the group id, cannot be reused before then.
 */
static void
toolrun_kill(struct toolrun *tr)
{
	if (tr->pid != -1 && !tr->reaped)
		(void)spawn_kill(-tr->pid, SIGKILL);
}

static void
toolrun_sigchld_cb(int sig, short ev, void *arg)
{
	struct toolrun	*tr, *next;

	(void)sig;
	(void)ev;
	(void)arg;
	/* Signals merge: one SIGCHLD may stand for several children. */
	for (tr = LIST_FIRST(&toolruns); tr != NULL; tr = next) {
		next = LIST_NEXT(tr, entry);
		toolrun_reap(tr);
	}
	/* A tool's exit orphans what it left: and strays die here too. */
	(void)toolrun_strays();
}

static void
toolrun_sweep_cb(int fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	(void)toolrun_strays();
}

static void
toolrun_reap(struct toolrun *tr)
{
	siginfo_t	si;
	int		status;

	if (tr->pid == -1 || tr->reaped)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, tr->pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1) {
		/* Someone else reaped it: we will never know how it ended. */
		log_warn("tool pid %d: waitid", (int)tr->pid);
		tr->reaped = 1;
		tr->wstatus = -1;
		toolrun_maybe_done(tr);
		return;
	}
	if (si.si_pid == 0)
		return;		/* still running */

	/*
	 * It has exited but is not reaped yet, so the group id is still
	 * ours.  Kill what is left of the group now: a grandchild that holds
	 * stdout open would otherwise keep us waiting for end of file until
	 * the timeout.
	 */
	(void)spawn_kill(-tr->pid, SIGKILL);
	while (waitpid(tr->pid, &status, 0) == -1) {
		if (errno != EINTR) {
			log_warn("tool pid %d: waitpid", (int)tr->pid);
			status = -1;
			break;
		}
	}
	tr->reaped = 1;
	tr->wstatus = status;
	toolrun_maybe_done(tr);
}

static void
toolrun_timeout_cb(int fd, short ev, void *arg)
{
	struct toolrun	*tr = arg;

	(void)fd;
	(void)ev;
	/* Also how a cancel kills (toolrun_cancel()): not a timeout then. */
	if (!tr->cancelled)
		tr->timed_out = 1;
	toolrun_kill(tr);
	(void)toolrun_strays();
	/*
	 * Whatever it wrote no longer matters, and a process that left the
	 * group could hold the pipes open forever: stop reading.
	 */
	toolrun_close_stdin(tr);
	toolrun_close_stdout(tr);
	toolrun_close_stderr(tr);
	toolrun_maybe_done(tr);
}

int
toolrun_cancel(const void *arg)
{
	struct toolrun	*tr;

	LIST_FOREACH(tr, &toolruns, entry)
		if (tr->arg == arg && !tr->cancelled)
			break;
	if (tr == NULL)
		return 0;
	tr->cancelled = 1;
	/*
	 * Never started: its callback is already due (ev_timer holds it).
	 * Otherwise the kill is the timeout's, now, from the loop: group
	 * killed, pipes closed, the child reaped at its SIGCHLD.
	 */
	if (tr->pid != -1)
		event_active(tr->ev_timer, EV_TIMEOUT, 1);
	return 1;
}

size_t
toolrun_expire(void)
{
	struct toolrun	*tr;
	size_t		 n = 0;

	toolrun_expired = 1;
	LIST_FOREACH(tr, &toolruns, entry) {
		if (tr->pid == -1 || tr->cancelled || tr->expired)
			continue;
		/* Ended as its timeout ends it: a write is in doubt. */
		tr->expired = 1;
		event_active(tr->ev_timer, EV_TIMEOUT, 1);
		n++;
	}
	return n;
}

static void
toolrun_later_cb(int fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	toolrun_finish(arg);
}

static void
toolrun_stdin_cb(int fd, short ev, void *arg)
{
	struct toolrun	*tr = arg;
	ssize_t		 n;

	(void)ev;
	n = write(fd, tr->in + tr->inoff, tr->inlen - tr->inoff);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/*
		 * EPIPE (SIGPIPE is ignored in the executor): it did not read
		 * all of its input, which is its business.
		 */
		if (errno != EPIPE)
			log_warn("tool pid %d: stdin", (int)tr->pid);
		toolrun_close_stdin(tr);
		return;
	}
	tr->inoff += n;
	if (tr->inoff == tr->inlen)
		toolrun_close_stdin(tr);
}

static void
toolrun_stdout_cb(int fd, short ev, void *arg)
{
	struct toolrun	*tr = arg;
	size_t		 limit, want;
	ssize_t		 n;

	(void)ev;
	/* Read one byte past max_output to tell "too large" from "full". */
	limit = tr->max_output < SIZE_MAX ? tr->max_output + 1 : SIZE_MAX;
	want = limit - tr->outlen;
	if (want > TOOLRUN_READSZ)
		want = TOOLRUN_READSZ;
	if (tr->outcap - tr->outlen < want) {
		tr->outcap = tr->outcap * 2 > tr->outlen + want ?
		    tr->outcap * 2 : tr->outlen + want;
		if (tr->outcap > limit)
			tr->outcap = limit;
		tr->out = xreallocarray(tr->out, tr->outcap, 1);
	}

	n = read(fd, tr->out + tr->outlen, want);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("tool pid %d: stdout", (int)tr->pid);
	} else if (n > 0) {
		tr->outlen += n;
		if (tr->outlen <= tr->max_output)
			return;
		/* Stop it at once rather than read what we will not use. */
		tr->too_big = 1;
		toolrun_kill(tr);
		toolrun_close_stdin(tr);
	}
	toolrun_close_stdout(tr);
	toolrun_maybe_done(tr);
}

static void
toolrun_stderr_cb(int fd, short ev, void *arg)
{
	struct toolrun	*tr = arg;
	char		 buf[TOOLRUN_ERRKEEP];
	size_t		 drop;
	ssize_t		 n;

	(void)ev;
	n = read(fd, buf, sizeof(buf));
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("tool pid %d: stderr", (int)tr->pid);
	}
	if (n <= 0) {
		toolrun_close_stderr(tr);
		toolrun_maybe_done(tr);
		return;
	}

	/* Only the last line is used: keep the tail. */
	if (tr->errlen + n > sizeof(tr->err)) {
		drop = tr->errlen + n - sizeof(tr->err);
		memmove(tr->err, tr->err + drop, tr->errlen - drop);
		tr->errlen -= drop;
	}
	memcpy(tr->err + tr->errlen, buf, n);
	tr->errlen += n;
}

static void
toolrun_close_stdin(struct toolrun *tr)
{
	if (tr->fd_in == -1)
		return;
	event_free(tr->ev_in);
	tr->ev_in = NULL;
	close(tr->fd_in);
	tr->fd_in = -1;
	free(tr->in);
	tr->in = NULL;
}

static void
toolrun_close_stdout(struct toolrun *tr)
{
	if (tr->fd_out == -1)
		return;
	event_free(tr->ev_out);
	tr->ev_out = NULL;
	close(tr->fd_out);
	tr->fd_out = -1;
}

static void
toolrun_close_stderr(struct toolrun *tr)
{
	if (tr->fd_err == -1)
		return;
	event_free(tr->ev_err);
	tr->ev_err = NULL;
	close(tr->fd_err);
	tr->fd_err = -1;
}

static void
toolrun_maybe_done(struct toolrun *tr)
{
	if (tr->reaped && tr->fd_out == -1 && tr->fd_err == -1)
		toolrun_finish(tr);
}

/* Work out the result of a run that started; see the top of the file. */
static void
toolrun_outcome(struct toolrun *tr, msgpack_sbuffer *sb)
{
	struct tool_outcome	*res = &tr->res;
	msgpack_packer		 pk;
	char			 err[256];

	res->wstatus = tr->wstatus;
	res->may_have_acted = tr->wstatus != -1 && WIFSIGNALED(tr->wstatus);
	if (tr->timed_out && tr->expired) {
		res->status = TR_TIMEOUT;
		snprintf(res->message, sizeof(res->message),
		    "tool killed at shutdown (limits.shutdown_s)");
	} else if (tr->timed_out) {
		res->status = TR_TIMEOUT;
		snprintf(res->message, sizeof(res->message),
		    "tool timed out after %u ms", (unsigned)tr->timeout_ms);
	} else if (tr->too_big) {
		res->status = TR_BAD_OUTPUT;
		snprintf(res->message, sizeof(res->message),
		    "output larger than %zu bytes", tr->max_output);
	} else if (tr->wstatus == -1 || !WIFEXITED(tr->wstatus) ||
	    WEXITSTATUS(tr->wstatus) != 0) {
		res->status = TR_FAILED;
		toolrun_failmsg(tr);
	} else {
		msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
		if (json_to_msgpack(tr->out != NULL ? tr->out : "",
		    tr->outlen, &pk, err, sizeof(err)) == -1) {
			res->status = TR_BAD_OUTPUT;
			snprintf(res->message, sizeof(res->message),
			    "tool output is not one JSON value: %s", err);
		} else if (sb->size > tr->max_output + MSGPACK_SLACK) {
			/*
			 * The limit holds for what is sent: JSON can grow
			 * as msgpack (a float: 4 bytes, then 9), and a
			 * larger answer would not fit a socketpair frame.
			 */
			res->status = TR_BAD_OUTPUT;
			snprintf(res->message, sizeof(res->message),
			    "tool output is %zu bytes as msgpack, more than"
			    " limits.max_output (%zu)", sb->size,
			    tr->max_output);
		} else if (mp_check_depth(sb->data, sb->size,
		    VALUE_MAX_DEPTH) < 0) {
			/* It must still fit in a socketpair message. */
			res->status = TR_BAD_OUTPUT;
			snprintf(res->message, sizeof(res->message),
			    "tool output nests deeper than %d levels",
			    VALUE_MAX_DEPTH);
		} else {
			res->status = TR_OK;
			res->result = sb->data;
			res->resultlen = sb->size;
		}
	}
}

/* The last non-empty line of stderr, or how it ended. */
static void
toolrun_failmsg(struct toolrun *tr)
{
	struct tool_outcome	*res = &tr->res;
	size_t			 start, end;

	end = tr->errlen;
	while (end > 0 && isspace((unsigned char)tr->err[end - 1]))
		end--;
	if (end > 0) {
		start = end;
		while (start > 0 && tr->err[start - 1] != '\n')
			start--;
		log_sanitize(res->message, sizeof(res->message),
		    tr->err + start, end - start);
	} else if (tr->wstatus == -1)
		snprintf(res->message, sizeof(res->message),
		    "exit status unknown");
	else if (WIFSIGNALED(tr->wstatus))
		snprintf(res->message, sizeof(res->message),
		    "killed by signal %d", WTERMSIG(tr->wstatus));
	else
		snprintf(res->message, sizeof(res->message),
		    "exit status %d", WEXITSTATUS(tr->wstatus));
}

/* Call back once, then free everything. */
static void
toolrun_finish(struct toolrun *tr)
{
	msgpack_sbuffer	 sb;
	struct timespec	 now;
	uint64_t	 ms;

	msgpack_sbuffer_init(&sb);
	if (tr->pid != -1)
		toolrun_outcome(tr, &sb);
	else {
		tr->res.wstatus = -1;
		tr->res.may_have_acted = 0;
	}
	if (tr->cancelled) {
		/* What it printed, or why it failed, no longer matters. */
		tr->res.status = TR_CANCELLED;
		tr->res.result = NULL;
		tr->res.resultlen = 0;
		snprintf(tr->res.message, sizeof(tr->res.message),
		    "cancelled");
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (uint64_t)(now.tv_sec - tr->start.tv_sec) * 1000;
	ms += now.tv_nsec / 1000000;
	ms -= tr->start.tv_nsec / 1000000;
	tr->res.duration_ms = ms;

	LIST_REMOVE(tr, entry);
	toolrun_count--;
	/* Stdin may still be open when it exited without reading it all. */
	toolrun_close_stdin(tr);
	if (tr->ev_timer != NULL)
		event_free(tr->ev_timer);

	tr->cb(&tr->res, tr->arg);

	msgpack_sbuffer_destroy(&sb);
	free(tr->out);
	free(tr);
}

/*
 * Strays: the executor is a child subreaper (executor.c), so what a tool
 * leaves behind -- a daemon that left the tool's process group with
 * setsid(), say -- becomes our child once its parent is gone.  Any child
 * that is not a running tool is such a stray: kill it and reap it, or
 * zombies pile up.  Only pids read from the kernel's list of our children
 * are waited for, never -1, so a tool's exit status is never taken from
 * toolrun_reap().
 */

/* Whether pid is a tool that we started and have not reaped. */
static int
toolrun_is_running_tool(pid_t pid)
{
	struct toolrun	*tr;

	LIST_FOREACH(tr, &toolruns, entry)
		if (tr->pid == pid && !tr->reaped)
			return 1;
	return 0;
}

/* ppid of pid from /proc/PID/stat, or -1. */
static pid_t
toolrun_ppid(const char *pid)
{
	char	 path[300], buf[512], *p;
	ssize_t	 n;
	int	 fd, ppid;
	char	 state;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold anything, ")" too: take the last. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %c %d", &state, &ppid) != 2)
		return -1;
	return ppid;
}

/* Kill and reap a child unless it is a tool; 1 when it was a stray. */
static int
toolrun_stray(pid_t pid)
{
	if (pid <= 0 || toolrun_is_running_tool(pid) || spawn_is_kept(pid))
		return 0;
	log_debug("stray pid %d: killed", (int)pid);
	(void)spawn_kill(pid, SIGKILL);
	while (waitpid(pid, NULL, WNOHANG) == -1 && errno == EINTR)
		;
	return 1;
}

/*
 * Every child that is not a running tool: killed, and reaped when it has
 * died already (the next SIGCHLD reaps the rest).  Our children are read
 * from /proc/self/task/PID/children (we are one thread), or, without it,
 * by scanning /proc.  Returns how many strays were found, dead or alive.
 */
static size_t
toolrun_strays(void)
{
	char		 path[64], buf[4096], *p, *end;
	struct dirent	*de;
	DIR		*d;
	FILE		*f;
	pid_t		 self = getpid();
	size_t		 found = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)self);
	if ((f = fopen(path, "re")) != NULL) {
		/* Read it whole first: reaping changes the list. */
		if (fgets(buf, sizeof(buf), f) == NULL)
			buf[0] = '\0';
		fclose(f);
		for (p = buf; *p != '\0'; p = end) {
			long	pid = strtol(p, &end, 10);

			if (end == p)
				break;
			found += toolrun_stray((pid_t)pid);
		}
		/* A list longer than buf is read again on the next sweep. */
		return found;
	}
	if ((d = opendir("/proc")) == NULL) {
		log_warn("strays: /proc");
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (isdigit((unsigned char)de->d_name[0]) &&
		    toolrun_ppid(de->d_name) == self)
			found += toolrun_stray((pid_t)atol(de->d_name));
	closedir(d);
	return found;
}

void
toolrun_shutdown(void)
{
	int	i;

	/*
	 * Nothing runs now: whatever is left is a stray.  One that dies
	 * orphans its own children to us, so look until none is left.
	 */
	for (i = 0; i < TOOLRUN_EXIT_WAIT_MS / 10; i++) {
		if (toolrun_strays() == 0)
			break;
		usleep(10000);
	}
	if (i == TOOLRUN_EXIT_WAIT_MS / 10)
		log_warnx("strays: some tool processes would not die");
	if (toolrun_sweep != NULL)
		event_free(toolrun_sweep);
	toolrun_sweep = NULL;
	if (toolrun_sigchld != NULL)
		event_free(toolrun_sigchld);
	toolrun_sigchld = NULL;
}

/* The exec backend (backend.h). */
const struct backend_ops	backend_exec = {
	.name = "exec",
	.init = toolrun_init,
	.start = toolrun_start,
	.cancel = toolrun_cancel,
	.expire = toolrun_expire,
	.active = toolrun_active,
	.shutdown = toolrun_shutdown,
};
