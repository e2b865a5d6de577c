/*
 * MCP server processes (mcpserver.h): started at init, one per server
 * (scope shared) or one per tenant and env of the principals (scope
 * tenant_env); spoken to over stdio, one JSON-RPC message a line;
 * restarted with backoff whenever they exit, misbehave or hang.
 *
 * A process is P_INIT from its start until initialize is answered,
 * P_LISTING until its first tools/list is complete (mcpmsg.c reads what
 * it says), then P_READY; calls
 * (mcp.c) go only to a ready process.  Whatever ends it -- its exit, its
 * stdout closing, no answer to initialize or tools/list within
 * init_timeout_ms, too many calls in a row timing out -- goes through
 * mcpserver_restart(): the process group is killed, its calls end
 * (mcp_proc_lost()), and it starts again after the backoff.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "executor/credential.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/spawn.h"
#include "executor/mcpserver.h"

#define MCP_BACKOFF_MIN_MS	100
#define MCP_BACKOFF_MAX_MS	30000
/* Ready this long: the next restart starts from the shortest backoff. */
#define MCP_STABLE_MS		30000
#define MCP_INIT_TIMEOUT_MS	10000	/* when the config says 0 */
#define MCP_READSZ		65536
/* Room for the JSON-RPC envelope around a result of max_output bytes. */
#define MCP_LINE_SLACK		65536
#define MCP_LOG_PER_S		20	/* lines of a kind logged, per process */
#define MCP_TERM_WAIT_MS	2000	/* at exit, after SIGTERM */

struct mcp_procq		 mcp_procs = TAILQ_HEAD_INITIALIZER(mcp_procs);
static struct event_base	*mbase;
static struct event		*ev_sigchld;
static size_t			 max_line;

static void	proc_timer_cb(int, short, void *);
static void	proc_stdin_cb(int, short, void *);
static void	proc_stdout_cb(int, short, void *);
static void	proc_stderr_cb(int, short, void *);
static void	proc_sigchld_cb(int, short, void *);
static void	proc_start(struct mcp_proc *);
static void	proc_stop(struct mcp_proc *);
static void	proc_schedule(struct mcp_proc *);

static void
proc_new(size_t idx, const char *tenant, const char *env)
{
	const struct mcp_server	*srv = &ex->conf->mcp_servers[idx];
	struct mcp_proc		*p;

	p = xcalloc(1, sizeof(*p));
	p->srv = srv;
	p->srv_idx = idx;
	if (tenant != NULL && env != NULL) {
		p->tenant = xstrdup(tenant);
		p->env = xstrdup(env);
		snprintf(p->label, sizeof(p->label), "mcp server %s (%s/%s)",
		    srv->name, tenant, env);
	} else
		snprintf(p->label, sizeof(p->label), "mcp server %s",
		    srv->name);
	p->state = P_DOWN;
	p->pid = -1;
	p->fd_in = p->fd_out = p->fd_err = -1;
	p->next_id = 1;
	p->backoff_ms = MCP_BACKOFF_MIN_MS;
	p->err_rl.what = "lines of stderr";
	p->junk_rl.what = "dropped lines of stdout";
	p->req_rl.what = "refused requests";
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->flight);
	if ((p->ev_timer = evtimer_new(mbase, proc_timer_cb, p)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	TAILQ_INSERT_TAIL(&mcp_procs, p, entry);
	/* From the loop, like every later start. */
	mcpserver_timer(p, 0);
}

void
mcpserver_init(struct event_base *base)
{
	const struct config	*conf = ex->conf;
	const struct principal	*pr;
	struct mcp_proc		*p;
	size_t			 i, j;
	int			 seen;

	mbase = base;
	max_line = conf->max_output + MCP_LINE_SLACK;
	if (conf->nmcp_servers == 0)
		return;
	/* Its own SIGCHLD event: toolrun.c reaps only its own children. */
	ev_sigchld = evsignal_new(base, SIGCHLD, proc_sigchld_cb, NULL);
	if (ev_sigchld == NULL || event_add(ev_sigchld, NULL) == -1)
		fatalx("%s: cannot watch SIGCHLD", __func__);
	for (i = 0; i < conf->nmcp_servers; i++) {
		if (conf->mcp_servers[i].scope == MCP_SHARED) {
			proc_new(i, NULL, NULL);
			continue;
		}
		for (j = 0; j < conf->nprincipals; j++) {
			pr = &conf->principals[j];
			seen = 0;
			TAILQ_FOREACH(p, &mcp_procs, entry)
				if (p->srv_idx == i &&
				    strcmp(p->tenant, pr->tenant) == 0 &&
				    strcmp(p->env, pr->env) == 0)
					seen = 1;
			if (!seen)
				proc_new(i, pr->tenant, pr->env);
		}
	}
}

struct mcp_proc *
mcpserver_find(size_t srv_idx, const char *tenant, const char *env)
{
	struct mcp_proc	*p;

	TAILQ_FOREACH(p, &mcp_procs, entry) {
		if (p->srv_idx != srv_idx)
			continue;
		if (p->tenant == NULL)
			return p;
		if (tenant != NULL && env != NULL &&
		    strcmp(p->tenant, tenant) == 0 && strcmp(p->env, env) == 0)
			return p;
	}
	return NULL;
}

void
mcpserver_timer(struct mcp_proc *p, uint32_t ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(p->ev_timer, &tv) == -1)
		fatalx("%s: evtimer_add", __func__);
}

