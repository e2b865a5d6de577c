/*
 * The handler of MSG_CALL.
 */
#ifndef TG_CALL_H
#define TG_CALL_H

struct proto_msg;

/* MSG_CALL: the re-checks, then the read path, the write path or an
 * operator first. */
void	call_handle(const struct proto_msg *);

#endif
