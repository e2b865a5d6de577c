/*
 * MSG_CALL: gatewayd asks us to run a tool for a principal.  The call is
 * made and checked again (request.c), then goes down the read path, the
 * write path, or to an operator first (approval.c).
 */
#include <stddef.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/xmalloc.h"
#include "proto/proto.h"
#include "executor/approval.h"
#include "executor/read.h"
#include "executor/request.h"
#include "executor/write.h"
#include "executor/call.h"

void
call_handle(const struct proto_msg *m)
{
	const struct tool	*tool;
	struct call		*c;

	if ((c = call_new(m, MSG_CALL_ANS)) == NULL)
		return;
	c->run_id = xstrdup(m->call.run_id);
	c->tool = xstrdup(m->call.tool);
	if (m->call.step_id != NULL)
		c->step_id = xstrdup(m->call.step_id);
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