uint32_t
mcpserver_init_timeout(const struct mcp_proc *p)
{
	return p->srv->init_timeout_ms ? p->srv->init_timeout_ms :
	    MCP_INIT_TIMEOUT_MS;
}

/*
 * PATH, the configured variables and, for a tenant_env server, its
 * credential: nothing of the executor's own environment.  NULL with msg
 * set when the credential cannot be read (the server does not start
 * without it).
 */
static char **
proc_env(struct mcp_proc *p, char *msg, size_t msglen)
{
	const struct mcp_server	*srv = p->srv;
	char			**envp, *cred = NULL;
	size_t			 i, n = 0;

	if (p->tenant != NULL && srv->credential_env != NULL &&
	    credential_read(ex->conf->credentials_dir, p->tenant, p->env,
	    srv->name, &cred, msg, msglen) == -1)
		return NULL;
	envp = xcalloc(srv->nenv + 3, sizeof(*envp));
	envp[n++] = xstrdup(SPAWN_PATH);
	for (i = 0; i < srv->nenv; i++)
		envp[n++] = xstrdup(srv->envp[i]);
	/* No file: the variable is absent. */
	if (cred != NULL) {
		xasprintf(&envp[n++], "%s=%s", srv->credential_env, cred);
		explicit_bzero(cred, strlen(cred));
		free(cred);
	}
	envp[n] = NULL;
	return envp;
}

static void
proc_start(struct mcp_proc *p)
{
	const char	*user;
	char		 msg[512], **envp;
	struct runas	 ras;
	struct spawned	 sp;
	int		 r;

	if (ex->shutting_down)
		return;
	/*
	 * As root: the server's user, else tool_user, never root by
	 * default.  Unprivileged (development mode) no other user can be
	 * switched to: it runs as the executor's own.
	 */
	user = geteuid() != 0 ? NULL : p->srv->user != NULL ? p->srv->user :
	    ex->conf->tool_user;
	/* Its pipes are held as long as it runs: counted like a tool's. */
	if (!fds_room(FDS_SERVER)) {
		log_warnx("%s: out of descriptors: not started", p->label);
		proc_schedule(p);
		return;
	}
	if (spawn_runas(user, p->srv->argv[0], &ras, msg, sizeof(msg)) == -1 ||
	    (envp = proc_env(p, msg, sizeof(msg))) == NULL) {
		log_warnx("%s: %s", p->label, msg);
		proc_schedule(p);
		return;
	}
	r = spawn_child(p->label, &ras, p->srv->argv, envp, -1, &sp, msg,
	    sizeof(msg));
	spawn_env_free(envp);
	if (r == -1) {
		log_warnx("%s: %s", p->label, msg);
		proc_schedule(p);
		return;
	}
	spawn_keep(sp.pid);
	fds_hold(FDS_SERVER);
	p->holds_fds = 1;
	p->pid = sp.pid;
	p->fd_in = sp.fd_in;
	p->fd_out = sp.fd_out;
	p->fd_err = sp.fd_err;
	p->outq = evbuffer_new();
	p->ev_in = event_new(mbase, p->fd_in, EV_WRITE | EV_PERSIST,
	    proc_stdin_cb, p);
	p->ev_out = event_new(mbase, p->fd_out, EV_READ | EV_PERSIST,
	    proc_stdout_cb, p);
	p->ev_err = event_new(mbase, p->fd_err, EV_READ | EV_PERSIST,
	    proc_stderr_cb, p);
	if (p->outq == NULL || p->ev_in == NULL || p->ev_out == NULL ||
	    p->ev_err == NULL || event_add(p->ev_out, NULL) == -1 ||
	    event_add(p->ev_err, NULL) == -1)
		fatalx("%s: event_new", __func__);
	p->next_id = 1;
	p->strikes = 0;
	log_info("%s: started, pid %d", p->label, (int)p->pid);
	mcpmsg_initialize(p);
}

