/*
 * MSG_CALL: gatewayd asks us to run a tool for a principal.  The call is
 * made and checked again (request.c), then goes down the read path, the
 * write path, or to an operator first (approval.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/approval.h"
#include "executor/ratelimit.h"
#include "executor/read.h"
#include "executor/request.h"
#include "executor/response.h"
#include "executor/write.h"
#include "executor/call.h"

void
call_handle(const struct proto_msg *m)
{
	const struct tool	*tool;
	struct call		*c;
	uint64_t		 retry;
	char			 msg[256];

	if ((c = call_new(m, MSG_CALL_ANS)) == NULL)
		return;
	c->run_id = xstrdup(m->call.run_id);
	c->tool = xstrdup(m->call.tool);
	if (m->call.step_id != NULL)
		c->step_id = xstrdup(m->call.step_id);
	/*
	 * First, before the call costs anything (a tool slot, a step of
	 * the run's budget): a storm is refused at the door.
	 */
	if (ratelimit_take(c->tenant, c->tool, &retry) == -1) {
		snprintf(msg, sizeof(msg), "too many calls: over the rate "
		    "limit (rate_limits); try again in %llu ms",
		    (unsigned long long)retry);
		answer_refuse_retry(c, ST_DENIED, R_RATE_LIMITED, msg, retry);
		call_free(c);
		return;
	}
	/* gatewayd checked it; what we pass on we check ourselves. */
	if (m->call.traceparent != NULL) {
		if (traceparent_valid(m->call.traceparent,
		    strlen(m->call.traceparent)))
			c->traceparent = xstrdup(m->call.traceparent);
		else
			log_warnx("call: gatewayd passed a traceparent that "
			    "is not one: dropped");
	}
	switch (call_check(c, m->call.args, 0, &tool)) {
	case ROUTE_NONE:
		break;
	case ROUTE_READ:
		read_start(c, tool);
		break;
	case ROUTE_WRITE:
		write_start(c, tool);
		break;
	case ROUTE_APPROVAL:
		approval_request(c, m->call.args);
		break;
	}
}
