/*
 * The tool backends (backend.h): which one runs a tool, and what every
 * backend is asked at once (cancel, the shutdown deadline, a count).
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/breaker.h"
#include "executor/executor.h"
#include "executor/fds.h"
#include "executor/request.h"
#include "executor/backend.h"

/*
 * A run a breaker watches: its outcome goes to the breaker, then to the
 * caller.  The backend knows it by this struct; cancel finds it by the
 * caller's argument.
 */
struct brun {
	TAILQ_ENTRY(brun)	 entry;
	tool_done_cb		 done;
	void			*arg;
	struct brk_ticket	 tk;
	char			*tenant;
	const struct tool	*tool;
};
static TAILQ_HEAD(, brun)	bruns = TAILQ_HEAD_INITIALIZER(bruns);

/* A call the breaker refused: its callback, later, from the loop. */
struct brefusal {
	tool_done_cb	 done;
	void		*arg;
	uint64_t	 retry_after_ms;
};

static const struct backend_ops	*backends[] = {
	&backend_exec,
	&backend_mcp,
	&backend_http,
};
#define NBACKENDS	(sizeof(backends) / sizeof(backends[0]))

static const struct backend_ops *
backend_for(const struct tool *tool)
{
	switch (tool->backend) {
	case TB_MCP:
		return &backend_mcp;
	case TB_HTTP:
		return &backend_http;
	default:
		return &backend_exec;
	}
}

void
backends_init(struct event_base *base, const struct config *conf)
{
	size_t	i, n;

	for (i = 0; i < NBACKENDS; i++) {
		backends[i]->init(base, conf);
		/* Counted from the start, as held as any other. */
		n = backends[i]->fds_kept != NULL ? backends[i]->fds_kept() :
		    0;
		while (n-- > 0)
			fds_hold(FDS_CACHE);
	}
}

void
backends_shutdown(void)
{
	size_t	i;

	for (i = 0; i < NBACKENDS; i++)
		backends[i]->shutdown();
}

/*
 * The executor's own user never changes once it runs (its children switch
 * theirs): asked of the kernel once, not on every call.
 */
static int
as_root(void)
{
	static int	root = -1;

	if (root == -1)
		root = geteuid() == 0;
	return root;
}

static void
brun_done(const struct tool_outcome *o, void *arg)
{
	struct brun	*br = arg;

	TAILQ_REMOVE(&bruns, br, entry);
	breaker_outcome(&br->tk, br->tenant, br->tool, o);
	br->done(o, br->arg);
	free(br->tenant);
	free(br);
}

static void
refusal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct brefusal		*rf = arg;
	struct tool_outcome	 o;

	(void)fd;
	(void)what;
	memset(&o, 0, sizeof(o));
	o.status = TR_CIRCUIT;
	o.retry_after_ms = rf->retry_after_ms;
	o.wstatus = -1;
	snprintf(o.message, sizeof(o.message), "the tool's circuit breaker "
	    "is open after repeated failures: not called; try again in %llu"
	    " ms", (unsigned long long)rf->retry_after_ms);
	rf->done(&o, rf->arg);
	free(rf);
}

/* Backends call back later, never from start: so does a refusal. */
static void
refuse_later(tool_done_cb done, void *arg, uint64_t retry_after_ms)
{
	struct brefusal	*rf = xcalloc(1, sizeof(*rf));
	struct timeval	 now = { 0, 0 };

	rf->done = done;
	rf->arg = arg;
	rf->retry_after_ms = retry_after_ms;
	if (event_base_once(ex->base, -1, EV_TIMEOUT, refusal_cb, rf,
	    &now) == -1)
		fatalx("event_base_once");
}

void
backend_start(const struct call *c, const struct tool *tool, tool_done_cb done,
    void *arg)
{
	struct tool_req		req;
	struct brk_ticket	tk;
	struct brun		*br;
	uint64_t		retry;

	memset(&req, 0, sizeof(req));
	req.tool = tool;
	/*
	 * As root, a tool without a user runs as tool_user, never as root.
	 * Unprivileged (development mode) no other user can be switched to:
	 * tools run as the executor's own user.
	 */
	req.default_user = as_root() ? ex->conf->tool_user : NULL;
	req.tenant = c->tenant;
	req.env = c->env;
	req.run_id = c->run_id;
	req.step_id = c->step_id;
	req.args_hash = c->args_hash;
	req.idempotency_key = c->idem_key;
	req.input = c->json.data;
	req.inputlen = c->json.len;
	req.credentials_dir = ex->conf->credentials_dir;
	req.max_output = ex->conf->max_output;
	req.traceparent = c->traceparent;
	if (breaker_admit(c->tenant, tool, &tk, &retry) == -1) {
		refuse_later(done, arg, retry);
		return;
	}
	if (tk.cell == -1) {
		backend_for(tool)->start(&req, done, arg);
		return;
	}
	br = xcalloc(1, sizeof(*br));
	br->done = done;
	br->arg = arg;
	br->tk = tk;
	br->tenant = xstrdup(c->tenant);
	br->tool = tool;
	TAILQ_INSERT_TAIL(&bruns, br, entry);
	backend_for(tool)->start(&req, brun_done, br);
}

int
backend_cancel(const void *arg)
{
	struct brun	*br;
	size_t		 i;

	/* The backend knows a watched run by its brun. */
	TAILQ_FOREACH(br, &bruns, entry)
		if (br->arg == arg) {
			arg = br;
			break;
		}
	for (i = 0; i < NBACKENDS; i++)
		if (backends[i]->cancel(arg))
			return 1;
	return 0;
}

size_t
backends_expire(void)
{
	size_t	i, n = 0;

	for (i = 0; i < NBACKENDS; i++)
		n += backends[i]->expire();
	return n;
}

const char *
backend_name(const struct tool *tool)
{
	return backend_for(tool)->name;
}

const char *
backend_tool_state(const struct tool *tool)
{
	const struct backend_ops	*b = backend_for(tool);

	return b->tool_state != NULL ? b->tool_state(tool) : "ok";
}

int
backend_tool_accept(const struct tool *tool, char *msg, size_t msglen)
{
	const struct backend_ops	*b = backend_for(tool);

	if (b->tool_accept == NULL) {
		snprintf(msg, msglen, "%s is a tool of the %s backend, which "
		    "pins no definition: there is nothing to accept",
		    tool->name, b->name);
		return -1;
	}
	return b->tool_accept(tool, msg, msglen);
}

size_t
backends_active(void)
{
	size_t	i, n = 0;

	for (i = 0; i < NBACKENDS; i++)
		n += backends[i]->active();
	return n;
}