/* Close our ends and kill the group; the reap comes at SIGCHLD. */
static void
proc_stop(struct mcp_proc *p)
{
	if (p->ev_in != NULL)
		event_free(p->ev_in);
	if (p->ev_out != NULL)
		event_free(p->ev_out);
	if (p->ev_err != NULL)
		event_free(p->ev_err);
	p->ev_in = p->ev_out = p->ev_err = NULL;
	if (p->fd_in != -1)
		close(p->fd_in);
	if (p->fd_out != -1)
		close(p->fd_out);
	if (p->fd_err != -1)
		close(p->fd_err);
	p->fd_in = p->fd_out = p->fd_err = -1;
	if (p->holds_fds)
		fds_release(FDS_SERVER);
	p->holds_fds = 0;
	if (p->outq != NULL)
		evbuffer_free(p->outq);
	p->outq = NULL;
	free(p->line);
	p->line = NULL;
	p->linelen = 0;
	p->discarding = 0;
	p->errlen = 0;
	p->errdiscard = 0;
	mcpserver_log_flush(p, &p->err_rl);
	mcpserver_log_flush(p, &p->junk_rl);
	mcpserver_log_flush(p, &p->req_rl);
	json_decref(p->tools_acc);
	p->tools_acc = NULL;
	p->pages = 0;
	p->init_id = p->list_id = 0;
	p->relist = 0;
	/* Not reaped yet, so the group id is still ours. */
	if (p->pid != -1)
		(void)spawn_kill(-p->pid, SIGKILL);
	p->state = P_DOWN;
	evtimer_del(p->ev_timer);
}

/* The next start, after the backoff. */
static void
proc_schedule(struct mcp_proc *p)
{
	uint64_t	now = mono_ms();
	uint32_t	delay;

	if (p->ready_ms != 0 && now - p->ready_ms >= MCP_STABLE_MS)
		p->backoff_ms = MCP_BACKOFF_MIN_MS;
	p->ready_ms = 0;
	delay = p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > MCP_BACKOFF_MAX_MS ?
	    MCP_BACKOFF_MAX_MS : p->backoff_ms * 2;
	log_info("%s: restart in %u ms", p->label, (unsigned)delay);
	mcpserver_timer(p, delay);
}

void
mcpserver_restart(struct mcp_proc *p, const char *why)
{
	if (p->state == P_DOWN)
		return;
	log_warnx("%s: %s: killed, restarting", p->label, why);
	proc_stop(p);
	mcp_proc_lost(p, why);
	proc_schedule(p);
}

static void
proc_timer_cb(int fd, short ev, void *arg)
{
	struct mcp_proc	*p = arg;
	char		 why[128];

	(void)fd;
	(void)ev;
	switch (p->state) {
	case P_DOWN:
		/* The old one first: its pid must be reaped. */
		if (p->pid != -1) {
			(void)spawn_kill(-p->pid, SIGKILL);
			mcpserver_timer(p, MCP_BACKOFF_MIN_MS);
			return;
		}
		proc_start(p);
		return;
	case P_INIT:
		snprintf(why, sizeof(why), "no answer to initialize within"
		    " %u ms", (unsigned)mcpserver_init_timeout(p));
		break;
	case P_LISTING:
	case P_READY:
		snprintf(why, sizeof(why), "no answer to tools/list within"
		    " %u ms", (unsigned)mcpserver_init_timeout(p));
		break;
	}
	mcpserver_restart(p, why);
}

