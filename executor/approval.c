/* Approvals: a write the policy puts before an operator. */
#include "executor/call.h"
#include "proto/proto.h"

void
approval_request(struct call *c, const struct msgpack_object *args)
{
	(void)args;
	call_refuse(c, ST_DENIED, R_APPROVAL_REQUIRED,
	    "this write needs an operator's approval");
	call_free(c);
}
