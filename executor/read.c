/*
 * The read path (read.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proto/proto.h"
#include "executor/admit.h"
#include "executor/backend.h"
#include "executor/jobs.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/metrics.h"
#include "executor/read.h"

/* Reads whose tool runs: a hang-up of their agent cancels them. */
static struct callq	reads = TAILQ_HEAD_INITIALIZER(reads);

/* A read's answer goes straight back: nothing is recorded but the audit. */
static void
read_done(const struct tool_outcome *r, void *arg)
{
	struct call	*c = arg;
	struct response	 resp = { .status = ST_OK, .args_hash = c->args_hash };

	TAILQ_REMOVE(&reads, c, entry);
	metrics_tool_run_name(c->tool, r);
	/* Refused before it started, or it ran (for the audit record). */
	c->ran = r->status != TR_UNAVAILABLE && r->status != TR_CHANGED &&
	    r->status != TR_CIRCUIT;
	switch (r->status) {
	case TR_OK:
		/* No record, no result: the read changed nothing. */
		resp.result = r->result;
		resp.resultlen = r->resultlen;
		answer(c, &resp, 0);
		break;
	case TR_FAILED:
		answer_failed(c, r);
		break;
	case TR_UNAVAILABLE:
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE, r->message);
		break;
	case TR_CHANGED:
		answer_refuse(c, ST_DENIED, R_TOOL_CHANGED, r->message);
		break;
	case TR_CIRCUIT:
		answer_refuse_retry(c, ST_DENIED, R_CIRCUIT_OPEN, r->message,
		    r->retry_after_ms);
		break;
	case TR_TIMEOUT:
		answer_refuse(c, ST_ERROR, E_TOOL_TIMEOUT, r->message);
		break;
	case TR_BAD_OUTPUT:
		answer_refuse(c, ST_STOPPED, R_INVALID_OUTPUT, r->message);
		break;
	case TR_CANCELLED:
		/*
		 * Recorded as error/unavailable, like a request refused
		 * because its agent had hung up; the answer only frees
		 * gatewayd's slot for it, which drops it.
		 */
		answer_refuse(c, ST_ERROR, E_UNAVAILABLE,
		    "the agent has hung up: the read was cancelled");
		break;
	}
	admit_done(c->tenant);
	call_free(c);
	job_end();
}

void
read_start(struct call *c, const struct tool *tool)
{
	TAILQ_INSERT_TAIL(&reads, c, entry);
	job_begin();
	backend_start(c, tool, read_done, c);
}

size_t
read_conn_gone(uint64_t conn)
{
	struct call	*c;
	size_t		 n = 0;

	/* The callbacks come later, from the loop: the list stays as is. */
	TAILQ_FOREACH(c, &reads, entry) {
		if (c->conn != conn || c->cancelled)
			continue;
		c->cancelled = 1;
		n += backend_cancel(c);
	}
	return n;
}