int
mcpserver_send(struct mcp_proc *p, json_t *msg)
{
	char	*s;

	if (p->fd_in == -1) {
		json_decref(msg);
		return -1;
	}
	/* Compact: no newline inside, so one message is one line. */
	s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (s == NULL)
		fatalx("%s: json_dumps", __func__);
	if (evbuffer_add(p->outq, s, strlen(s)) == -1 ||
	    evbuffer_add(p->outq, "\n", 1) == -1)
		fatalx("%s: evbuffer_add", __func__);
	free(s);
	/*
	 * Written once this loop turn's other callbacks are done (so the
	 * requests of one turn go in one write), not a turn later when
	 * epoll says the pipe is writable: it nearly always is.  Only what
	 * the pipe does not take waits for EV_WRITE (proc_stdin_cb).
	 */
	event_active(p->ev_in, EV_WRITE, 0);
	return 0;
}

static void
proc_stdin_cb(int fd, short ev, void *arg)
{
	struct mcp_proc	*p = arg;
	char		 why[128];

	(void)ev;
	if (evbuffer_write(p->outq, fd) == -1 && errno != EAGAIN &&
	    errno != EINTR) {
		snprintf(why, sizeof(why), "stdin: %s", strerror(errno));
		mcpserver_restart(p, why);
		return;
	}
	/* What the pipe did not take waits until it is writable. */
	if (evbuffer_get_length(p->outq) == 0)
		event_del(p->ev_in);
	else if (event_add(p->ev_in, NULL) == -1)
		fatalx("%s: event_add", __func__);
}

static void
proc_stdout_cb(int fd, short ev, void *arg)
{
	struct mcp_proc	*p = arg;
	char		 buf[MCP_READSZ], *nl, *line;
	size_t		 off, seg, len;
	ssize_t		 n;

	(void)ev;
	n = read(fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mcpserver_restart(p, n == 0 ? "stdout closed (exited?)" :
		    "stdout unreadable");
		return;
	}
	for (off = 0; off < (size_t)n; off += seg) {
		nl = memchr(buf + off, '\n', n - off);
		seg = nl != NULL ? (size_t)(nl - (buf + off)) + 1 : n - off;
		if (p->discarding) {
			if (nl != NULL)
				p->discarding = 0;
			continue;
		}
		if (p->linelen + seg > max_line + 1) {
			if (mcpserver_log_ok(p, &p->junk_rl))
				log_warnx("%s: stdout line longer than %zu"
				    " bytes: dropped", p->label, max_line);
			p->linelen = 0;
			p->discarding = nl == NULL;
			continue;
		}
		p->line = xreallocarray(p->line, p->linelen + seg, 1);
		memcpy(p->line + p->linelen, buf + off, seg);
		p->linelen += seg;
		if (nl == NULL)
			continue;
		p->linelen--;		/* the newline */
		if (p->linelen > 0 && p->line[p->linelen - 1] == '\r')
			p->linelen--;
		/* A handler may restart it, which frees p->line. */
		line = p->line;
		len = p->linelen;
		p->line = NULL;
		p->linelen = 0;
		if (len > 0)
			mcpmsg_line(p, line, len, max_line);
		free(line);
		if (p->fd_out == -1)
			return;
	}
}

void
mcpserver_log_flush(struct mcp_proc *p, struct ratelim *rl)
{
	if (rl->dropped > 0)
		log_warnx("%s: %lu %s not logged", p->label, rl->dropped,
		    rl->what);
	rl->dropped = 0;
}

int
mcpserver_log_ok(struct mcp_proc *p, struct ratelim *rl)
{
	uint64_t	now = mono_ms();

	if (now - rl->window_ms >= 1000) {
		mcpserver_log_flush(p, rl);
		rl->window_ms = now;
		rl->n = 0;
	}
	if (rl->n < MCP_LOG_PER_S) {
		rl->n++;
		return 1;
	}
	rl->dropped++;
	return 0;
}

/* One stderr line to the log, unless there were too many. */
static void
proc_errline(struct mcp_proc *p)
{
	char	out[sizeof(p->errline) * 4 + 8];

	if (mcpserver_log_ok(p, &p->err_rl)) {
		log_sanitize(out, sizeof(out), p->errline, p->errlen);
		log_info("%s: stderr: %s", p->label, out);
	}
	p->errlen = 0;
}

static void
proc_stderr_cb(int fd, short ev, void *arg)
{
	struct mcp_proc	*p = arg;
	char		 buf[4096];
	ssize_t		 n, i;

	(void)ev;
	n = read(fd, buf, sizeof(buf));
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (p->errlen > 0)
			proc_errline(p);
		mcpserver_log_flush(p, &p->err_rl);
		event_free(p->ev_err);
		p->ev_err = NULL;
		close(p->fd_err);
		p->fd_err = -1;
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			if (!p->errdiscard && p->errlen > 0)
				proc_errline(p);
			p->errdiscard = 0;
			p->errlen = 0;
			continue;
		}
		if (p->errdiscard)
			continue;
		p->errline[p->errlen++] = buf[i];
		/* A long line: its start is logged, the rest dropped. */
		if (p->errlen == sizeof(p->errline)) {
			proc_errline(p);
			p->errdiscard = 1;
		}
	}
}

static void
proc_reaped(struct mcp_proc *p, int status)
{
	char	why[128];

	spawn_release(p->pid);
	p->pid = -1;
	if (status == -1)
		snprintf(why, sizeof(why), "exit status unknown");
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "exited with status %d",
		    WEXITSTATUS(status));
	if (p->state != P_DOWN)
		mcpserver_restart(p, why);
	else
		log_info("%s: %s", p->label, why);
}

static void
proc_sigchld_cb(int sig, short ev, void *arg)
{
	struct mcp_proc	*p;
	siginfo_t	 si;
	int		 status;

	(void)sig;
	(void)ev;
	(void)arg;
	TAILQ_FOREACH(p, &mcp_procs, entry) {
		if (p->pid == -1)
			continue;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, p->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == -1) {
			log_warn("%s: waitid", p->label);
			proc_reaped(p, -1);
			continue;
		}
		if (si.si_pid == 0)
			continue;
		/* What it left in its group dies with it. */
		(void)spawn_kill(-p->pid, SIGKILL);
		while (waitpid(p->pid, &status, 0) == -1) {
			if (errno != EINTR) {
				status = -1;
				break;
			}
		}
		proc_reaped(p, status);
	}
}

/* Reap those that have exited; how many are left. */
static int
proc_wait_all(int ms)
{
	struct mcp_proc	*p;
	int		 i, left = 0;

	for (i = 0; i <= ms / 10; i++) {
		left = 0;
		TAILQ_FOREACH(p, &mcp_procs, entry) {
			if (p->pid == -1)
				continue;
			if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
				(void)spawn_kill(-p->pid, SIGKILL);
				spawn_release(p->pid);
				p->pid = -1;
			} else
				left++;
		}
		if (left == 0 || i == ms / 10)
			break;
		usleep(10000);
	}
	return left;
}

/*
 * At exit, once no call runs, as the MCP spec asks of a client: end of
 * file on stdin first, SIGTERM after a grace period, then SIGKILL.
 */
void
mcpserver_shutdown(void)
{
	struct mcp_proc	*p;

	TAILQ_FOREACH(p, &mcp_procs, entry) {
		if (p->fd_in != -1) {
			/*
			 * What is still queued (notifications/cancelled at the
			 * deadline), as far as the pipe takes it now.
			 */
			while (evbuffer_get_length(p->outq) > 0 &&
			    evbuffer_write(p->outq, p->fd_in) > 0)
				;
			event_free(p->ev_in);
			p->ev_in = NULL;
			close(p->fd_in);
			p->fd_in = -1;
		}
	}
	if (proc_wait_all(MCP_TERM_WAIT_MS / 2) > 0) {
		TAILQ_FOREACH(p, &mcp_procs, entry)
			if (p->pid != -1)
				(void)spawn_kill(-p->pid, SIGTERM);
		(void)proc_wait_all(MCP_TERM_WAIT_MS / 2);
	}
	while ((p = TAILQ_FIRST(&mcp_procs)) != NULL) {
		TAILQ_REMOVE(&mcp_procs, p, entry);
		if (p->pid != -1) {
			log_warnx("%s: did not stop on SIGTERM: killed",
			    p->label);
			(void)spawn_kill(-p->pid, SIGKILL);
			while (waitpid(p->pid, NULL, 0) == -1 && errno == EINTR)
				;
			spawn_release(p->pid);
			p->pid = -1;
		}
		proc_stop(p);
		mcp_proc_lost(p, "the executor is shutting down");
		event_free(p->ev_timer);
		json_decref(p->tools);
		free(p->defs);
		free(p->tenant);
		free(p->env);
		free(p);
	}
	if (ev_sigchld != NULL)
		event_free(ev_sigchld);
	ev_sigchld = NULL;
}
